"""The `distractor` kind: one topical, irrelevant sentence with new numbers put among the
premises. On the real sets the question around it is untouched (the sentence comes out
exactly), it sits before the question sentence, its numbers are none of the problem's, its
person is new and of a gender no later pronoun could mean, the answer and the worked solution
are kept and the reference teacher scores every variant correct through the task's `score`;
competition problems get one only when they are word problems."""

from __future__ import annotations

import random
import re
from collections import Counter
from fractions import Fraction

import pytest

from harness.backends.reference import ReferenceBackend
from harness.perturb import Context, perturb_problems
from harness.perturb import lexicon as lx
from harness.perturb.base import Skip
from harness.perturb.distractor import TEMPLATES, Distractor, split_sentences, taken_numbers
from harness.perturb.rename import protected_spans, words_in
from harness.tasks import DataSource, get_task
from harness.types import Problem

KIND = Distractor()
GSM = Context("gsm8k", "math")
MATH_TASKS = ("math500", "aime24", "aime25")


@pytest.fixture(scope="module")
def loaded(data_dir) -> dict[str, list[Problem]]:
    source = DataSource.resolve(data_dir)
    out = {n: get_task(n).load(source).problems for n in ("gsm8k", *MATH_TASKS)}
    out["chains"] = get_task("chains:n=3").load(DataSource(None, hub=False)).problems
    return out


@pytest.fixture(scope="module")
def outcomes(loaded):
    return {
        name: perturb_problems(probs, Context(name, "math"), ["distractor"], per_problem=3, seed=5)
        for name, probs in loaded.items()
    }


def _removed(variant: Problem) -> str:
    """The variant's question with its inserted sentence (and one gap) taken out."""
    sentence = variant.meta["perturb"]["params"]["sentence"]
    q = variant.question
    i = q.index(sentence)
    j = i + len(sentence)
    gap = re.match(r"\s*", q[j:])
    return q[:i] + q[j + (gap.end() if gap else 0) :]


def test_coverage_on_gsm8k_and_math500(loaded, outcomes):
    gsm, m500 = outcomes["gsm8k"], outcomes["math500"]
    # measured: 1137 of 1319 GSM8K problems; 41 of MATH-500 (its word problems)
    assert gsm.covered("distractor") >= 1050
    assert 25 <= m500.covered("distractor") <= 120
    reasons = {why for (_, why) in gsm.skipped}
    assert reasons <= {
        "no person, object or unit in the problem to make a topical sentence from",
        "no premise boundary where a new sentence cannot be misread",
        "no premise sentence before the question",
    }
    assert "mostly LaTeX, not a word problem" in {why for (_, why) in m500.skipped}
    assert outcomes["chains"].covered("distractor") == len(loaded["chains"])


def test_only_a_sentence_is_added_and_the_answer_kept(loaded, outcomes):
    for name, out in outcomes.items():
        task = get_task("chains:n=3" if name == "chains" else name)
        parents = {p.id: p for p in loaded[name]}
        for v in out.variants:
            parent = parents[v.parent_id]
            assert v.answer == parent.answer and v.reference == parent.reference
            assert _removed(v) == parent.question, v.id
            score = task.score(ReferenceBackend.solution(v), v)
            assert score.correct, (v.id, score)


def test_placed_before_the_question_among_the_premises(loaded, outcomes):
    for name, out in outcomes.items():
        math = name in MATH_TASKS
        parents = {p.id: p for p in loaded[name]}
        for v in out.variants:
            parent = parents[v.parent_id]
            params = v.meta["perturb"]["params"]
            sents = split_sentences(parent.question, protected_spans(parent.question, math))
            position = params["position"]
            assert 1 <= position < len(sents) or (position == len(sents) - 1)
            at = sents[position].start
            assert v.question[:at] == parent.question[:at]
            assert v.question[at:].startswith(params["sentence"])
            if "?" in parent.question:
                assert v.question.index(params["sentence"]) < v.question.rindex("?")
            if math:  # competition problems: right before the question only
                rest = parent.question[at:]
                assert "?" in rest or re.match(r"(Find|Compute|What|How)", rest)


def test_numbers_and_names_are_new(loaded, outcomes):
    for name, out in outcomes.items():
        parents = {p.id: p for p in loaded[name]}
        for v in out.variants:
            parent = parents[v.parent_id]
            params = v.meta["perturb"]["params"]
            taken = taken_numbers(parent.question, parent.reference or "", parent.answer)
            assert 1 <= len(params["numbers"]) <= 2
            for n in params["numbers"]:
                assert Fraction(n) not in taken, (v.id, n)
                assert str(n) in params["sentence"]
            digits = re.findall(r"\d+", params["sentence"])
            assert sorted(map(int, digits)) == sorted(params["numbers"])
            sentence_words = set(re.findall(r"[a-z]+", params["sentence"].lower()))
            assert not sentence_words & set(lx.NUMBER_WORDS) - {"second"}
            people = [
                w for w in re.findall(r"\b[A-Z][a-z]+\b", params["sentence"]) if w in lx.GENDER
            ]
            for person in people:
                assert person.lower() not in words_in(f"{parent.question} {parent.reference}")
                # no later pronoun could mean the new person
                after = v.question[v.question.index(params["sentence"]) + len(params["sentence"]) :]
                pronouns = lx.PRONOUNS[lx.GENDER[person]]
                assert not set(re.findall(r"[a-z]+", after.lower())) & pronouns, v.id


