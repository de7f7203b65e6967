"""The built-in metrics sections: thin adapters from the section contract to the pure
functions of each family module (accuracy, calibration, health, paired, chainsim, ood, cost).

Each class says where its numbers go and what it adds to each record; the arithmetic stays in
the family modules, which know nothing of sections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.console import warn
from harness.errors import HarnessError
from harness.metrics.accuracy import by_problem, overall_summary, role_summary, subset_summary
from harness.metrics.calibration import SOURCES, calibration_summary, record_confidences
from harness.metrics.chainsim import chain_summary, pair_chains, score_pairs
from harness.metrics.cost import cost_summary
from harness.metrics.health import health_summary, record_health
from harness.metrics.ood import ood_summary
from harness.metrics.paired import PairedData, paired_stats
from harness.metrics.sections import RunContext, Scope, Section, TaskContext
from harness.types import ROLES, Record


class Cost(Section[None]):
    """`cost.<role>`: what this invocation spent (a document-level part only)."""

    name: ClassVar[str] = "cost"

    def document(self, run: RunContext) -> Mapping[str, Any]:
        return {"cost": {role: cost_summary(run.records, role) for role in ROLES}}


class Accuracy(Section[None]):
    """`tasks.<task>.<role>.{accuracy, n, ci95, pass_at_k, ...}` (inline: the role's headline
    numbers) with `subsets`, and `overall.{tasks, sandbox_errors, <role>}`."""

    name: ClassVar[str] = "accuracy"
    scope: ClassVar[Scope] = "role"
    inline: ClassVar[bool] = True

    def aggregate(
        self, ctx: TaskContext, records: Sequence[Record], items: Sequence[None]
    ) -> dict[str, Any]:
        summary = role_summary(records, ctx.same_answer, seed=ctx.options.seed)
        subsets = subset_summary(records, ctx.same_answer)
        if subsets is not None:
            summary["subsets"] = subsets
        return summary

    def overall(self, run: RunContext, tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        return overall_summary(run.headline, tasks, seed=run.options.seed)


Confidences = dict[str, float | None]
_NO_CONFIDENCE: Confidences = dict.fromkeys(SOURCES)


class Calibration(Section[Confidences]):
    """`tasks.<task>.<role>.calibration`; each record's `confidence_<source>`."""

    name: ClassVar[str] = "calibration"
    scope: ClassVar[Scope] = "role"

    def per_item(self, ctx: TaskContext, records: Sequence[Record]) -> list[Confidences]:
        return record_confidences(records, ctx.same_answer)

    def item_fields(self, item: Confidences) -> dict[str, Any]:
        return {f"confidence_{k}": v for k, v in item.items()}

    def aggregate(
        self, ctx: TaskContext, records: Sequence[Record], items: Sequence[Confidences | None]
    ) -> dict[str, Any]:
        confs = [c if c is not None else _NO_CONFIDENCE for c in items]
        opts = ctx.options
        return calibration_summary(records, confs, source=opts.confidence, bins=opts.bins)


HealthItem = dict[str, Any]


class Health(Section[HealthItem]):
    """`tasks.<task>.<role>.health`; each generation's tokens, loops, language mix, think
    state (records without a generation get none)."""

    name: ClassVar[str] = "health"
    scope: ClassVar[Scope] = "role"

    def per_item(self, ctx: TaskContext, records: Sequence[Record]) -> list[HealthItem | None]:
        return [
            record_health(r) if r.error is None and r.finish_reason != "missing" else None
            for r in records
        ]

    def aggregate(
        self, ctx: TaskContext, records: Sequence[Record], items: Sequence[HealthItem | None]
    ) -> dict[str, Any]:
        return health_summary(records, items)


PairItem = dict[str, bool]


