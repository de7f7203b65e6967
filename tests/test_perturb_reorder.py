from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import replace

import pytest

from harness.backends.reference import ReferenceBackend
from harness.perturb import Context, perturb_problems
from harness.perturb.base import Skip
from harness.perturb.reorder import (
    Reorder,
    commuting_runs,
    plan,
    reorder_chain,
    split_sentences,
)
from harness.perturb.surface import surface_rng
from harness.tasks import DataSource, get_task
from harness.tasks.chains import MAX_VALUE, Op, family_named, tell
from harness.types import Problem

NONE = DataSource(None, hub=False)
GSM = Context("gsm8k", "math")
CHAINS = Context("chains", "math")


@pytest.fixture(scope="module")
def gsm8k(data_dir):
    task = get_task("gsm8k")
    return task, task.load(DataSource.resolve(data_dir, hub=False)).problems


def _question(text: str) -> Problem:
    return Problem(id="q", task="gsm8k", question=text, answer="1", reference="x\n#### 1")


def _reordered(text: str) -> str | None:
    got = Reorder().apply(_question(text), random.Random(0), GSM)
    return None if isinstance(got, Skip) else got.question


# -- sentences ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, parts",
    [
        ("A pen costs $1.50. A cap costs $2. How much?", 3),
        ("Mr. Smith has 3 pens. Mrs. Lee has 2. How many?", 3),
        ("He wakes at 7 a.m. He sleeps at 10 p.m. How long is he awake?", 1),
        ("J. K. Rowling wrote 7 books. How many?", 2),
        ("Each cookie costs $.25. Tom buys 4. What is the total?", 3),
        ("How much is it? (Round to the nearest integer.)", 2),
        ('She said "Go." Then she left. Why?', 3),
        ("The price is 2.5 dollars.  It rose by 10%.\nWhat now?", 3),
    ],
)
def test_sentence_split(text, parts):
    s = split_sentences(text)
    assert len(s.parts) == parts
    assert s.join(range(len(s.parts))) == text


def test_independent_sentences_swap_and_dependent_ones_do_not():
    assert _reordered(
        "A bus travels 60 miles per hour for 5 hours. A car travels 30 miles per hour for "
        "8 hours. How much farther did the bus go than the car, in miles?"
    ) == (
        "A car travels 30 miles per hour for 8 hours. A bus travels 60 miles per hour for "
        "5 hours. How much farther did the bus go than the car, in miles?"
    )
    for text in (
        "Tom has 5 apples. He eats 2 of them. Sara has 4 pears. How many fruits are there?",
        "Tom has 5 apples. Sara has twice as many apples. Ann has 3 pears. How many?",
        "Tom has 5 apples. Then Ann buys 3 pears. Sara buys 2 plums. How many?",
        "Tom has 50 dollars. He spends the rest on pens. Ann has 3 pears. How many?",
        "Mulan has $40. Her father gave her $100. She buys two jeans at $30 each. How much?",
        "John has 3 boxes. Each box is 5 inches wide. The walls are 1 inch thick. What volume?",
        "John buys a car. The car has 4 wheels. Ann buys a bike. How many wheels are there?",
        "Tom buys 5 apples. Tom has 10 apples. How many apples does Tom have?",
        "A pen costs $2. It is red. A cap costs $3. How much are they?",
        "Tom and his friend fish. He catches 3 fish. His friend catches 5 fish. How many?",
        "Ann eats 4 plums. Bo eats three every day. Cy eats 2 pears. How many?",
    ):
        assert _reordered(text) is None, text


def test_gendered_pronouns_only_move_with_one_named_person():
    one = "Tom goes to a shop. He buys 3 pens for $2. He buys 2 caps for $5. How much?"
    assert _reordered(one) == (
        "Tom goes to a shop. He buys 2 caps for $5. He buys 3 pens for $2. How much?"
    )
    two = "Tom and Ann go to a shop. He buys 3 pens for $2. She buys 2 caps for $5. How much?"
    assert _reordered(two) is None


def test_skip_reasons():
    assert plan(split_sentences("Tom has 3 pens. How many?").parts) == Skip(
        "fewer than two premise sentences before the question"
    )
    got = plan(split_sentences("Tom has 3 pens. It is red. They are old. How many?").parts)
    assert isinstance(got, Skip) and "self-contained" in got.reason


# -- gsm8k, real data -----------------------------------------------------------------------


def test_gsm8k_variants_keep_sentences_and_answer_and_score(gsm8k):
    task, problems = gsm8k
    assert len(problems) == 1319
    parents = {p.id: p for p in problems}
    start = time.perf_counter()
    out = perturb_problems(problems, GSM, ["reorder", "surface"], per_problem=3)
    assert time.perf_counter() - start < 10
    assert out.covered("reorder") >= 15  # GSM8K is mostly sequential; see the kind's docstring
    assert out.skipped[("surface", "surface does not apply to gsm8k (it supports chains)")] == 1319
    questions: dict[str, set[str]] = {}
    for v in out.variants:
        parent = parents[v.parent_id]
        assert v.perturbation == "reorder"
        assert (v.answer, v.reference) == (parent.answer, parent.reference)
        assert v.question != parent.question
        assert task.score(ReferenceBackend.solution(v), v).correct is True
        old, new = split_sentences(parent.question), split_sentences(v.question)
        assert Counter(old.parts) == Counter(new.parts)
        assert old.parts[-1] == new.parts[-1]  # the question stays last
        order = v.meta["perturb"]["params"]["order"]
        assert sorted(order) == list(range(len(old.parts)))
        assert old.join(order) == v.question
        assert v.meta["perturb"]["params"]["sentences"] == len(old.parts)
        questions.setdefault(v.parent_id, set()).add(v.question)
    for parent_id, qs in questions.items():  # distinct variants per parent
        assert len(qs) == sum(1 for v in out.variants if v.parent_id == parent_id)
    assert any(len(qs) > 1 for qs in questions.values())