def test_topical_vocabulary(loaded, outcomes):
    """The sentence reuses what the problem talks about: its objects (or their kin), money,
    units, kinds of people; a stranger's age only where nothing closer fits."""
    parents = {p.id: p for p in loaded["gsm8k"]}
    kinds = Counter()
    for v in outcomes["gsm8k"].variants:
        params = v.meta["perturb"]["params"]
        kind = params["template"].split("-")[0]
        kinds[kind] += 1
        q = parents[v.parent_id].question.lower()
        if kind == "money":
            assert "$" in q or re.search(r"dollar|cents|money", q)
        if kind in ("time", "distance", "weight", "volume"):
            words = re.findall(r"[\w-]+", params["sentence"])
            unit = words[words.index(str(params["numbers"][0])) + 1]
            singular = {pl: sg for pairs in lx.UNITS.values() for sg, pl in pairs}[unit]
            assert re.search(rf"\b(?:{unit}|{singular})\b", q), (v.id, unit)
    assert kinds["obj"] > 500 and kinds["money"] > 300 and kinds["age"] < sum(kinds.values()) / 5


def test_per_problem_variants_are_distinct_and_deterministic(loaded, outcomes):
    out = outcomes["gsm8k"]
    per = Counter(v.parent_id for v in out.variants)
    assert sum(1 for n in per.values() if n == 3) > 1000
    assert len({(v.parent_id, v.question) for v in out.variants}) == len(out.variants)
    again = perturb_problems(loaded["gsm8k"][:150], GSM, ["distractor"], per_problem=3, seed=5)
    first = [v for v in out.variants if int(v.parent_id.split("-")[1]) < 150]
    assert [v.to_dict() for v in again.variants] == [v.to_dict() for v in first]
    other = perturb_problems(loaded["gsm8k"][:150], GSM, ["distractor"], per_problem=3, seed=6)
    assert [v.question for v in other.variants] != [v.question for v in first]


def test_chains_families(loaded, outcomes):
    parents = {p.id: p for p in loaded["chains"]}
    families = Counter()
    for v in outcomes["chains"].variants:
        parent = parents[v.parent_id]
        family = parent.meta["family"]
        families[family] += 1
        sentence = v.meta["perturb"]["params"]["sentence"]
        if family == "symbolic":
            m = re.fullmatch(r"Let ([a-z]) = ([a-z0-9 +*]+)\.", sentence)
            assert m, sentence
            assert not re.search(rf"(?<![\w\\]){m.group(1)}(?!\w)", parent.question)
            asked = re.search(r"value of (\w)\?", v.question).group(1)
            assert asked != m.group(1)
    assert set(families) == {"shop", "bank", "bus", "garden", "symbolic"}


def test_competition_problems_are_skipped_unless_word_problems():
    def one(question: str) -> Problem | Skip:
        p = Problem("m", "math500", question, "5", reference="So $\\boxed{5}$.")
        return KIND.apply(p, random.Random(0), Context("math500", "math"))

    assert isinstance(one("Compute $\\sum_{k=1}^{10} k^2 - 2k + 1$."), Skip)
    assert isinstance(one("Let $x = 2$. Find $x^2 + 1$."), Skip)
    got = one("[asy]draw((0,0)--(1,1));[/asy] Tom has 3 apples. How many are shown?")
    assert isinstance(got, Skip)
    got = one("How much does Tom spend on 3 apples at \\$2 each?")
    assert isinstance(got, Skip)  # one sentence: no premise before the question
    got = one("Tom buys 3 apples for \\$2 each. He also buys 4 pears. How much does he spend?")
    assert not isinstance(got, Skip)
    sentence = got.meta["perturb"]["params"]["sentence"]
    assert got.question.endswith(f"{sentence} How much does he spend?")
    assert not re.search(r"\b(he|his|him)\b", sentence.lower())


def test_never_before_a_sentence_that_leans_back():
    text = (
        "Janet has 16 apples. She eats three for breakfast. They are red. "
        "The rest she sells for $2 each. How much does Janet make?"
    )
    p = Problem("g", "gsm8k", text, "26", reference="#### 26")
    positions = set()
    for seed in range(40):
        got = KIND.apply(p, random.Random(seed), GSM)
        if isinstance(got, Problem):
            params = got.meta["perturb"]["params"]
            positions.add(params["position"])
            template = next(t for t in TEMPLATES if t.key == params["template"])
            if params["position"] == 2:  # before "They are red": nothing plural to take it
                assert "they" not in template.captures
    # never before "She eats three" (elliptic) or "The rest" (leans back)
    assert positions == {2, 4}


def test_split_sentences():
    text = "Mr. Smith paid $3.50 at 8 a.m. Then he left! Was it $x.$ Yes. J. K. Rowling wrote 7."
    spans = protected_spans(text, math=False)
    got = [text[s.start : s.end] for s in split_sentences(text, spans)]
    assert got == [
        "Mr. Smith paid $3.50 at 8 a.m.",
        "Then he left!",
        "Was it $x.$ Yes.",
        "J. K. Rowling wrote 7.",
    ]
    latex = "If $a = 2.$ Then $b$ is 3. Find $a+b.$"
    got = [latex[s.start : s.end] for s in split_sentences(latex, protected_spans(latex, True))]
    assert got == ["If $a = 2.$", "Then $b$ is 3.", "Find $a+b.$"]
