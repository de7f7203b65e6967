"""Answers graded per second: the harness's math grader vs calling math-verify directly.

Both grade the same (answer, gold) pairs in the same run: for every MATH-500 problem, the
answer its worked solution boxes (equal to the gold) and the same answer with its first number
+1 (not equal), so half the pairs are equal. The harness grader decides what it can exactly
(normalized strings, plain numbers, base subscripts) and sends the rest to math-verify in a
worker process with a hard time limit; "direct" is `math_verify.verify(parse(gold),
parse(answer))` in this process's main thread, the way its README shows it. Their verdicts
are compared pair by pair.

    python benchmarks/bench_grading.py [--rounds 2] [--workers 2]

Data: $HARNESS_DATA_DIR/math500/test.jsonl, else <repo>/../shared/data/math500/test.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def data_file() -> Path:
    env = os.environ.get("HARNESS_DATA_DIR")
    for base in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        path = base / "math500" / "test.jsonl"
        if path.is_file():
            return path
    sys.exit("no math500/test.jsonl: set HARNESS_DATA_DIR to the data folder (see README, Data)")


def pairs() -> list[tuple[str, str]]:
    from harness.tasks.grading.extract import last_boxed

    out = []
    for line in data_file().read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        answer = last_boxed(row["solution"]) or row["answer"]
        m = re.search(r"\d+", answer)
        wrong = (
            answer[: m.start()] + str(int(m.group()) + 1) + answer[m.end() :]
            if m
            else f"2\\cdot({answer})"
        )
        out += [(answer, row["answer"]), (wrong, row["answer"])]
    return out


def direct(items: list[tuple[str, str]]) -> tuple[list[bool], float]:
    from math_verify import parse, verify

    t0 = time.perf_counter()
    verdicts = [bool(verify(parse(f"${g}$"), parse(f"${a}$"))) for a, g in items]
    return verdicts, time.perf_counter() - t0


def harness(items: list[tuple[str, str]], workers: int) -> tuple[list[bool], float, dict]:
    from harness.tasks.grading.mathequiv import MathVerifier

    verifier = MathVerifier()
    try:
        # Start the worker processes (and their first parse) outside the clock.
        verifier.compare_many([("\\sqrt{8}", "2\\sqrt{2}")] * workers, workers=workers)
        t0 = time.perf_counter()
        results = verifier.compare_many(items, workers=workers)
        seconds = time.perf_counter() - t0
    finally:
        verifier.close()
    how: dict[str, int] = {}
    for r in results:
        how[r.how] = how.get(r.how, 0) + 1
    return [r.equal for r in results], seconds, how


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2, help="best of N rounds for each")
    ap.add_argument("--workers", type=int, default=2, help="harness worker processes")
    args = ap.parse_args()
    import logging

    logging.disable(logging.WARNING)  # math-verify logs each parse failure
    items = pairs()
    from harness.tasks.grading.mathequiv import quick_compare

    hard = [p for p in items if quick_compare(*p) is None]
    print(f"{len(items)} pairs from MATH-500 ({sum(1 for _ in items) // 2} equal by construction)")
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        v_direct, s_direct = direct(items)
        best["direct"] = min(best.get("direct", 1e9), s_direct)
        v_one, s_one, how = harness(items, 1)
        best["harness-1"] = min(best.get("harness-1", 1e9), s_one)
        v_many, s_many, _ = harness(items, args.workers)
        best[f"harness-{args.workers}"] = min(best.get(f"harness-{args.workers}", 1e9), s_many)
        best["hard-direct"] = min(best.get("hard-direct", 1e9), direct(hard)[1])
        best["hard-harness"] = min(best.get("hard-harness", 1e9), harness(hard, 1)[1])
    n = len(items)
    print(f"math-verify direct (main thread, in process): {n / best['direct']:8.1f} pairs/s")
    print(f"harness grader, 1 worker process:             {n / best['harness-1']:8.1f} pairs/s")
    key = f"harness-{args.workers}"
    print(
        f"harness grader, {args.workers} worker processes:            {n / best[key]:8.1f} pairs/s"
    )
    print(f"harness decisions by route: {how}")
    print(
        f"only the {len(hard)} pairs the harness hands to math-verify: direct "
        f"{len(hard) / best['hard-direct']:.1f} pairs/s, harness worker "
        f"{len(hard) / best['hard-harness']:.1f} pairs/s (the cost of the process boundary)"
    )
    expected = [i % 2 == 0 for i in range(n)]
    print(
        f"correct verdicts: direct {sum(a == b for a, b in zip(v_direct, expected, strict=True))}"
        f"/{n}, harness {sum(a == b for a, b in zip(v_one, expected, strict=True))}/{n}"
    )
    diff = [(items[i], v_direct[i], v_one[i]) for i in range(n) if v_direct[i] != v_one[i]]
    print(f"pairs where they disagree: {len(diff)}")
    for (answer, gold), d, h in diff[:12]:
        print(f"  answer {answer!r} gold {gold!r}: direct {d}, harness {h}")
    assert v_one == v_many, "parallel and serial grading disagree"


if __name__ == "__main__":
    main()
