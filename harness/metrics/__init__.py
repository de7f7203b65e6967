"""Pure functions over records: records in, the metrics.json document out.

No model, task or backend code here. `analyze` computes the document and the per-record
(item) metrics that `harness export` writes next to each record; `compute_metrics` is the
document alone. Sections: accuracy with samples (accuracy), teacher-student pairs (paired),
chain similarity (chainsim; needs an embedding model, so only when asked for), calibration,
reasoning health (health) and the OOD view by perturbation kind (ood).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.console import warn
from harness.errors import HarnessError
from harness.metrics.accuracy import (
    bootstrap_ci,
    bootstrap_cis,
    bootstrap_means,
    by_problem,
    graded,
    pass_at_k,
    per_problem_accuracy,
    role_summary,
    str_equal,
    subset_summary,
)
from harness.metrics.calibration import (
    auroc,
    brier_score,
    calibration_summary,
    expected_calibration_error,
    record_confidences,
    reliability_bins,
)
from harness.metrics.chainsim import (
    COVERAGE_THRESHOLD,
    Embedder,
    chain_summary,
    pair_chains,
    score_pairs,
)
from harness.metrics.health import health_summary, record_health
from harness.metrics.ood import ood_summary
from harness.metrics.paired import (
    PairedData,
    compare_runs,
    mcnemar_exact,
    pair_records,
    paired_stats,
    paired_summary,
)
from harness.types import ROLES, Record

__all__ = [
    "Analysis",
    "MetricOptions",
    "analyze",
    "auroc",
    "bootstrap_ci",
    "bootstrap_cis",
    "bootstrap_means",
    "brier_score",
    "compare_runs",
    "compute_metrics",
    "cost_summary",
    "expected_calibration_error",
    "mcnemar_exact",
    "paired_summary",
    "pass_at_k",
    "per_problem_accuracy",
    "reliability_bins",
    "role_summary",
]

SameAnswers = dict[str, Callable[[str, str], bool]]


@dataclass(frozen=True)
class MetricOptions:
    """What a run asks of its metrics beyond the records themselves."""

    chains: bool = False
    """Score chain similarity (loads an embedding model unless every step is cached)."""
    chains_off: str | None = None
    """Why chain similarity was turned off: the section is then null with this reason."""
    chain_model: str | None = None
    """Embedding model id or folder; None: all-MiniLM-L6-v2 (packaged copy when installed)."""
    cache_dir: Path | None = None
    """Where the step-embedding cache lives (embeddings.sqlite); None: no cache."""
    threshold: float = COVERAGE_THRESHOLD
    confidence: str = "auto"
    """Calibration's headline source: auto, stated, logprob or agreement."""
    bins: int = 10
    seed: int = 0


@dataclass
class Analysis:
    metrics: dict[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)
    """Per-record metrics, aligned with the records given to analyze()."""


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
    records: Sequence[Record],
    same_answer: SameAnswers,
    options: MetricOptions | None = None,
    *,
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """The metrics.json document: tasks.<task>.{<role>, paired, chains, ood}, overall, cost."""
    return analyze(records, same_answer, options, embedder=embedder).metrics


def analyze(
    records: Sequence[Record],
    same_answer: SameAnswers,
    options: MetricOptions | None = None,
    *,
    embedder: Embedder | None = None,
) -> Analysis:
    """The metrics document and every record's item metrics, in one pass over the records."""
    opts = options or MetricOptions()
    items: list[dict[str, Any]] = [{} for _ in records]
    position = {id(r): i for i, r in enumerate(records)}
    by_task: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_task[r.task].append(r)
    own_embedder = embedder is None and opts.chains
    if own_embedder:
        embedder = Embedder(opts.chain_model, opts.cache_dir)
    chain_error: str | None = None
    tasks: dict[str, Any] = {}
    pooled = PairedData()
    try:
        for task, rs in by_task.items():
            same = same_answer.get(task, str_equal)
            entry: dict[str, Any] = {}
            for role in ROLES:
                role_rs = [r for r in rs if r.role == role]
                if not role_rs:
                    continue
                healths = [
                    record_health(r) if r.error is None and r.finish_reason != "missing" else None
                    for r in role_rs
                ]
                confs = record_confidences(role_rs, same)
                summary = role_summary(role_rs, same, seed=opts.seed)
                subsets = subset_summary(role_rs, same)
                if subsets is not None:
                    summary["subsets"] = subsets
                summary["calibration"] = calibration_summary(
                    role_rs, confs, source=opts.confidence, bins=opts.bins
                )
                summary["health"] = health_summary(role_rs, healths)
                entry[role] = summary
                for r, h, c in zip(role_rs, healths, confs, strict=True):
                    item = items[position[id(r)]]
                    if h is not None:
                        item.update(h)
                    item.update({f"confidence_{k}": v for k, v in c.items()})
            t = [r for r in rs if r.role == "teacher"]
            s = [r for r in rs if r.role == "student"]
            if t and s:
                data = pair_records(t, s, same)
                pooled.extend(data)
                entry["paired"] = paired_stats(data, seed=opts.seed)
                _pair_items(t, s, same, items, position)
                if not opts.chains and opts.chains_off:
                    entry["chains"] = _null_chains(opts.chains_off)
                if opts.chains:
                    assert embedder is not None
                    if chain_error is None:
                        try:
                            entry["chains"] = _chains(t, s, embedder, opts, items, position)
                        except HarnessError as e:
                            chain_error = str(e)
                            warn(f"chain similarity skipped: {chain_error}")
                    if chain_error is not None:
                        entry["chains"] = _null_chains(chain_error)
            ood = ood_summary(rs, same, seed=opts.seed)
            if ood is not None:
                entry["ood"] = ood
            tasks[task] = entry
    finally:
        if own_embedder and embedder is not None:
            embedder.close()
    metrics: dict[str, Any] = {
        "tasks": tasks,
        "overall": _overall(records, tasks, pooled, opts.seed),
        "cost": {role: cost_summary(records, role) for role in ROLES},
    }
    if opts.chains and embedder is not None:
        metrics["embeddings"] = {
            "model": embedder.model_id,
            "computed": embedder.computed,
            "cached": embedder.cached,
            "seconds": round(embedder.seconds, 3),
        }
    return Analysis(metrics, items)


