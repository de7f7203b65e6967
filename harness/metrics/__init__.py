"""Pure functions over records: records in, the metrics.json document out.

No model, task or backend code here. The document is made of sections (harness.metrics.sections):
each family of numbers is a `Section` registered in `REGISTRY` with a per-item part (what
`harness export` adds to each record) and an aggregate part (its keys in a task's metrics).
Built in, in this order: cost, accuracy (with samples, subsets and overall), calibration,
health (reasoning health), paired (teacher-student pairs), chains (chain similarity; needs an
embedding model, so only when asked for) and ood (by perturbation kind). `analyze` runs them
and returns the document and the per-record items; `compute_metrics` is the document alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.metrics.accuracy import (
    bootstrap_ci,
    bootstrap_cis,
    bootstrap_means,
    pass_at_k,
    per_problem_accuracy,
    role_summary,
)
from harness.metrics.calibration import (
    auroc,
    brier_score,
    expected_calibration_error,
    reliability_bins,
)
from harness.metrics.chainsim import COVERAGE_THRESHOLD, Embedder
from harness.metrics.cost import cost_summary
from harness.metrics.paired import compare_runs, mcnemar_exact, paired_summary
from harness.metrics.sections import (
    REGISTRY,
    RunContext,
    Section,
    TaskContext,
    evaluate,
    load_sections,
)
from harness.types import Record

__all__ = [
    "REGISTRY",
    "Analysis",
    "MetricOptions",
    "RunContext",
    "Section",
    "TaskContext",
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


@dataclass(frozen=True)
class Analysis:
    """analyze()'s result: the document, and what `harness export` adds to each record."""

    metrics: dict[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)
    """Per-record metrics, aligned with the records given to analyze()."""


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
    """The metrics document and every record's item metrics: every registered section, in
    registry order. Opens (and closes) the step embedder when chains are asked for and none
    is given, so all tasks share one model load."""
    opts = options or MetricOptions()
    sections = load_sections()
    own_embedder = embedder is None and opts.chains
    if own_embedder:
        embedder = Embedder(opts.chain_model, opts.cache_dir)
    try:
        done = evaluate(sections, records, same_answer, opts, embedder)
    finally:
        if own_embedder and embedder is not None:
            embedder.close()
    return Analysis(done.metrics, done.items)
