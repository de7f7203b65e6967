"""Routing: the student as a fast path that hands its least confident answers to the teacher.

Items are the teacher-student pairs the paired section compares (student sample s with
teacher sample s mod the teacher's samples of that problem, both graded). Ordered by the
student's confidence, least confident first, routing a fraction f sends the ceil(f * n) first
items to the teacher; the system's answer is the teacher's on those and the student's on the
rest. The curve says what each fraction buys (system accuracy) and costs (the routed teacher
records' completion tokens).

The confidence is calibration's per-record confidence, its source picked by calibration's
rule (the run's `confidence` option; `auto`: stated, then logprob, then agreement, the first
covering half of the answers) applied to the paired student answers. A paired item with no
confidence under that source (mostly: no extracted answer) counts as least confident, so it
is routed first, as a deployed router would do with an answerless output. Ties are broken by
(task, problem id, sample), so the numbers do not depend on the order of the records.

AURC is the area under the student's risk-coverage curve (Geifman & El-Yaniv): keeping the
most confident answers first, the mean over coverages k/n (k = 1..n) of the error rate of the
kept ones; `aurc_optimal` is the same for a perfect ranking (every right answer first), so
`aurc - aurc_optimal` is what the confidence's ranking loses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from harness.metrics.accuracy import by_problem
from harness.metrics.calibration import _UNAVAILABLE, SOURCES, _choose, record_confidences
from harness.metrics.sections import RunContext, Section, TaskContext
from harness.types import Record

GRID = 20
"""The curve has GRID + 1 points, fractions 0, 1/GRID, ..., 1."""
MATCH_MARGIN = 0.01
"""fraction_to_match_teacher: the system is within this much of the teacher's accuracy."""

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class RoutingItems:
    """Paired items as aligned arrays, so tasks pool by concatenation."""

    task: npt.NDArray[np.str_]
    problem_id: npt.NDArray[np.str_]
    sample: Ints
    student_correct: Bools
    teacher_correct: Bools
    teacher_tokens: Ints
    """The routed teacher record's completion tokens, 0 where unknown."""
    tokens_known: Bools
    """Whether the teacher record had completion_tokens."""
    student_answered: Bools
    """The student record has an extracted answer (calibration's coverage counts these)."""
    confidence: Mapping[str, Floats]
    """Per source, the student record's confidence; NaN where the source has none."""

    @property
    def n(self) -> int:
        return int(self.sample.size)


def pair_items(
    task: str,
    teacher: Sequence[Record],
    student: Sequence[Record],
    confidences: Sequence[Mapping[str, float | None]],
) -> RoutingItems:
    """The graded pairs, as pair_records forms them, with the student's confidences
    (`confidences` aligned with `student`, as record_confidences gives them)."""
    conf_of = {id(r): c for r, c in zip(student, confidences, strict=True)}
    t_by = by_problem(teacher)
    pairs: list[tuple[Record, Record]] = []
    for pid, ss in by_problem(student).items():
        ts = t_by.get(pid)
        if ts:
            pairs.extend((ts[s.sample % len(ts)], s) for s in ss)
    tokens = [t.completion_tokens for t, _ in pairs]
    return RoutingItems(
        task=np.array([task] * len(pairs), dtype=np.str_),
        problem_id=np.array([s.problem_id for _, s in pairs], dtype=np.str_),
        sample=np.array([s.sample for _, s in pairs], dtype=np.int64),
        student_correct=np.array([bool(s.correct) for _, s in pairs], dtype=np.bool_),
        teacher_correct=np.array([bool(t.correct) for t, _ in pairs], dtype=np.bool_),
        teacher_tokens=np.array([k or 0 for k in tokens], dtype=np.int64),
        tokens_known=np.array([k is not None for k in tokens], dtype=np.bool_),
        student_answered=np.array([s.answer is not None for _, s in pairs], dtype=np.bool_),
        confidence={
            src: np.array([_or_nan(conf_of[id(s)].get(src)) for _, s in pairs], dtype=np.float64)
            for src in SOURCES
        },
    )


