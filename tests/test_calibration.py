"""Calibration: ECE by hand, Brier, AUROC against scikit-learn, the three confidence sources."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from harness.metrics import auroc, brier_score, compute_metrics, expected_calibration_error
from harness.metrics.calibration import (
    calibration_summary,
    logprob_confidence,
    record_confidences,
    reliability_bins,
)
from harness.tasks import get_task
from harness.tasks.grading.extract import extract_stated_confidence
from harness.types import Problem
from tests.metrics_records import make_record as rec


def _perfect():
    """At confidence c (0.05, 0.15, ... 0.95) exactly c of 200 answers are right."""
    conf, correct = [], []
    for c in np.arange(0.05, 1.0, 0.1):
        k = round(c * 200)
        conf += [c] * 200
        correct += [True] * k + [False] * (200 - k)
    return conf, correct


def test_perfectly_calibrated_set_has_ece_zero():
    conf, correct = _perfect()
    assert expected_calibration_error(conf, correct) == pytest.approx(0.0, abs=1e-9)
    assert expected_calibration_error(conf, correct, equal_mass=True) == pytest.approx(
        0.0, abs=1e-9
    )


def test_over_confident_set_ece_by_hand():
    # 100 answers at 0.9 with 60 right, 100 at 0.7 with 50 right, 50 at 0.25 with 20 right.
    conf = [0.9] * 100 + [0.7] * 100 + [0.25] * 50
    correct = [True] * 60 + [False] * 40 + [True] * 50 + [False] * 50 + [True] * 20 + [False] * 30
    by_hand = (100 * abs(0.6 - 0.9) + 100 * abs(0.5 - 0.7) + 50 * abs(0.4 - 0.25)) / 250
    assert by_hand == pytest.approx(0.23)
    assert expected_calibration_error(conf, correct) == pytest.approx(by_hand, abs=1e-12)
    # equal mass, 5 bins of 50 sorted by confidence: [0.25]x50, [0.7]x50 (x2), [0.9]x50 (x2).
    # Stable sort keeps input order in ties: the 0.7 bins hold 50 right then 50 wrong, the
    # 0.9 bins 50 right then 10 right + 40 wrong.
    mass = (abs(0.4 - 0.25) + abs(1.0 - 0.7) + abs(0.0 - 0.7) + abs(1.0 - 0.9) + abs(0.2 - 0.9)) / 5
    assert expected_calibration_error(conf, correct, 5, equal_mass=True) == pytest.approx(mass)
    assert brier_score(conf, correct) == pytest.approx(
        (60 * 0.01 + 40 * 0.81 + 50 * 0.09 + 50 * 0.49 + 20 * 0.5625 + 30 * 0.0625) / 250
    )
    bins = reliability_bins(conf, correct)
    assert [(b["lo"], b["n"], b["accuracy"]) for b in bins] == [
        (0.2, 50, 0.4),
        (0.7, 100, 0.5),
        (0.9, 100, 0.6),
    ]


def test_confidence_one_lands_in_the_last_bin():
    assert reliability_bins([1.0, 0.0], [True, False])[-1]["lo"] == 0.9


def test_auroc_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    correct = rng.random(500) < 0.6
    conf = np.round(np.clip(0.5 + 0.3 * (correct - 0.5) + rng.normal(0, 0.2, 500), 0, 1), 1)
    assert auroc(conf, correct) == pytest.approx(roc_auc_score(correct, conf), abs=1e-12)
    assert auroc([0.9, 0.8], [True, True]) is None


def test_agreement_confidence_is_the_share_of_equivalent_samples():
    rs = [
        rec("a", correct=True, answer="18", sample=0),
        rec("a", correct=True, answer="18", sample=1),
        rec("a", correct=True, answer="18", sample=2),
        rec("a", correct=False, answer="20", sample=3),
        rec("b", correct=False, answer=None, sample=0),
        rec("b", correct=False, answer="7", sample=1),
    ]
    confs = record_confidences(rs)
    assert [c["agreement"] for c in confs] == [0.75, 0.75, 0.75, 0.25, None, 0.5]


def test_logprob_confidence_takes_the_answer_tokens():
    # 10 tokens of 4 characters; the answer "42" sits in tokens 7-8 and two tokens follow it.
    text = "abcd" * 7 + "  42" + "xxxx" * 2
    lps = [-0.1] * 6 + [-0.05, -0.7, -0.05] + [-0.01]
    r = rec("a", answer="42", text=text, logprobs=tuple(lps))
    conf = logprob_confidence(r)
    # the span covers the answer's token with one token of slack on each side
    assert conf == pytest.approx(math.exp(-0.05 - 0.7 - 0.05), abs=1e-9)
    assert logprob_confidence(rec("a", answer="42", text=text)) is None
    assert logprob_confidence(rec("a", answer="41", text=text, logprobs=tuple(lps))) is None


def test_stated_confidence_extractor():
    assert extract_stated_confidence("Confidence: 85%\n\\boxed{3}") == 0.85
    assert extract_stated_confidence("my confidence is 0.6") == 0.6
    assert extract_stated_confidence("Confidence level: 7/10") == 0.7
    assert extract_stated_confidence("**Confidence:** 40 percent") == 0.4
    assert extract_stated_confidence("confidence: 250%") is None
    assert extract_stated_confidence("no statement here") is None


def test_r1_confidence_prompt_asks_for_a_statement_before_the_answer():
    task = get_task("gsm8k")
    p = Problem(id="x", task="gsm8k", question="What is 2+2?", answer="4")
    msgs = task.prompt(p, "r1-confidence")
    assert "Confidence: <0-100>%" in msgs[-1].content and "\\boxed{}" in msgs[-1].content
    # the statement never becomes the answer
    found = task.extract("2+2=4.\nConfidence: 90%\n\\boxed{4}")
    assert found is not None and found.answer == "4"


def test_no_source_is_null_with_reasons():
    rs = [rec("a"), rec("b", correct=False)]
    cal = calibration_summary(rs, record_confidences(rs))
    assert cal["confidence_source"] is None
    for key in ("ece", "brier", "auroc"):
        assert cal[key] is None and "--samples" in cal[f"{key}_reason"]
    assert "--logprobs" in cal["sources"]["logprob_reason"]


def test_auto_prefers_stated_then_logprob_then_agreement():
    rs = [
        rec("a", correct=True, answer="1", text="Confidence: 90%\nThe answer is 1", sample=0),
        rec("a", correct=False, answer="2", text="Confidence: 30%\nThe answer is 2", sample=1),
    ]
    m = compute_metrics(rs, {})["tasks"]["t"]["student"]["calibration"]
    assert m["confidence_source"] == "stated"
    assert m["brier"] == pytest.approx((0.1**2 + 0.3**2) / 2)
    assert m["sources"]["agreement"]["n"] == 2 and m["sources"]["logprob"] is None
    chosen = calibration_summary(rs, record_confidences(rs), source="agreement")
    # two different answers: each at confidence 1/2, one right -> calibrated, Brier 1/4
    assert chosen["confidence_source"] == "agreement" and chosen["ece"] == pytest.approx(0.0)
    assert chosen["brier"] == pytest.approx(0.25)
