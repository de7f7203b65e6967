"""The OOD view: each perturbation kind scored on its own, with its paired delta against the
original problems it was derived from (records' parent_id), so a drop is measured on the same
items rather than between two different sets."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.metrics.accuracy import SameAnswer, bootstrap_ci, per_problem_accuracy
from harness.metrics.paired import pair_records, paired_stats
from harness.types import ROLES, Record


def ood_summary(
    records: Sequence[Record], same: SameAnswer, *, seed: int = 0
) -> dict[str, Any] | None:
    """None when no record is a perturbed variant. Otherwise `originals.<role>` and, per kind,
    `<role>.{accuracy, pass_at_1, n, problems, delta, delta_ci95, matched, unmatched}` and
    `paired.{agreement, retention}` (teacher vs student on that kind's items).

    delta: mean over perturbed problems of (pass@1 on it) - (pass@1 on its parent), for the
    perturbed problems whose parent was scored by the same role.
    """
    perturbed = [r for r in records if r.perturbation is not None]
    if not perturbed:
        return None
    originals = [r for r in records if r.perturbation is None]
    base = {role: per_problem_accuracy(r for r in originals if r.role == role) for role in ROLES}
    out: dict[str, Any] = {
        "originals": {
            role: {"pass_at_1": _mean(list(acc.values())), "problems": len(acc)}
            for role, acc in base.items()
            if acc
        },
        "kinds": {},
    }
    by_kind: dict[str, list[Record]] = defaultdict(list)
    for r in perturbed:
        by_kind[str(r.perturbation)].append(r)
    for kind in sorted(by_kind):
        rs = by_kind[kind]
        entry: dict[str, Any] = {}
        for role in ROLES:
            role_rs = [r for r in rs if r.role == role]
            if not role_rs:
                continue
            acc = per_problem_accuracy(role_rs)
            parent = {r.problem_id: r.parent_id for r in role_rs}
            deltas = [
                acc[pid] - base[role][up]
                for pid in acc
                if (up := parent.get(pid)) is not None and up in base[role]
            ]
            graded = [r for r in role_rs if r.correct is not None]
            entry[role] = {
                "accuracy": _mean([float(bool(r.correct)) for r in graded]),
                "pass_at_1": _mean(list(acc.values())),
                "n": len(graded),
                "problems": len(acc),
                "delta": _mean(deltas),
                "delta_ci95": bootstrap_ci(deltas, seed=seed),
                "matched": len(deltas),
                "unmatched": len(acc) - len(deltas),
            }
            if not deltas:
                entry[role]["delta_reason"] = "no parent problem of this kind was scored"
        t = [r for r in rs if r.role == "teacher"]
        s = [r for r in rs if r.role == "student"]
        if t and s:
            p = paired_stats(pair_records(t, s, same), seed=seed)
            entry["paired"] = {k: p[k] for k in ("agreement", "retention", "pairs", "diff")}
        out["kinds"][kind] = entry
    return out


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 6) if values else None
