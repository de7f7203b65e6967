"""MATH (Hendrycks et al., the full 5000-problem test split) and MATH-500 (PRM800K's subset).

Answers are LaTeX (fractions, surds, tuples, intervals, matrices, text); they are graded by
mathematical equivalence (`grading.mathequiv`: exact checks, then math-verify in a worker
process with a hard time limit). Depth is the number of equations in the gold solution.
"""

from __future__ import annotations

import re

from harness.errors import HarnessError
from harness.tasks.base import DataSource, HubSplit, Loaded, Task, Verdict, load_hub
from harness.tasks.grading.extract import Extraction, extract_final_answer, last_boxed
from harness.tasks.grading.mathequiv import math_compare, math_equal
from harness.types import Problem

# HuggingFaceH4/MATH-500: its test.jsonl at this commit has the sha256 of the local copy
# (35dc4108...), i.e. the same 500 rows in the same order.
MATH500_HUB = HubSplit("HuggingFaceH4/MATH-500", None, "6e4ed1a2a79af7d8630a6b768ec859cb5af4d3be")
# The MATH test split as published by EleutherAI (one config per subject, 5000 rows in all);
# this commit is the one several public evaluation manifests pin.
MATH_HUB = ("EleutherAI/hendrycks_math", "21a5633873b6a120296cce3e2df9d5550074f4a3")
MATH_SUBJECTS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)
_ASY = re.compile(r"\[asy\].*?\[/asy\]", re.S)
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


def answer_reference(solution: str, answer: str) -> str:
    """A gold worked solution whose last line states the answer (what the reference backend
    gives as the answer part). The solution's own last `\\boxed{}` is kept as the stated
    answer, so the self-test compares the solution with the dataset's answer field; a line is
    appended only when that box is not on the last line (or there is none)."""
    body = solution.rstrip()
    stated = last_boxed(body) if body else None
    if stated is not None and last_boxed(body.splitlines()[-1]) == stated:
        return body
    line = f"The final answer is $\\boxed{{{stated if stated is not None else answer}}}$."
    return f"{body}\n{line}" if body else line


def solution_steps(solution: str | None) -> int | None:
    """Equations in a worked solution: its sentences and display blocks that contain a
    relation (=, <, >, \\le, \\ge), diagrams left out; None without a solution."""
    if not solution or not solution.strip():
        return None
    text = _ASY.sub(" ", solution)
    text = re.sub(r"\\\[|\\\]|\$\$", "\n\n", text)
    pieces = [p for p in _SENTENCES.split(text) if p.strip()]
    steps = sum(1 for p in pieces if re.search(r"=|<|>|\\le|\\ge|\\neq|\\equiv", p))
    return max(steps, 1)


class MathTask(Task):
    """Shared by MATH, MATH-500 and AIME: boxed answers, graded by math equivalence."""

    kind = "math"

    def extract(self, text: str) -> Extraction | None:
        return extract_final_answer(text, kind="math")

    def grade(self, answer: str, problem: Problem) -> Verdict:
        result = math_compare(answer, problem.answer)
        return Verdict(result.equal, result.how)

    def same_answer(self, a: str, b: str) -> bool:
        return math_equal(a, b)

    def steps(self, problem: Problem) -> int | None:
        return problem.meta.get("steps")


def _math_problem(task: str, pid: str, row: dict, where: str, answer: str | None) -> Problem:
    try:
        question, solution = row["problem"], row["solution"]
    except KeyError as e:
        raise HarnessError(
            f"{where}: {task} row lacks field {e}; expected problem, solution"
        ) from e
    gold = answer if answer is not None else last_boxed(solution)
    if gold is None:
        raise HarnessError(f"{where}: {task} solution has no \\boxed{{}} answer")
    subject = row.get("subject") or row.get("type")
    return Problem(
        id=pid,
        task=task,
        question=question,
        answer=gold,
        reference=answer_reference(solution, gold),
        subset=subject,
        meta={"level": row.get("level"), "steps": solution_steps(solution)},
    )


class MATH500(MathTask):
    name = "math500"
    description = "MATH-500 (PRM800K's test subset of MATH): LaTeX answers, math equivalence"

    local_files = ("math500/test.jsonl",)
    hub_split = MATH500_HUB
    count = 500

    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        rows = self.read_rows(source, limit)
        problems = []
        for loc, row in rows.items:
            if "answer" not in row or "unique_id" not in row:
                raise HarnessError(f"{loc}: MATH-500 row lacks answer/unique_id")
            problems.append(_math_problem(self.name, row["unique_id"], row, loc, row["answer"]))
        return Loaded(problems, rows.source)


class MATH(MathTask):
    name = "math"
    description = "MATH test split (5000 competition problems, 7 subjects): math equivalence"

    local_files = ("math/test.jsonl",)
    count = 5000

    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        """A local math/test.jsonl (problem, solution[, answer, subject/type, level, id]) if
        the data dir has one; otherwise the pinned hub copy, subject by subject."""
        problems: list[Problem] = []
        if self.local_path(source) is not None:
            rows = self.read_rows(source, limit)
            for i, (loc, row) in enumerate(rows.items):
                pid = str(row.get("unique_id") or row.get("id") or f"math-{i}")
                problems.append(_math_problem(self.name, pid, row, loc, row.get("answer")))
            return Loaded(problems, rows.source)
        if not source.hub:
            raise HarnessError("math: no math/test.jsonl in the data dir and the hub is off")
        repo, rev = MATH_HUB
        for subject in MATH_SUBJECTS:
            got = load_hub(self.name, repo, subject, "test", rev, local="math/test.jsonl")
            for i, row in enumerate(got):
                if limit is not None and len(problems) >= limit:
                    break
                loc = f"{repo}/{subject} row {i}"
                problems.append(_math_problem(self.name, f"math-{subject}-{i}", row, loc, None))
            if limit is not None and len(problems) >= limit:
                break
        return Loaded(problems, f"hub {repo}@{rev[:12]}")
