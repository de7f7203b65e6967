"""The `rename` kind: people, objects, cities and counting units swapped consistently in the
question and the worked solution. On the real sets every variant keeps its answer and every
number of the text, the reference teacher still scores it correct through the task's own
`score`, and no renamed word is left behind; on small texts, the edge cases (possessives,
articles, capitals, titles, formulas, words that are also names)."""

from __future__ import annotations

import random
import re
import time
from collections import Counter

import pytest

from harness.backends.reference import ReferenceBackend
from harness.perturb import Context, perturb_problems
from harness.perturb import lexicon as lx
from harness.perturb.base import Skip
from harness.perturb.rename import Rename, numbers_in, protected_spans, whole_word, words_in
from harness.tasks import DataSource, get_task
from harness.types import Problem

KIND = Rename()
GSM = Context("gsm8k", "math")
MATH = Context("math500", "math")
SKIPS = {
    "nothing to rename: no known first name, countable object or city",
    "every name or object found is where renaming could change the problem (a title, a "
    "place, a formula, LaTeX, the answer, or no unused substitute)",
}


@pytest.fixture(scope="module")
def loaded(data_dir) -> dict[str, list[Problem]]:
    source = DataSource.resolve(data_dir)
    names = ("gsm8k", "math500", "aime24", "aime25")
    out = {n: get_task(n).load(source).problems for n in names}
    out["chains"] = get_task("chains:n=3").load(DataSource(None, hub=False)).problems
    return out


@pytest.fixture(scope="module")
def outcomes(loaded):
    return {
        name: perturb_problems(probs, Context(name, "math"), ["rename"], per_problem=3, seed=11)
        for name, probs in loaded.items()
    }


def _one(question: str, reference: str = "", answer: str = "1", task: str = "gsm8k", seed=0):
    p = Problem("p", task, question, answer, reference=reference or f"So.\n#### {answer}")
    return KIND.apply(p, random.Random(seed), Context(task, "math"))


def test_coverage_on_gsm8k_and_math500(loaded, outcomes):
    gsm, m500 = outcomes["gsm8k"], outcomes["math500"]
    # measured: 1015 of 1319 GSM8K problems, 42 of MATH-500 (word problems only)
    assert gsm.covered("rename") >= 950
    assert 30 <= m500.covered("rename") <= 120
    for out in (gsm, m500):
        assert {why for (_, why) in out.skipped} <= SKIPS
        assert sum(out.skipped.values()) + out.covered("rename") == out.attempted["rename"]
    assert outcomes["chains"].covered("rename") == len(loaded["chains"])


def test_answers_kept_and_reference_scores_correct(loaded, outcomes):
    for name, out in outcomes.items():
        task = get_task("chains:n=3" if name == "chains" else name)
        parents = {p.id: p for p in loaded[name]}
        assert out.variants
        for v in out.variants:
            parent = parents[v.parent_id]
            assert v.answer == parent.answer and v.task == parent.task
            assert v.question != parent.question
            score = task.score(ReferenceBackend.solution(v), v)
            assert score.correct, (v.id, score)


def test_no_number_changes_and_nothing_left_behind(loaded, outcomes):
    for name, out in outcomes.items():
        parents = {p.id: p for p in loaded[name]}
        for v in out.variants:
            parent = parents[v.parent_id]
            assert numbers_in(v.question) == numbers_in(parent.question), v.id
            assert numbers_in(v.reference or "") == numbers_in(parent.reference or ""), v.id
            params = v.meta["perturb"]["params"]
            for old, new in params.get("names", {}).items():
                assert not whole_word(old).search(v.question), (v.id, old)
                assert not whole_word(old).search(v.reference or ""), (v.id, old)
                assert whole_word(new).search(v.question)
                # never a name the problem already had
                assert new.lower() not in words_in(f"{parent.question} {parent.reference}")
                if old in lx.GENDER and new in lx.GENDER:
                    assert lx.GENDER[old] == lx.GENDER[new], (old, new)
            for old in params.get("objects", {}):
                flags = re.I
                assert not whole_word(old, flags).search(v.question), (v.id, old)
            assert len(set(params.get("names", {}).values())) == len(params.get("names", {}))


