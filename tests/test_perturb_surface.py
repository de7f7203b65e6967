from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from harness.backends.reference import ReferenceBackend
from harness.perturb import Context, perturb_problems
from harness.perturb.base import Skip
from harness.perturb.surface import Surface
from harness.tasks import DataSource, get_task
from harness.tasks.chains import FAMILIES, HELD_OUT, ChainsOptions, solve
from harness.tasks.chains import Op as ChainOp

NONE = DataSource(None, hub=False)
CTX = Context("chains", "math")


def _default():
    task = get_task("chains")
    return task, task.load(NONE).problems


def test_held_out_families_are_never_part_of_the_default_task():
    assert not set(HELD_OUT) & set(FAMILIES)
    assert len(HELD_OUT) >= 3
    assert set(ChainsOptions().family.split("+")) == set(FAMILIES)
    _, problems = _default()
    assert {p.meta["family"] for p in problems} == set(FAMILIES)
    assert not {p.subset for p in problems} & set(HELD_OUT)
    for f in HELD_OUT.values():  # every held-out family tells every operation
        for text in (f.intro, f.add, f.sub, f.mul, f.div, f.question):
            assert text.strip()


def test_every_variant_is_the_same_chain_in_a_held_out_family_and_scores():
    task, problems = _default()
    parents = {p.id: p for p in problems}
    out = perturb_problems(problems, CTX, ["surface"], per_problem=3)
    assert out.covered("surface") == len(problems)
    assert not out.skipped
    per_parent: Counter[str] = Counter()
    for v in out.variants:
        parent = parents[v.parent_id]
        per_parent[v.parent_id] += 1
        assert v.answer == parent.answer
        assert v.meta["start"] == parent.meta["start"] and v.meta["ops"] == parent.meta["ops"]
        assert v.meta["chain_id"] == parent.meta["chain_id"]
        assert v.meta["depth"] == parent.meta["depth"]
        assert v.meta["family"] in HELD_OUT and v.meta["family"] != parent.meta["family"]
        assert v.meta["held_out"] is True and v.subset == v.meta["family"]
        assert v.meta["perturb"] == {
            "kind": "surface",
            "params": {"family": v.meta["family"], "from": parent.meta["family"]},
        }
        assert v.perturbation == "surface" and v.task == "chains"
        assert task.score(ReferenceBackend.solution(v), v).correct is True
        assert task.steps(v) == task.steps(parent)
        for _kind, k in v.meta["ops"]:  # every operand is told
            assert re.search(rf"\b{k}\b", v.question)
        assert v.question.count(".") >= v.meta["depth"]
    # per_problem=3 gives three different held-out families for each chain
    assert set(per_parent.values()) == {3}
    fams: dict[str, set[str]] = {}
    for v in out.variants:
        fams.setdefault(v.parent_id, set()).add(v.meta["family"])
    assert all(len(f) == 3 for f in fams.values())


def test_variant_text_is_what_the_explicit_held_out_task_gives():
    """`chains:family=factory` is reachable by name and tells the chain as `surface` does."""
    explicit = {
        p.meta["chain_id"]: p
        for p in get_task("chains:family=factory+game,n=1").load(NONE).problems
        if p.meta["family"] == "factory"
    }
    _, problems = _default()
    out = perturb_problems(problems, CTX, ["surface"], per_problem=len(HELD_OUT))
    matched = 0
    for v in out.variants:
        if v.meta["family"] == "factory" and v.meta["chain_id"] in explicit:
            e = explicit[v.meta["chain_id"]]
            assert (v.question, v.answer, v.reference) == (e.question, e.answer, e.reference)
            matched += 1
    assert matched >= 12


def test_held_out_tellings_differ_from_every_familiar_one():
    _, problems = _default()
    by_chain: dict[str, set[str]] = {}
    for p in problems:
        by_chain.setdefault(p.meta["chain_id"], set()).add(p.question)
    out = perturb_problems(problems, CTX, ["surface"])
    for v in out.variants:
        assert v.question not in by_chain[v.meta["chain_id"]]


def test_deterministic_and_seeded():
    _, problems = _default()
    a = perturb_problems(problems[:30], CTX, ["surface"], per_problem=2, seed=5).variants
    b = perturb_problems(problems[:30], CTX, ["surface"], per_problem=2, seed=5).variants
    c = perturb_problems(problems[:30], CTX, ["surface"], per_problem=2, seed=6).variants
    assert [(v.id, v.question) for v in a] == [(v.id, v.question) for v in b]
    assert [v.question for v in a] != [v.question for v in c]
    one = Surface().apply(problems[0], random.Random(1), CTX)
    again = Surface().apply(problems[0], random.Random(1), CTX)
    assert one == again


def test_a_held_out_parent_moves_to_another_held_out_family():
    problems = get_task("chains:family=library,depth=3-4").load(NONE).problems
    out = perturb_problems(problems, CTX, ["surface"], per_problem=4)
    assert len(out.variants) == 4 * len(problems)
    assert {v.meta["family"] for v in out.variants} == set(HELD_OUT) - {"library"}


def test_other_tasks_and_broken_meta_are_skipped_with_a_reason():
    gsm = Context("gsm8k", "math")
    _, problems = _default()
    out = perturb_problems(problems[:3], gsm, ["surface"])
    assert not out.variants
    assert [r for (_, r) in out.skipped] == ["surface does not apply to gsm8k (it supports chains)"]
    p = problems[0]
    from dataclasses import replace

    broken = replace(p, meta={**p.meta, "chain_id": "?"})
    got = Surface().apply(broken, random.Random(0), CTX)
    assert isinstance(got, Skip) and "chain_id" in got.reason
    wrong = replace(p, answer=str(int(p.answer) + 1))
    got = Surface().apply(wrong, random.Random(0), CTX)
    assert isinstance(got, Skip) and "answer" in got.reason


@pytest.mark.parametrize("name", sorted(HELD_OUT))
def test_each_held_out_family_tells_every_operation(name):
    from harness.tasks.chains import tell

    ops = [ChainOp("add", 8), ChainOp("mul", 3), ChainOp("div", 2), ChainOp("sub", 1)]
    text = tell(HELD_OUT[name], 10, ops, random.Random(0))
    assert solve(10, ops)[0] == 26
    assert "{" not in text and "}" not in text
    assert text.endswith("?") and text.count("?") == 1
    assert all(re.search(rf"\b{op.k}\b", text) for op in ops)
