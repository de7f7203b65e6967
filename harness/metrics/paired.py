"""Paired comparisons on shared items: teacher vs student in one run, or two runs' students.

Paired on the same items, a small difference can be significant where two unpaired accuracies
with overlapping intervals say nothing; so the test (McNemar's exact) and the interval (a
bootstrap of the per-problem difference) both work on the pairs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.metrics.accuracy import (
    SameAnswer,
    _interval,
    _safe_same,
    bootstrap_means,
    by_problem,
    str_equal,
)
from harness.types import Record


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b and c.

    Under H0 the discordant pairs split Binomial(b + c, 1/2); the p-value doubles the smaller
    tail (capped at 1), computed in log space so b + c can be in the hundreds of thousands.
    """
    if b < 0 or c < 0:
        raise ValueError(f"McNemar needs non-negative counts (got {b}, {c})")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    i = np.arange(1, k + 1, dtype=float)
    log_c = np.concatenate([[0.0], np.cumsum(np.log(n - i + 1) - np.log(i))])
    log_tail = np.logaddexp.reduce(log_c) - n * math.log(2.0)
    return float(min(1.0, 2.0 * math.exp(log_tail)))


@dataclass
class PairedData:
    """The pairs of two sides over shared problems, kept as arrays so tasks can be pooled."""

    a_correct: list[bool] = field(default_factory=list)
    b_correct: list[bool] = field(default_factory=list)
    agree: list[bool] = field(default_factory=list)
    diffs: list[float] = field(default_factory=list)
    """Per paired problem: b's mean correctness minus a's (over their samples)."""

    def extend(self, other: PairedData) -> None:
        self.a_correct += other.a_correct
        self.b_correct += other.b_correct
        self.agree += other.agree
        self.diffs += other.diffs


def pair_records(a: Sequence[Record], b: Sequence[Record], same: SameAnswer) -> PairedData:
    """Pair b's sample s with a's sample s mod (a's samples of that problem), over problems both
    have graded; one a sample (a reference teacher) thus pairs with every b sample."""
    a_by, b_by = by_problem(a), by_problem(b)
    data = PairedData()
    for pid, bs in b_by.items():
        as_ = a_by.get(pid)
        if not as_:
            continue
        for s in bs:
            t = as_[s.sample % len(as_)]
            data.a_correct.append(bool(t.correct))
            data.b_correct.append(bool(s.correct))
            data.agree.append(
                t.answer is not None
                and s.answer is not None
                and _safe_same(same, t.answer, s.answer)
            )
        b_mean = sum(bool(r.correct) for r in bs) / len(bs)
        data.diffs.append(b_mean - sum(bool(r.correct) for r in as_) / len(as_))
    return data


def paired_stats(
    data: PairedData, names: tuple[str, str] = ("teacher", "student"), *, seed: int = 0
) -> dict[str, Any]:
    """agreement, retention, one-sided wins, McNemar's exact p and the difference's interval.

    `{b}_only` / `{a}_only`: share of pairs that only that side got right. McNemar's test runs
    over problems: a problem counts for the side with the higher mean correctness over its
    samples (with one sample each this is exactly McNemar's test on the pairs; with several it
    is the sign test, which keeps correlated samples of one problem from counting as many).
    diff: b's pass@1 minus a's over the paired problems; diff_ci95 a bootstrap over problems.
    """
    a_name, b_name = names
    n = len(data.agree)
    if n == 0:
        return {
            "agreement": None,
            "retention": None,
            "pairs": 0,
            f"{b_name}_only": None,
            f"{a_name}_only": None,
            "mcnemar_p": None,
            "diff": None,
            "diff_ci95": None,
            "reason": "no problem graded on both sides",
        }
    ac = np.asarray(data.a_correct, dtype=bool)
    bc = np.asarray(data.b_correct, dtype=bool)
    retention = float(bc[ac].mean()) if ac.any() else None
    diffs = np.asarray(data.diffs, dtype=float)
    b_better, a_better = int((diffs > 0).sum()), int((diffs < 0).sum())
    out: dict[str, Any] = {
        "agreement": round(float(np.mean(data.agree)), 6),
        "retention": None if retention is None else round(retention, 6),
        "pairs": n,
        f"{b_name}_only": round(float((bc & ~ac).mean()), 6),
        f"{a_name}_only": round(float((ac & ~bc).mean()), 6),
        "mcnemar_p": round(mcnemar_exact(a_better, b_better), 6),
        "discordant_problems": {f"{b_name}_better": b_better, f"{a_name}_better": a_better},
        "paired_problems": int(diffs.size),
        "diff": round(float(diffs.mean()), 6),
        "diff_ci95": (
            [round(float(diffs[0]), 6)] * 2
            if diffs.size == 1
            else _interval(bootstrap_means(diffs[None, :], seed=seed)[0], 0.95)
        ),
    }
    if retention is None:
        out["retention_reason"] = f"the {a_name} got no paired sample right"
    return out


def paired_summary(
    teacher: Sequence[Record],
    student: Sequence[Record],
    same_answer: SameAnswer,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Teacher-student agreement, retention, wins, McNemar and the difference's interval.

    agreement: both gave an answer and the answers are equivalent (the task decides).
    retention: P(student right | teacher right), over pairs.
    """
    return paired_stats(pair_records(teacher, student, same_answer), seed=seed)


def compare_runs(
    a: Sequence[Record],
    b: Sequence[Record],
    same_answer: dict[str, Callable[[str, str], bool]],
    *,
    role: str = "student",
    seed: int = 0,
) -> dict[str, Any]:
    """Run B's `role` against run A's on the items both runs graded (task + problem id).

    Keys as in paired_stats with sides named a and b: `b_only`, `a_only`, diff = B - A.
    """
    a_by: dict[str, list[Record]] = defaultdict(list)
    b_by: dict[str, list[Record]] = defaultdict(list)
    for r in a:
        if r.role == role:
            a_by[r.task].append(r)
    for r in b:
        if r.role == role:
            b_by[r.task].append(r)
    tasks: dict[str, Any] = {}
    pooled = PairedData()
    for task in sorted(set(a_by) & set(b_by)):
        data = pair_records(a_by[task], b_by[task], same_answer.get(task, str_equal))
        tasks[task] = paired_stats(data, ("a", "b"), seed=seed)
        pooled.extend(data)
    return {"tasks": tasks, "overall": paired_stats(pooled, ("a", "b"), seed=seed)}
