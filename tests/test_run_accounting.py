"""What a run counts and how it ends: Ctrl-C exits 130 with everything finished cached, and an
answer the code sandbox could not grade is counted as a sandbox error, never dropped quietly."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.metrics import compute_metrics
from harness.metrics.accuracy import role_summary
from tests.conftest import REPO, cli
from tests.fakeopenai import FakeOpenAI, chat_reply
from tests.metrics_records import make_record

# -- Ctrl-C -------------------------------------------------------------------------------------


def _cached(cache: Path) -> int:
    db = cache / "generations.sqlite"
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=10) as con:
        return con.execute(
            "SELECT COUNT(*) FROM generations WHERE model LIKE 'openai:%'"
        ).fetchone()[0]


def test_ctrl_c_during_generation_exits_130_and_keeps_what_finished(tmp_path):
    """A real `harness run` against a loopback server that answers 3 requests, then hangs: SIGINT
    while the 4th is in flight ends it with 130 and one line; the 3 are cached, and the same
    command asks only for the rest."""
    fast = 3
    with FakeOpenAI(
        lambda body, n: chat_reply("The answer is \\boxed{1}."),
        delay=lambda n: 0.0 if n < fast else 120.0,
    ) as server:
        cache = tmp_path / "cache"
        args = ["run", "--student", f"openai:m@{server.url}#concurrency=1", "--teacher"]
        args += ["reference", "--tasks", "chains", "--limit", "8", "--quiet"]
        args += ["--out", str(tmp_path / "runs"), "--cache-dir", str(cache), "--run-id", "r"]
        env = {k: v for k, v in os.environ.items() if k != "HARNESS_DATA_DIR"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", *args],
            cwd=REPO,
            env={**env, "HF_HUB_OFFLINE": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while server.requests <= fast and time.monotonic() < deadline:
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.05)
            assert server.requests == fast + 1  # the 4th is in flight, the server holds it
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130, err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert "interrupted" in lines[-1] and "cache" in lines[-1]
        assert "Traceback" not in err + out
        assert _cached(cache) == fast
        assert not (tmp_path / "runs" / "r" / "records.jsonl").exists()  # no half run written

        server.release.set()
        server.delay = lambda n: 0.0
        before = server.requests
        done = cli(*args)
        assert done.returncode == 0, done.stderr
        assert server.requests - before == 8 - fast  # nothing finished is asked for again
    cost = json.loads((tmp_path / "runs" / "r" / "metrics.json").read_text())["cost"]["student"]
    assert (cost["generated"], cost["cached"]) == (8 - fast, fast)


# -- sandbox errors ------------------------------------------------------------------------------


def _humaneval_row(i: int, test: str | None = None) -> dict:
    name = f"add_{i}"
    return {
        "task_id": f"HumanEval/{i}",
        "prompt": f'def {name}(a, b):\n    """Add a and b, plus {i}."""\n',
        "canonical_solution": f"    return a + b + {i}\n",
        "test": test or f"def check(candidate):\n    assert candidate(1, 2) == {3 + i}\n",
        "entry_point": name,
    }


def test_a_sandbox_failure_is_counted_and_said_not_dropped(tmp_path):
    """Three HumanEval problems whose gold passes; the tests of one do not even compile, so the
    sandbox cannot run them (status sandbox_error). The record stays, ungraded and saying why;
    metrics count it as a sandbox error per task and overall; the run says so in one line."""
    data = tmp_path / "data" / "humaneval"
    data.mkdir(parents=True)
    rows = [_humaneval_row(0), _humaneval_row(1, "def check(candidate):\n    assert (\n")]
    rows.append(_humaneval_row(2))
    (data / "HumanEval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = cli(
        *("run", "--student", "reference", "--teacher", "reference", "--tasks", "humaneval"),
        *("--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "runs")),
        *("--cache-dir", str(tmp_path / "c"), "--run-id", "h", "--quiet"),
    )
    assert proc.returncode == 0, proc.stderr
    said = [ln for ln in proc.stderr.splitlines() if "sandbox failed" in ln]
    assert len(said) == 2, proc.stderr  # one line per role
    assert all("HumanEval/1" in ln and "sandbox_errors" in ln for ln in said)
    assert "sandbox errors" in proc.stdout and "humaneval student 1" in proc.stdout  # summary
    m = json.loads((tmp_path / "runs" / "h" / "metrics.json").read_text())
    for role in ("teacher", "student"):
        s = m["tasks"]["humaneval"][role]
        assert s["sandbox_errors"] == 1 and s["sandbox_error_ids"] == ["HumanEval/1"]
        assert (s["n"], s["accuracy"]) == (2, 1.0)  # neither right nor wrong, but counted
        assert m["overall"][role]["sandbox_errors"] == 1
    assert m["overall"]["sandbox_errors"] == 2
    recs = [
        json.loads(x) for x in (tmp_path / "runs" / "h" / "records.jsonl").read_text().splitlines()
    ]
    assert len(recs) == 6  # every record kept
    broken = [r for r in recs if r["problem_id"] == "HumanEval/1"]
    assert len(broken) == 2
    for r in broken:
        assert r["correct"] is None and r["error"] is None
        assert (
            r["grade_error"].startswith("sandbox_error") and "does not compile" in r["grade_error"]
        )
    assert all(r["grade_error"] is None for r in recs if r["problem_id"] != "HumanEval/1")


def test_sandbox_errors_in_the_summaries():
    grade_error = "sandbox_error: the sandbox did not start the program within 60.0s"
    rs = [
        make_record("a", correct=True, task="humaneval"),
        make_record("b", correct=False, task="humaneval"),
        make_record("c", correct=None, task="humaneval", grade_error=grade_error),
        make_record("d", correct=None, task="humaneval", finish_reason="error", error="boom"),
    ]
    s = role_summary(rs)
    assert (s["n"], s["accuracy"], s["errors"]) == (2, 0.5, 1)
    assert s["sandbox_errors"] == 1 and s["sandbox_error_ids"] == ["c"]
    m = compute_metrics(rs, {})
    assert m["overall"]["sandbox_errors"] == 1 and m["overall"]["student"]["sandbox_errors"] == 1
    # All of a role's answers lost to the sandbox: the role still shows up, with n 0.
    only = [make_record(p, correct=None, grade_error=grade_error) for p in "xy"]
    m = compute_metrics(only, {})
    assert m["overall"]["student"]["n"] == 0 and m["overall"]["student"]["sandbox_errors"] == 2
    assert m["tasks"]["t"]["student"]["sandbox_errors"] == 2


@pytest.mark.parametrize("detail", ["sandbox_error: x", "failed: AssertionError"])
def test_only_sandbox_failures_count_as_sandbox_errors(detail):
    r = make_record("a", correct=None if detail.startswith("sandbox") else False, grade_error=None)
    assert not r.sandbox_error
    from dataclasses import replace

    assert replace(r, grade_error=detail).sandbox_error is detail.startswith("sandbox_error")


def test_programs_already_run_come_from_the_execution_cache(tmp_path):
    """The reference teacher's programs run once: a second run (another student, a rerun)
    serves their results from the execution cache beside the generations, and metrics.json's
    cost says how many programs ran and how many were served."""
    data = tmp_path / "data" / "humaneval"
    data.mkdir(parents=True)
    rows = [_humaneval_row(i) for i in range(3)]
    (data / "HumanEval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def run(run_id: str, *extra: str) -> dict:
        proc = cli(
            *("run", "--student", "reference", "--teacher", "reference", "--tasks", "humaneval"),
            *("--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "runs")),
            *("--cache-dir", str(tmp_path / "c"), "--run-id", run_id, "--quiet", *extra),
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads((tmp_path / "runs" / run_id / "metrics.json").read_text())["cost"]

    first = run("a")
    assert first["teacher"]["executions"]["executed"] == 3
    assert first["student"]["executions"] == {**first["student"]["executions"], "executed": 0}
    assert first["student"]["executions"]["cached"] == 3  # the same programs as the teacher's
    assert (tmp_path / "c" / "executions.sqlite").is_file()
    second = run("b")
    for role in ("teacher", "student"):
        ex = second[role]["executions"]
        assert (ex["executed"], ex["calibration_runs"], ex["cached"]) == (0, 0, 3)
    fresh = run("c", "--fresh")  # --fresh re-runs everything, programs too
    assert fresh["teacher"]["executions"]["executed"] == 3
