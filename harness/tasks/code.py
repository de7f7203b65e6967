"""What the code tasks share (HumanEval, MBPP): one fenced python block as the answer, graded
by running the task's own tests in the sandbox (`grading.sandbox`), all answers of a task in
parallel, with per-problem time limits calibrated from the canonical solutions on this host.

Both go through the execution cache (`sandbox.execution_cache()`, by default
`<harness cache dir>/executions.sqlite`): a program already run against the same tests under
the same limits is not run again (a re-run, a second student against the same teacher), and a
time limit calibrated before on this host is not measured again. `sandbox.execution_stats()`
counts what was run and what was served from the cache."""

from __future__ import annotations

import ast
import hashlib
import re
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.tasks.base import Task, Verdict
from harness.tasks.grading.extract import Extraction, extract_code
from harness.types import Problem

if TYPE_CHECKING:
    from harness.tasks.grading.sandbox import Job

CALIBRATION_REPEATS = 2
"""Runs of each canonical solution when calibrating its time limit (the slowest counts)."""
_TIMEOUTS: dict[str, float] = {}
"""Calibrated limits by (task, problem, program and tests) digest, shared by task instances."""


def fenced(code: str) -> str:
    """Code as the one fenced python block the r1 prompt asks for."""
    return f"```python\n{code.rstrip()}\n```"


def count_statements(code: str, function: str | None = None) -> int | None:
    """Statements in `code` (in `function`'s body only, when named), nested ones included and
    docstrings left out: the depth of a canonical solution."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "\w" in a non-raw string is the data's business
            tree = ast.parse(code)
    except SyntaxError:
        return None
    roots: Sequence[ast.AST] = [tree]
    if function is not None:
        found: Sequence[ast.AST] = [
            n
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == function
        ][:1]
        roots = found or [tree]
    count = 0
    for root in roots:
        for node in ast.walk(root):
            if node is root or not isinstance(node, ast.stmt):
                continue
            is_doc = (
                isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            )
            count += not is_doc
    return count or None


def _norm_code(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip().splitlines() if line.strip())


class CodeTask(Task):
    """Subclasses say how an answer becomes a sandbox job (`job`) and keep the canonical
    program in `problem.answer`."""

    kind = "code"

    def extract(self, text: str) -> Extraction | None:
        return extract_code(text)

    def job(self, answer: str, problem: Problem, sample: int, timeout: float) -> Job:
        """The sandbox job that runs `answer` against the problem's tests."""
        raise NotImplementedError

    def grade(self, answer: str, problem: Problem) -> bool | Verdict:
        return self.grade_many([(answer, problem)])[0]

    def grade_many(self, pairs: Sequence[tuple[str, Problem]]) -> list[bool | Verdict]:
        from harness.tasks.grading.sandbox import run_many

        if not pairs:
            return []
        limits = self.timeouts([p for _, p in pairs])
        jobs = [self.job(a, p, i, limits[p.id]) for i, (a, p) in enumerate(pairs)]
        results = run_many(jobs, cache=True)
        verdicts: list[bool | Verdict] = []
        for res in results:
            if res.status == "passed":
                verdicts.append(Verdict(True, f"passed in {res.seconds:.2f}s"))
            elif res.status == "sandbox_error":
                verdicts.append(Verdict(None, f"sandbox_error: {res.detail}"[:500]))
            else:
                verdicts.append(Verdict(False, f"{res.status}: {res.detail}"[:500]))
        return verdicts

    def timeouts(self, problems: Sequence[Problem]) -> dict[str, float]:
        """Per-problem wall-clock limits: max(floor, 10 x the canonical solution's time here),
        measured once per host for the problems being graded (kept in the execution cache)."""
        from harness.tasks.grading.sandbox import calibrate_timeouts

        keys = {p.id: self._key(p) for p in problems}
        todo = {p.id: p for p in problems if keys[p.id] not in _TIMEOUTS}
        if todo:
            jobs = [self.job(p.answer, p, 0, 120.0) for p in todo.values()]
            measured = calibrate_timeouts(jobs, repeats=CALIBRATION_REPEATS, cache=True)
            for job, problem in zip(jobs, todo.values(), strict=True):
                _TIMEOUTS[keys[problem.id]] = measured[job.id]
        return {pid: _TIMEOUTS[key] for pid, key in keys.items()}

    def _key(self, problem: Problem) -> str:
        h = hashlib.sha256(f"{self.name}\0{problem.id}\0{problem.answer}".encode())
        h.update(str(problem.meta.get("test", "")).encode())
        return h.hexdigest()

    def same_answer(self, a: str, b: str) -> bool:
        """Textually the same program (whitespace at line ends and blank lines aside): two
        different programs that both pass count as different answers."""
        return _norm_code(a) == _norm_code(b)


def indent_of_body(prompt: str) -> str:
    """The indentation of the last non-blank line of a prompt (the function's docstring)."""
    for line in reversed(prompt.splitlines()):
        if line.strip():
            return re.match(r"\s*", line).group(0)  # type: ignore[union-attr]
    return "    "
