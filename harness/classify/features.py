"""Evidence features of failed student items, computed from a run's records alone.

The same function reads a real run and a planted-cause simulation, so the model trained on one
reads the other. Per task, once:

- **Familiar forms.** The candidates are the originals (for chains: the default families, not
  the held-out ones; for other tasks: each subset). One logistic accuracy-vs-depth fit over all
  candidates gives every problem an expected pass rate at its depth; a candidate group whose
  observed rate falls significantly below the best group's at matched depth (more than
  `GAP_Z` standard errors and more than `GAP_MIN` in rate) is not familiar. The **frontier** is
  the depth where a second fit, on the familiar candidates only, crosses 50%, with a bootstrap
  standard deviation (Poisson weights over problems).
- **Form contrast.** Every item belongs to two form axes: its subset (chains family, told or
  retold) and its perturbation kind (`original` for originals). Each axis group's gap is the
  familiar fit's expected pass rate minus the observed one over the group's other problems
  (leave-one-out, shrunk toward 0 by `SHRINK` pseudo-samples); the item's `form_gap` is the
  larger of its two axes' gaps, and it is `familiar` when neither axis is significantly below.
  A task with one subset and no variants has no form contrast: `form_gap` is None.
- **Same problem elsewhere.** `parent_right` (a variant's parent), `siblings_right` (the same
  underlying problem at the same depth in other forms: a chain's other families and their
  variants, a parent's other variants), `shallower_right` (a composition's first part, else
  the same form at smaller depths).

A task without depth (no record has steps) gets no depth features; the form contrast then
compares plain rates.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

from harness.classify.base import Features
from harness.metrics.accuracy import SameAnswer
from harness.metrics.calibration import SOURCES, record_confidences
from harness.tasks.chains import FAMILIES
from harness.types import Record

Key = tuple[str, str, int]
FloatArray = npt.NDArray[np.float64]

BOOTSTRAP = 60
"""Bootstrap replicates of the frontier fit."""
GAP_Z = 2.0
GAP_MIN = 0.1
SHRINK = 4.0
"""Pseudo-samples at zero gap added to every form group (small groups say little)."""
RIDGE = 0.05
"""L2 penalty of the logistic fit (keeps a fit with no wrong answers finite)."""
FRONTIER_PAD = 4.0
"""How far beyond the measured depths a frontier may lie (a student right everywhere)."""
KNN = 5
_CHAIN = re.compile(r"chains-(s\d+)-d(\d+)-([A-Za-z0-9_]+)-(\d+)")
ORIGINAL = "original"


class Embedder(Protocol):
    """What the OOD percentile needs: texts in, one vector per text out."""

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float64]: ...


@dataclass(frozen=True)
class Fit:
    """A logistic accuracy-vs-depth fit: p = sigmoid(a + b * (depth - center))."""

    a: float
    b: float
    center: float
    frontier: float | None
    sd: float | None

    def predict(self, depth: FloatArray) -> FloatArray:
        return _sigmoid(self.a + self.b * (depth - self.center))


def _sigmoid(z: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))
    return out


def _logistic(x: FloatArray, k: FloatArray, n: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Ridge logistic fits of binomial counts, vectorized over rows: x (D,), k and n (B, D).
    Returns (a, b) of shape (B,) on x already centered."""
    rows = k.shape[0]
    a = np.zeros(rows)
    b = np.zeros(rows)
    for _ in range(30):
        p = _sigmoid(a[:, None] + b[:, None] * x[None, :])
        r = k - n * p
        w = n * p * (1 - p)
        ga = r.sum(1) - RIDGE * a
        gb = (r * x).sum(1) - RIDGE * b
        haa = w.sum(1) + RIDGE
        hab = (w * x).sum(1)
        hbb = (w * x * x).sum(1) + RIDGE
        det = haa * hbb - hab * hab
        da = (hbb * ga - hab * gb) / det
        db = (haa * gb - hab * ga) / det
        a += da
        b += db
        if float(np.max(np.abs(da) + np.abs(db))) < 1e-7:
            break
    return a, b


def _crossing(a: FloatArray, b: FloatArray, center: float, lo: float, hi: float) -> FloatArray:
    """Depth where each fit crosses 50%, clamped to [lo, hi] (a flat or rising fit: the end
    its level says)."""
    safe = np.where(b < -1e-6, b, -1e-6)
    cross = center - a / safe
    flat = b >= -1e-6
    cross = np.where(flat, np.where(a > 0, hi, lo), cross)
    out: FloatArray = np.clip(cross, lo, hi)
    return out


