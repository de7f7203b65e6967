"""Paired teacher-student statistics, checked against statsmodels and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from harness.metrics import compare_runs, compute_metrics, mcnemar_exact, paired_summary
from tests.metrics_records import make_record as rec

same = lambda a, b: a == b  # noqa: E731


@pytest.mark.parametrize("b, c", [(0, 0), (3, 9), (10, 10), (1, 30), (250, 300), (4000, 4150)])
def test_mcnemar_exact_matches_statsmodels(b, c):
    expected = mcnemar(np.array([[5, b], [c, 7]]), exact=True).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    if b + c:
        assert mcnemar_exact(b, c) == pytest.approx(
            stats.binomtest(min(b, c), b + c, 0.5).pvalue, rel=1e-9, abs=1e-12
        )


def _pairs(pattern):
    """pattern: list of (teacher right, student right) per problem, one sample each."""
    t = [rec(f"p{i}", "teacher", bool(tc)) for i, (tc, _) in enumerate(pattern)]
    s = [rec(f"p{i}", "student", bool(sc)) for i, (_, sc) in enumerate(pattern)]
    return t, s


def test_paired_counts_wins_and_mcnemar():
    pattern = [(1, 1)] * 50 + [(1, 0)] * 12 + [(0, 1)] * 3 + [(0, 0)] * 35
    t, s = _pairs(pattern)
    p = paired_summary(t, s, same)
    assert p["pairs"] == 100
    assert p["student_only"] == 0.03 and p["teacher_only"] == 0.12
    assert p["retention"] == pytest.approx(50 / 62, abs=1e-6)
    assert p["agreement"] == 0.85  # both right (50) or both wrong with the same answer (35)
    assert p["discordant_problems"] == {"student_better": 3, "teacher_better": 12}
    assert p["mcnemar_p"] == pytest.approx(
        mcnemar(np.array([[50, 12], [3, 35]]), exact=True).pvalue, abs=1e-6
    )
    assert p["diff"] == pytest.approx(-0.09, abs=1e-9)


def test_paired_bootstrap_interval_matches_scipy():
    rng = np.random.default_rng(7)
    tc = rng.random(300) < 0.7
    sc = np.where(rng.random(300) < 0.8, tc, ~tc)
    t, s = _pairs(list(zip(tc, sc, strict=True)))
    lo, hi = paired_summary(t, s, same)["diff_ci95"]
    ref = stats.bootstrap(
        (sc.astype(float), tc.astype(float)),
        lambda a, b: np.mean(a - b),
        paired=True,
        n_resamples=20000,
        method="percentile",
        random_state=1,
    ).confidence_interval
    assert lo == pytest.approx(ref.low, abs=0.012) and hi == pytest.approx(ref.high, abs=0.012)
    assert lo < float(np.mean(sc.astype(float) - tc)) < hi


def test_several_samples_count_once_per_problem_in_mcnemar():
    t = [rec("a", "teacher", True), rec("b", "teacher", False)]
    s = [rec("a", "student", i < 1, sample=i) for i in range(4)]  # a: 1 of 4
    s += [rec("b", "student", True, sample=i) for i in range(4)]  # b: 4 of 4
    p = paired_summary(t, s, same)
    assert p["pairs"] == 8 and p["paired_problems"] == 2
    assert p["discordant_problems"] == {"student_better": 1, "teacher_better": 1}
    assert p["mcnemar_p"] == 1.0
    assert p["diff"] == pytest.approx(((0.25 - 1) + (1 - 0)) / 2)


def test_nothing_paired_is_null_with_a_reason():
    p = paired_summary([rec("a", "teacher")], [rec("b", "student")], same)
    assert p["agreement"] is None and p["mcnemar_p"] is None and p["reason"]


def test_student_vs_student_over_shared_items():
    run_a = [rec(f"p{i}", correct=i < 6) for i in range(10)]
    run_b = [rec(f"p{i}", correct=i < 8) for i in range(12)]  # p10, p11 only in run B
    c = compare_runs(run_a, run_b, {})
    t = c["tasks"]["t"]
    assert t["pairs"] == 10 and t["b_only"] == 0.2 and t["a_only"] == 0.0
    assert t["mcnemar_p"] == pytest.approx(mcnemar_exact(0, 2))
    assert c["overall"]["diff"] == pytest.approx(0.2)


def test_foundation_keys_survive():
    m = compute_metrics([rec("a", "teacher"), rec("a", "student", False)], {})
    p = m["tasks"]["t"]["paired"]
    for key in ("agreement", "retention", "pairs", "student_only", "teacher_only"):
        assert key in p
    assert "mcnemar_p" in p and "diff_ci95" in p
