"""The `failures` metrics section: how failures split into causes, and what to do about them.

Written to `metrics.json` under `failures` by `harness classify` (and read by the distill
stage, `harness distill --from-failures RUN`). The structure (a contract, like the rest of
metrics.json):

```
failures:
  n                       failed student items (graded wrong), all tasks
  labels                  the label vocabulary (harness.classify.base.LABELS), in order
  overall / tasks.<task>:
    n                     failed items
    counts.<label>        items with that label (every label present, 0 when none)
    shares.<label>        {share, ci95: [lo, hi]}: share of the failures, Wilson 95% interval
    decided               items labelled capacity or mismatch
  advice:
    mismatch: [           slices to add to the distillation mix, most failures explained first
      {task, dimension, value, failures, share, student_accuracy, student_n,
       problem_ids, problem_ids_total}
    ]                     dimension: family (chains family / subset, e.g. a BBH subtask),
                          perturbation (a variant kind), format (the answer form a `format`
                          variant asked: boxed, hash, answer_line when the teacher shows it);
                          failures: mismatch-labelled items in the slice; share: of the
                          task's mismatch items; student_accuracy over all the slice's graded
                          student records; problem_ids: the failed items' ids (first 100,
                          sorted; failures.jsonl has them all)
    capacity: [           per task with capacity failures
      {task, failures, frontier, frontier_sd, depth_band: [lo, hi], by_depth: {d: n},
       teacher_chains: [{problem_id, steps}], teacher_chains_total}
    ]                     depth_band: the depths of the capacity failures; teacher_chains:
                          right teacher chains with more steps than the frontier (longest
                          first, first 100): the ones to decompose, or to leave to a bigger
                          student
    lines: [str]          the advice in plain words, most failures first
  model                   what labelled the non-mechanical items (`features+model`, or why not)
  model_weights           the trained model's feature weights (permutation importance), when
                          it ran
  probes                  `run` / `not run` / why not available
```

Intervals are Wilson score intervals (closed form, sensible at 0 and n), not a bootstrap:
the shares are of independent labelled items.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.classify.base import LABELS, Failure
from harness.types import Record

Z95 = 1.959963984540054
MAX_IDS = 100


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (0..1 when n is 0)."""
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6))


def label_shares(labels: Sequence[str]) -> dict[str, Any]:
    """counts, shares with 95% intervals, and decided, over one group of failures."""
    n = len(labels)
    counts = Counter(labels)
    shares = {
        label: {
            "share": round(counts[label] / n, 6) if n else None,
            "ci95": list(wilson(counts[label], n)),
        }
        for label in LABELS
    }
    return {
        "n": n,
        "counts": {label: counts[label] for label in LABELS},
        "shares": shares,
        "decided": counts["capacity"] + counts["mismatch"],
    }


def _answer_form(teacher: Sequence[Record]) -> str:
    forms = {t.extractor for t in teacher if t.extractor and not t.lenient and t.answer}
    return next(iter(forms)) if len(forms) == 1 else "format"