def fit_frontier(
    depth: FloatArray, k: FloatArray, n: FloatArray, rng: np.random.Generator, *, boot: bool
) -> Fit:
    """The logistic fit of per-problem right counts `k` of `n` at `depth`, and its 50% depth
    with a bootstrap sd over problems (when `boot`)."""
    if depth.size == 0 or n.sum() == 0:
        return Fit(0.0, 0.0, 0.0, None, None)
    levels, inv = np.unique(depth, return_inverse=True)
    center = float(np.average(depth, weights=n))
    x = levels - center
    kd = np.bincount(inv, weights=k, minlength=levels.size).astype(float)[None, :]
    nd = np.bincount(inv, weights=n, minlength=levels.size).astype(float)[None, :]
    a, b = _logistic(x, kd, nd)
    lo, hi = float(levels[0]) - FRONTIER_PAD, float(levels[-1]) + FRONTIER_PAD
    if levels.size < 2:
        return Fit(float(a[0]), 0.0, center, None, None)
    frontier = float(_crossing(a, b, center, lo, hi)[0])
    sd: float | None = None
    if boot:
        w = rng.poisson(1.0, size=(BOOTSTRAP, depth.size)).astype(float)
        onehot = np.zeros((depth.size, levels.size))
        onehot[np.arange(depth.size), inv] = 1.0
        kb = w @ (onehot * k[:, None])
        nb = w @ (onehot * n[:, None])
        ab, bb = _logistic(x, kb, nb)
        sd = float(np.std(_crossing(ab, bb, center, lo, hi)))
    return Fit(float(a[0]), float(b[0]), center, frontier, sd)


def _root(pid: str, parent: str | None) -> tuple[str, str | None]:
    """The underlying problem of an item (a chain's id across families, else the original's
    id) and, for chains, the family its root is told in."""
    base = parent or pid.split("~", 1)[0]
    m = _CHAIN.fullmatch(base)
    if m:
        return f"{m.group(1)}-d{m.group(2)}-{m.group(4)}", m.group(3)
    return base, None


def _group_sums(codes: npt.NDArray[np.int64], values: FloatArray, size: int) -> FloatArray:
    out: FloatArray = np.bincount(codes, weights=values, minlength=size).astype(float)
    return out


def _codes(labels: Sequence[str]) -> tuple[npt.NDArray[np.int64], list[str]]:
    names = sorted(set(labels))
    index = {s: i for i, s in enumerate(names)}
    return np.array([index[s] for s in labels], dtype=np.int64), names


def _pick_confidence(c: dict[str, float | None]) -> float | None:
    for source in SOURCES:
        v = c.get(source)
        if v is not None:
            return float(v)
    return None


@dataclass(frozen=True)
class _Problem:
    pid: str
    depth: float | None
    subset: str
    kind: str
    parent: str | None
    root: str


