"""Pure functions over records. No model, task or backend code here: records in, numbers out."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from harness.types import ROLES, Record


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (Chen et al. 2021).

    1 - C(n-c, k) / C(n, k), computed as a stable product so large n does not overflow.
    """
    if n < 1 or k < 1:
        raise ValueError(f"pass@k needs n >= 1 and k >= 1 (got n={n}, k={k})")
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n (got c={c}, n={n})")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem (got {n})")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def bootstrap_ci(
    per_item: Sequence[float], *, resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> list[float] | None:
    """Percentile bootstrap interval of the mean over items (problems, not samples).

    Resampling problems rather than samples keeps the interval honest when each problem has
    several correlated samples.
    """
    x = np.asarray(per_item, dtype=float)
    if x.size == 0:
        return None
    if x.size == 1:
        return [float(x[0]), float(x[0])]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(resamples, x.size))
    means = x[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return [round(float(lo), 6), round(float(hi), 6)]


def _graded(records: Iterable[Record]) -> list[Record]:
    return [r for r in records if r.correct is not None]


def per_problem_accuracy(records: Iterable[Record]) -> dict[str, float]:
    """Mean correctness over each problem's samples (pass@1 as the mean over n samples)."""
    acc: dict[str, list[bool]] = defaultdict(list)
    for r in _graded(records):
        acc[r.problem_id].append(bool(r.correct))
    return {pid: sum(v) / len(v) for pid, v in acc.items()}


def role_summary(records: Sequence[Record]) -> dict[str, Any]:
    """accuracy, n, ci95 for one task x role, plus the counts that explain n."""
    graded = _graded(records)
    per_problem = per_problem_accuracy(graded)
    missing = sorted({r.problem_id for r in records if r.finish_reason == "missing"})
    errors = sorted({r.problem_id for r in records if r.finish_reason == "error"})
    out: dict[str, Any] = {
        "accuracy": round(sum(bool(r.correct) for r in graded) / len(graded), 6)
        if graded
        else None,
        "n": len(graded),
        "problems": len(per_problem),
        "ci95": bootstrap_ci(list(per_problem.values())),
        "truncated": sum(r.truncated for r in graded),
        "lenient": sum(r.lenient for r in graded),
        "missing": len(missing),
        "errors": len(errors),
    }
    if missing:
        out["missing_ids"] = missing
    if errors:
        out["error_ids"] = errors
    return out


def paired_summary(
    teacher: Sequence[Record],
    student: Sequence[Record],
    same_answer: Callable[[str, str], bool],
) -> dict[str, Any]:
    """Teacher-student agreement and retention over the items both have graded.

    Student sample s is paired with teacher sample s mod (teacher samples of that problem), so
    a single teacher sample pairs with every student sample.
    agreement: both gave an answer and the answers are equivalent (the task decides).
    retention: P(student right | teacher right).
    """
    t_by: dict[str, list[Record]] = defaultdict(list)
    for r in _graded(teacher):
        t_by[r.problem_id].append(r)
    for v in t_by.values():
        v.sort(key=lambda r: r.sample)
    pairs: list[tuple[Record, Record]] = []
    for s in _graded(student):
        ts = t_by.get(s.problem_id)
        if ts:
            pairs.append((ts[s.sample % len(ts)], s))
    if not pairs:
        return {"agreement": None, "retention": None, "pairs": 0}
    agree = sum(
        1
        for t, s in pairs
        if t.answer is not None and s.answer is not None and same_answer(t.answer, s.answer)
    )
    t_right = [(t, s) for t, s in pairs if t.correct]
    retention = sum(bool(s.correct) for _, s in t_right) / len(t_right) if t_right else None
    return {
        "agreement": round(agree / len(pairs), 6),
        "retention": None if retention is None else round(retention, 6),
        "pairs": len(pairs),
    }


def cost_summary(records: Iterable[Record], role: str) -> dict[str, Any]:
    """What this invocation spent: generations made now vs taken from the cache."""
    rs = [r for r in records if r.role == role and r.finish_reason not in ("missing",)]
    made = [r for r in rs if not r.cached and r.error is None]
    return {
        "generated": len(made),
        "cached": sum(r.cached for r in rs),
        "tokens": sum(r.completion_tokens or 0 for r in made),
        "seconds": round(sum(r.seconds for r in made), 3),
    }


def compute_metrics(
    records: Sequence[Record], same_answer: dict[str, Callable[[str, str], bool]]
) -> dict[str, Any]:
    """The metrics.json document: tasks.<task>.<role>, tasks.<task>.paired, cost.<role>."""
    by_task: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_task[r.task].append(r)
    tasks: dict[str, Any] = {}
    for task, rs in by_task.items():
        entry: dict[str, Any] = {}
        for role in ROLES:
            role_rs = [r for r in rs if r.role == role]
            if role_rs:
                entry[role] = role_summary(role_rs)
        t = [r for r in rs if r.role == "teacher"]
        s = [r for r in rs if r.role == "student"]
        if t and s:
            entry["paired"] = paired_summary(t, s, same_answer.get(task, _str_equal))
        tasks[task] = entry
    return {
        "tasks": tasks,
        "cost": {role: cost_summary(records, role) for role in ROLES},
    }


def _str_equal(a: str, b: str) -> bool:
    return " ".join(a.split()).lower() == " ".join(b.split()).lower()
