"""The math grader against math-verify's own verdict on the whole output: every disagreement is
a deliberate difference (harness/tasks/grading/differences.py), and where they disagree the
harness gives the verdict a careful human grader gives.

Cases: the grading table's math rows and the corpus of R1-style endings (tests/math_endings.py).
The same comparison with figures: benchmarks/bench_mathverify_diff.py.
"""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from harness.tasks.grading.differences import (
    BY_NAME,
    DELIBERATE_DIFFERENCES,
    classify_difference,
    mathverify_anchor,
)
from tests.math_endings import ANSWER_KINDS, DRESSINGS, Case, cases, corpus, mathverify, ours

CASES = cases()


# -- the corpus itself (fast) ------------------------------------------------------------------


def test_corpus_is_big_two_sided_and_covers_every_kind():
    endings = corpus()
    assert len(endings) >= 300
    equal = sum(e.expected for e in endings)
    assert 0.35 <= equal / len(endings) <= 0.65, equal
    assert {e.answer_kind for e in endings} == set(ANSWER_KINDS)
    assert {e.dressing for e in endings} == set(DRESSINGS)
    sides = Counter((e.answer_kind, e.expected) for e in endings)
    for kind in ANSWER_KINDS:
        assert sides[(kind, True)] >= 2 and sides[(kind, False)] >= 2, kind


def test_corpus_is_deterministic_and_consistent():
    endings = corpus()
    assert endings == corpus()
    assert len({(e.text, e.gold) for e in endings}) == len(endings), "duplicate cases"
    for e in endings:
        if e.dressing == "truncated":
            assert "<think>" in e.text and "</think>" not in e.text and not e.expected
        elif e.dressing == "think-decoy":
            assert e.text.startswith("<think>") and e.text.count("</think>") == 1
        elif e.dressing == "think-prefill":
            assert "<think>" not in e.text and e.text.count("</think>") == 1
        else:
            assert "think>" not in e.text


# -- the classifier on hand-made cases (fast) ------------------------------------------------

HAND = [
    ("<think>\nso x is \\boxed{5}. Let me double-check", "5", False, True, "truncated"),
    (
        "<think>\nmaybe \\boxed{7}? no.\n</think>\n\nSo the total is $18$.",
        "18",
        True,
        False,
        "think-block",
    ),
    (
        "So $x = \\boxed{3}$, $\\boxed{5}$, or $\\boxed{7}$.",
        "3, 5, 7",
        True,
        False,
        "several-boxes",
    ),
    ("\\boxed{52_9}", "52_8", False, True, "base-subscript"),
    ("\\boxed{\\frac{1}{2006!}}", "\\frac{1}{2004!}", False, True, "tiny-exact"),
    ("\\boxed{1\\,000}", "1000", True, False, "spaced-thousands"),
    ("\\boxed{12.5\\%}", "12.5", True, False, "percent-as-written"),
    ("The angle is \\(30\u00b0\\).", "30", True, False, "degree-sign"),
    ("\\boxed{104.}", "104", True, False, "trailing-period"),
    ("So the total is (18)", "18", True, False, "lenient-last-number"),
]


@pytest.mark.parametrize("text, gold, ours_v, theirs_v, name", HAND, ids=[h[4] for h in HAND])
def test_classify_hand_cases(text, gold, ours_v, theirs_v, name):
    assert classify_difference(text, gold, ours_v, theirs_v) == name
    assert classify_difference(text, gold, ours_v, ours_v) is None  # no disagreement


@pytest.mark.parametrize("text, gold, ours_v, theirs_v, name", HAND, ids=[h[4] for h in HAND])
def test_hand_cases_are_what_both_graders_say(text, gold, ours_v, theirs_v, name):
    """The hand cases are real: math-verify and the harness give the verdicts they claim."""
    logging.disable(logging.WARNING)
    try:
        case = Case("hand", "math500", text, gold, ours_v, name)
        assert mathverify(case, whole=True) is theirs_v
        assert ours(case) is ours_v
    finally:
        logging.disable(logging.NOTSET)


def test_classify_respects_direction_and_features():
    # A truncated chain is never graded correct: ours True there is not truncation's doing.
    assert classify_difference("<think>\n\\boxed{5} and", "5", True, False) is None
    # A think block math-verify cannot read explains nothing.
    text = "<think>\nlet me think it over\n</think>\n\nSo the total is $18$."
    assert classify_difference(text, "18", False, True) is None
    # A boxed answer after </think> beats a boxed decoy before it (rightmost wins): no
    # think-block there.
    text = "<think>\n\\boxed{7}\n</think>\n\n\\boxed{18}"
    assert classify_difference(text, "18", True, False) is None
    assert classify_difference("\\boxed{19}", "18", True, False) is None


def test_every_difference_has_reason_and_example():
    assert len({d.name for d in DELIBERATE_DIFFERENCES}) == len(DELIBERATE_DIFFERENCES)
    assert set(BY_NAME) >= {
        "think-block",
        "truncated",
        "lenient-last-number",
        "several-boxes",
        "base-subscript",
        "tiny-exact",
    }
    for d in DELIBERATE_DIFFERENCES:
        assert d.reason.strip() and d.example.strip(), d.name


def test_mathverify_anchor_ranks():
    assert mathverify_anchor("The final answer is $5$. I hope it is correct.") == 0
    assert mathverify_anchor("so \\boxed{5}") == 50
    assert mathverify_anchor("Answer: $5$") == 100
    assert mathverify_anchor("the answer would be 5") == 200
    assert mathverify_anchor("the answer would be \\{0\\}") is None
    assert mathverify_anchor("so it is $5$") == 300
    assert mathverify_anchor("nothing to read here") is None


# -- the comparison (math-verify in this process: ~25 s for all cases, so marked slow) ---------


@pytest.fixture(scope="module", autouse=True)
def _quiet_mathverify():
    logging.disable(logging.WARNING)  # math-verify logs each parse failure
    yield
    logging.disable(logging.NOTSET)


def _id(i: int, c: Case) -> str:
    return f"{c.source}-{i}-{c.kind}"


@pytest.mark.slow
@pytest.mark.parametrize("whole", [False, True], ids=["answer-part", "whole-output"])
@pytest.mark.parametrize("case", CASES, ids=[_id(i, c) for i, c in enumerate(CASES)])
def test_disagreement_is_deliberate(case: Case, whole: bool):
    """Where the harness and math-verify disagree (math-verify reading the answer part, and
    the whole output), a deliberate difference explains it and the harness gives the expected
    verdict."""
    a, b = ours(case), mathverify(case, whole=whole)
    if a == b:
        return
    name = classify_difference(case.text, case.gold, a, b)
    assert name is not None, (
        f"unexplained: harness {a}, math-verify {b}, expected {case.expected}",
        case.text,
        case.gold,
    )
    assert a == case.expected, (f"{name}: the harness is wrong", case.text, case.gold)
    if name == "think-block":
        # Honest feature: math-verify reading only the answer part changes its verdict.
        assert mathverify(case) != b, ("think-block named, but it did not decide", case.text)


@pytest.mark.slow
def test_agreement_with_mathverify_on_the_answer_part():
    agree = sum(ours(c) == mathverify(c) for c in CASES)
    assert agree / len(CASES) >= 0.97, agree / len(CASES)
