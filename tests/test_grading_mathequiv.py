"""math-verify runs in worker processes: it works off the main thread (where math-verify's own
SIGALRM timeout refuses to run), a comparison past the hard wall clock is killed and reported
as a timeout, and the next comparison gets a fresh worker."""

from __future__ import annotations

import threading
import time

import pytest

from harness.tasks.grading.mathequiv import (
    MathVerifier,
    canonical,
    exact_value,
    math_compare,
    quick_compare,
)

SLOW = ("(x+1)^{400}", "(x+2)^{400}")
"""A pair that takes sympy about two seconds to tell apart (two 400th powers)."""


def test_math_verify_alone_refuses_a_thread_and_ours_does_not():
    from math_verify import parse

    errors: list[BaseException] = []
    ours: list[bool] = []

    def direct() -> None:
        try:
            parse("$\\frac{1}{2}$", raise_on_error=True)
        except BaseException as e:  # noqa: BLE001 - recorded for the assertion below
            errors.append(e)

    def through_worker() -> None:
        ours.append(math_compare("\\sqrt{8}", "2\\sqrt{2}").equal)
        ours.append(math_compare("\\sqrt{8}", "3\\sqrt{2}").equal)

    for target in (direct, through_worker):
        t = threading.Thread(target=target)
        t.start()
        t.join(60)
    assert errors and "thread" in str(errors[0])
    assert ours == [True, False]


def test_hard_wall_clock_kills_a_slow_comparison_and_recovers():
    verifier = MathVerifier(timeout=0.2, kill_grace=0.1)
    try:
        assert verifier.compare("\\sqrt{8}", "2\\sqrt{2}").how == "math-verify"  # worker warm
        t0 = time.perf_counter()
        result = verifier.compare(*SLOW)
        elapsed = time.perf_counter() - t0
        assert (result.equal, result.how) == (False, "timeout")
        assert elapsed < 1.5  # killed at 0.3 s, not waited for
        # A fresh worker takes over (with room for its first, cold parse).
        verifier.timeout = 30.0
        assert verifier.compare("\\frac{2}{4}", "\\frac{1}{2}").equal
        assert verifier.compare("x^2+2x+1", "(x+1)^2").how == "math-verify"
    finally:
        verifier.close()


def test_slow_pair_is_decided_with_the_default_limit():
    assert math_compare(*SLOW).equal is False
    assert math_compare(SLOW[0], SLOW[0]).how == "same"


def test_compare_many_in_parallel_matches_one_by_one():
    pairs = [
        ("\\frac{1}{3}", "0.333333"),
        ("(1,2)", "(2,1)"),
        ("\\{1,2\\}", "\\{2,1\\}"),
        ("[0,1)", "[0,1]"),
        ("\\sqrt{12}", "2\\sqrt{3}"),
        ("\\sin\\frac{\\pi}{6}", "\\frac{1}{2}"),
    ]
    verifier = MathVerifier()
    try:
        parallel = [r.equal for r in verifier.compare_many(pairs, workers=3)]
        serial = [verifier.compare(a, g).equal for a, g in pairs]
    finally:
        verifier.close()
    assert parallel == serial == [True, False, True, False, True, True]


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("$\\boxed{\\dfrac{1}{2}}$.", "\\frac{1}{2}"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
        ("x = 5", "5"),
        ("\\textbf{(113) }", "113"),
        ("90^{\\circ}", "90"),
        ("10\\,000", "10000"),
        ("x = y = 5", "x=y=5"),
    ],
)
def test_canonical(raw, expected):
    assert canonical(raw) == expected


def test_exact_values_and_quick_decisions():
    assert exact_value("1,234.50") == (exact_value("1234.5")[0], 2)
    assert exact_value("\\frac{3}{4}")[0] == exact_value("0.75")[0]
    assert exact_value("1,2") is None and exact_value("x") is None
    assert quick_compare("0.33", "\\frac{1}{3}").equal is False  # short decimal: decided here
    assert quick_compare("0.333333", "\\frac{1}{3}") is None  # may be a rounding: math-verify
    assert quick_compare("52_9", "52_8").equal is False
    assert quick_compare("x_1", "x") is None  # a subscript that is not a base
    assert quick_compare("", "5").how == "empty"
