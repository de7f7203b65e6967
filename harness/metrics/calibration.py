"""Calibration: does the model know when it is unsure?

Three confidence sources per answer, each optional:
- `agreement`: the share of the problem's samples whose answer is equivalent to this one
  (self-consistency; needs n >= 2 samples).
- `logprob`: the probability the model gave the tokens of its extracted answer, exp(sum of
  their log-probs). Records keep the generated tokens' log-probs but not their text, so the
  answer's tokens are located from the end of the output (the answer sits near it): the
  characters after the answer's last occurrence in the answer part and the answer's own
  characters are turned into token counts with this generation's characters-per-token
  ratio, and the span is widened by one token on each side to absorb rounding and a closing
  end-of-sequence token.
- `stated`: a confidence the model wrote itself (`Confidence: 80%`), asked for by the
  `r1-confidence` prompt style.
Scores: ECE over equal-width and equal-mass bins, Brier, AUROC of confidence for correctness,
and the reliability-diagram bins. Only answers with a confidence count (an output with no
extracted answer has nothing to be confident about; it shows up in accuracy and health).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.metrics.accuracy import SameAnswer, answer_clusters, str_equal
from harness.reasoning import extract_stated_confidence
from harness.types import Record

SOURCES = ("stated", "logprob", "agreement")
"""Preference order of `auto`: what the model says, then what its tokens say, then its votes."""
AUTO_MIN_COVERAGE = 0.5
DEFAULT_BINS = 10


def expected_calibration_error(
    confidence: npt.ArrayLike,
    correct: npt.ArrayLike,
    bins: int = DEFAULT_BINS,
    *,
    equal_mass: bool = False,
) -> float:
    """sum over bins of (bin share) * |accuracy - mean confidence|.

    Equal-width bins split [0, 1] into `bins` intervals (the last one closed); equal-mass bins
    split the answers sorted by confidence into `bins` groups of (nearly) equal size.
    """
    conf = np.asarray(confidence, dtype=float)
    acc = np.asarray(correct, dtype=float)
    if conf.size == 0:
        raise ValueError("ECE of no answers")
    groups = _bin_groups(conf, bins, equal_mass)
    return float(
        sum(g.size / conf.size * abs(acc[g].mean() - conf[g].mean()) for g in groups if g.size)
    )


def _bin_groups(conf: np.ndarray, bins: int, equal_mass: bool) -> list[np.ndarray]:
    if equal_mass:
        return [g for g in np.array_split(np.argsort(conf, kind="stable"), bins) if g.size]
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    order = np.argsort(idx, kind="stable")
    cuts = np.searchsorted(idx[order], np.arange(1, bins))
    return list(np.split(order, cuts))


def reliability_bins(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, bins: int = DEFAULT_BINS
) -> list[dict[str, Any]]:
    """The reliability diagram's data: per non-empty equal-width bin, its range, size, mean
    confidence and accuracy."""
    conf = np.asarray(confidence, dtype=float)
    acc = np.asarray(correct, dtype=float)
    out = []
    for b, g in enumerate(_bin_groups(conf, bins, equal_mass=False)):
        if g.size:
            out.append(
                {
                    "lo": round(b / bins, 6),
                    "hi": round((b + 1) / bins, 6),
                    "n": int(g.size),
                    "confidence": round(float(conf[g].mean()), 6),
                    "accuracy": round(float(acc[g].mean()), 6),
                }
            )
    return out


def brier_score(confidence: npt.ArrayLike, correct: npt.ArrayLike) -> float:
    conf = np.asarray(confidence, dtype=float)
    return float(np.mean((conf - np.asarray(correct, dtype=float)) ** 2))


def auroc(confidence: npt.ArrayLike, correct: npt.ArrayLike) -> float | None:
    """Area under the ROC curve of confidence for correctness (Mann-Whitney U with tied
    confidences counting half); None when every answer is right or every answer is wrong."""
    conf = np.asarray(confidence, dtype=float)
    pos = np.asarray(correct, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(conf, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    avg_rank = ends - (counts - 1) / 2.0  # 1-based average rank of each distinct value
    rank_sum = float(avg_rank[inverse][pos].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def logprob_confidence(r: Record) -> float | None:
    """exp(sum of log-probs) over the answer's tokens, located from the end (module doc)."""
    lp = r.logprobs
    if not lp or r.answer is None:
        return None
    pos = r.text.rfind(r.answer)
    if pos < 0:
        return None
    reasoning = r.reasoning or ""
    total_chars = len(reasoning) + len(r.text) + (len("<think></think>") if r.reasoning else 0)
    if total_chars == 0:
        return None
    cpt = total_chars / len(lp)
    tail_chars = len(r.text) - (pos + len(r.answer))
    end = len(lp) - round(tail_chars / cpt)
    width = max(1, math.ceil(len(r.answer) / cpt))
    start = max(0, end - width - 1)
    end = min(len(lp), max(end + 1, start + 1))
    return float(math.exp(min(0.0, sum(lp[start:end]))))


