"""Accuracy with samples: pass@1 as a mean over samples, pass@k, maj@k, subsets, intervals."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
from scipy import stats

from harness.metrics import bootstrap_ci, compute_metrics, pass_at_k, role_summary
from harness.metrics.accuracy import answer_clusters, majority_correct
from tests.metrics_records import make_record as rec


def test_pass_at_k_in_the_summary_is_the_closed_form_averaged_over_problems():
    # problem a: 2 of 4 right; problem b: 1 of 4; problem c: 4 of 4
    pattern = {"a": [1, 0, 1, 0], "b": [0, 0, 0, 1], "c": [1, 1, 1, 1]}
    rs = [rec(p, correct=bool(c), sample=i) for p, cs in pattern.items() for i, c in enumerate(cs)]
    s = role_summary(rs)
    counts = [sum(cs) for cs in pattern.values()]
    for k in (1, 2, 4):
        expected = np.mean([1 - comb(4 - c, k) / comb(4, k) for c in counts])
        assert s["pass_at_k"][str(k)] == pytest.approx(expected, abs=1e-6)
    assert s["pass_at_1"] == pytest.approx((0.5 + 0.25 + 1.0) / 3, abs=1e-6)
    assert set(s["pass_at_k"]) == {"1", "2", "4"} and set(s["maj_at_k"]) == {"2", "4"}
    assert s["samples_per_problem"] == 4
    assert all(lo <= hi for lo, hi in s["pass_at_k_ci95"].values())


def test_pass_at_1_is_the_mean_over_samples_not_the_first_sample():
    rs = [rec("a", correct=False, sample=0)] + [rec("a", correct=True, sample=i) for i in (1, 2, 3)]
    assert role_summary(rs)["pass_at_1"] == 0.75


def test_pass_at_k_closed_form_on_large_n():
    assert pass_at_k(200, 13, 10) == pytest.approx(1 - comb(187, 10) / comb(200, 10), abs=1e-12)


def test_majority_vote_groups_equivalent_answers_and_splits_ties():
    numeric = lambda a, b: float(a) == float(b)  # noqa: E731
    answers = ["18", "18.0", "20", None]
    assert answer_clusters(answers, numeric) == [0, 0, 1, -1]
    rs = [
        rec("a", correct=True, answer="18"),
        rec("a", correct=True, answer="18.0", sample=1),
        rec("a", correct=False, answer="20", sample=2),
        rec("a", correct=False, answer=None, sample=3),
    ]
    assert majority_correct(rs, answer_clusters(answers, numeric)) == 1.0
    # a 1-1 tie between a right and a wrong answer scores 1/2 (expected random tie-break)
    assert majority_correct(rs[1:3], [0, 1]) == 0.5
    s = role_summary(rs, numeric)
    assert s["maj_at_k"] == {"2": 1.0, "4": 1.0}


def test_single_sample_has_no_majority_and_says_why():
    s = role_summary([rec("a"), rec("b", correct=False)])
    assert s["maj_at_k"] is None and "samples" in s["maj_at_k_reason"]
    assert s["pass_at_k"] == {"1": 0.5}


def test_subsets_are_scored_separately():
    rs = [
        rec("a", subset="navigate"),
        rec("b", correct=False, subset="navigate"),
        rec("c", subset="dyck"),
    ]
    m = compute_metrics(rs, {})
    subsets = m["tasks"]["t"]["student"]["subsets"]
    assert subsets["navigate"]["accuracy"] == 0.5 and subsets["dyck"]["accuracy"] == 1.0


def test_overall_pools_tasks_micro_and_macro():
    rs = [rec("a", task="x"), rec("b", task="x", correct=False), rec("c", task="y")]
    o = compute_metrics(rs, {})["overall"]["student"]
    assert o["pass_at_1"] == pytest.approx(2 / 3, abs=1e-6)
    assert o["macro_pass_at_1"] == pytest.approx((0.5 + 1.0) / 2, abs=1e-6)
    assert o["problems"] == 3


def test_bootstrap_matches_scipy_percentile_interval():
    rng = np.random.default_rng(3)
    x = (rng.random(400) < 0.62).astype(float)
    ours = bootstrap_ci(x, resamples=20000, seed=1)
    ref = stats.bootstrap(
        (x,), np.mean, n_resamples=20000, method="percentile", random_state=2
    ).confidence_interval
    assert ours[0] == pytest.approx(ref.low, abs=0.01)
    assert ours[1] == pytest.approx(ref.high, abs=0.01)
