"""The gate's tests of an accuracy drop against an allowance, and Holm's correction.

Every test here answers one question: is the drop (baseline minus candidate accuracy) larger
than the allowance `margin`? Each returns the drop, a two-sided (1 - alpha) interval and a
p-value built so that the two agree: p < alpha exactly when the interval lies wholly above the
margin (a one-sided test at alpha / 2, doubled: the non-inferiority convention that reads the
decision off the two-sided interval shown in the table).

- paired, one sample a side: Tango's score test of paired proportions against a margin, and
  the score interval that inverts it; with margin 0 the p-value is McNemar's exact test
  (`harness.metrics.mcnemar_exact`), to which Tango's statistic reduces (as its z form).
- paired, several samples: a percentile bootstrap over problems of the mean per-problem
  difference (samples of one problem are correlated, so problems are resampled, never
  samples); the p-value inverts the same percentile interval.
- unpaired (no shared problems): Newcombe's hybrid score interval from two Wilson intervals
  (one sample a side), inverted for its p-value; or a bootstrap of each side's problems.

Pure functions over counts and arrays: no records, no files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from harness.metrics.accuracy import bootstrap_means
from harness.metrics.paired import mcnemar_exact

RESAMPLES = 4000
"""Bootstrap resamples: the smallest p a bootstrap can give is 2 / (RESAMPLES + 1) = 0.0005,
enough for Holm's correction over up to 100 tasks at alpha 0.05."""
_NORMAL = NormalDist()
_BISECTIONS = 80


@dataclass(frozen=True)
class DropTest:
    """One test of a drop against a margin (all in fractions: 0.02 is 2 points)."""

    drop: float
    """Baseline accuracy minus candidate accuracy on the compared items."""
    ci: tuple[float, float]
    """Two-sided (1 - alpha) interval of the drop."""
    p: float
    """p-value of H0: drop <= margin (p < alpha iff the interval lies above the margin)."""
    method: str
    paired: bool
    n: int
    """Compared problems (paired), or baseline + candidate problems (unpaired)."""
    p_change: float | None = None
    """McNemar's exact two-sided p of 'no change at all' (paired, one sample a side)."""