def record_confidences(
    records: Sequence[Record], same: SameAnswer | None = None
) -> list[dict[str, float | None]]:
    """Every source's confidence for each record (aligned with `records`); None where a source
    has nothing for that record (no answer, a single sample, no logprobs, nothing stated)."""
    same = same or str_equal
    out: list[dict[str, float | None]] = [
        {"agreement": None, "logprob": None, "stated": None} for _ in records
    ]
    by_problem: dict[tuple[str, str, str], list[int]] = {}
    for i, r in enumerate(records):
        if r.correct is None:
            continue
        by_problem.setdefault((r.task, r.role, r.problem_id), []).append(i)
        if r.answer is not None:
            out[i]["logprob"] = logprob_confidence(r)
            out[i]["stated"] = extract_stated_confidence(r.text)
    for idx in by_problem.values():
        if len(idx) < 2:
            continue
        clusters = answer_clusters([records[i].answer for i in idx], same)
        sizes: dict[int, int] = {}
        for c in clusters:
            sizes[c] = sizes.get(c, 0) + 1
        for i, c in zip(idx, clusters, strict=True):
            if c >= 0:
                out[i]["agreement"] = sizes[c] / len(idx)
    return out


def calibration_scores(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, bins: int = DEFAULT_BINS
) -> dict[str, Any]:
    conf = np.clip(np.asarray(confidence, dtype=float), 0.0, 1.0)
    acc = np.asarray(correct, dtype=bool)
    roc = auroc(conf, acc)
    out: dict[str, Any] = {
        "ece": round(expected_calibration_error(conf, acc, bins), 6),
        "ece_equal_mass": round(expected_calibration_error(conf, acc, bins, equal_mass=True), 6),
        "brier": round(brier_score(conf, acc), 6),
        "auroc": None if roc is None else round(roc, 6),
        "n": int(conf.size),
        "bins": bins,
        "mean_confidence": round(float(conf.mean()), 6),
        "accuracy": round(float(acc.mean()), 6),
        "reliability": reliability_bins(conf, acc, bins),
    }
    if roc is None:
        which = "right" if acc.all() else "wrong"
        out["auroc_reason"] = f"every answer is {which}: AUROC needs right and wrong answers"
    return out


_UNAVAILABLE = {
    "agreement": "one sample per problem: agreement needs --samples >= 2",
    "logprob": "no token log-probs in the records: run with --logprobs on a backend that "
    "returns them",
    "stated": "no stated confidence in the outputs: the r1-confidence prompt style asks for one",
}


def calibration_summary(
    records: Sequence[Record],
    confidences: Sequence[dict[str, float | None]],
    *,
    source: str = "auto",
    bins: int = DEFAULT_BINS,
) -> dict[str, Any]:
    """calibration for one task x role: the chosen source's scores and reliability bins on
    top, every source's scores (or why it has none) under `sources`.

    `auto` takes the first of stated, logprob, agreement that covers at least half of the
    answers, else the one covering most.
    """
    answered = [i for i, r in enumerate(records) if r.correct is not None and r.answer is not None]
    sources: dict[str, Any] = {}
    full: dict[str, dict[str, Any]] = {}
    coverage: dict[str, float] = {}
    for src in SOURCES:
        got = [i for i in answered if confidences[i][src] is not None]
        coverage[src] = len(got) / len(answered) if answered else 0.0
        if not got:
            sources[src] = None
            sources[f"{src}_reason"] = (
                "no answer was extracted" if not answered else _UNAVAILABLE[src]
            )
            continue
        conf = [c for i in got if (c := confidences[i][src]) is not None]
        scores = calibration_scores(conf, [bool(records[i].correct) for i in got], bins)
        scores["coverage"] = round(coverage[src], 6)
        full[src] = scores
        sources[src] = {k: v for k, v in scores.items() if k != "reliability"}
    chosen = _choose(source, sources, coverage)
    out: dict[str, Any]
    if chosen is None:
        why = (
            f"confidence source {source} unavailable: {sources[f'{source}_reason']}"
            if source != "auto"
            else "; ".join(sources[f"{s}_reason"] for s in SOURCES if sources[s] is None)
        )
        out = {"confidence_source": None, "reason": why}
        for key in ("ece", "brier", "auroc"):
            out[key] = None
            out[f"{key}_reason"] = why
    else:
        out = {"confidence_source": chosen, **full[chosen]}
    out["sources"] = sources
    return out


def _choose(source: str, sources: dict[str, Any], coverage: dict[str, float]) -> str | None:
    if source != "auto":
        if source not in SOURCES:
            raise ValueError(f"unknown confidence source {source!r}")
        return source if sources[source] is not None else None
    for src in SOURCES:
        if sources[src] is not None and coverage[src] >= AUTO_MIN_COVERAGE:
            return src
    have = [s for s in SOURCES if sources[s] is not None]
    return max(have, key=lambda s: coverage[s]) if have else None