def test_gsm8k_reorder_is_deterministic(gsm8k):
    _, problems = gsm8k
    a = perturb_problems(problems[:400], GSM, ["reorder"], per_problem=2, seed=3)
    b = perturb_problems(problems[:400], GSM, ["reorder"], per_problem=2, seed=3)
    assert [(v.id, v.question) for v in a.variants] == [(v.id, v.question) for v in b.variants]
    assert a.skipped == b.skipped


# -- chains ---------------------------------------------------------------------------------


def _values(start: int, ops: list[Op]) -> list[int]:
    out, v = [], start
    for op in ops:
        v = op.apply(v)
        out.append(v)
    return out


def test_chains_variants_reorder_only_commuting_runs_and_score():
    task = get_task("chains")
    problems = task.load(NONE).problems
    parents = {p.id: p for p in problems}
    out = perturb_problems(problems, CHAINS, ["reorder"], per_problem=3)
    assert out.covered("reorder") >= len(problems) // 2
    for (_, reason), _n in out.skipped.items():
        assert reason.startswith(("chain has no run", "every run", "no reorder"))
    per_parent: Counter[str] = Counter()
    for v in out.variants:
        parent = parents[v.parent_id]
        per_parent[v.parent_id] += 1
        assert v.answer == parent.answer
        assert task.score(ReferenceBackend.solution(v), v).correct is True
        old = [Op(k, n) for k, n in parent.meta["ops"]]
        new = [Op(k, n) for k, n in v.meta["ops"]]
        order = v.meta["perturb"]["params"]["order"]
        assert [old[i] for i in order] == new != old
        moved = {i for i, j in enumerate(order) if i != j}
        runs = commuting_runs(old)
        for i in moved:  # only ops inside a run move, and only within it
            run = next(r for r in runs if i in r)
            assert order[i] in run
        assert all(0 < x <= MAX_VALUE for x in _values(parent.meta["start"], new))
        assert _values(parent.meta["start"], new)[-1] == int(parent.answer)
        # retold in the same family with the same filler choices
        fam = parent.meta["family"]
        s, d, i = parent.meta["chain_id"].lstrip("s").replace("d", "").split("-")
        rng = surface_rng(int(s), int(d), int(i), fam)
        assert v.question == tell(family_named(fam), parent.meta["start"], new, rng)
        assert v.meta["family"] == fam and v.subset == parent.subset
    assert max(per_parent.values()) == 3
    assert len({v.question for v in out.variants}) == len(out.variants)


def test_chains_reorder_keeps_values_positive_when_subtractions_come_first():
    ops = [Op("add", 30), Op("sub", 34)]
    order = reorder_chain(5, ops, random.Random(0))
    assert isinstance(order, Skip) and "positive" in order.reason  # 5-34 < 0
    ops = [Op("add", 3), Op("sub", 2), Op("mul", 2), Op("sub", 1), Op("sub", 1)]
    seen = set()
    for seed in range(20):
        got = reorder_chain(4, ops, random.Random(seed))
        assert not isinstance(got, Skip)
        seen.add(tuple(got))
        assert got[2] == 2  # the multiplication stays where it is
    assert seen == {(1, 0, 2, 3, 4)}  # the two sub 1 are alike: one distinct reorder
    assert reorder_chain(9, [Op("mul", 2), Op("add", 3), Op("div", 3)], random.Random(0)) == Skip(
        "chain has no run of two or more additions/subtractions to reorder"
    )
    assert reorder_chain(9, [Op("add", 3), Op("add", 3)], random.Random(0)) == Skip(
        "every run of additions/subtractions repeats one operation"
    )


def test_chains_reorder_works_for_held_out_and_symbolic_tellings_and_is_deterministic():
    for spec in ("chains:family=symbolic,n=3", "chains:family=factory+game,n=2"):
        task = get_task(spec)
        problems = task.load(NONE).problems
        a = perturb_problems(problems, CHAINS, ["reorder"], per_problem=2, seed=1)
        b = perturb_problems(problems, CHAINS, ["reorder"], per_problem=2, seed=1)
        assert [v.question for v in a.variants] == [v.question for v in b.variants]
        assert a.variants
        for v in a.variants:
            assert task.score(ReferenceBackend.solution(v), v).correct is True


def test_chains_broken_meta_is_skipped():
    p = get_task("chains:depth=4,n=1,family=shop").load(NONE).problems[0]
    got = Reorder().apply(replace(p, meta={**p.meta, "ops": "x"}), random.Random(0), CHAINS)
    assert isinstance(got, Skip) and "ops" in got.reason
    got = Reorder().apply(replace(p, meta={**p.meta, "family": "poetry"}), random.Random(0), CHAINS)
    assert isinstance(got, Skip)
