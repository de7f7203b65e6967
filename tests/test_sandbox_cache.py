"""The execution cache: a program is run once per (program, tests, limits, isolation, sandbox
code, interpreter); only outcomes that do not depend on the machine's load are kept; and the
counters say what was run and what was served."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.tasks import code as code_task
from harness.tasks import get_task
from harness.tasks.grading import sandbox
from harness.tasks.grading.execcache import ExecCache
from harness.tasks.grading.sandbox import (
    ExecResult,
    Job,
    SandboxConfig,
    calibrate_timeouts,
    execution_stats,
    run_many,
)
from harness.tasks.humaneval import _problem as humaneval_problem

ADD = Job("add", "def add(a, b):\n    return a + b\n", "assert add(2, 3) == 5\n", 5.0)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ExecCache]:
    store = ExecCache(tmp_path / "executions.sqlite")
    yield store
    store.close()


@pytest.fixture
def default_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """`cache=True` (what the code tasks use) pointed at a fresh file for this test."""
    path = tmp_path / "default" / "executions.sqlite"
    monkeypatch.setattr(sandbox, "_cache_path", path)
    monkeypatch.setattr(sandbox, "_cache", None)
    monkeypatch.setattr(sandbox, "_cache_opened", False)
    yield path
    if sandbox._cache is not None:
        sandbox._cache.close()


def run(jobs: list[Job], cache: ExecCache, **kw: object) -> tuple[list[ExecResult], dict]:
    before = execution_stats()
    results = run_many(jobs, cache=cache, **kw)  # type: ignore[arg-type]
    return results, (execution_stats() - before).to_dict()


def test_the_same_program_twice_runs_once(cache: ExecCache) -> None:
    (first,), stats = run([ADD], cache)
    assert first.passed and not first.cached
    assert stats["executed"] == 1 and stats["cached"] == 0
    (again,), stats = run([ADD], cache)
    assert again.passed and again.cached
    assert (again.status, again.detail, again.seconds, again.isolation) == (
        first.status, first.detail, first.seconds, first.isolation
    )  # fmt: skip
    assert stats == {**stats, "executed": 0, "cached": 1}
    assert cache.counts()["results"] == 1


def test_a_failure_is_kept_with_its_detail(cache: ExecCache) -> None:
    wrong = Job("w", "def add(a, b):\n    return a - b\n", "assert add(2, 3) == 5\n", 5.0)
    (first,), _ = run([wrong], cache)
    (again,), stats = run([wrong], cache)
    assert first.status == again.status == "failed" and again.cached
    assert again.detail == first.detail == "AssertionError at tests line 1: assert add(2, 3) == 5"
    assert stats["executed"] == 0


@pytest.mark.parametrize(
    "change",
    [
        {"test_code": "assert add(1, 1) == 2\n"},
        {"program": "def add(a, b):\n    return b + a\n"},
        {"timeout": 6.0},
    ],
    ids=["tests", "program", "timeout"],
)
def test_changing_the_job_runs_it_again(cache: ExecCache, change: dict) -> None:
    run([ADD], cache)
    other = Job(**{"id": "x", "program": ADD.program, "test_code": ADD.test_code, **change})
    (res,), stats = run([other], cache)
    assert res.passed and not res.cached and stats["executed"] == 1


def test_changing_the_limits_or_the_isolation_runs_it_again(cache: ExecCache) -> None:
    run([ADD], cache)
    (res,), stats = run([ADD], cache, config=SandboxConfig(memory_mb=512))
    assert not res.cached and stats["executed"] == 1
    levels = [m for m in ("namespaces", "rlimits") if sandbox.probe_isolation(m) is None]
    for level in levels:
        run([ADD], cache, config=SandboxConfig(isolation=level))  # type: ignore[arg-type]
    for level in levels:
        (res,), stats = run([ADD], cache, config=SandboxConfig(isolation=level))  # type: ignore[arg-type]
        assert res.cached and stats["executed"] == 0 and res.isolation == level
    keys = {sandbox.execution_key(ADD, SandboxConfig(), level) for level in levels}
    assert len(keys) == len(levels)


def test_the_key_covers_the_sandbox_code_and_the_interpreter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = sandbox.execution_key(ADD, SandboxConfig(), "namespaces")
    monkeypatch.setattr(sandbox, "SANDBOX_VERSION", "another")
    assert sandbox.execution_key(ADD, SandboxConfig(), "namespaces") != key
    monkeypatch.undo()
    monkeypatch.setattr(sandbox, "_interpreter_fingerprint", lambda python: "other packages")
    assert sandbox.execution_key(ADD, SandboxConfig(), "namespaces") != key


def test_load_dependent_outcomes_are_not_kept(cache: ExecCache) -> None:
    loop = Job("loop", "while True:\n    pass\n", "pass\n", 0.5)
    crash = Job("crash", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", "pass\n")
    first, _ = run([loop, crash], cache)
    assert [r.status for r in first] == ["timeout", "crashed"]
    again, stats = run([loop, crash], cache)
    assert [r.status for r in again] == ["timeout", "crashed"]
    assert stats["executed"] == 2 and stats["cached"] == 0
    assert not any(r.cached for r in again)
    assert cache.counts()["results"] == 0
    assert not sandbox.cacheable(ExecResult("sandbox_error", "x", 0.0))
    assert not sandbox.cacheable(ExecResult("failed", sandbox._LINGER_DETAIL, 0.0))


def test_identical_jobs_of_one_call_run_once(cache: ExecCache) -> None:
    jobs = [Job(f"s{i}", ADD.program, ADD.test_code, 5.0, problem_id="add") for i in range(4)]
    results, stats = run(jobs, cache)
    assert all(r.passed for r in results)
    assert stats["executed"] == 1 and stats["duplicates"] == 3
    assert [r.cached for r in results] == [False, True, True, True]


def test_without_a_cache_everything_runs() -> None:
    before = execution_stats()
    results = run_many([ADD, ADD])
    stats = execution_stats() - before
    assert all(r.passed and not r.cached for r in results)
    assert (stats.executed, stats.cached, stats.duplicates) == (2, 0, 0)


def test_an_unusable_cache_only_costs_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setattr(sandbox, "_cache_path", blocker / "executions.sqlite")
    monkeypatch.setattr(sandbox, "_cache", None)
    monkeypatch.setattr(sandbox, "_cache_opened", False)
    monkeypatch.setattr(sandbox, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="harness.tasks.grading.sandbox"):
        (res,) = run_many([ADD], cache=True)
    assert res.passed and not res.cached
    assert "unusable" in caplog.text


def test_calibrated_limits_are_kept(cache: ExecCache) -> None:
    slow = Job("slow", "import time\ntime.sleep(0.2)\n", "pass\n")
    before = execution_stats()
    first = calibrate_timeouts([slow, ADD], factor=10.0, floor=1.0, repeats=2, cache=cache)
    stats = (execution_stats() - before).to_dict()
    assert stats["calibration_runs"] == 4 and stats["calibration_cached"] == 0
    assert stats["executed"] == 0  # calibration runs are counted apart
    before = execution_stats()
    again = calibrate_timeouts([slow, ADD], factor=10.0, floor=1.0, repeats=2, cache=cache)
    stats = (execution_stats() - before).to_dict()
    assert again == first and 2.0 <= first["slow"] < 6.0 and first["add"] == 1.0
    assert stats["calibration_runs"] == 0 and stats["calibration_cached"] == 2
    # Another factor is another limit: measured again.
    calibrate_timeouts([ADD], factor=5.0, floor=1.0, repeats=2, cache=cache)
    assert cache.counts()["limits"] == 3


def test_grading_the_same_answers_twice_executes_once(default_cache: Path) -> None:
    """What a re-run, or a second student against the same teacher, costs: nothing."""
    task = get_task("humaneval")
    rows = [
        {
            "task_id": f"Toy/{i}",
            "prompt": f"def f{i}(x):\n    '''x plus {i}'''\n",
            "canonical_solution": f"    return x + {i}\n",
            "test": f"def check(candidate):\n    assert candidate(1) == {i + 1}\n",
            "entry_point": f"f{i}",
        }
        for i in range(3)
    ]
    problems = [humaneval_problem(r, "toy") for r in rows]
    answers = [(p.answer, p) for p in problems] + [
        (p.meta["prompt"] + "    return 0\n", p) for p in problems
    ]
    code_task._TIMEOUTS.clear()
    before = execution_stats()
    first = task.grade_many(answers)
    stats = (execution_stats() - before).to_dict()
    assert [v.correct for v in first] == [True] * 3 + [False] * 3
    assert stats["executed"] == 6 and stats["calibration_runs"] == 3 * code_task.CALIBRATION_REPEATS
    code_task._TIMEOUTS.clear()  # as in a new process
    before = execution_stats()
    again = task.grade_many(answers)
    stats = (execution_stats() - before).to_dict()
    assert [(v.correct, v.detail) for v in again] == [(v.correct, v.detail) for v in first]
    assert stats == {
        "executed": 0,
        "cached": 6,
        "duplicates": 0,
        "calibration_runs": 0,
        "calibration_cached": 3,
    }
    assert default_cache.is_file()
