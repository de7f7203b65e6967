"""`compose`: two problems chained, the first one's answer feeding the second.

A capacity probe: the depth grows while the surface stays familiar, and the gold is
recomputed, never guessed.

- chains: a second chain of the same family (drawn from the pool) continues the first: its
  operations are applied to the first one's result, every step re-checked (positive whole
  numbers, exact divisions, under chains.MAX_VALUE), and the whole told in the first one's
  family with its filler words; depth is the sum.
- gsm8k: a second problem (drawn from the pool) one of whose question numbers can plausibly
  take the first one's answer (a whole number near the old value that keeps its computation
  plausible, see `gsm8k_graph.Graph.check`); that number becomes "N", the answer to the first
  part, and the second problem's graph gives the new gold.

The variant's parent is the first problem; `meta["parents"]` records both, and the params
name the second (`{"second": id}`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from fractions import Fraction

from harness.perturb.base import Context, Perturbation, Skip, derive
from harness.perturb.gsm8k_graph import Graph, Quantity, graph_of, plain
from harness.perturb.numeric import Chain, chain_valid, filler, read_chain
from harness.tasks import chains
from harness.types import Problem

PARTNER_TRIES = 40
"""Second problems drawn from the pool before a problem is taken to have no partner."""
MAX_DEPTH = 25
"""Longest composed chain: the symbolic family names its steps a..z."""


class Compose(Perturbation):
    name = "compose"
    description = "two problems chained: the first one's answer feeds the second"
    tasks = ("gsm8k", "chains")

    def apply(self, problem: Problem, rng: random.Random, ctx: Context) -> Problem | Skip:
        if ctx.task == "chains":
            return compose_chains(problem, rng, ctx.pool)
        return compose_gsm8k(problem, rng, ctx.pool)


def _partners(problem: Problem, pool: Sequence[Problem], rng: random.Random) -> list[Problem]:
    """Up to PARTNER_TRIES other problems of the pool, in an rng-chosen order."""
    others = [i for i, p in enumerate(pool) if p.id != problem.id]
    if len(others) > PARTNER_TRIES:
        others = rng.sample(others, PARTNER_TRIES)
    else:
        rng.shuffle(others)
    return [pool[i] for i in others]


# --- chains --------------------------------------------------------------------------------


def compose_chains(problem: Problem, rng: random.Random, pool: Sequence[Problem]) -> Problem | Skip:
    first = read_chain(problem)
    if isinstance(first, Skip):
        return first
    same = [p for p in pool if p.meta.get("family") == first.family.name]
    tried = 0
    for other in _partners(problem, same, rng):
        second = read_chain(other)
        if isinstance(second, Skip):
            continue
        tried += 1
        ops = [*first.ops, *second.ops]
        if len(ops) > MAX_DEPTH or not chain_valid(first.start, ops):
            continue
        return _chain_variant(problem, first, other, ops)
    if not tried:
        return Skip("chains: no other problem of the same family to compose with")
    return Skip("chains: no partner's steps stay positive whole numbers after this chain")


def _chain_variant(problem: Problem, first: Chain, other: Problem, ops: list[chains.Op]) -> Problem:
    answer, reference = chains.solve(first.start, ops)
    return derive(
        problem,
        "compose",
        {"second": other.id},
        question=chains.tell(first.family, first.start, ops, filler(first)),
        answer=str(answer),
        reference=reference,
        meta={
            "depth": len(ops),
            "ops": [[op.kind, op.k] for op in ops],
            "parents": [problem.id, other.id],
        },
    )


# --- gsm8k ---------------------------------------------------------------------------------


def _fits(q: Quantity, value: Fraction) -> bool:
    """Whether a question number can plausibly be `value`: both whole, not a percentage over
    100, within a factor of four of the old value."""
    if q.places or value.denominator != 1 or value <= 0 or q.value <= 0:
        return False
    if q.percent and value > 100:
        return False
    return q.value / 4 <= value <= q.value * 4


def _slot(graph: Graph, value: Fraction) -> tuple[Quantity, dict[str, Fraction]] | None:
    """A question number of `graph` that can take `value`, and the input values that give."""
    for q in sorted(graph.inputs, key=lambda q: abs(q.value - value)):
        if not _fits(q, value):
            continue
        values = {**graph.original, q.name: value}
        if graph.check(values) is None:
            return q, values
    return None


def _symbol(text: str) -> str:
    """A letter for the first part's answer that the second question does not use."""
    return next(s for s in ("N", "M", "K", "Q") if not re.search(rf"\b{s}\b", text))


def _body(reference: str | None) -> str:
    """A worked solution without its closing `#### <answer>` line."""
    return (reference or "").rpartition("####")[0].strip() or (reference or "").strip()


def compose_gsm8k(problem: Problem, rng: random.Random, pool: Sequence[Problem]) -> Problem | Skip:
    try:
        first_answer = Fraction(problem.answer.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return Skip("gsm8k: the answer is not a number")
    if first_answer.denominator != 1 or first_answer <= 0:
        return Skip("gsm8k: the answer is not a positive whole number to feed another problem")
    for other in _partners(problem, pool, rng):
        graph = graph_of(other)
        if isinstance(graph, Skip):
            continue
        found = _slot(graph, first_answer)
        if found is not None:
            q, values = found
            return _gsm8k_variant(problem, other, graph, q, values)
    return Skip("gsm8k: no partner has a number that can plausibly take this answer")


def _gsm8k_variant(
    problem: Problem, other: Problem, graph: Graph, q: Quantity, values: dict[str, Fraction]
) -> Problem:
    n = plain(values[q.name])
    letter = _symbol(graph.question + problem.question)
    second = graph.render_question(values, {q.name: letter})
    question = (
        f"This problem has two parts.\nPart 1: {problem.question}\n"
        f"Part 2: Let {letter} be the answer to Part 1. {second}\n"
        "Give the answer to Part 2 as your final answer."
    )
    gold = plain(graph.gold(values))
    reference = (
        f"Part 1: {_body(problem.reference)}\nSo {letter} = {n}.\n"
        f"Part 2: {_body(graph.render_solution(values, annotations=False))}\n#### {gold}"
    )
    steps = int(problem.meta.get("calculations") or 0) + int(other.meta.get("calculations") or 0)
    lines = int(problem.meta.get("lines") or 0) + int(other.meta.get("lines") or 0)
    return derive(
        problem,
        "compose",
        {
            "second": other.id,
            "number": {"name": q.name, "from": plain(q.value), "to": n, "as": letter},
        },
        question=question,
        answer=gold,
        reference=reference,
        meta={
            "parents": [problem.id, other.id],
            "calculations": steps,
            "lines": lines,
            "solution": None,
            "second_solution": graph.render_solution(values),
        },
    )


__all__ = ["Compose", "compose_chains", "compose_gsm8k"]