def _or_nan(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def pool(parts: Sequence[RoutingItems]) -> RoutingItems:
    """Every part's items in one set (the overall curve ranks them all together)."""
    if not parts:
        return pair_items("", [], [], [])
    return RoutingItems(
        task=np.concatenate([p.task for p in parts]),
        problem_id=np.concatenate([p.problem_id for p in parts]),
        sample=np.concatenate([p.sample for p in parts]),
        student_correct=np.concatenate([p.student_correct for p in parts]),
        teacher_correct=np.concatenate([p.teacher_correct for p in parts]),
        teacher_tokens=np.concatenate([p.teacher_tokens for p in parts]),
        tokens_known=np.concatenate([p.tokens_known for p in parts]),
        student_answered=np.concatenate([p.student_answered for p in parts]),
        confidence={src: np.concatenate([p.confidence[src] for p in parts]) for src in SOURCES},
    )


def choose_source(items: RoutingItems, source: str = "auto") -> str | None:
    """Calibration's choice of headline confidence, over the paired student answers."""
    answered = int(items.student_answered.sum())
    covered = {
        src: int((items.student_answered & ~np.isnan(items.confidence[src])).sum())
        for src in SOURCES
    }
    have: dict[str, Any] = {src: True if covered[src] else None for src in SOURCES}
    coverage = {src: covered[src] / answered if answered else 0.0 for src in SOURCES}
    return _choose(source, have, coverage)


def routing_order(
    confidence: npt.ArrayLike,
    task: npt.ArrayLike,
    problem_id: npt.ArrayLike,
    sample: npt.ArrayLike,
) -> Ints:
    """Indices, least confident first; NaN (no confidence) before any confidence, ties by
    (task, problem id, sample)."""
    conf = np.asarray(confidence, dtype=np.float64)
    conf = np.where(np.isnan(conf), -np.inf, conf)
    keys = (np.asarray(sample), np.asarray(problem_id), np.asarray(task), conf)
    return np.lexsort(keys).astype(np.int64)


def routing_stats(
    order: npt.ArrayLike,
    student_correct: npt.ArrayLike,
    teacher_correct: npt.ArrayLike,
    teacher_tokens: npt.ArrayLike,
) -> dict[str, Any]:
    """The curve, the fraction (and tokens) to come within MATCH_MARGIN of the teacher, and
    AURC, for items routed in `order` (least confident first). Needs at least one item."""
    idx = np.asarray(order, dtype=np.int64)
    n = int(idx.size)
    if n == 0:
        raise ValueError("routing of no items")
    sc = np.asarray(student_correct, dtype=np.int64)[idx]
    tc = np.asarray(teacher_correct, dtype=np.int64)[idx]
    tok = np.asarray(teacher_tokens, dtype=np.int64)[idx]
    zero = np.zeros(1, dtype=np.int64)
    s_cum = np.concatenate([zero, np.cumsum(sc)])  # student right among the k first
    t_cum = np.concatenate([zero, np.cumsum(tc)])
    tok_cum = np.concatenate([zero, np.cumsum(tok)])
    right = t_cum + (s_cum[-1] - s_cum)  # system right answers with k routed, k = 0..n
    accuracy = right / n
    teacher_right = int(t_cum[-1])
    # right >= teacher_right - margin * n, on counts so that k = n always qualifies
    match = np.flatnonzero(right >= teacher_right - MATCH_MARGIN * n - 1e-9)
    k_match = int(match[0]) if match.size else None
    grid = np.arange(GRID + 1, dtype=np.int64)
    ks = (grid * n + GRID - 1) // GRID  # ceil(i / GRID * n), exactly
    # keeping the k most confident = all but the n - k first of the order
    wrong_cum = np.arange(n + 1) - s_cum
    kept = np.arange(1, n + 1)
    risk = (wrong_cum[-1] - wrong_cum[n - kept]) / kept
    wrong = int(wrong_cum[-1])
    optimal = np.maximum(0, kept - (n - wrong)) / kept
    return {
        "student_accuracy": round(float(accuracy[0]), 6),
        "teacher_accuracy": round(float(accuracy[-1]), 6),
        "curve": [
            {
                "fraction": round(int(i) / GRID, 6),
                "accuracy": round(float(accuracy[k]), 6),
                "teacher_tokens": int(tok_cum[k]),
            }
            for i, k in zip(grid, ks, strict=True)
        ],
        "fraction_to_match_teacher": None if k_match is None else round(k_match / n, 6),
        "tokens_to_match_teacher": None if k_match is None else int(tok_cum[k_match]),
        "aurc": round(float(risk.mean()), 6),
        "aurc_optimal": round(float(optimal.mean()), 6),
    }


def routing_summary(items: RoutingItems, source: str = "auto") -> dict[str, Any]:
    """The routing section for a set of paired items, or `{"reason": ...}` when there is
    nothing to route or nothing to order by."""
    if items.n == 0:
        return {"reason": "no problem was graded for both the teacher and the student"}
    chosen = choose_source(items, source)
    if chosen is None:
        return {"reason": _no_confidence(items, source)}
    order = routing_order(items.confidence[chosen], items.task, items.problem_id, items.sample)
    stats = routing_stats(order, items.student_correct, items.teacher_correct, items.teacher_tokens)
    return {
        "confidence_source": chosen,
        "n": items.n,
        **stats,
        "teacher_tokens_known": bool(items.tokens_known.all()),
        "reason": None,
    }


def _no_confidence(items: RoutingItems, source: str) -> str:
    if not items.student_answered.any():
        return "the student extracted no answer, so there is no confidence to order its answers by"
    if source != "auto":
        return (
            f"the student's answers have no {source} confidence to order them by "
            f"({_UNAVAILABLE[source]})"
        )
    why = "; ".join(_UNAVAILABLE[s] for s in SOURCES)
    return f"the student's answers have no confidence to order them by ({why})"


class Routing(Section[None]):
    """`tasks.<task>.routing` and `overall.routing` (items pooled over tasks, ranked together):
    accuracy and teacher tokens as the student routes its least confident answers to the
    teacher."""

    name: ClassVar[str] = "routing"

    def __init__(self) -> None:
        self._items: dict[str, RoutingItems] = {}
        """Each task's pairs, kept for the overall part."""

    def _collect(self, ctx: TaskContext) -> RoutingItems | None:
        if ctx.paired is None:
            return None
        got = self._items.get(ctx.task)
        if got is None:
            confs = record_confidences(ctx.student, ctx.same_answer)
            got = pair_items(ctx.task, ctx.teacher, ctx.student, confs)
            assert got.n == len(ctx.paired.agree), "routing pairs as the paired section does"
            self._items[ctx.task] = got
        return got

    def aggregate(
        self, ctx: TaskContext, records: Sequence[Record], items: Sequence[None]
    ) -> dict[str, Any]:
        got = self._collect(ctx)
        if got is None:
            missing = "teacher" if not ctx.teacher else "student"
            return {"reason": f"the task has no {missing} records, so there is nothing to route"}
        return routing_summary(got, ctx.options.confidence)

    def overall(self, run: RunContext, tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        parts = [p for ctx in run.tasks if (p := self._collect(ctx)) is not None]
        if not parts:
            return {"reason": "no task has both teacher and student records to route between"}
        return routing_summary(pool(parts), run.options.confidence)
