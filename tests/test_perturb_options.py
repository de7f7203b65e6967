"""The `options` kind on the real multiple-choice sets: every variant is graded by its own task
exactly as its parent is (the reference scores 1.000), the gold moves with its option, and a
student that always answers "A" loses what position bias gave it: chance on letter-labelled
variants, nothing on number- or numeral-labelled ones (an option letter is not a shown label).
"""

from __future__ import annotations

import random
from math import factorial

import pytest

from harness.backends.reference import ReferenceBackend
from harness.perturb import Context, perturb_problems
from harness.perturb.base import Skip
from harness.perturb.options import (
    STYLES,
    Options,
    draw_permutation,
    labels_for,
    names_options,
    roman,
    styles_for,
)
from harness.tasks import DataSource, get_task
from harness.tasks.bbh import ANSWER_TYPES, CHOICE
from harness.tasks.grading.extract import LETTERS, extract_choice
from harness.types import Generation, Problem

TASKS = ("arc-challenge", "logiqa", "bbh")
CONSTANT_A = Generation(text="The answer is \\boxed{A}.")
# BBH items the kind cannot move, by reason (the data set's own defects, see harness/tasks/bbh.py).
BBH_SKIPS = {
    "gold names no option (given as text)": 3,  # ruin_names-99, -144, movie_recommendation-163
    "fewer than two options": 1,  # snarks-88: its second option was lost upstream
}


@pytest.fixture(scope="module")
def loaded(data_dir) -> dict[str, list[Problem]]:
    source = DataSource.resolve(data_dir)
    return {name: get_task(name).load(source).problems for name in TASKS}


def _variants(problems: list[Problem], name: str, per: int = 1, seed: int = 0):
    return perturb_problems(
        problems, Context(name, get_task(name).kind), ["options"], per_problem=per, seed=seed
    )


# -- labels, permutations, extraction -----------------------------------------------------------


def test_labels_and_permutations():
    assert [roman(i) for i in (1, 4, 9, 14, 18, 40)] == ["I", "IV", "IX", "XIV", "XVIII", "XL"]
    assert labels_for("number", 3) == ("1", "2", "3")
    assert labels_for("roman", 4) == ("I", "II", "III", "IV")
    assert labels_for("letter", 5) == tuple("ABCDE")
    rng = random.Random(0)
    assert all(draw_permutation(2, rng) == [1, 0] for _ in range(20))
    perms = [draw_permutation(4, rng) for _ in range(2000)]
    assert [0, 1, 2, 3] not in perms and len({tuple(p) for p in perms}) == 23
    # Options that read as labels of a style are never shown with that style.
    assert styles_for(("1", "2", "3")) == ("letter", "roman")
    assert styles_for(("I only", "I and II", "II and III only")) == ("letter", "number")
    assert styles_for(("red", "blue")) == STYLES
    assert names_options("Both (A) and (C)", 4) and names_options("see option B.", 4)
    assert not names_options("Oxygen (O) and nitrogen (N)", 4)
    assert not names_options("Both A and B lie", 4)  # LogiQA's people are called A, B, C


OPTS = ("red", "green", "blue", "cyan")
NUMBERS, NUMERALS = labels_for("number", 4), labels_for("roman", 4)