def test_per_problem_variants_are_distinct_and_deterministic(loaded, outcomes):
    out = outcomes["gsm8k"]
    per = Counter(v.parent_id for v in out.variants)
    assert max(per.values()) == 3 and sum(1 for n in per.values() if n == 3) > 900
    seen = {(v.parent_id, v.question) for v in out.variants}
    assert len(seen) == len(out.variants)
    again = perturb_problems(loaded["gsm8k"][:200], GSM, ["rename"], per_problem=3, seed=11)
    first = [v for v in out.variants if int(v.parent_id.split("-")[1]) < 200]
    assert [v.to_dict() for v in again.variants] == [v.to_dict() for v in first]
    other = perturb_problems(loaded["gsm8k"][:200], GSM, ["rename"], per_problem=3, seed=12)
    assert [v.question for v in other.variants] != [v.question for v in first]


def test_chains_families(loaded, outcomes):
    parents = {p.id: p for p in loaded["chains"]}
    seen: set[str] = set()
    for v in outcomes["chains"].variants:
        family = parents[v.parent_id].meta["family"]
        params = v.meta["perturb"]["params"]
        seen.add(family)
        if family == "symbolic":
            mapping = params["variables"]
            assert len(set(mapping.values())) == len(mapping) and mapping != {k: k for k in mapping}
            assert re.findall(r"Let (\w) =", v.question) == [
                mapping[x] for x in re.findall(r"Let (\w) =", parents[v.parent_id].question)
            ]
        elif family == "bank":
            assert set(params) == {"names"}
        else:
            assert "filler" in params
    assert seen == {"shop", "bank", "bus", "garden", "symbolic"}
    shop = [v for v in outcomes["chains"].variants if "filler" in v.meta["perturb"]["params"]]
    new_values = {n for v in shop for n in v.meta["perturb"]["params"]["filler"].values()}
    assert new_values - {"apples", "pencils", "cans of soup", "notebooks", "light bulbs"}


def test_possessives_capitals_articles_and_word_boundaries():
    got = _one(
        "Janet’s ducks lay 16 eggs. James' friend Janet has an apple and a duck. "
        "Apples cost $2 at the pineapple stand. How many ducks does Janet have?",
        reference="Janet has 16 ducks.\n#### 16",
        answer="16",
    )
    assert not isinstance(got, Skip)
    names = got.meta["perturb"]["params"]["names"]
    objects = got.meta["perturb"]["params"]["objects"]
    q = got.question
    assert names["Janet"] in q and "Janet" not in q and "Janet" not in (got.reference or "")
    assert f"{names['Janet']}’s" in q
    new_james = names["James"]
    assert (f"{new_james}'s" if not new_james.endswith("s") else f"{new_james}'") in q
    assert "pineapple" in q  # never inside another word
    new_apple = objects["apple"]
    article = "an" if new_apple[0] in "aeiou" else "a"
    assert f" {article} {new_apple} " in q
    assert q.count(objects["apples"].capitalize()) == 1  # sentence-start capital kept
    assert objects["duck"] != "duck" and objects["ducks"] in got.reference


def test_gender_unisex_and_collisions():
    for seed in range(20):
        got = _one(
            "Maria and Tom and Alex buy 3 pens. She pays $2, he pays $1. Emma watches.",
            seed=seed,
        )
        assert not isinstance(got, Skip)
        names = got.meta["perturb"]["params"]["names"]
        assert lx.GENDER[names["Maria"]] == "female"
        assert lx.GENDER[names["Tom"]] == "male"
        assert lx.GENDER[names["Alex"]] == "unisex"
        assert lx.GENDER[names["Emma"]] == "female"
        assert len(set(names.values())) == 4
        assert not set(names.values()) & {"Maria", "Tom", "Alex", "Emma"}


