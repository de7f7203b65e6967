"""The failure classifier's vocabulary: what a failed student item is labelled, and the
evidence that label rests on.

A failure is first tested against mechanical rules (the output itself explains it); what they
leave gets evidence features and a calibrated model over them, which answers `capacity` (the
item needs more reasoning than this student carries out even in a form it knows),
`mismatch` (the student does this much reasoning elsewhere, not in this form), or
`undetermined` when evidence is missing or pulls both ways; never a confident guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MECHANICAL = (
    "truncated",
    "looping",
    "no_answer",
    "format",
    "teacher_also_wrong",
    "grader_uncertain",
)
"""Causes a rule reads off the output (checked in this order; the first that holds wins)."""
CAUSES = ("capacity", "mismatch")
"""What the model decides between."""
UNDETERMINED = "undetermined"
LABELS = (*MECHANICAL, *CAUSES, UNDETERMINED)


@dataclass(frozen=True)
class Features:
    """Evidence about one failed student item (None: not measurable for this item).

    Computed by `harness.classify.features` from records alone, the same way for a real run
    and for a planted-cause simulation, so the model trained on one reads the other."""

    task: str
    problem_id: str
    sample: int
    depth: float | None = None
    """Reasoning depth of the item (gold steps)."""
    frontier: float | None = None
    """Depth at which the student's accuracy on familiar forms crosses 50% (logistic fit)."""
    frontier_sd: float | None = None
    """Uncertainty of the frontier (bootstrap standard deviation)."""
    depth_margin: float | None = None
    """(depth - frontier) / max(frontier_sd, 0.5): above 0, deeper than the student reaches."""
    form: str = ""
    """The item's form: its surface family / subset and perturbation kind (`shop`, `rename`)."""
    familiar: bool | None = None
    """Whether the form is one the student is measured competent in (or the distillation
    data's, when given)."""
    form_gap: float | None = None
    """Student accuracy on familiar forms at this item's depth band minus its accuracy on
    this item's form at the same band (high: this form is what fails)."""
    parent_right: float | None = None
    """For a variant: the student's pass rate on its parent problem."""
    siblings_right: float | None = None
    """Pass rate on the other forms of the same underlying problem (a chain's other families,
    a parent's other variants)."""
    shallower_right: float | None = None
    """Pass rate on shallower items of the same form (e.g. the parts of a composition)."""
    ood_percentile: float | None = None
    """Embedding kNN distance of the problem to the reference distribution, as a percentile
    of the reference's own distances (high: far from familiar problems)."""
    divergence: float | None = None
    """Where the student's chain stops following the teacher's, as a share of the teacher's
    steps (0: from the start, 1: never)."""
    divergence_step: int | None = None
    """The same as a step: how many of the teacher's `teacher_steps` steps the student
    followed in order before going its own way."""
    teacher_steps: int | None = None
    confidence: float | None = None
    """The student's confidence in its answer (stated, log-prob or agreement)."""
    probes: dict[str, bool] = field(default_factory=dict)
    """Causal probe outcomes (`decompose`: right when given the first k teacher steps;
    `familiarize`: right on the same problem in a familiar form)."""


@dataclass(frozen=True)
class Failure:
    """One row of failures.jsonl: a failed student item, its label and why."""

    task: str
    problem_id: str
    sample: int
    label: str
    """One of LABELS."""
    probability: float | None
    """The model's calibrated probability of the label (None for a mechanical rule)."""
    probabilities: dict[str, float]
    """Per cause (capacity, mismatch), when the model ran."""
    evidence: tuple[str, ...]
    """The evidence in plain words, strongest first."""
    features: Features
    parent_id: str | None = None
    perturbation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        d["evidence"] = list(self.evidence)
        return d


__all__ = ["CAUSES", "LABELS", "MECHANICAL", "UNDETERMINED", "Failure", "Features"]