@pytest.mark.parametrize(
    "text, labels, expected",
    [
        ("The answer is \\boxed{3}.", NUMBERS, ("C", "boxed")),
        ("\\boxed{(2)}", NUMBERS, ("B", "boxed")),
        ("Answer: Option 4", NUMBERS, ("D", "answer_line")),
        ("The correct option is 4, not 1.", NUMBERS, ("D", "final_answer")),
        ("(2) green", NUMBERS, ("B", "bare_option")),
        ("so it is not (1) but (4)", NUMBERS, ("D", "last_option")),
        ("\\boxed{blue}", NUMBERS, ("C", "option_text")),
        ("\\boxed{7}", NUMBERS, ("7", "boxed")),  # no shown label: as written, graded wrong
        ("\\boxed{III}", NUMERALS, ("C", "boxed")),
        ("\\boxed{(iv)}", NUMERALS, ("D", "boxed")),
        ("Answer: II. green", NUMERALS, ("B", "answer_line")),
        ("\\boxed{I}", NUMERALS, ("A", "boxed")),
        # An option letter where numbers or numerals were shown names no option: it is never
        # read as the option at that position (A is not option 1).
        ("The answer is \\boxed{A}.", NUMBERS, None),
        ("\\boxed{(C)}", NUMBERS, None),
        ("The answer is C.", NUMERALS, None),
        ("\\boxed{D}", NUMERALS, None),
        # Letters as labels read exactly as before.
        ("\\boxed{B}", tuple("ABCD"), ("B", "boxed")),
        ("\\boxed{3}", tuple("ABCD"), ("3", "boxed")),
    ],
)
def test_choice_extraction_reads_the_shown_labels(text, labels, expected):
    got = extract_choice(text, OPTS, labels=labels)
    assert (got and (got.answer, got.rule)) == expected
    if labels == tuple("ABCD"):
        assert got == extract_choice(text, OPTS)


# -- the real sets --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TASKS)
def test_reference_scores_one_and_the_gold_moves_with_its_option(name, loaded):
    task, problems = get_task(name), loaded[name]
    out = _variants(problems, name)
    parents = {p.id: p for p in problems}
    choice = [p for p in problems if name != "bbh" or p.meta["answer_type"] == CHOICE]
    if name == "bbh":
        kinds = set(ANSWER_TYPES.values()) - {CHOICE}
        expected = {f"not a multiple-choice subtask (answer type {k})" for k in kinds}
        assert {r for _, r in out.skipped} == expected | set(BBH_SKIPS)
        assert sum(out.skipped[("options", r)] for r in BBH_SKIPS) == sum(BBH_SKIPS.values())
        assert out.covered("options") == len(choice) - sum(BBH_SKIPS.values())
    else:
        assert out.covered("options") == len(problems), out.skipped
    scores = task.score_many([(ReferenceBackend.solution(v), v) for v in out.variants])
    wrong = [(v.id, s.answer, v.answer) for v, s in zip(out.variants, scores, strict=True)]
    assert [w for w, s in zip(wrong, scores, strict=True) if s.correct is not True] == []

    for v in out.variants:
        parent, params = parents[v.parent_id], v.meta["perturb"]["params"]
        order, style = params["permutation"], params["label_style"]
        n = len(v.choices)
        assert sorted(order) == list(range(n)) and order != list(range(n))
        assert v.choices == tuple(parent.choices[i] for i in order)
        assert v.choices[LETTERS.index(v.answer)] == parent.choices[LETTERS.index(parent.answer)]
        assert style == v.meta["label_style"] and tuple(v.meta["labels"]) == labels_for(style, n)
        label = v.meta["labels"][LETTERS.index(v.answer)]
        assert v.reference == f"The answer is \\boxed{{{label}}}."
        prompt = task.prompt(v)[0].content
        shown = "\n".join(f"({x}) {c}" for x, c in zip(v.meta["labels"], v.choices, strict=True))
        assert shown in prompt
        word = {"letter": "letter", "number": "number", "roman": "roman numeral"}[style]
        assert f"put the {word} of the correct option" in prompt
        if name == "bbh":
            assert v.meta["target"] == f"({label})"
            head = v.question.partition("Options:")[0]
            assert head == parent.question.partition("Options:")[0]
    assert {v.meta["label_style"] for v in out.variants} == set(STYLES)


def _chance_given_design(n: int, gold_was_a: bool) -> float:
    """P(the gold lands at A) under a uniform permutation other than the identity."""
    fixed = factorial(n - 1) - (1 if gold_was_a else 0)
    return fixed / (factorial(n) - 1)


