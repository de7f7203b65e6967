from __future__ import annotations

import re
from collections import Counter

import pytest

from harness.errors import HarnessError
from harness.tasks import DataSource, get_task
from harness.tasks.chains import FAMILIES, MAX_DEPTH

NONE = DataSource(None, hub=False)


def _evaluate_symbolic(question: str) -> int:
    """Read the symbolic family's text as arithmetic, independently of the generator."""
    env: dict[str, int] = {}
    for var, expr in re.findall(r"Let (\w) = ([^.]+)\.", question):
        value = eval(expr, {}, env)  # noqa: S307 - our own generated arithmetic
        assert value == int(value)
        env[var] = int(value)
    target = re.search(r"What is the value of (\w)\?", question).group(1)
    return env[target]


def test_default_grid_covers_every_depth_and_family():
    task = get_task("chains")
    problems = task.load(NONE).problems
    assert len(problems) == MAX_DEPTH * len(FAMILIES) * 2 == task.size(NONE)
    cells = Counter((p.meta["depth"], p.meta["family"]) for p in problems)
    assert set(cells.values()) == {2}
    assert len({p.id for p in problems}) == len(problems)


def test_answers_are_recomputed_from_the_text():
    task = get_task("chains:family=symbolic,n=5")
    for p in task.load(NONE).problems:
        assert str(_evaluate_symbolic(p.question)) == p.answer
        assert task.steps(p) == p.meta["depth"]
        assert p.question.count("Let ") == p.meta["depth"] + 1
        assert task.grade(p.answer, p)


def test_one_chain_told_in_every_family():
    task = get_task("chains:depth=7,n=1")
    problems = task.load(NONE).problems
    assert {p.meta["family"] for p in problems} == set(FAMILIES)
    assert len({p.answer for p in problems}) == 1
    assert len({str(p.meta["ops"]) for p in problems}) == 1
    assert len({p.question for p in problems}) == len(FAMILIES)
    for p in problems:  # every operand of the chain appears in the text
        for _kind, k in p.meta["ops"]:
            assert re.search(rf"\b{k}\b", p.question)


def test_intermediates_are_positive_integers_and_reference_solves():
    task = get_task("chains:n=3")
    for p in task.load(NONE).problems:
        v = p.meta["start"]
        for kind, k in p.meta["ops"]:
            v = {"add": v + k, "sub": v - k, "mul": v * k, "div": v // k}[kind]
            if kind == "div":
                assert (v * k) % k == 0
            assert 0 < v <= 9999 * 4
        assert str(v) == p.answer
        assert p.reference.endswith(f"\\boxed{{{p.answer}}}.")
        assert task.extract(p.reference).answer == p.answer


def test_seeded_and_deterministic():
    a = get_task("chains:seed=3").load(NONE).problems
    b = get_task("chains:seed=3").load(NONE).problems
    c = get_task("chains:seed=4").load(NONE).problems
    assert [p.question for p in a] == [p.question for p in b]
    assert [p.question for p in a] != [p.question for p in c]


def test_limit_prefix_mixes_depths_and_families():
    problems = get_task("chains").load(NONE, limit=12).problems
    assert len(problems) == 12
    assert {p.meta["depth"] for p in problems} == set(range(1, 13))
    assert {p.meta["family"] for p in problems} == set(FAMILIES)


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("chains:depth=0-3", "outside 1-12"),
        ("chains:depth=13", "outside 1-12"),
        ("chains:depth=a", "not N or A-B"),
        ("chains:family=poetry", "unknown family"),
        ("chains:family=shop+bnak", "unknown family bnak; did you mean 'bank'?"),
        ("chains:n=0", "n= takes a whole number >= 1, not '0'"),
        ("chains:seed=x", "seed= takes a whole number >= 0"),
        ("chains:colour=red", "unknown option"),
        ("chains:depth", "not key=value"),
    ],
)
def test_bad_options(spec, fragment):
    with pytest.raises(HarnessError) as e:
        get_task(spec)
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)
