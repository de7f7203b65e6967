"""The distill loop end to end on this machine, and the remedy test on planted slices.

    python benchmarks/bench_distill.py [--out DIR] [--student smollm2-135m]

1. `harness run` evaluates the student on three planted slices of `chains` (seed 100):
   familiar surface families at depth 1-3 (what the training data covers), two held-out
   surface families at depth 1-3 (a form the student never saw: mismatch), and the familiar
   families at depth 7-8 (more steps than a 135M model carries out: capacity). The run is
   classified when it ends.
2. `harness distill --from-failures` collects the reference teacher's chains of other
   problems (seed 1) for the same three slices, mixes them (examples/distill/planted.yaml:
   each row once), fine-tunes the student with TRL, evaluates it again on the run's items and
   prints, per slice, before / after / the paired delta with its 95% interval.

Printed: each stage's seconds, the distill loop's (goal: under an hour on 2 CPU cores) and the
total with the diagnosed run, then
the slice table; `remedy.json` in the output folder holds every figure. A rerun with the same
--out resumes (the cache serves every generation already made, training resumes from its
last checkpoint).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_TASKS = [
    "chains:depth=1-3,n=3,seed=100",
    "chains:depth=1-3,family=factory+library,n=4,seed=100",
    "chains:depth=7-8,n=2,seed=100",
]
TRAIN_TASKS = [
    "chains:depth=1-3,n=12,seed=1",
    "chains:depth=1-3,family=factory+library,n=10,seed=1",
    "chains:depth=7-8,n=6,seed=1",
]
GOAL_S = 3600.0


def harness(*args: str) -> float:
    """Run one harness command (its output passes through); its seconds."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"harness {args[0]} failed (exit {done.returncode})")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench-distill"))
    ap.add_argument("--student", default="smollm2-135m")
    ap.add_argument("--recipe", type=Path, default=ROOT / "examples/distill/planted.yaml")
    args = ap.parse_args()
    out = args.out.resolve()
    runs, cache = out / "runs", out / "cache"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    common = ["--cache-dir", str(cache)]
    seconds = {}
    seconds["evaluate and classify"] = harness(
        "run", "--student", args.student, "--tasks", ",".join(RUN_TASKS), "--out", str(runs),
        "--run-id", "before", *common,
    )  # fmt: skip
    seconds["collect, mix, train, evaluate again"] = harness(
        "distill", "--student", args.student, "--teacher", "reference", "--from-failures",
        str(runs / "before"), "--tasks", ",".join(TRAIN_TASKS), "--recipe", str(args.recipe),
        "--out", str(out / "distill"), "--runs", str(runs), *common,
    )  # fmt: skip
    loop = seconds["collect, mix, train, evaluate again"]
    print()
    for stage, s in seconds.items():
        print(f"{stage:<40} {s:8.1f} s")
    verdict = "under" if loop < GOAL_S else "OVER"
    print(f"{'the distill loop':<40} {loop:8.1f} s  ({verdict} the {GOAL_S:.0f} s goal)")
    print(f"{'with the diagnosed run before it':<40} {sum(seconds.values()):8.1f} s")
    saved = json.loads((out / "distill" / "remedy.json").read_text(encoding="utf-8"))
    print(f"train: {saved['train']['steps']} steps on {saved['mix_rows']} rows")
    print()
    print(f"{'slice':<58} {'n':>4} {'before':>7} {'after':>7} {'delta':>7}  95% CI")
    for r in saved["slices"]:
        ci = r.get("delta_ci95")
        band = f"{ci[0]:+.3f}..{ci[1]:+.3f}" if ci else "-"
        fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        delta = "-" if r["delta"] is None else f"{r['delta']:+.3f}"
        print(
            f"{r['slice']:<58} {r['n']:>4} {fmt(r['before']):>7} {fmt(r['after']):>7} "
            f"{delta:>7}  {band}"
        )


if __name__ == "__main__":
    main()