def _slices(
    failure: Failure, record: Record | None, teacher: Sequence[Record]
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    subset = record.subset if record is not None else None
    if subset:
        out.append(("family", subset))
    if failure.perturbation:
        out.append(("perturbation", failure.perturbation))
        if failure.perturbation == "format":
            out.append(("format", _answer_form(teacher)))
    return out


def _record_slices(r: Record) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if r.subset:
        out.append(("family", r.subset))
    if r.perturbation:
        out.append(("perturbation", r.perturbation))
    return out


def teacher_steps(r: Record) -> int:
    """Steps of a teacher's chain (its reasoning, else its whole output), as chain similarity
    segments them."""
    from harness.metrics.segment import segment_steps

    return len(segment_steps(r.reasoning if r.reasoning else r.text))


def mismatch_advice(
    failures: Sequence[Failure],
    records: Sequence[Record],
    teacher_of: Mapping[tuple[str, str, int], Sequence[Record]],
) -> list[dict[str, Any]]:
    """Slices (task, dimension, value) ranked by the mismatch failures they hold."""
    by_key = {(r.task, r.problem_id, r.sample): r for r in records if r.role == "student"}
    hits: defaultdict[tuple[str, str, str], list[str]] = defaultdict(list)
    per_task: Counter[str] = Counter()
    for f in failures:
        if f.label != "mismatch":
            continue
        key = (f.task, f.problem_id, f.sample)
        per_task[f.task] += 1
        for dim, value in _slices(f, by_key.get(key), teacher_of.get(key, ())):
            hits[(f.task, dim, value)].append(f.problem_id)
    right: Counter[tuple[str, str, str]] = Counter()
    graded: Counter[tuple[str, str, str]] = Counter()
    for r in records:
        if r.role != "student" or r.correct is None:
            continue
        for dim, value in _record_slices(r):
            graded[(r.task, dim, value)] += 1
            right[(r.task, dim, value)] += bool(r.correct)
    rows: list[dict[str, Any]] = []
    for (task, dim, value), ids in hits.items():
        unique = sorted(set(ids))
        n = (
            graded[(task, "perturbation", "format")]
            if dim == "format"
            else graded[(task, dim, value)]
        )
        k = (
            right[(task, "perturbation", "format")]
            if dim == "format"
            else right[(task, dim, value)]
        )
        rows.append(
            {
                "task": task,
                "dimension": dim,
                "value": value,
                "failures": len(ids),
                "share": round(len(ids) / per_task[task], 6),
                "student_accuracy": round(k / n, 6) if n else None,
                "student_n": n,
                "problem_ids": unique[:MAX_IDS],
                "problem_ids_total": len(unique),
            }
        )
    rows.sort(
        key=lambda r: (-int(r["failures"]), str(r["task"]), str(r["dimension"]), str(r["value"]))
    )
    return rows


def capacity_advice(failures: Sequence[Failure], records: Sequence[Record]) -> list[dict[str, Any]]:
    """Per task: the depth band of the capacity failures, the frontier, and the right teacher
    chains longer than the frontier."""
    cap: defaultdict[str, list[Failure]] = defaultdict(list)
    for f in failures:
        if f.label == "capacity":
            cap[f.task].append(f)
    rows: list[dict[str, Any]] = []
    for task in sorted(cap):
        fs = cap[task]
        depths = [f.features.depth for f in fs if f.features.depth is not None]
        fronts = [f.features.frontier for f in fs if f.features.frontier is not None]
        sds = [f.features.frontier_sd for f in fs if f.features.frontier_sd is not None]
        frontier = _median(fronts)
        chains: dict[str, int] = {}
        if frontier is not None:
            for r in records:
                if r.task == task and r.role == "teacher" and r.correct:
                    steps = teacher_steps(r)
                    if steps > frontier:
                        chains[r.problem_id] = max(steps, chains.get(r.problem_id, 0))
        ranked = sorted(chains.items(), key=lambda kv: (-kv[1], kv[0]))
        by_depth = Counter(_depth_key(d) for d in depths)
        rows.append(
            {
                "task": task,
                "failures": len(fs),
                "frontier": None if frontier is None else round(frontier, 3),
                "frontier_sd": None if not sds else round(_median(sds) or 0.0, 3),
                "depth_band": [min(depths), max(depths)] if depths else None,
                "by_depth": dict(sorted(by_depth.items(), key=lambda kv: float(kv[0]))),
                "teacher_chains": [{"problem_id": p, "steps": s} for p, s in ranked[:MAX_IDS]],
                "teacher_chains_total": len(ranked),
            }
        )
    rows.sort(key=lambda r: (-int(r["failures"]), str(r["task"])))
    return rows


def _depth_key(d: float) -> str:
    return str(int(d)) if float(d).is_integer() else f"{d:g}"


def _median(xs: Sequence[float]) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def advice_lines(
    mismatch: Sequence[dict[str, Any]], capacity: Sequence[dict[str, Any]], top: int = 10
) -> list[str]:
    """The advice in plain words (names are the run's task, family and kind names)."""
    lines: list[tuple[int, str]] = []
    for m in mismatch[:top]:
        acc = m["student_accuracy"]
        there = f", student {acc:.2f} there" if acc is not None else ""
        lines.append(
            (
                m["failures"],
                f"mismatch: add {m['task']} {m['dimension']}={m['value']} to the distillation "
                f"mix ({m['failures']} failures{there})",
            )
        )
    for c in capacity:
        band = c["depth_band"]
        where = f" at depth {band[0]:g}-{band[1]:g}" if band else ""
        front = ""
        if c["frontier"] is not None and c["frontier"] < 1:
            # No depth is under the frontier: a fitted crossing below 1 step means nothing more.
            front = " (the student is under 50% even at depth 1)"
        elif c["frontier"] is not None:
            sd = f" ± {c['frontier_sd']:.1f}" if c["frontier_sd"] is not None else ""
            front = f" beyond the frontier {c['frontier']:.1f}{sd}"
        lines.append(
            (
                c["failures"],
                f"capacity: {c['task']} {c['failures']} failures{where}{front}; "
                f"{c['teacher_chains_total']} teacher chains exceed it: decompose them or "
                "use a bigger student",
            )
        )
    lines.sort(key=lambda x: -x[0])
    return [text for _, text in lines]


def failures_section(
    failures: Sequence[Failure],
    records: Iterable[Record],
    teacher_of: Mapping[tuple[str, str, int], Sequence[Record]] | None = None,
    *,
    model: str = "features+model",
    probes: str = "not run",
) -> dict[str, Any]:
    """The whole `failures` section (see the module docstring)."""
    recs = list(records)
    by_task: defaultdict[str, list[str]] = defaultdict(list)
    for f in failures:
        by_task[f.task].append(f.label)
    mismatch = mismatch_advice(failures, recs, teacher_of or {})
    capacity = capacity_advice(failures, recs)
    return {
        "n": len(failures),
        "labels": list(LABELS),
        "overall": label_shares([f.label for f in failures]),
        "tasks": {task: label_shares(labels) for task, labels in sorted(by_task.items())},
        "advice": {
            "mismatch": mismatch,
            "capacity": capacity,
            "lines": advice_lines(mismatch, capacity),
        },
        "model": model,
        "probes": probes,
    }


__all__ = [
    "advice_lines",
    "capacity_advice",
    "failures_section",
    "label_shares",
    "mismatch_advice",
    "teacher_steps",
    "wilson",
]
