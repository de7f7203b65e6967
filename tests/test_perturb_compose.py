"""`compose`: the first problem's answer feeds a second one, the gold recomputed.

chains (default options): the second chain's steps continue the first in its family, depth is
the sum, every step stays valid. GSM8K (real test file): the second problem's graph takes the
first one's answer for one of its numbers; an independent sympy re-solve agrees on every gold.
In both, the reference teacher scores 1.000 with the task's own grader.
"""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

from harness.backends.reference import ReferenceBackend
from harness.perturb import Context, perturb_problems
from harness.perturb.base import Skip
from harness.perturb.gsm8k_graph import Graph, graph_of, plain, sympy_gold
from harness.perturb.numeric import chain_valid, read_chain
from harness.tasks import DataSource, get_task
from harness.tasks import chains as chains_task


def _context(task, problems):
    return Context(task.name, task.kind, tuple(problems), {})


def _all_correct(task, variants) -> list[str]:
    scores = task.score_many([(ReferenceBackend.solution(v), v) for v in variants])
    return [v.id for v, s in zip(variants, scores, strict=True) if not s.correct]


@pytest.fixture(scope="module")
def chains():
    task = get_task("chains")
    return task, task.load(DataSource(None, hub=False)).problems


@pytest.fixture(scope="module")
def gsm8k(data_dir):
    task = get_task("gsm8k")
    return task, task.load(DataSource(data_dir, hub=False)).problems


def test_chains_compose(chains):
    task, problems = chains
    out = perturb_problems(problems, _context(task, problems), ["compose"], per_problem=2)
    assert out.covered("compose") == len(problems)
    assert not _all_correct(task, out.variants)
    by_id = {p.id: p for p in problems}
    for v in out.variants:
        first, second = by_id[v.parent_id], by_id[v.meta["perturb"]["params"]["second"]]
        assert v.meta["parents"] == [first.id, second.id] and first.id != second.id
        assert second.meta["family"] == first.meta["family"] == v.meta["family"]
        assert v.meta["ops"] == first.meta["ops"] + second.meta["ops"]
        assert v.meta["depth"] == first.meta["depth"] + second.meta["depth"]
        assert v.meta["start"] == first.meta["start"]
        chain = read_chain(v)
        assert not isinstance(chain, Skip)
        assert chain_valid(chain.start, chain.ops)
        answer, reference = chains_task.solve(chain.start, chain.ops)
        assert v.answer == str(answer) and v.reference == reference
        assert v.question.startswith(first.question.rsplit(". ", 1)[0])  # its telling, continued
    twice = {}
    for v in out.variants:
        twice.setdefault(v.parent_id, set()).add(v.question)
    assert all(len(qs) == 2 for qs in twice.values())


def test_gsm8k_compose(gsm8k):
    task, problems = gsm8k
    out = perturb_problems(problems, _context(task, problems), ["compose"], seed=0)
    covered = out.covered("compose")
    skipped = sorted(((n, why) for (_, why), n in out.skipped.items()), reverse=True)
    assert covered + sum(n for n, _ in skipped) == len(problems)
    assert covered >= 0.9 * len(problems), skipped
    assert not _all_correct(task, out.variants)
    by_id = {p.id: p for p in problems}
    for v in out.variants:
        first = by_id[v.parent_id]
        params = v.meta["perturb"]["params"]
        second = by_id[params["second"]]
        assert v.meta["parents"] == [first.id, second.id] and first.id != second.id
        assert first.question in v.question and f"Let {params['number']['as']} be" in v.question
        assert re.search(rf"\b{params['number']['as']}\b", v.question.split("Part 2:")[1])
        assert params["number"]["to"] == first.answer
        assert v.reference.endswith(f"#### {v.answer}")
        graph = graph_of(second)
        assert isinstance(graph, Graph)
        name = params["number"]["name"]
        assert plain(graph.quantity(name).value) == params["number"]["from"]
        values = {**graph.original, name: Fraction(first.answer)}
        assert graph.check(values) is None
        assert sympy_gold(graph, values) == Fraction(v.answer), v.id
        calcs = first.meta["calculations"] + second.meta["calculations"]
        lines = first.meta["lines"] + second.meta["lines"]
        assert task.steps(v) == (calcs or lines)  # deeper than either part


def test_compose_determinism(chains, gsm8k):
    for task, problems in (chains, gsm8k):
        some, ctx = problems[:60], _context(task, problems)
        a = perturb_problems(some, ctx, ["compose"], seed=0)
        b = perturb_problems(some, ctx, ["compose"], seed=0)
        c = perturb_problems(some, ctx, ["compose"], seed=1)
        assert [v.to_dict() for v in a.variants] == [v.to_dict() for v in b.variants]
        assert [v.question for v in a.variants] != [v.question for v in c.variants]
