from __future__ import annotations

from math import comb

import numpy as np
import pytest

from harness.metrics import bootstrap_ci, compute_metrics, paired_summary, pass_at_k, role_summary
from harness.types import Record


def rec(pid, role, correct, sample=0, answer=None, finish="stop", cached=False, task="t"):
    return Record(
        run_id="r",
        task=task,
        problem_id=pid,
        role=role,
        sample=sample,
        model="m",
        backend="b",
        question="q",
        gold="1",
        text="",
        reasoning=None,
        answer=answer if answer is not None else ("1" if correct else "0"),
        extractor="boxed",
        lenient=False,
        correct=correct,
        truncated=False,
        finish_reason=finish,
        prompt_hash="h",
        cache_key=f"{pid}{role}{sample}",
        prompt_tokens=1,
        completion_tokens=10,
        seconds=1.0,
        cached=cached,
        error="missing" if finish == "missing" else None,
    )


@pytest.mark.parametrize("n, c, k", [(10, 3, 1), (10, 3, 5), (20, 0, 3), (5, 5, 2), (7, 2, 6)])
def test_pass_at_k_matches_closed_form(n, c, k):
    expected = 1 - comb(n - c, k) / comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_rejects_bad_counts():
    for args in ((0, 0, 1), (3, 4, 1), (3, 1, 4)):
        with pytest.raises(ValueError):
            pass_at_k(*args)


def test_bootstrap_ci_brackets_the_mean_and_is_seeded():
    x = np.r_[np.ones(70), np.zeros(30)]
    lo, hi = bootstrap_ci(x)
    assert lo < 0.7 < hi and hi - lo < 0.25
    assert bootstrap_ci(x) == [lo, hi]
    assert bootstrap_ci([]) is None and bootstrap_ci([1.0]) == [1.0, 1.0]


def test_accuracy_is_mean_over_samples_and_missing_is_not_wrong():
    rs = [
        rec("a", "student", True, 0),
        rec("a", "student", False, 1),
        rec("b", "student", True, 0),
        rec("b", "student", True, 1),
        rec("c", "student", None, 0, finish="missing"),
    ]
    s = role_summary(rs)
    assert s["accuracy"] == 0.75 and s["n"] == 4 and s["problems"] == 2
    assert s["missing"] == 1 and s["missing_ids"] == ["c"]


def test_paired_agreement_and_retention():
    same = lambda a, b: a == b  # noqa: E731
    t = [rec("a", "teacher", True), rec("b", "teacher", True), rec("c", "teacher", False)]
    s = [rec("a", "student", True), rec("b", "student", False), rec("c", "student", False)]
    p = paired_summary(t, s, same)
    assert p["retention"] == 0.5
    assert p["agreement"] == pytest.approx(2 / 3, abs=1e-6)  # a: 1=1, c: 0=0
    assert p["pairs"] == 3


def test_one_teacher_sample_pairs_with_every_student_sample():
    t = [rec("a", "teacher", True)]
    s = [rec("a", "student", True, 0), rec("a", "student", False, 1)]
    assert paired_summary(t, s, lambda a, b: a == b)["retention"] == 0.5


def test_metrics_document_shape():
    rs = [rec("a", "teacher", True, cached=True), rec("a", "student", False)]
    m = compute_metrics(rs, {})
    assert set(m["tasks"]["t"]) == {"teacher", "student", "paired", "routing"}
    assert {"accuracy", "n", "ci95"} <= set(m["tasks"]["t"]["student"])
    assert m["cost"]["teacher"] == {"generated": 0, "cached": 1, "tokens": 0, "seconds": 0.0}
    assert m["cost"]["student"] == {"generated": 1, "cached": 0, "tokens": 10, "seconds": 1.0}
