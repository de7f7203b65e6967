"""Real generation with the packaged SmolLM2-135M through the transformers backend."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

from harness.models import parse_spec
from tests.conftest import cli, make_cache

pytestmark = pytest.mark.slow

STUDENT = parse_spec("smollm2-135m")


def _metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def _records(run_dir):
    return [json.loads(x) for x in (run_dir / "records.jsonl").read_text().splitlines()]


def _student_rows(cache_dir) -> int:
    db = cache_dir / "generations.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute(
                "SELECT COUNT(*) FROM generations WHERE model = ?", (STUDENT.cache_id,)
            ).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_smollm2_runs_for_real_on_chains_and_gsm8k(tmp_path, cache_dir, data_dir):
    proc = cli(
        "run",
        "--student",
        "smollm2-135m",
        "--tasks",
        "chains,gsm8k",
        "--limit",
        "4",
        "--max-new-tokens",
        "64",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path),
        "--run-id",
        "s",
        "--cache-dir",
        str(cache_dir),
    )
    assert proc.returncode == 0, proc.stderr
    m = _metrics(tmp_path / "s")
    for task in ("chains", "gsm8k"):
        assert m["tasks"][task]["teacher"]["accuracy"] == 1.0
        assert m["tasks"][task]["student"]["n"] == 4
        assert 0.0 <= m["tasks"][task]["student"]["accuracy"] <= 1.0
    assert m["cost"]["student"]["generated"] == 8 and m["cost"]["student"]["tokens"] > 0
    student = [r for r in _records(tmp_path / "s") if r["role"] == "student"]
    for r in student:
        assert r["text"].strip() and r["backend"] == "transformers"
        assert 0 < r["completion_tokens"] <= 64
        assert r["finish_reason"] in ("stop", "length")
        assert r["finish_reason"] == "stop" or r["completion_tokens"] == 64
        assert r["prompt_tokens"] > 10
    # Second time: everything from the cache, nothing generated, same numbers.
    again = cli(
        "run",
        "--student",
        "smollm2-135m",
        "--tasks",
        "chains,gsm8k",
        "--limit",
        "4",
        "--max-new-tokens",
        "64",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path),
        "--run-id",
        "s",
        "--cache-dir",
        str(cache_dir),
    )
    assert again.returncode == 0, again.stderr
    m2 = _metrics(tmp_path / "s")
    assert m2["cost"]["student"] == {"generated": 0, "cached": 8, "tokens": 0, "seconds": 0.0}
    assert m2["tasks"] == m["tasks"]
    assert "loading smollm2" not in again.stderr  # a fully cached run never loads the model


def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path, models_dir):
    args = [
        "run",
        "--student",
        "smollm2-135m",
        "--tasks",
        "chains:depth=1-4",
        "--limit",
        "8",
        "--samples",
        "2",
        "--temperature",
        "0.8",
        "--max-new-tokens",
        "40",
        "--batch-size",
        "2",
        "--quiet",
        "--out",
        str(tmp_path / "runs"),
    ]
    killed_cache = make_cache(tmp_path / "killed", models_dir)
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_DATA_DIR"}
    env["HF_HUB_OFFLINE"] = "1"
    victim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            *args,
            "--cache-dir",
            str(killed_cache),
            "--run-id",
            "resumed",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 600
    while _student_rows(killed_cache) < 4 and time.time() < deadline and victim.poll() is None:
        time.sleep(0.1)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    before = _student_rows(killed_cache)
    assert 4 <= before < 16, f"kill landed at {before} of 16 student generations"
    assert not (tmp_path / "runs/resumed/metrics.json").exists()

    resumed = cli(*args, "--cache-dir", str(killed_cache), "--run-id", "resumed")
    assert resumed.returncode == 0, resumed.stderr
    m = _metrics(tmp_path / "runs/resumed")
    assert m["cost"]["student"]["generated"] == 16 - before
    assert m["cost"]["student"]["cached"] == before
    assert _student_rows(killed_cache) == 16

    straight = cli(
        *args,
        "--cache-dir",
        str(make_cache(tmp_path / "straight", models_dir)),
        "--run-id",
        "straight",
    )
    assert straight.returncode == 0, straight.stderr
    assert _metrics(tmp_path / "runs/straight")["tasks"] == m["tasks"]
    texts = lambda d: sorted(  # noqa: E731
        (r["problem_id"], r["sample"], r["text"]) for r in _records(d) if r["role"] == "student"
    )
    assert texts(tmp_path / "runs/straight") == texts(tmp_path / "runs/resumed")
    # Sampling really sampled: the two samples of a problem are not all identical.
    by_problem: dict[str, set[str]] = {}
    for pid, _s, text in texts(tmp_path / "runs/straight"):
        by_problem.setdefault(pid, set()).add(text)
    assert any(len(v) > 1 for v in by_problem.values())


def test_think_format_without_closing_tag_is_truncation(tmp_path, cache_dir):
    proc = cli(
        "run",
        "--student",
        "hf:smollm2-135m#think=1",
        "--tasks",
        "chains:depth=2",
        "--limit",
        "3",
        "--max-new-tokens",
        "24",
        "--out",
        str(tmp_path),
        "--run-id",
        "t",
        "--cache-dir",
        str(cache_dir),
    )
    assert proc.returncode == 0, proc.stderr
    student = [r for r in _records(tmp_path / "t") if r["role"] == "student"]
    assert len(student) == 3
    for r in student:
        assert r["reasoning"] is not None  # the prefill put the model inside <think>
        if r["text"] == "":
            assert r["truncated"] and r["correct"] is False and r["answer"] is None
    config = yaml.safe_load((tmp_path / "t" / "config.yaml").read_text())
    assert config["resolved"]["student"]["prompt"]["prefill"] == "<think>\n"
    assert config["resolved"]["student"]["prompt"]["think"] is True
