"""The calibrated capacity-vs-mismatch model, trained from planted-cause simulations at first
use (no pickled blob) and cached in-process.

Encoding (`feature_names`): each Features field becomes a fixed number, clipped to a sane
range, with a missing-value indicator beside every optional one (a missing value is encoded as
the field's neutral value, so the indicator carries the information).

Two stages, so that an intervention is weighed for what it adds to the correlations:

1. a gradient-boosted tree ensemble over the correlational evidence (every column but the
   probes), with a monotonic constraint per field (`_FIELDS`), fitted on `TRAIN_SEEDS`;
2. a logistic combiner over the trees' logit and the probe outcomes (+1 right, -1 wrong, 0 not
   probed), fitted on separate planted runs (`STACK_SEEDS`): its coefficients are the probes'
   weights (`Model.probe_weights`), a probe whose fitted sign contradicts its meaning (right
   with a prefix must not point to mismatch, right in a familiar form must not point to
   capacity) is dropped, and the combiner is also the calibration (Platt scaling on runs the
   trees never saw).

The threshold below which a failure is `undetermined` is chosen on planted runs used for
neither: the lowest top probability at which the decided items reach `TARGET_F1` (macro) while
at most `MAX_UNDETERMINED` are left undecided, kept within `THRESHOLD_RANGE`. A failure with
neither a depth nor any form contrast nor a probe (no frontier, no form gap, no parent, no
siblings) is `undetermined` whatever the model says: there is nothing to decide on.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, log_loss
from threadpoolctl import threadpool_limits

from harness.classify.base import UNDETERMINED, Features
from harness.errors import HarnessError

Prediction = tuple[str, float, dict[str, float]]

TRAIN_SEEDS = range(0, 40)
STACK_SEEDS = range(2000, 2016)
THRESHOLD_SEEDS = range(1000, 1008)
PROBES = ("probe_decompose", "probe_familiarize")
PROBE_SIGNS = (1, -1)
"""The direction each probe's right outcome may push P(capacity)."""
TARGET_F1 = 0.95
MAX_UNDETERMINED = 0.05
THRESHOLD_RANGE = (0.6, 0.7)
"""The undetermined threshold stays in this range whatever the threshold runs say (a label
below 0.6 is a guess; above 0.7 too many items go undecided on students unlike those)."""

# (name, neutral value when missing, clip low, clip high, direction): direction is how
# P(capacity) may move as the value rises (+1 up, -1 down, 0 either way), a monotonic
# constraint on the trees, so that a combination the planted runs never showed is read the way
# each piece of evidence points (an item far below the frontier is never more capacity-like
# for being further below it).
_FIELDS: tuple[tuple[str, float, float, float, int], ...] = (
    ("depth_margin", 0.0, -8.0, 8.0, 1),
    ("depth_minus_frontier", 0.0, -12.0, 12.0, 1),
    ("frontier_sd", 0.0, 0.0, 5.0, 0),
    ("familiar", 0.5, 0.0, 1.0, 1),
    ("form_gap", 0.0, -1.0, 1.0, -1),
    ("parent_right", 0.5, 0.0, 1.0, -1),
    ("siblings_right", 0.5, 0.0, 1.0, -1),
    ("shallower_right", 0.5, 0.0, 1.0, 1),
    ("confidence", 0.5, 0.0, 1.0, 0),
    ("ood_percentile", 50.0, 0.0, 100.0, -1),
    ("divergence", 0.5, 0.0, 1.0, 0),
    ("probe_decompose", 0.0, -1.0, 1.0, 1),
    ("probe_familiarize", 0.0, -1.0, 1.0, -1),
)


def feature_names() -> list[str]:
    """The encoded columns, in order: each field, then its missing indicator."""
    return [n for name, *_ in _FIELDS for n in (name, f"{name}_missing")]


def monotonic() -> list[int]:
    """The trees' monotonic constraint per encoded column (missing indicators: none)."""
    return [c for *_, direction in _FIELDS for c in (direction, 0)]


def _raw(f: Features) -> list[float | None]:
    dmf = None if f.depth is None or f.frontier is None else f.depth - f.frontier
    probe = {k: (1.0 if v else -1.0) for k, v in f.probes.items()}
    return [
        f.depth_margin,
        dmf,
        f.frontier_sd,
        None if f.familiar is None else float(f.familiar),
        f.form_gap,
        f.parent_right,
        f.siblings_right,
        f.shallower_right,
        f.confidence,
        f.ood_percentile,
        f.divergence,
        probe.get("decompose"),
        probe.get("familiarize"),
    ]


