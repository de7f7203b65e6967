"""The perturbation contract: a kind turns one problem into a variant (or says why not).

A kind is deterministic under its rng; the variant carries its parent's id, its kind, the seed
and its parameters (`meta["perturb"]`), and its gold is recomputed by the kind, never copied
unless the kind provably preserves it (`preserves_answer`). The driver (`harness.perturb`)
seeds each attempt from (seed, kind, parent id, index), so a variant can be regenerated alone.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from harness.types import Problem


@dataclass(frozen=True)
class Skip:
    """No variant of this kind for this problem, and why (counted per reason in reports)."""

    reason: str


@dataclass(frozen=True)
class Context:
    """What a kind may read besides the problem: the task it belongs to (its name, its kind
    of answer) and the other problems of the same load (for kinds that combine problems)."""

    task: str
    """The task's registered name (`gsm8k`, `chains`, `humaneval`, ...)."""
    answer_kind: str
    """The task's kind: math | choice | code | text."""
    pool: Sequence[Problem] = field(default=(), compare=False)
    """The loaded original problems of this task, in load order."""
    options: dict[str, Any] = field(default_factory=dict, compare=False)
    """The task's parsed options, as a plain dict (chains: its seed, families, ...)."""


class Perturbation(ABC):
    """One kind of variant. Subclasses live one per module under harness/perturb/ and are
    registered in `harness.perturb.KINDS`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    tasks: ClassVar[tuple[str, ...]] = ()
    """Task names this kind supports; others are skipped with one reason each."""
    preserves_answer: ClassVar[bool] = False
    """True when the kind only rewrites the surface, so the gold is kept by construction."""

    def supports(self, ctx: Context) -> str | None:
        """None when this kind applies to the task, else why not (one line)."""
        if ctx.task in self.tasks:
            return None
        return f"{self.name} does not apply to {ctx.task} (it supports {', '.join(self.tasks)})"

    @abstractmethod
    def apply(self, problem: Problem, rng: random.Random, ctx: Context) -> Problem | Skip:
        """One variant of `problem` (build it with `derive`), or Skip(reason).

        A Skip on the driver's first attempt means the problem does not admit this kind (no
        retry); a kind whose draws can fail at random retries inside `apply`."""


def derive(
    parent: Problem,
    kind: str,
    params: dict[str, Any],
    *,
    question: str | None = None,
    answer: str | None = None,
    reference: str | None = None,
    choices: tuple[str, ...] | None = None,
    meta: dict[str, Any] | None = None,
) -> Problem:
    """A variant of `parent`: fields not given are kept, `meta` entries are merged over the
    parent's, and the lineage (`parent_id`, `perturbation`, `meta["perturb"]`) is set. The
    driver fills in the final id and seed."""
    merged = {**parent.meta, **(meta or {})}
    merged["perturb"] = {"kind": kind, "params": params}
    return replace(
        parent,
        question=parent.question if question is None else question,
        answer=parent.answer if answer is None else answer,
        reference=parent.reference if reference is None else reference,
        choices=parent.choices if choices is None else choices,
        meta=merged,
        parent_id=parent.id,
        perturbation=kind,
    )


__all__ = ["Context", "Perturbation", "Skip", "derive"]
