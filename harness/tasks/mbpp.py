"""MBPP: the standard test split (task ids 11-510, 500 problems) and `mbpp-sanitized` (the
257 hand-checked problems of that range), graded by their asserts in the sandbox.

The prompt shows the task and its test asserts (Austin et al.'s format: the asserts name the
function). `challenge_test_list` is not run, as in the standard split's scoring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.tasks.base import DataSource, HubSplit, Loaded
from harness.tasks.code import CodeTask, count_statements, fenced
from harness.types import Problem

if TYPE_CHECKING:
    from harness.tasks.grading.sandbox import Job

# google-research-datasets/mbpp (configs "full" and "sanitized", split "test"): the commit that
# public evaluation manifests pin together with the full test parquet's sha256.
HUB_REPO, HUB_REVISION = "google-research-datasets/mbpp", "4bb6404fdc6cacfda99d4ac4205087b89d32030c"
TEST_IDS = range(11, 511)


def _problem(task: str, row: dict, where: str, text_field: str, setup: str) -> Problem:
    try:
        tid, text, code = int(row["task_id"]), str(row[text_field]), str(row["code"])
        tests = [str(t) for t in row["test_list"]]
    except (KeyError, ValueError, TypeError) as e:
        raise HarnessError(
            f"{where}: MBPP row lacks {e}; expected task_id, {text_field}, code, test_list"
        ) from e
    code = code.replace("\r\n", "\n").replace("\r", "\n")
    return Problem(
        id=f"mbpp-{tid}",
        task=task,
        question=text,
        answer=code,
        reference=fenced(code),
        meta={
            "task_id": tid,
            "tests": tests,
            "setup": setup,
            "test": setup + "\n" + "\n".join(tests),
            "steps": count_statements(code),
        },
    )


class MBPP(CodeTask):
    name = "mbpp"
    description = "MBPP test split (task ids 11-510): Python functions, graded by their asserts"
    text_field = "text"
    count = 500
    local_files: tuple[str, ...] = ("mbpp/mbpp_test.jsonl", "mbpp/mbpp.jsonl")
    hub_split = HubSplit(HUB_REPO, "full", HUB_REVISION)

    def _setup(self, row: dict) -> str:
        return str(row.get("test_setup_code") or "")

    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        got = self.read_rows(source)
        where = got.source
        rows = [(loc, r) for loc, r in got.items if int(r.get("task_id", -1)) in TEST_IDS]
        if len(rows) != self.count:
            raise HarnessError(
                f"{where}: {len(rows)} problems with task ids 11-510, expected {self.count}"
            )
        rows = rows[:limit] if limit is not None else rows
        problems = [_problem(self.name, r, loc, self.text_field, self._setup(r)) for loc, r in rows]
        return Loaded(problems, where)

    def render(self, problem: Problem) -> str:
        tests = "\n".join(problem.meta["tests"])
        return f"{problem.question}\nYour code should pass these tests:\n\n{tests}"

    def job(self, answer: str, problem: Problem, sample: int, timeout: float) -> Job:
        from harness.tasks.grading.sandbox import mbpp_job

        m = problem.meta
        row = {"task_id": m["task_id"], "test_list": m["tests"], "test_setup_code": m["setup"]}
        return mbpp_job(row, answer, sample=sample, timeout=timeout)

    def steps(self, problem: Problem) -> int | None:
        return problem.meta.get("steps")


class MBPPSanitized(MBPP):
    name = "mbpp-sanitized"
    description = "MBPP sanitized (257 hand-checked problems of ids 11-510), graded by asserts"
    text_field = "prompt"
    count = 257
    local_files = ("mbpp/sanitized-mbpp.json",)
    hub_split = HubSplit(HUB_REPO, "sanitized", HUB_REVISION)
    default_run = False  # a subset of mbpp: the offline default runs mbpp once

    def _setup(self, row: dict) -> str:
        return "\n".join(str(x) for x in row.get("test_imports") or [])