def test_titles_places_formulas_and_ordinary_words_left_alone():
    got = _one("Mr. Thomas sells 5 pies. Mrs. Thomas buys 2. How many are left?")
    assert not isinstance(got, Skip)
    names = got.meta["perturb"]["params"]["names"]
    assert "Thomas" in names and names["Thomas"] in lx.SURNAMES  # a surname, not a first name
    assert got.question.count(f"Mr. {names['Thomas']}") == 1
    assert isinstance(_one("Mark the 3 boxes. How many are there?"), Problem)  # boxes only
    got = _one("Mark the 3 chairs red. How many?")
    assert isinstance(got, Problem) and "names" not in got.meta["perturb"]["params"]
    got = _one("She moved to Jordan in 2010 and met Jordan there. How old is she?")
    assert isinstance(got, Skip)
    got = _one(
        "Use Pascal's triangle and Euler's formula. Find row 5.",
        reference="The answer is $\\boxed{5}$.",
        answer="5",
        task="math500",
    )
    assert isinstance(got, Skip)
    got = _one(
        "Find $x$ if $Bob = 3$.",
        reference="The answer is $\\boxed{3}$.",
        answer="3",
        task="math500",
    )
    assert isinstance(got, Skip)  # a word inside LaTeX is mathematics
    got = _one(
        "Who ran farther, Alice or Bob?",
        reference="Alice ran farther.\nThe answer is $\\boxed{\\text{Alice}}$.",
        answer="\\text{Alice}",
        task="math500",
    )
    assert (
        not isinstance(got, Skip)
        and "Alice" in got.question
        and "Alice" not in got.meta["perturb"]["params"]["names"]
    )


def test_objects_keep_their_kind():
    got = _one("A farm has 5 chickens and 3 cows. How many legs are there?", seed=3)
    assert not isinstance(got, Skip)
    objects = got.meta["perturb"]["params"]["objects"]
    poultry = {pl for _, pl in lx.OBJECT_GROUPS["poultry"]}
    milk = {pl for _, pl in lx.OBJECT_GROUPS["milk animals"]}
    assert objects["chickens"] in poultry and objects["cows"] in milk
    got = _one("He has 3 bags of candy. How much candy?")  # a mass noun: only the bags swap
    assert isinstance(got, Problem) and "candy" in got.question
    assert "bags" in got.meta["perturb"]["params"]["objects"]
    # a singular that is also a colour: only renamed when it never occurs
    assert "oranges" not in _one("An orange shirt and 5 oranges. How many?").meta["perturb"][
        "params"
    ].get("objects", {})
    assert isinstance(_one("The dozen costs 3 dollars. How many hours?"), Skip)


def _formulas(text: str) -> list[str]:
    return [text[s:e] for s, e in protected_spans(text, math=True)]


def test_math_word_problems_only(loaded):
    task = get_task("math500")
    for p in loaded["math500"]:
        got = KIND.apply(p, random.Random(0), MATH)
        if isinstance(got, Skip):
            continue
        # nothing inside LaTeX changed: the formulas of question and solution are intact
        for old, new in ((p.question, got.question), (p.reference or "", got.reference or "")):
            assert _formulas(new) == _formulas(old), p.id
        assert task.score(ReferenceBackend.solution(got), got).correct


def test_cost_on_gsm8k(loaded):
    problems = loaded["gsm8k"]
    start = time.process_time()
    out = perturb_problems(problems, GSM, ["rename", "distractor"], per_problem=1, seed=0)
    spent = time.process_time() - start
    assert out.covered("rename") > 900 and out.covered("distractor") > 1000
    assert spent < 10, f"rename + distractor over {len(problems)} GSM8K problems took {spent:.1f}s"
