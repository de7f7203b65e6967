"""Perturbation throughput: every kind over the GSM8K test set (1319 problems), timed.

    python benchmarks/bench_perturb.py [--data-dir ../shared/data] [--per-problem 1] [--seed 0]

Goal: all kinds together in under a minute on 2 cores. First all kinds in one cold
`perturb_problems` call, as `harness perturb --kinds all` runs them (the timed figure), then
each kind alone for its share (warm: a kind's parse caches are filled by then). Printed per
kind: originals covered, variants made, seconds; then the total against the goal. Kinds that
do not apply to GSM8K count their skips in no time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.perturb import KINDS, context_for, perturb_problems  # noqa: E402
from harness.tasks import DataSource, get_task  # noqa: E402

GOAL_SECONDS = 60.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    ap.add_argument("--data-dir", default=os.environ.get("HARNESS_DATA_DIR", str(default)))
    ap.add_argument("--per-problem", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    task = get_task("gsm8k")
    problems = task.load(DataSource.resolve(args.data_dir, hub=False)).problems
    ctx = context_for(task, problems)
    kinds = KINDS.names()
    t0 = time.perf_counter()
    together = perturb_problems(problems, ctx, kinds, per_problem=args.per_problem, seed=args.seed)
    total = time.perf_counter() - t0
    print(f"gsm8k test: {len(problems)} problems, per_problem={args.per_problem}")
    print(f"{'kind':<12} {'covered':>8} {'variants':>9} {'seconds':>8}")
    for kind in kinds:
        t = time.perf_counter()
        one = perturb_problems(problems, ctx, [kind], per_problem=args.per_problem, seed=args.seed)
        dt = time.perf_counter() - t
        made = sum(v.perturbation == kind for v in one.variants)
        print(f"{kind:<12} {one.covered(kind):>8} {made:>9} {dt:>8.2f}")
    status = "met" if total < GOAL_SECONDS else "NOT met"
    print(
        f"all kinds together: {len(together.variants)} variants in {total:.1f}s "
        f"(goal < {GOAL_SECONDS:.0f}s: {status})"
    )


if __name__ == "__main__":
    main()