def _task_features(
    task: str,
    recs: Sequence[Record],
    conf: Sequence[float | None],
    ood: dict[str, float],
) -> dict[Key, Features]:
    base = task.split(":", 1)[0]
    rng = np.random.default_rng(0)
    probs: dict[str, _Problem] = {}
    kk: dict[str, float] = defaultdict(float)
    nn: dict[str, float] = defaultdict(float)
    for r in recs:
        if r.problem_id not in probs:
            root, _ = _root(r.problem_id, r.parent_id)
            probs[r.problem_id] = _Problem(
                r.problem_id,
                None if r.steps is None else float(r.steps),
                r.subset or base,
                r.perturbation or ORIGINAL,
                r.parent_id,
                root,
            )
        nn[r.problem_id] += 1.0
        kk[r.problem_id] += 1.0 if r.correct else 0.0
    pids = list(probs)
    index = {p: i for i, p in enumerate(pids)}
    info = [probs[p] for p in pids]
    k = np.array([kk[p] for p in pids])
    n = np.array([nn[p] for p in pids])
    has_depth = all(q.depth is not None for q in info) and bool(info)
    depth = np.array([q.depth if q.depth is not None else 0.0 for q in info])
    rate = k / n

    # Familiar forms among the candidates, then the frontier on them.
    is_chains = any(_CHAIN.fullmatch(p.split("~", 1)[0]) for p in pids)
    cand = np.array([q.kind == ORIGINAL and (not is_chains or q.subset in FAMILIES) for q in info])
    if not cand.any():
        cand = np.array([q.kind == ORIGINAL for q in info])
    if not cand.any():
        cand = np.ones(len(info), dtype=bool)
    fit_depth = depth if has_depth else np.zeros_like(depth)
    sub_codes, sub_names = _codes([q.subset for q in info])
    kind_codes, kind_names = _codes([q.kind for q in info])
    first = fit_frontier(fit_depth[cand], k[cand], n[cand], rng, boot=False)
    p0 = first.predict(fit_depth)
    familiar_sub = _familiar_groups(sub_codes[cand], k[cand], n[cand], p0[cand], len(sub_names))
    fam_cand = cand & familiar_sub[sub_codes]
    fit = fit_frontier(fit_depth[fam_cand], k[fam_cand], n[fam_cand], rng, boot=has_depth)
    expected = fit.predict(fit_depth)

    # Form gaps per axis group (leave-one-out, shrunk), and significance.
    resid = n * expected - k
    var = n * expected * (1 - expected)
    gaps, unfamiliar = [], []
    for codes, size in ((sub_codes, len(sub_names)), (kind_codes, len(kind_names))):
        s = _group_sums(codes, resid, size)
        ns = _group_sums(codes, n, size)
        vs = _group_sums(codes, var, size)
        loo = (s[codes] - resid) / (ns[codes] - n + SHRINK)
        gaps.append(loo)
        whole = s / np.maximum(ns, 1.0)
        se = np.sqrt(np.maximum(vs, 1e-9)) / np.maximum(ns, 1.0)
        unfamiliar.append(((whole > GAP_Z * se) & (whole > GAP_MIN))[codes])
    form_gap = np.maximum(gaps[0], gaps[1])
    contrast = len(sub_names) > 1 or len(kind_names) > 1
    familiar = ~(unfamiliar[0] | unfamiliar[1])

    # Same underlying problem elsewhere: (root, depth) groups minus self and parent.
    group_key = [f"{q.root}|{q.depth}" for q in info]
    g_codes, g_names = _codes(group_key)
    gk = _group_sums(g_codes, k, len(g_names))
    gn = _group_sums(g_codes, n, len(g_names))
    parent_idx = np.array([index.get(q.parent or "", -1) for q in info])
    same_group = (parent_idx >= 0) & (
        g_codes[np.maximum(parent_idx, 0)] == g_codes
    )  # a parent at the same depth is counted by parent_right, not as a sibling
    sk = gk[g_codes] - k - np.where(same_group, k[np.maximum(parent_idx, 0)], 0.0)
    sn = gn[g_codes] - n - np.where(same_group, n[np.maximum(parent_idx, 0)], 0.0)

    shallower = _shallower(info, k, n, index) if has_depth else [None] * len(info)

    out: dict[Key, Features] = {}
    margin_sd = max(fit.sd or 0.0, 0.5)
    for r, c in zip(recs, conf, strict=True):
        if r.correct:
            continue
        i = index[r.problem_id]
        q = info[i]
        pi = int(parent_idx[i])
        d = q.depth if has_depth else None
        frontier = fit.frontier if has_depth else None
        form = q.subset if q.kind == ORIGINAL else f"{q.subset}/{q.kind}"
        out[(task, r.problem_id, r.sample)] = Features(
            task=task,
            problem_id=r.problem_id,
            sample=r.sample,
            depth=d,
            frontier=frontier,
            frontier_sd=fit.sd if has_depth else None,
            depth_margin=None
            if d is None or frontier is None
            else round((d - frontier) / margin_sd, 4),
            form=form,
            familiar=bool(familiar[i]),
            form_gap=round(float(form_gap[i]), 4) if contrast else None,
            parent_right=None if pi < 0 else round(float(rate[pi]), 4),
            siblings_right=None if sn[i] <= 0 else round(float(sk[i] / sn[i]), 4),
            shallower_right=shallower[i],
            ood_percentile=ood.get(r.question),
            divergence=None,
            confidence=None if c is None else round(c, 4),
        )
    return out


def _familiar_groups(
    codes: npt.NDArray[np.int64], k: FloatArray, n: FloatArray, p: FloatArray, size: int
) -> npt.NDArray[np.bool_]:
    """Per group: not significantly below the best group at matched depth."""
    ns = _group_sums(codes, n, size)
    resid = _group_sums(codes, k - n * p, size) / np.maximum(ns, 1.0)
    se = np.sqrt(np.maximum(_group_sums(codes, n * p * (1 - p), size), 1e-9)) / np.maximum(ns, 1)
    measured = ns >= 5
    if not measured.any():
        return np.ones(size, dtype=bool)
    best = int(np.argmax(np.where(measured, resid, -np.inf)))
    drop = resid[best] - resid
    sig = (drop > GAP_Z * np.sqrt(se**2 + se[best] ** 2)) & (drop > GAP_MIN)
    out: npt.NDArray[np.bool_] = ~sig
    return out