@pytest.mark.parametrize("name", TASKS)
def test_a_constant_a_student_loses_its_position_bias(name, loaded):
    task, problems = get_task(name), loaded[name]
    originals = [p for p in problems if p.choices and len(p.answer) == 1]
    scores = task.score_many([(CONSTANT_A, p) for p in originals])
    assert sum(bool(s.correct) for s in scores) == sum(p.answer == "A" for p in originals)

    out = _variants(problems, name)
    parents = {p.id: p for p in problems}
    scores = task.score_many([(CONSTANT_A, v) for v in out.variants])
    letter: list[tuple[bool, float, float]] = []
    named = 0
    for v, s in zip(out.variants, scores, strict=True):
        if v.meta["label_style"] != "letter":
            # "A" is no label here: no answer, unless an option's text is "A" (LogiQA's people
            # are called A, B, C), which is then the option it names.
            by_text = [i for i, c in enumerate(v.choices) if c.strip().rstrip(".") == "A"]
            if s.answer is None:
                assert s.correct is False and not by_text, (v.id, s)
            else:
                assert (s.extractor, s.answer) == ("option_text", LETTERS[by_text[0]]), v.id
                named += 1
            continue
        n = len(v.choices)
        expected = _chance_given_design(n, parents[v.parent_id].answer == "A")
        letter.append((bool(s.correct), expected, 1 / n))
    # The design moves the gold off A with probability a hair above 1 - 1/n (the identity is
    # never drawn), so letter variants should score the mean of those chances: allow 4
    # standard deviations of a sum of independent Bernoulli draws (about 0.09 for ARC's ~390
    # letter variants, 0.04 for BBH's ~1400), and require the design's mean to be chance.
    assert named <= 5
    k = len(letter)
    observed = sum(c for c, _, _ in letter) / k
    mean = sum(e for _, e, _ in letter) / k
    chance = sum(c for _, _, c in letter) / k
    sd = sum(e * (1 - e) for _, e, _ in letter) ** 0.5 / k
    assert abs(mean - chance) < 0.01
    assert abs(observed - mean) <= 4 * sd, (observed, mean, sd)


@pytest.mark.parametrize("name", TASKS)
def test_deterministic_and_distinct(name, loaded):
    problems = loaded[name]
    if name == "bbh":
        problems = problems[:600]  # every subtask, a few times over
    first, again = _variants(problems, name, per=3), _variants(problems, name, per=3)

    def surface(v: Problem) -> tuple[object, ...]:
        return (v.id, v.question, v.answer, v.choices, v.reference, repr(v.meta))

    assert [surface(v) for v in first.variants] == [surface(v) for v in again.variants]
    other = _variants(problems, name, per=3, seed=1)
    assert [surface(v) for v in other.variants] != [surface(v) for v in first.variants]
    by_parent: dict[str, list[Problem]] = {}
    for v in first.variants:
        by_parent.setdefault(v.parent_id or "", []).append(v)
    for vs in by_parent.values():
        shown = {(v.question, v.choices, tuple(v.meta["labels"])) for v in vs}
        assert len(shown) == len(vs)
        # Two options have only three variants (the swap, in three styles), drawn at random
        # by separate attempts: some may not come up.
        assert len(vs) == 3 or len(vs[0].choices) == 2
    # One variant regenerates alone from its rng.
    parent = problems[0] if name != "bbh" else next(p for p in problems if p.choices)
    ctx = Context(name, get_task(name).kind)
    a = Options().apply(parent, random.Random("x"), ctx)
    b = Options().apply(parent, random.Random("x"), ctx)
    assert not isinstance(a, Skip) and surface(a) == surface(b)


def test_a_numbered_variant_takes_its_label_not_the_letter(loaded):
    task = get_task("logiqa")
    ctx = Context("logiqa", "choice")
    rng = random.Random(0)
    v = Options().apply(loaded["logiqa"][0], rng, ctx)
    while isinstance(v, Problem) and v.meta["label_style"] != "number":
        v = Options().apply(loaded["logiqa"][0], rng, ctx)
    assert isinstance(v, Problem)
    label = v.meta["labels"][LETTERS.index(v.answer)]
    say = {t: Generation(text=f"The answer is \\boxed{{{t}}}.") for t in (label, v.answer)}
    right, letter = task.score_many([(say[label], v), (say[v.answer], v)])
    assert right.correct and right.answer == v.answer
    assert letter.correct is False and letter.detail == "no answer found"
    sub = next(p for p in loaded["bbh"] if p.meta["answer_type"] == "yesno")
    assert isinstance(Options().apply(sub, rng, Context("bbh", "text")), Skip)
