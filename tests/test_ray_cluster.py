"""`harness run --ray` on a real local Ray cluster: a head and two worker nodes on this machine
(separate raylets over the network stack, as on separate hosts), SmolLM2 through llama.cpp in
the actors. The records and metrics must equal a single-process run's, and a worker node
killed mid-run must cost nothing but time."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli, make_cache

pytestmark = pytest.mark.slow

STUDENT = "llamacpp:smollm2-135m"
COMMON = ["--max-new-tokens", "48", "--batch-size", "2", "--chain-model", "none"]
COMMON += ["--classify", "off", "--quiet", "--student", STUDENT]
TIMING = {"seconds", "cached"}
"""Record fields that say how a generation was obtained, not what it is."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    pytest.importorskip("ray", reason="the `ray` extra is not installed")
    pytest.importorskip("llama_cpp", reason="the `llamacpp` extra is not installed")
    from ray.cluster_utils import Cluster

    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,  # the head schedules; the two workers run the actors
            "include_dashboard": False,
        },
    )
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    c.workers = workers  # type: ignore[attr-defined]
    yield c
    c.shutdown()


def records(out: Path) -> list[dict[str, Any]]:
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    rows = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]
    return sorted(
        ({k: v for k, v in r.items() if k not in TIMING} for r in rows),
        key=lambda r: (r["role"], r["task"], r["problem_id"], r["sample"]),
    )


def metrics(out: Path) -> dict[str, Any]:
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    m = json.loads((run / "metrics.json").read_text())
    m.pop("run")  # wall time
    cost = m.pop("cost")
    m["generated"] = {role: (c["generated"], c["tokens"]) for role, c in cost.items()}
    return m


def run_args(tmp: Path, name: str, tasks: str, limit: int, models_dir: Path) -> list[str]:
    cache = make_cache(tmp / name / "cache", models_dir)
    return [
        "run",
        "--tasks",
        tasks,
        "--limit",
        str(limit),
        "--out",
        str(tmp / name / "runs"),
        "--cache-dir",
        str(cache),
        *COMMON,
    ]


def test_cluster_run_equals_single_process_on_chains_and_gsm8k(
    cluster: Any, tmp_path: Path, data_dir: Path, models_dir: Path
) -> None:
    env = {"HARNESS_DATA_DIR": str(data_dir)}
    tasks = "chains:depth=1-3,n=2,gsm8k"
    local = cli(*run_args(tmp_path, "local", tasks, 6, models_dir), env=env)
    assert local.returncode == 0, local.stderr[-2000:]
    on_ray = cli(
        *run_args(tmp_path, "ray", tasks, 6, models_dir), "--ray", cluster.address, env=env
    )
    assert on_ray.returncode == 0, on_ray.stderr[-2000:]
    assert "batches on the Ray cluster, 2 actors" in on_ray.stderr
    assert "batches ran on 2 node(s)" in on_ray.stderr, on_ray.stderr[-2000:]
    # The teacher (the reference's fixed text) is made where the run is; only models go out.
    assert "teacher reference: " not in on_ray.stderr
    a, b = records(tmp_path / "local" / "runs"), records(tmp_path / "ray" / "runs")
    assert len(a) == 24 and {r["task"] for r in a} == {"chains:depth=1-3,n=2", "gsm8k"}
    assert a == b
    assert metrics(tmp_path / "local" / "runs") == metrics(tmp_path / "ray" / "runs")
    # Same keys in the cache: the single-process run's cache serves the cluster run's config.
    again = cli(
        *run_args(tmp_path, "local", tasks, 6, models_dir), "--ray", cluster.address, env=env
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "on the Ray cluster" not in again.stderr  # nothing missing, no actor started


def test_interrupted_ray_run_resumes_from_the_cache(
    tmp_path: Path, data_dir: Path, models_dir: Path
) -> None:
    """Ctrl-C on a `--ray local` run: exit 130, every batch that returned is in the cache, and
    the same command sends only the rest to the cluster."""
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_DATA_DIR"}
    env.update(HARNESS_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1")
    args = [*run_args(tmp_path, "int", "gsm8k", 10, models_dir), "--ray", "local"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    db = tmp_path / "int" / "cache" / "generations.sqlite"
    cached = 0
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and cached < 2:
        time.sleep(0.3)
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    (cached,) = con.execute(
                        "SELECT COUNT(*) FROM generations WHERE model LIKE '%smollm2%'"
                    ).fetchone()
            except sqlite3.Error:
                continue
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted" in err.strip().splitlines()[-1]
    with sqlite3.connect(db) as con:
        (kept,) = con.execute(
            "SELECT COUNT(*) FROM generations WHERE model LIKE '%smollm2%'"
        ).fetchone()
    assert 2 <= kept < 10
    again = cli(*args, env={"HARNESS_DATA_DIR": str(data_dir)})
    assert again.returncode == 0, again.stderr[-2000:]
    missing = 10 - kept
    sent = re.search(r"(\d+) batches on the Ray cluster", again.stderr)
    assert sent, again.stderr[-2000:]
    assert int(sent.group(1)) < 5 and 2 * int(sent.group(1)) >= missing  # 5 planned in all
    (run,) = [p for p in (tmp_path / "int" / "runs").iterdir() if p.is_dir()]
    cost = json.loads((run / "metrics.json").read_text())["cost"]["student"]
    assert (cost["generated"], cost["cached"]) == (missing, kept)


def test_worker_killed_mid_run_is_survived(
    cluster: Any, tmp_path: Path, data_dir: Path, models_dir: Path
) -> None:
    """A worker node dies after the first generations reach the cache: the run finishes on
    the other node with every record, equal to a single-process run's."""
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_DATA_DIR"}
    env.update(HARNESS_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1")
    args = run_args(tmp_path, "kill", "gsm8k", 12, models_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args, "--ray", cluster.address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    db = tmp_path / "kill" / "cache" / "generations.sqlite"
    killed_at = None
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.3)
        if killed_at is None and db.exists():
            try:
                with sqlite3.connect(db) as con:
                    (n,) = con.execute(
                        "SELECT COUNT(*) FROM generations WHERE model LIKE '%smollm2%'"
                    ).fetchone()
            except sqlite3.Error:
                continue
            if n >= 2:
                cluster.remove_node(cluster.workers[0])  # raylet and its actor, mid-shard
                killed_at = n
    if proc.poll() is None:
        proc.kill()
    _, err = proc.communicate(timeout=60)
    assert killed_at is not None and killed_at < 12, "the node was not killed mid-run"
    assert proc.returncode == 0, err[-3000:]
    local = cli(
        *run_args(tmp_path, "local", "gsm8k", 12, models_dir),
        env={"HARNESS_DATA_DIR": str(data_dir)},
    )
    assert local.returncode == 0, local.stderr[-2000:]
    got = records(tmp_path / "kill" / "runs")
    assert len(got) == 24
    assert got == records(tmp_path / "local" / "runs")


def test_bad_address_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the `ray` extra is not installed")
    r = cli(
        "run",
        "--student",
        STUDENT,
        "--tasks",
        "chains:depth=1,n=1",
        "--out",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--ray",
        "127.0.0.1:1",
        timeout=180,
    )
    assert r.returncode == 2, r.stderr[-2000:]
    line = [x for x in r.stderr.splitlines() if "--ray 127.0.0.1:1" in x]
    assert line and "cannot join a Ray cluster" in line[0]
    assert "Traceback" not in r.stderr
