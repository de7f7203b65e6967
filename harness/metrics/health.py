"""Reasoning health, per record and aggregated: is the chain sound as text, whatever its answer?

Per record: reasoning and answer tokens, truncation, repetition loops (share of repeated word
4-grams, and a cycle detector over the chain's steps), language mixing (share of word tokens
outside the chain's dominant script), hesitation markers, and the state of its think block.
Per role: the rates and means of those, and over-thinking (tokens spent on items it always
gets right, against its own shortest right answer to them).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.metrics.segment import segment_steps
from harness.reasoning import LEAKED_TURN, THINK_CLOSE, THINK_OPEN
from harness.types import Record

NGRAM = 4
LOOP_NGRAM_SHARE = 0.5
"""A chain whose word 4-grams are at least half repeats is looping (normal prose: ~0.05-0.2)."""
LOOP_MIN_NGRAMS = 20
CYCLE_MAX_PERIOD = 8
CYCLE_REPEATS = 3
"""A block of 1-8 consecutive steps that occurs 3 times in a row is a cycle."""
MIXED_SHARE = 0.02
MIXED_MIN_TOKENS = 3
"""Mixed language: at least 3 word tokens and 2% of them outside the dominant script."""
HESITATIONS = re.compile(
    r"\b(?:wait|alternatively|hmm+|hold on|on second thought|let me (?:re-?check|double[- ]check"
    r"|verify|reconsider)|but actually|i think i made a mistake)\b"
)
"""Matched on lower-cased text."""
_WORD = re.compile(r"\w+")
_TRIPLE_WORD = re.compile(r"\b(\w+)\W+\1\W+\1\b")

# Scripts by code-point range. Greek is left out (math uses its letters); kana and Han are one
# script (Japanese writes both); ideographs count a token each, other scripts a run of letters.
_RANGES: list[tuple[int, int, int]] = [
    (0x41, 0x5A, 1),
    (0x61, 0x7A, 1),
    (0xC0, 0xD6, 1),
    (0xD8, 0xF6, 1),
    (0xF8, 0x24F, 1),
    (0x1E00, 0x1EFF, 1),
    (0x400, 0x52F, 2),
    (0x590, 0x5FF, 3),
    (0x600, 0x6FF, 4),
    (0x750, 0x77F, 4),
    (0x900, 0x97F, 5),
    (0xE00, 0xE7F, 6),
    (0x1100, 0x11FF, 7),
    (0xAC00, 0xD7AF, 7),
    (0x3040, 0x30FF, 8),
    (0x3400, 0x4DBF, 8),
    (0x4E00, 0x9FFF, 8),
    (0xF900, 0xFAFF, 8),
]
SCRIPTS = ("none", "latin", "cyrillic", "hebrew", "arabic", "devanagari", "thai", "hangul", "cjk")
_IDEOGRAPHIC = 8
_LATIN = re.compile(r"[A-Za-z]+")


def _script_table() -> tuple[np.ndarray, np.ndarray]:
    bounds, ids = [0], [0]
    for lo, hi, sid in sorted(_RANGES):
        if lo != bounds[-1]:
            bounds.append(lo)
            ids.append(sid)
        else:
            ids[-1] = sid
        bounds.append(hi + 1)
        ids.append(0)
    return np.asarray(bounds, dtype=np.int64), np.asarray(ids, dtype=np.int64)


_BOUNDS, _IDS = _script_table()


def script_tokens(text: str) -> dict[str, int]:
    """Word tokens per script: a run of same-script letters is a token, an ideograph is one."""
    if text.isascii():
        n = len(_LATIN.findall(text))
        return {"latin": n} if n else {}
    cp = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    sid = _IDS[np.searchsorted(_BOUNDS, cp, side="right") - 1]
    prev = np.concatenate([[0], sid[:-1]])
    starts = (sid > 0) & ((sid != prev) | (sid == _IDEOGRAPHIC))
    counts = np.bincount(sid[starts], minlength=len(SCRIPTS))
    return {SCRIPTS[i]: int(c) for i, c in enumerate(counts) if c and i}


def mixed_language(text: str) -> tuple[float, str | None, int]:
    """(share of word tokens outside the dominant script, dominant script, tokens outside)."""
    if text.isascii():  # one script at most: nothing to mix
        return 0.0, ("latin" if _LATIN.search(text) else None), 0
    counts = script_tokens(text)
    total = sum(counts.values())
    if not total:
        return 0.0, None, 0
    dominant = max(counts, key=lambda s: counts[s])
    outside = total - counts[dominant]
    return outside / total, dominant, outside


def repeated_ngram_share(words: Sequence[str], n: int = NGRAM) -> float:
    """1 - distinct n-grams / n-grams: 0 for text that never repeats a phrase."""
    if len(words) < n:
        return 0.0
    grams = list(zip(*(words[i:] for i in range(n)), strict=False))
    return 1.0 - len(set(grams)) / len(grams)


def has_cycle(steps: Sequence[str], max_period: int = CYCLE_MAX_PERIOD) -> bool:
    """Whether some block of 1..max_period consecutive steps repeats CYCLE_REPEATS times in a
    row (steps compared after whitespace and case normalization)."""
    norm = [s.lower() for s in steps]
    if len(set(norm)) == len(norm) or len(norm) < CYCLE_REPEATS:
        return False
    ids = {s: i for i, s in enumerate(dict.fromkeys(norm))}
    a = np.fromiter((ids[s] for s in norm), dtype=np.int64, count=len(norm))
    for p in range(1, min(max_period, len(a) // CYCLE_REPEATS) + 1):
        eq = a[p:] == a[:-p]
        need = (CYCLE_REPEATS - 1) * p
        if eq.sum() < need:
            continue
        # longest run of True in eq
        padded = np.concatenate([[0], eq.astype(np.int8), [0]])
        edges = np.flatnonzero(np.diff(padded))
        if (edges[1::2] - edges[::2]).max(initial=0) >= need:
            return True
    return False


def think_state(r: Record) -> str:
    """none (no reasoning format), ok, empty, unclosed (no `</think>`), or malformed (stray or
    nested think tags, in the answer part or inside the reasoning)."""
    tags = (THINK_OPEN, THINK_CLOSE)
    if any(t in r.text for t in tags) or (r.reasoning and any(t in r.reasoning for t in tags)):
        return "malformed"
    if r.reasoning is None:
        return "none"
    if r.truncated and not r.text.strip() and r.answer is None:
        return "unclosed"
    if not r.reasoning.strip():
        return "empty"
    return "ok"


def record_health(r: Record) -> dict[str, Any]:
    """Health of one generation. Token counts are the model's (completion_tokens, split between
    reasoning and answer by their share of characters) or, for outputs with no token count
    (reference, replay), word counts."""
    reasoning = r.reasoning or ""
    full = f"{reasoning}\n{r.text}" if reasoning else r.text
    lower = full.lower()
    words = _WORD.findall(lower)
    chars = len(reasoning) + len(r.text)
    if r.completion_tokens is not None:
        tokens, source = r.completion_tokens, "model"
        reasoning_tokens = round(tokens * len(reasoning) / chars) if chars else 0
    else:
        tokens, source = len(words), "words"
        reasoning_tokens = len(_WORD.findall(reasoning))
    share = repeated_ngram_share(words)
    ngrams = max(0, len(words) - NGRAM + 1)
    # A cycle repeats text: it shows as a repeated 4-gram, or (one-word steps) a word three
    # times in a row; without either there is nothing for the step-level detector to find.
    cycle = (share > 0 or _TRIPLE_WORD.search(lower) is not None) and has_cycle(segment_steps(full))
    mixed, script, outside = mixed_language(full)
    hesitations = len(HESITATIONS.findall(lower))
    return {
        "reasoning_tokens": reasoning_tokens,
        "answer_tokens": tokens - reasoning_tokens,
        "tokens": tokens,
        "token_count": source,
        "truncated": bool(r.truncated or r.finish_reason == "length"),
        "repeated_ngram_share": round(share, 6),
        "cycle": cycle,
        "loop": cycle or (ngrams >= LOOP_MIN_NGRAMS and share >= LOOP_NGRAM_SHARE),
        "mixed_share": round(mixed, 6),
        "script": script,
        "mixed_language": outside >= MIXED_MIN_TOKENS and mixed >= MIXED_SHARE,
        "hesitations": hesitations,
        "hesitations_per_1k": round(1000.0 * hesitations / tokens, 6) if tokens else 0.0,
        "think": think_state(r),
        # The model went on past its answer into a new chat turn (`<|im_start|>user`): graded
        # on the text before it, counted here.
        "leaked_turn": LEAKED_TURN.search(r.text) is not None,
    }


def _mean(values: Sequence[float]) -> float | None:
    return round(float(np.mean(values)), 6) if len(values) else None


def health_summary(
    records: Sequence[Record], per_record: Sequence[dict[str, Any] | None] | None = None
) -> dict[str, Any]:
    """Aggregated health for one task x role over its records with a generation (per_record:
    their record_health, None where not yet measured)."""
    given: Sequence[dict[str, Any] | None] = per_record or [None] * len(records)
    pairs = [
        (r, h if h is not None else record_health(r))
        for r, h in zip(records, given, strict=True)
        if r.error is None and r.finish_reason not in ("missing", "error")
    ]
    if not pairs:
        why = "no generation to inspect"
        return {k: None for k in _KEYS} | {"n": 0, "reason": why}
    hs = [h for _, h in pairs]
    n = len(hs)
    tokens = sum(h["tokens"] for h in hs)
    has_reasoning = any(r.reasoning is not None for r, _ in pairs)
    states: defaultdict[str, int] = defaultdict(int)
    for h in hs:
        states[h["think"]] += 1
    out: dict[str, Any] = {
        "n": n,
        "truncated_rate": round(sum(h["truncated"] for h in hs) / n, 6),
        "loop_rate": round(sum(h["loop"] for h in hs) / n, 6),
        "cycle_rate": round(sum(h["cycle"] for h in hs) / n, 6),
        "repeated_ngram_share_mean": _mean([h["repeated_ngram_share"] for h in hs]),
        "mixed_language_rate": round(sum(h["mixed_language"] for h in hs) / n, 6),
        "mixed_share_mean": _mean([h["mixed_share"] for h in hs]),
        "reasoning_tokens_mean": _mean([h["reasoning_tokens"] for h in hs])
        if has_reasoning
        else None,
        "answer_tokens_mean": _mean([h["answer_tokens"] for h in hs]),
        "tokens_mean": _mean([h["tokens"] for h in hs]),
        "token_count": "model" if all(h["token_count"] == "model" for h in hs) else "words",
        "hesitations_per_1k": round(1000.0 * sum(h["hesitations"] for h in hs) / tokens, 6)
        if tokens
        else None,
        "think": dict(sorted(states.items())),
        "empty_think_rate": round(states["empty"] / n, 6),
        "unclosed_think_rate": round(states["unclosed"] / n, 6),
        "malformed_think_rate": round(states["malformed"] / n, 6),
        "leaked_turn_rate": round(sum(h.get("leaked_turn", False) for h in hs) / n, 6),
    }
    if not has_reasoning:
        out["reasoning_tokens_reason"] = (
            "the model has no reasoning format: its whole output is the answer part"
        )
    if not tokens:
        out["hesitations_reason"] = "no tokens generated"
    out["overthinking"] = overthinking([r for r, _ in pairs], [h["tokens"] for h in hs])
    return out


_KEYS = (
    "truncated_rate",
    "loop_rate",
    "mixed_language_rate",
    "reasoning_tokens_mean",
    "answer_tokens_mean",
    "hesitations_per_1k",
)


def overthinking(records: Sequence[Record], tokens: Sequence[int]) -> dict[str, Any]:
    """Tokens spent on easy items: those the model gets right in every one of >= 2 samples.

    ratio: mean over easy items of (mean tokens of its samples / tokens of its shortest
    sample); 1.0 means it never spends more than it needs on what it knows.
    tokens_per_step: tokens on easy items per step of the gold solution, where known.
    """
    by: dict[str, list[tuple[Record, int]]] = defaultdict(list)
    for r, t in zip(records, tokens, strict=True):
        if r.correct is not None:
            by[r.problem_id].append((r, t))
    if not by or max(len(v) for v in by.values()) < 2:
        return {
            "ratio": None,
            "reason": "needs --samples >= 2: an item is easy when every sample of it is right",
        }
    easy = [v for v in by.values() if len(v) >= 2 and all(r.correct for r, _ in v)]
    if not easy:
        return {"ratio": None, "easy_items": 0, "reason": "no item right in every sample"}
    ratios, per_step, means = [], [], []
    for v in easy:
        ts = [t for _, t in v]
        mean_t = sum(ts) / len(ts)
        means.append(mean_t)
        if min(ts) > 0:
            ratios.append(mean_t / min(ts))
        steps = v[0][0].steps
        if steps:
            per_step.append(mean_t / steps)
    return {
        "ratio": _mean(ratios),
        "easy_items": len(easy),
        "easy_tokens_mean": _mean(means),
        "tokens_per_step": _mean(per_step),
    }