def _upper_tail(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _two_sided_p(z: float) -> float:
    """Twice the one-sided upper tail beyond z, capped at 1 (z <= 0: p = 1)."""
    return min(1.0, 2.0 * _upper_tail(z)) if z > 0 else 1.0


def tango_z(b: int, c: int, n: int, margin: float) -> float:
    """Tango's score statistic for H0: (b - c) / n = margin, over n pairs of which b went from
    right to wrong and c from wrong to right. Positive: the drop is above the margin.

    The variance is taken at the restricted maximum-likelihood cell probabilities under H0
    (the positive root of 2n q^2 - B q - c m (1 - m) = 0, q the wrong-to-right cell), which
    keeps the test sound with few discordant pairs; at margin 0 it is McNemar's z.
    """
    if margin < 0:
        return -tango_z(c, b, n, -margin)  # the drop of (b, c) is minus the drop of (c, b)
    rest = n - b - c
    big_b = b * (1 - margin) + c * (1 - 3 * margin) - 2 * rest * margin
    q = (big_b + math.sqrt(big_b * big_b + 8 * n * c * margin * (1 - margin))) / (4 * n)
    var = n * (2 * q + margin * (1 - margin))
    num = b - c - n * margin
    if var <= 1e-300:
        return 0.0 if abs(num) < 1e-12 else math.copysign(math.inf, num)
    return num / math.sqrt(var)


def _solve(f: Callable[[float], float], lo: float, hi: float, target: float) -> float:
    """x in [lo, hi] with f(x) = target, for f decreasing in x (bisection)."""
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2
        if f(mid) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _z(alpha: float) -> float:
    return _NORMAL.inv_cdf(1.0 - alpha / 2.0)


def paired_binary(b: int, c: int, n: int, margin: float, alpha: float) -> DropTest:
    """Paired one-sample-a-side test: b baseline-right-candidate-wrong, c the reverse, n pairs."""
    if n <= 0:
        raise ValueError("a paired test needs at least one pair")
    drop = (b - c) / n
    z = _z(alpha)
    edge = 1.0 - 1e-12
    lo = -edge if drop <= -edge else _solve(lambda d: tango_z(b, c, n, d), -edge, drop, z)
    hi = edge if drop >= edge else _solve(lambda d: tango_z(b, c, n, d), drop, edge, -z)
    change = mcnemar_exact(b, c)
    if margin == 0:
        p = change if b > c else 1.0
        method = "paired, McNemar exact"
    else:
        p = _two_sided_p(tango_z(b, c, n, margin))
        method = "paired, Tango score"
    return DropTest(
        drop=drop,
        ci=(max(-1.0, lo), min(1.0, hi)),
        p=p,
        method=method,
        paired=True,
        n=n,
        p_change=change,
    )


def _percentile_test(
    means: np.ndarray, drop: float, margin: float, alpha: float
) -> tuple[tuple[float, float], float]:
    lo, hi = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    at_or_below = int((means <= margin + 1e-12).sum())
    p = min(1.0, 2.0 * (1 + at_or_below) / (means.size + 1))
    if drop <= margin:
        p = 1.0
    return (float(lo), float(hi)), p


def paired_bootstrap(
    diffs: Sequence[float],
    margin: float,
    alpha: float,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> DropTest:
    """Paired test over problems: diffs[i] = baseline minus candidate mean correctness of
    problem i (over each side's samples of it)."""
    d = np.asarray(diffs, dtype=float)
    if d.size == 0:
        raise ValueError("a paired test needs at least one problem")
    drop = float(d.mean())
    means = bootstrap_means(d[None, :], resamples=resamples, seed=seed)[0]
    ci, p = _percentile_test(means, drop, margin, alpha)
    return DropTest(drop, ci, p, "paired, bootstrap over problems", True, int(d.size))


def wilson(k: float, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials."""
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(0.0, p * (1 - p) / n + z * z / (4 * n * n))) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_bounds(k1: int, n1: int, k2: int, n2: int, z: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p1 - p2 (method 10): independent samples."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p1 - p2
    return (
        d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )


def unpaired_binary(k1: int, n1: int, k2: int, n2: int, margin: float, alpha: float) -> DropTest:
    """Unpaired test: k1 of n1 baseline items right, k2 of n2 candidate items right."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError("an unpaired test needs items on both sides")
    drop = k1 / n1 - k2 / n2
    ci = newcombe_bounds(k1, n1, k2, n2, _z(alpha))
    if drop <= margin:
        p = 1.0
    else:
        # the z at which the interval's lower bound meets the margin: p = 2 * tail(z)
        z_star = _solve(lambda z: newcombe_bounds(k1, n1, k2, n2, z)[0], 0.0, 40.0, margin)
        p = _two_sided_p(z_star)
    return DropTest(drop, ci, p, "unpaired, Newcombe score", False, n1 + n2)


def unpaired_bootstrap(
    base: Sequence[float],
    cand: Sequence[float],
    margin: float,
    alpha: float,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> DropTest:
    """Unpaired test over problems' mean correctness, each side's problems resampled apart."""
    a, b = np.asarray(base, dtype=float), np.asarray(cand, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("an unpaired test needs problems on both sides")
    drop = float(a.mean() - b.mean())
    ma = bootstrap_means(a[None, :], resamples=resamples, seed=seed)[0]
    mb = bootstrap_means(b[None, :], resamples=resamples, seed=seed + 1)[0]
    ci, p = _percentile_test(ma - mb, drop, margin, alpha)
    return DropTest(drop, ci, p, "unpaired, bootstrap over problems", False, int(a.size + b.size))


def holm(ps: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error at alpha over all of them)."""
    k = len(ps)
    order = sorted(range(k), key=lambda i: ps[i])
    adjusted = [1.0] * k
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * ps[i]))
        adjusted[i] = running
    return adjusted