def _shallower(
    info: Sequence[_Problem], k: FloatArray, n: FloatArray, index: dict[str, int]
) -> list[float | None]:
    """A composition's first part's pass rate; else the same form's pass rate at smaller
    depths (None at the smallest)."""
    by_form: dict[tuple[str, str], dict[float, list[float]]] = defaultdict(dict)
    for i, q in enumerate(info):
        cell = by_form[(q.subset, q.kind)].setdefault(q.depth or 0.0, [0.0, 0.0])
        cell[0] += float(k[i])
        cell[1] += float(n[i])
    cum: dict[tuple[str, str], tuple[list[float], FloatArray, FloatArray]] = {}
    for form, cells in by_form.items():
        ds = sorted(cells)
        cum[form] = (
            ds,
            np.cumsum([cells[d][0] for d in ds]),
            np.cumsum([cells[d][1] for d in ds]),
        )
    out: list[float | None] = []
    for q in info:
        if q.kind == "compose" and q.parent in index:
            j = index[q.parent]
            out.append(round(float(k[j] / n[j]), 4))
            continue
        ds, ck, cn = cum[(q.subset, q.kind)]
        pos = int(np.searchsorted(ds, q.depth or 0.0))
        out.append(None if pos == 0 else round(float(ck[pos - 1] / cn[pos - 1]), 4))
    return out


def _ood(
    recs: Sequence[Record],
    failed_questions: Sequence[str],
    reference: Sequence[str] | None,
    embedder: Embedder,
) -> dict[str, float]:
    """Percentile of each failed question's mean kNN cosine distance to the reference among
    the reference's own leave-one-out distances (identical texts do not count as neighbours)."""
    ref = list(dict.fromkeys(reference or [r.question for r in recs if r.perturbation is None]))
    queries = list(dict.fromkeys(failed_questions))
    if len(ref) < KNN + 1 or not queries:
        return {}
    er = _normed(embedder.embed(ref))
    eq = _normed(embedder.embed(queries))
    own = _knn(er, er)
    got = _knn(eq, er)
    own.sort()
    pct = np.searchsorted(own, got, side="left") / own.size * 100.0
    return {q: round(float(v), 2) for q, v in zip(queries, pct, strict=True)}


def _normed(x: npt.NDArray[np.float64]) -> FloatArray:
    a = np.asarray(x, dtype=float)
    out: FloatArray = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    return out


def _knn(q: FloatArray, ref: FloatArray) -> FloatArray:
    out = np.empty(q.shape[0])
    for s in range(0, q.shape[0], 1024):
        dist = 1.0 - q[s : s + 1024] @ ref.T
        dist = np.where(dist < 1e-6, np.inf, dist)
        kth = np.sort(dist, axis=1)[:, :KNN]
        kth = np.where(np.isinf(kth), np.nan, kth)
        out[s : s + 1024] = np.nan_to_num(np.nanmean(kth, axis=1), nan=0.0)
    return out


def _divergence(
    records: Sequence[Record], failed: Sequence[Record], embedder: Embedder
) -> dict[Key, tuple[int, int]]:
    """(divergence step, teacher steps) of each failed student record that has a teacher
    chain to follow, from the chain-similarity step alignment."""
    from harness.metrics.chainsim import divergence_points, pair_chains

    teachers = [r for r in records if r.role == "teacher"]
    pairs = pair_chains(teachers, failed)
    if not pairs:
        return {}
    got = divergence_points(pairs, embedder)  # type: ignore[arg-type]
    return {(s.task, s.problem_id, s.sample): d for (_, s), d in zip(pairs, got, strict=True)}


def compute(
    records: Sequence[Record],
    same_answer: SameAnswer | None = None,
    *,
    reference: Sequence[str] | None = None,
    embedder: Embedder | None = None,
) -> dict[Key, Features]:
    """Features of every failed student record (role student, correct False), keyed by
    (task, problem_id, sample). Ungraded records (correct None) are ignored. With an
    `embedder`: the OOD percentile (against `reference`, else the run's originals) and the
    divergence point (against the teacher's chain of the same problem and sample)."""
    student = [r for r in records if r.role == "student" and r.correct is not None]
    confs = record_confidences(student, same_answer)
    by_task: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(student):
        by_task[r.task].append(i)
    out: dict[Key, Features] = {}
    for task, idx in by_task.items():
        recs = [student[i] for i in idx]
        conf = [_pick_confidence(confs[i]) for i in idx]
        ood: dict[str, float] = {}
        div: dict[Key, tuple[int, int]] = {}
        if embedder is not None:
            failed = [r for r in recs if not r.correct]
            ood = _ood(recs, [r.question for r in failed], reference, embedder)
            div = _divergence([r for r in records if r.task == task], failed, embedder)
        got = _task_features(task, recs, conf, ood)
        for key, (step, of) in div.items():
            if key in got:
                got[key] = replace(
                    got[key],
                    divergence=round(step / of, 4) if of else None,
                    divergence_step=step,
                    teacher_steps=of,
                )
        out.update(got)
    return out


__all__ = ["Embedder", "Fit", "compute", "fit_frontier"]