def encode(features: Sequence[Features]) -> npt.NDArray[np.float64]:
    """The fixed numeric encoding (rows: items, columns: `feature_names()`)."""
    out = np.zeros((len(features), 2 * len(_FIELDS)))
    for i, f in enumerate(features):
        for j, (v, (_, neutral, lo, hi, _d)) in enumerate(zip(_raw(f), _FIELDS, strict=True)):
            if v is None or not np.isfinite(v):
                out[i, 2 * j] = neutral
                out[i, 2 * j + 1] = 1.0
            else:
                out[i, 2 * j] = min(max(float(v), lo), hi)
    return out


def no_evidence(f: Features) -> bool:
    """Neither a depth against a frontier nor any form contrast: nothing to decide on."""
    return (
        f.depth_margin is None
        and f.form_gap is None
        and f.parent_right is None
        and f.siblings_right is None
        and not f.probes
    )


def _columns() -> tuple[list[int], list[int]]:
    """Encoded column indices: the trees' (everything but the probes) and the probe values."""
    names = feature_names()
    probe_cols = {n for p in PROBES for n in (p, f"{p}_missing")}
    trees = [i for i, n in enumerate(names) if n not in probe_cols]
    return trees, [names.index(p) for p in PROBES]


def _logit(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    q = np.clip(p, 1e-4, 1 - 1e-4)
    out: npt.NDArray[np.float64] = np.log(q / (1 - q))
    return out


@dataclass(frozen=True)
class Model:
    """A fitted classifier, its undetermined threshold and its documentation."""

    trees: HistGradientBoostingClassifier
    combiner: LogisticRegression
    probes_used: tuple[int, ...]
    """Which of PROBES the combiner reads (a probe whose sign came out wrong is dropped)."""
    threshold: float
    importances: dict[str, float]

    def _stack(self, enc: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        tree_cols, probe_cols = _columns()
        with threadpool_limits(1):  # OpenMP threads on a busy machine cost far more than they give
            p = self.trees.predict_proba(enc[:, tree_cols])[:, 1]
        probes = enc[:, [probe_cols[i] for i in self.probes_used]]
        return np.column_stack([_logit(p), probes])

    def proba_encoded(self, enc: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if enc.shape[0] == 0:
            return np.zeros(0)
        out: npt.NDArray[np.float64] = self.combiner.predict_proba(self._stack(enc))[:, 1]
        return out

    def proba(self, features: Sequence[Features]) -> npt.NDArray[np.float64]:
        """P(capacity) per item."""
        return self.proba_encoded(encode(features))

    def probe_weights(self) -> dict[str, float]:
        """The combiner's coefficient of each probe (log-odds of capacity per unit of +1 right /
        -1 wrong; 0 where dropped), beside the trees' logit's."""
        coef = self.combiner.coef_[0]
        out = {"trees_logit": round(float(coef[0]), 4)}
        for i, name in enumerate(PROBES):
            used = i in self.probes_used
            out[name] = round(float(coef[1 + self.probes_used.index(i)]), 4) if used else 0.0
        return out

    def predict(self, features: Sequence[Features]) -> list[Prediction]:
        """(label, probability of the label, per-cause probabilities) per item."""
        out: list[Prediction] = []
        for f, pc in zip(features, self.proba(features), strict=True):
            probs = {"capacity": round(float(pc), 4), "mismatch": round(1.0 - float(pc), 4)}
            if no_evidence(f):
                out.append((UNDETERMINED, max(probs.values()), probs))
                continue
            label = "capacity" if pc >= 0.5 else "mismatch"
            top = probs[label]
            out.append((label if top >= self.threshold else UNDETERMINED, top, probs))
        return out

    def weights(self) -> dict[str, float]:
        """Permutation importance of each encoded column (rise in log-loss when shuffled,
        measured on the threshold runs), largest first."""
        return dict(sorted(self.importances.items(), key=lambda kv: -kv[1]))


def dataset(
    seeds: Iterable[int], *, noisy: bool = True, held_out: bool = False
) -> tuple[list[Features], list[int]]:
    """Features and planted causes (1: capacity, 0: mismatch) of planted runs `seeds` (the
    training mixture, or the held-out one), leaving out failures with no single cause."""
    from harness.classify import simulate as sim

    mix = sim.HELD_OUT_MIXTURE if held_out else sim.TRAIN
    xs: list[Features] = []
    ys: list[int] = []
    for seed in seeds:
        planted = sim.simulate(seed, mixture=mix, noisy=noisy)
        computed = sim.planted_features(planted)
        for key, cause in planted.truth.items():
            if cause in ("capacity", "mismatch") and key in computed:
                xs.append(computed[key])
                ys.append(1 if cause == "capacity" else 0)
    return xs, ys


def _trees() -> HistGradientBoostingClassifier:
    tree_cols, _ = _columns()
    return HistGradientBoostingClassifier(
        max_iter=150,
        learning_rate=0.08,
        max_leaf_nodes=15,
        l2_regularization=1.0,
        monotonic_cst=[monotonic()[i] for i in tree_cols],
        random_state=0,
    )


def _combine(
    trees: HistGradientBoostingClassifier, enc: npt.NDArray[np.float64], y: npt.NDArray[np.int64]
) -> tuple[LogisticRegression, tuple[int, ...]]:
    """The logistic combiner over the trees' logit and the probes, dropping a probe whose
    coefficient comes out against its meaning."""
    tree_cols, probe_cols = _columns()
    with threadpool_limits(1):
        logit = _logit(trees.predict_proba(enc[:, tree_cols])[:, 1])
    used = tuple(range(len(PROBES)))
    while True:
        x = np.column_stack([logit, enc[:, [probe_cols[i] for i in used]]])
        combiner = LogisticRegression(C=10.0).fit(x, y)
        coef = combiner.coef_[0][1:]
        wrong = [i for i, c in zip(used, coef, strict=True) if c * PROBE_SIGNS[i] < 0]
        if not wrong:
            return combiner, used
        used = tuple(i for i in used if i not in wrong)


def _importances(
    model: Model, enc: npt.NDArray[np.float64], y: npt.NDArray[np.int64]
) -> dict[str, float]:
    """Rise in log-loss when each encoded column is shuffled (3 repeats, seeded)."""
    rng = np.random.default_rng(0)
    base = log_loss(y, model.proba_encoded(enc), labels=[0, 1])
    out: dict[str, float] = {}
    for j, name in enumerate(feature_names()):
        rises = []
        for _ in range(3):
            shuffled = enc.copy()
            shuffled[:, j] = rng.permutation(shuffled[:, j])
            rises.append(log_loss(y, model.proba_encoded(shuffled), labels=[0, 1]) - base)
        out[name] = round(float(np.mean(rises)), 4)
    return out


def choose_threshold(p_capacity: npt.NDArray[np.float64], y: Sequence[int]) -> float:
    """The lowest threshold whose decided items reach TARGET_F1 with at most
    MAX_UNDETERMINED undecided; failing that, the one at MAX_UNDETERMINED."""
    yt = np.asarray(y)
    top = np.maximum(p_capacity, 1 - p_capacity)
    pred = (p_capacity >= 0.5).astype(int)
    lo, hi = THRESHOLD_RANGE
    best = lo
    for t in np.arange(lo, hi + 1e-9, 0.01):
        keep = top >= t
        if keep.mean() < 1 - MAX_UNDETERMINED:
            break
        best = float(t)
        if len(set(yt[keep])) == 2 and f1_score(yt[keep], pred[keep], average="macro") >= TARGET_F1:
            break
    return round(best, 2)


def train(
    seeds: Iterable[int] = TRAIN_SEEDS,
    threshold_seeds: Iterable[int] = THRESHOLD_SEEDS,
    stack_seeds: Iterable[int] = STACK_SEEDS,
) -> Model:
    """Fit the trees on planted runs `seeds` and the combiner on `stack_seeds` (noisy labels),
    choose the threshold and importances on `threshold_seeds` (labels as planted)."""
    xs, ys = dataset(seeds)
    sx, sy = dataset(stack_seeds)
    if len(set(ys)) < 2 or len(set(sy)) < 2:
        raise HarnessError("classify: the planted runs gave only one cause; use more seeds")
    hx, hy = dataset(threshold_seeds, noisy=False)
    tree_cols, _ = _columns()
    trees = _trees()
    with threadpool_limits(1):
        trees.fit(encode(xs)[:, tree_cols], np.asarray(ys))
    combiner, used = _combine(trees, encode(sx), np.asarray(sy))
    enc, y = encode(hx), np.asarray(hy)
    fitted = Model(trees, combiner, used, 0.5, {})
    threshold = choose_threshold(fitted.proba_encoded(enc), hy)
    return Model(trees, combiner, used, threshold, _importances(fitted, enc, y))


_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _default() -> Model:
    return train()


def default_model() -> Model:
    """The model trained on the default seeds, once per process."""
    with _LOCK:
        return _default()


__all__ = [
    "Model",
    "Prediction",
    "choose_threshold",
    "dataset",
    "default_model",
    "encode",
    "feature_names",
    "no_evidence",
    "train",
]