def _null_chains(reason: str) -> dict[str, Any]:
    return {"similarity": None, "coverage": None, "order_score": None, "reason": reason}


def _pair_items(
    t: Sequence[Record],
    s: Sequence[Record],
    same: Callable[[str, str], bool],
    items: list[dict[str, Any]],
    position: dict[int, int],
) -> None:
    """Each student record's paired teacher sample: was it right, do the answers agree."""
    t_by = by_problem(t)
    for r in graded(s):
        ts = t_by.get(r.problem_id)
        if not ts:
            continue
        other = ts[r.sample % len(ts)]
        item = items[position[id(r)]]
        item["teacher_correct"] = bool(other.correct)
        item["agrees_with_teacher"] = bool(
            other.answer is not None and r.answer is not None and same(other.answer, r.answer)
        )


def _chains(
    t: Sequence[Record],
    s: Sequence[Record],
    embedder: Embedder,
    opts: MetricOptions,
    items: list[dict[str, Any]],
    position: dict[int, int],
) -> dict[str, Any]:
    pairs = pair_chains(t, s)
    scores = score_pairs(pairs, embedder, opts.threshold)
    for (_, st), sc in zip(pairs, scores, strict=True):
        items[position[id(st)]].update({f"chain_{k}": round(v, 6) for k, v in sc.items()})
    return chain_summary(pairs, scores, model=embedder.model_id, threshold=opts.threshold)


def _overall(
    records: Sequence[Record], tasks: dict[str, Any], pooled: PairedData, seed: int
) -> dict[str, Any]:
    """Every task together: accuracy over all samples, pass@1 over all problems (micro) and
    the mean of the tasks' pass@1 (macro), and the pooled teacher-student pairs."""
    out: dict[str, Any] = {
        "tasks": len(tasks),
        "sandbox_errors": sum(r.sandbox_error for r in records),
    }
    for role in ROLES:
        role_rs = [r for r in records if r.role == role]
        rs = graded(role_rs)
        if not rs:
            if any(r.sandbox_error for r in role_rs):
                out[role] = {
                    **dict.fromkeys(("accuracy", "pass_at_1", "macro_pass_at_1", "ci95")),
                    "n": 0,
                    "problems": 0,
                    "sandbox_errors": sum(r.sandbox_error for r in role_rs),
                }
            continue
        per_problem: dict[tuple[str, str], list[bool]] = defaultdict(list)
        for r in rs:
            per_problem[(r.task, r.problem_id)].append(bool(r.correct))
        p1 = [sum(v) / len(v) for v in per_problem.values()]
        task_p1 = [e[role]["pass_at_1"] for e in tasks.values() if role in e]
        task_p1 = [x for x in task_p1 if x is not None]
        out[role] = {
            "accuracy": round(sum(bool(r.correct) for r in rs) / len(rs), 6),
            "pass_at_1": round(float(np.mean(p1)), 6),
            "macro_pass_at_1": round(float(np.mean(task_p1)), 6) if task_p1 else None,
            "n": len(rs),
            "problems": len(p1),
            "ci95": bootstrap_ci(p1, seed=seed),
            "sandbox_errors": sum(r.sandbox_error for r in role_rs),
        }
    if pooled.agree:
        out["paired"] = paired_stats(pooled, seed=seed)
    return out