class Paired(Section[PairItem]):
    """`tasks.<task>.paired` and `overall.paired` (pairs pooled over tasks); each graded
    student record's `teacher_correct` and `agrees_with_teacher`."""

    name: ClassVar[str] = "paired"

    def per_item(self, ctx: TaskContext, records: Sequence[Record]) -> list[PairItem | None] | None:
        if ctx.paired is None:
            return None
        t_by = by_problem(ctx.teacher)
        out: list[PairItem | None] = []
        for r in records:
            ts = t_by.get(r.problem_id) if r.role == "student" and r.correct is not None else None
            if not ts:
                out.append(None)
                continue
            other = ts[r.sample % len(ts)]
            agrees = (
                other.answer is not None
                and r.answer is not None
                and ctx.same_answer(other.answer, r.answer)
            )
            out.append({"teacher_correct": bool(other.correct), "agrees_with_teacher": agrees})
        return out

    def aggregate(
        self, ctx: TaskContext, records: Sequence[Record], items: Sequence[PairItem | None]
    ) -> dict[str, Any] | None:
        if ctx.paired is None:
            return None
        return paired_stats(ctx.paired, seed=ctx.options.seed)

    def overall(
        self, run: RunContext, tasks: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, Any] | None:
        pooled = PairedData()
        for t in run.tasks:
            if t.paired is not None:
                pooled.extend(t.paired)
        return paired_stats(pooled, seed=run.options.seed) if pooled.agree else None


@dataclass(frozen=True)
class ChainPair:
    """A student record's chain scores against its paired teacher record."""

    teacher: Record
    scores: dict[str, float]


class Chains(Section[ChainPair]):
    """`tasks.<task>.chains` (only with both roles; null with a reason when turned off or no
    model loads) and `embeddings`; each paired student record's `chain_<score>`."""

    name: ClassVar[str] = "chains"

    def __init__(self) -> None:
        self.error: str | None = None
        """Why the embedder failed: said once, and every later task's chains are null."""

    def per_item(
        self, ctx: TaskContext, records: Sequence[Record]
    ) -> list[ChainPair | None] | None:
        if not ctx.options.chains or ctx.paired is None or self.error is not None:
            return None
        assert ctx.embedder is not None, "analyze() opens an embedder when chains are asked for"
        pairs = pair_chains(ctx.teacher, ctx.student)
        try:
            scores = score_pairs(pairs, ctx.embedder, ctx.options.threshold)
        except HarnessError as e:
            self.error = str(e)
            warn(f"chain similarity skipped: {self.error}")
            return None
        # pairs follow the student records' order, so one walk aligns them with `records`
        out: list[ChainPair | None] = []
        pending = iter(zip(pairs, scores, strict=True))
        nxt = next(pending, None)
        for r in records:
            if nxt is not None and nxt[0][1] is r:
                out.append(ChainPair(nxt[0][0], nxt[1]))
                nxt = next(pending, None)
            else:
                out.append(None)
        assert nxt is None, "every chain pair belongs to one of the task's student records"
        return out

    def item_fields(self, item: ChainPair) -> dict[str, Any]:
        return {f"chain_{k}": round(v, 6) for k, v in item.scores.items()}

    def aggregate(
        self, ctx: TaskContext, records: Sequence[Record], items: Sequence[ChainPair | None]
    ) -> dict[str, Any] | None:
        opts = ctx.options
        if ctx.paired is None:
            return None
        if not opts.chains:
            return _null_chains(opts.chains_off) if opts.chains_off else None
        if self.error is not None:
            return _null_chains(self.error)
        assert ctx.embedder is not None
        got = [(r, m) for r, m in zip(records, items, strict=True) if m is not None]
        return chain_summary(
            [(m.teacher, r) for r, m in got],
            [m.scores for _, m in got],
            model=ctx.embedder.model_id,
            threshold=opts.threshold,
        )

    def document(self, run: RunContext) -> Mapping[str, Any]:
        e = run.embedder
        if not run.options.chains or e is None:
            return {}
        return {
            "embeddings": {
                "model": e.model_id,
                "computed": e.computed,
                "cached": e.cached,
                "seconds": round(e.seconds, 3),
            }
        }


def _null_chains(reason: str) -> dict[str, Any]:
    return {"similarity": None, "coverage": None, "order_score": None, "reason": reason}


class OOD(Section[None]):
    """`tasks.<task>.ood`: per perturbation kind, with paired deltas against the parents
    (only when records carry perturbations)."""

    name: ClassVar[str] = "ood"

    def aggregate(
        self, ctx: TaskContext, records: Sequence[Record], items: Sequence[None]
    ) -> dict[str, Any] | None:
        return ood_summary(ctx.all_records or ctx.records, ctx.same_answer, seed=ctx.options.seed)
