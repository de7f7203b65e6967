"""`surface`: the same hidden chain told in a held-out surface family.

A chains problem is one chain of operations in one telling; this kind keeps the chain (start,
operations, answer) and retells it in a family of `chains.HELD_OUT`, which no default run uses.
A model that solves the chain in the familiar families but not here fails on the form, not on
the depth. The text is what `chains:family=<held-out>` itself gives for that chain (the task's
per-family surface seed), so a variant and the explicit task agree.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from typing import Any

from harness.perturb.base import Context, Perturbation, Skip, derive
from harness.tasks import chains
from harness.types import Problem

_CHAIN_ID = re.compile(r"s(\d+)-d(\d+)-(\d+)")


def chain_of(problem: Problem) -> tuple[int, int, int, int, list[chains.Op]] | Skip:
    """(seed, depth, index, start, ops) of a chains problem as its meta records them, checked
    against its answer, or why they cannot be read."""
    meta = problem.meta
    found = _CHAIN_ID.fullmatch(str(meta.get("chain_id", "")))
    if found is None:
        return Skip("chains problem has no chain_id s<seed>-d<depth>-<index> in its meta")
    seed, depth, index = (int(g) for g in found.groups())
    try:
        start = int(meta["start"])
        ops = [chains.Op(str(kind), int(k)) for kind, k in meta["ops"]]
    except (KeyError, TypeError, ValueError):
        return Skip("chains problem has no readable start and ops in its meta")
    if any(op.kind not in ("add", "sub", "mul", "div") for op in ops) or len(ops) != depth:
        return Skip("chains problem's ops in its meta are not a chain of its depth")
    if str(chains.solve(start, ops)[0]) != problem.answer:
        return Skip("chains problem's answer is not what the chain in its meta gives")
    return seed, depth, index, start, ops


def surface_rng(seed: int, depth: int, index: int, family: str) -> random.Random:
    """The rng the chains task tells one chain in one family with (its filler choices)."""
    return random.Random(f"chains/{seed}/{depth}/{index}/{family}")


class Surface(Perturbation):
    name = "surface"
    description = "the same hidden chain told in a held-out surface family (chains only)"
    tasks = ("chains",)
    preserves_answer = True

    def apply(self, problem: Problem, rng: random.Random, ctx: Context) -> Problem | Skip:
        chain = chain_of(problem)
        if isinstance(chain, Skip):
            return chain
        seed, depth, index, start, ops = chain
        answer, reference = chains.solve(start, ops)
        here = problem.meta.get("family")
        names = [n for n in chains.HELD_OUT if n != here]
        family = rng.choice(names)
        question = chains.tell(
            chains.HELD_OUT[family], start, ops, surface_rng(seed, depth, index, family)
        )
        params: dict[str, Any] = {"family": family, "from": here}
        meta = {"family": family, "held_out": True}
        variant = derive(
            problem,
            self.name,
            params,
            question=question,
            answer=str(answer),
            reference=reference,
            meta=meta,
        )
        return replace(variant, subset=family)


__all__ = ["Surface", "chain_of", "surface_rng"]
