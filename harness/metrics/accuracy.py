"""Accuracy with samples: pass@1 as the mean over n samples, unbiased pass@k, maj@k, and
bootstrap intervals over problems (never over samples, which are correlated within a problem).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from harness.types import ROLES, Record

SameAnswer = Callable[[str, str], bool]
BOOTSTRAP_RESAMPLES = 2000
_CHUNK_CELLS = 4_000_000
"""Resampled cells drawn at once: bounds memory (~32 MB) whatever the number of problems."""


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (Chen et al. 2021).

    1 - C(n-c, k) / C(n, k), computed as a stable product so large n does not overflow.
    """
    if n < 1 or k < 1:
        raise ValueError(f"pass@k needs n >= 1 and k >= 1 (got n={n}, k={k})")
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n (got c={c}, n={n})")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem (got {n})")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def bootstrap_means(
    columns: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> np.ndarray:
    """Bootstrap means of several per-item statistics under the same item resamples.

    columns: (stats, items). Returns (stats, resamples). Sharing the resamples keeps paired
    statistics paired and costs one draw for all of them; items are drawn in chunks so memory
    stays bounded for 100k problems.
    """
    cols = np.atleast_2d(np.asarray(columns, dtype=float))
    n = cols.shape[1]
    rng = np.random.default_rng(seed)
    out = np.empty((cols.shape[0], resamples))
    chunk = max(1, min(resamples, _CHUNK_CELLS // max(n, 1)))
    for start in range(0, resamples, chunk):
        c = min(chunk, resamples - start)
        idx = rng.integers(0, n, size=(c, n))
        counts = np.bincount((idx + (np.arange(c) * n)[:, None]).ravel(), minlength=c * n)
        out[:, start : start + c] = cols @ counts.reshape(c, n).T / n
    return out


def _interval(means: np.ndarray, level: float) -> list[float]:
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return [round(float(lo), 6), round(float(hi), 6)]


def bootstrap_ci(
    per_item: Sequence[float],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> list[float] | None:
    """Percentile bootstrap interval of the mean over items (problems, not samples).

    Resampling problems rather than samples keeps the interval honest when each problem has
    several correlated samples.
    """
    x = np.asarray(per_item, dtype=float)
    if x.size == 0:
        return None
    if x.size == 1:
        return [float(x[0]), float(x[0])]
    return _interval(bootstrap_means(x[None, :], resamples=resamples, seed=seed)[0], level)


def bootstrap_cis(
    columns: dict[str, Sequence[float]], *, seed: int = 0, level: float = 0.95
) -> dict[str, list[float] | None]:
    """bootstrap_ci for several statistics over the same items, from one shared resample."""
    names = list(columns)
    if not names:
        return {}
    mat = np.asarray([columns[k] for k in names], dtype=float)
    if mat.shape[1] == 0:
        return dict.fromkeys(names)
    if mat.shape[1] == 1:
        return {k: [float(mat[i, 0])] * 2 for i, k in enumerate(names)}
    means = bootstrap_means(mat, seed=seed)
    return {k: _interval(means[i], level) for i, k in enumerate(names)}


def graded(records: Iterable[Record]) -> list[Record]:
    return [r for r in records if r.correct is not None]


def by_problem(records: Iterable[Record]) -> dict[str, list[Record]]:
    """Graded records per problem, in sample order."""
    out: dict[str, list[Record]] = defaultdict(list)
    for r in graded(records):
        out[r.problem_id].append(r)
    for v in out.values():
        v.sort(key=lambda r: r.sample)
    return out


def per_problem_accuracy(records: Iterable[Record]) -> dict[str, float]:
    """Mean correctness over each problem's samples (pass@1 as the mean over n samples)."""
    return {pid: sum(bool(r.correct) for r in v) / len(v) for pid, v in by_problem(records).items()}


def str_equal(a: str, b: str) -> bool:
    return " ".join(a.split()).lower() == " ".join(b.split()).lower()


def answer_clusters(answers: Sequence[str | None], same: SameAnswer) -> list[int]:
    """Cluster id per sample: equivalent answers (the task decides) share an id; -1 = no answer.

    Identical normalized strings are merged without calling `same`, so the common case costs
    one dict look-up per sample.
    """
    ids: list[int] = []
    reps: list[str] = []
    seen: dict[str, int] = {}
    for a in answers:
        if a is None:
            ids.append(-1)
            continue
        key = " ".join(a.split()).lower()
        cid = seen.get(key)
        if cid is None:
            cid = next((i for i, rep in enumerate(reps) if _safe_same(same, rep, a)), -1)
            if cid < 0:
                cid = len(reps)
                reps.append(a)
            seen[key] = cid
        ids.append(cid)
    return ids


def _safe_same(same: SameAnswer, a: str, b: str) -> bool:
    try:
        return bool(same(a, b))
    except Exception:  # noqa: BLE001 - a grader choking on model output means "not equal"
        return False


def majority_correct(samples: Sequence[Record], clusters: Sequence[int]) -> float:
    """Majority vote over the samples' answers; ties are split evenly (the expected score of a
    random tie-break), and samples without an answer do not vote."""
    sizes: dict[int, int] = defaultdict(int)
    right: dict[int, bool] = {}
    for r, c in zip(samples, clusters, strict=True):
        if c < 0:
            continue
        sizes[c] += 1
        right[c] = right.get(c, False) or bool(r.correct)
    if not sizes:
        return 0.0
    top = max(sizes.values())
    winners = [c for c, s in sizes.items() if s == top]
    return sum(right[c] for c in winners) / len(winners)


def k_values(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    if n >= 1 and ks[-1] != n:
        ks.append(n)
    return ks


def sample_accuracy(
    problems: dict[str, list[Record]], same: SameAnswer
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """pass@1, pass@k and maj@k over problems, plus the per-problem columns behind them.

    pass@k and maj@k for a k use the problems with at least k graded samples; maj@k votes over
    the first k samples (sample order), which is the standard maj@k estimator.
    """
    if not problems:
        return {"pass_at_1": None, "pass_at_k": None, "maj_at_k": None}, {}
    n_max = max(len(v) for v in problems.values())
    cols: dict[str, list[float]] = {"pass_at_1": []}
    pass_k: dict[str, list[float]] = {str(k): [] for k in k_values(n_max)}
    maj_k: dict[str, list[float]] = {str(k): [] for k in k_values(n_max) if k >= 2}
    for samples in problems.values():
        n = len(samples)
        c = sum(bool(r.correct) for r in samples)
        cols["pass_at_1"].append(c / n)
        clusters = answer_clusters([r.answer for r in samples], same) if n >= 2 else []
        for k in pass_k:
            pass_k[k].append(pass_at_k(n, c, int(k)) if int(k) <= n else np.nan)
        for k in maj_k:
            kk = int(k)
            maj_k[k].append(majority_correct(samples[:kk], clusters[:kk]) if kk <= n else np.nan)
    out: dict[str, Any] = {"pass_at_1": round(float(np.mean(cols["pass_at_1"])), 6)}
    out["pass_at_k"] = {k: _nanmean(v) for k, v in pass_k.items()}
    if maj_k:
        out["maj_at_k"] = {k: _nanmean(v) for k, v in maj_k.items()}
    else:
        out["maj_at_k"] = None
        out["maj_at_k_reason"] = "one sample per problem: majority voting needs --samples >= 2"
    for k, v in pass_k.items():
        cols[f"pass@{k}"] = v
    for k, v in maj_k.items():
        cols[f"maj@{k}"] = v
    return out, cols


def _nanmean(v: Sequence[float]) -> float | None:
    a = np.asarray(v, dtype=float)
    a = a[~np.isnan(a)]
    return round(float(a.mean()), 6) if a.size else None


def columns_ci(cols: dict[str, list[float]], seed: int = 0) -> dict[str, list[float] | None]:
    """Bootstrap intervals for per-problem columns; columns defined on the same problems share
    one resample (the usual case: every problem has every sample)."""
    groups: dict[tuple[bool, ...], dict[str, np.ndarray]] = defaultdict(dict)
    for name, v in cols.items():
        a = np.asarray(v, dtype=float)
        mask = ~np.isnan(a)
        groups[tuple(mask.tolist())][name] = a[mask]
    out: dict[str, list[float] | None] = {}
    for group in groups.values():
        out.update(bootstrap_cis(group, seed=seed))  # type: ignore[arg-type]
    return out


def role_summary(
    records: Sequence[Record], same_answer: SameAnswer | None = None, *, seed: int = 0
) -> dict[str, Any]:
    """accuracy, n, ci95 for one task x role, the sample metrics, and the counts that explain n
    (missing, errors, sandbox_errors: records kept but not graded)."""
    rs = graded(records)
    problems = by_problem(rs)
    missing = sorted({r.problem_id for r in records if r.finish_reason == "missing"})
    errors = sorted({r.problem_id for r in records if r.finish_reason == "error"})
    # Answers the sandbox could not grade: not in n (neither right nor wrong), never silently.
    sandbox = [r for r in records if r.sandbox_error]
    sample_stats, cols = sample_accuracy(problems, same_answer or str_equal)
    cis = columns_ci(cols, seed) if cols else {}
    out: dict[str, Any] = {
        "accuracy": round(sum(bool(r.correct) for r in rs) / len(rs), 6) if rs else None,
        "n": len(rs),
        "problems": len(problems),
        "ci95": cis.get("pass_at_1"),
        **sample_stats,
        "pass_at_k_ci95": {k: cis.get(f"pass@{k}") for k in sample_stats["pass_at_k"] or {}}
        or None,
        "maj_at_k_ci95": {k: cis.get(f"maj@{k}") for k in sample_stats["maj_at_k"] or {}} or None,
        "samples_per_problem": max((len(v) for v in problems.values()), default=0),
        "truncated": sum(r.truncated for r in rs),
        "lenient": sum(r.lenient for r in rs),
        "missing": len(missing),
        "errors": len(errors),
        "sandbox_errors": len(sandbox),
    }
    if missing:
        out["missing_ids"] = missing
    if errors:
        out["error_ids"] = errors
    if sandbox:
        out["sandbox_error_ids"] = sorted({r.problem_id for r in sandbox})
    return out


def subset_summary(
    records: Sequence[Record], same_answer: SameAnswer | None = None
) -> dict[str, Any] | None:
    """Per-subset (a BBH subtask, an AIME paper) accuracy and pass@1, when records carry one."""
    by_subset: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r.subset is not None:
            by_subset[r.subset].append(r)
    if not by_subset:
        return None
    out = {}
    for name in sorted(by_subset):
        s = role_summary(by_subset[name], same_answer)
        out[name] = {k: s[k] for k in ("accuracy", "pass_at_1", "n", "problems", "ci95")}
    return out


def overall_summary(
    records: Sequence[Record], tasks: Mapping[str, Mapping[str, Any]], *, seed: int = 0
) -> dict[str, Any]:
    """Every task together: accuracy over all samples, pass@1 over all problems (micro) and
    the mean of the tasks' pass@1 (macro, from the tasks' finished entries)."""
    out: dict[str, Any] = {
        "tasks": len(tasks),
        "sandbox_errors": sum(r.sandbox_error for r in records),
    }
    for role in ROLES:
        role_rs = [r for r in records if r.role == role]
        rs = graded(role_rs)
        if not rs:
            if any(r.sandbox_error for r in role_rs):
                out[role] = {
                    **dict.fromkeys(("accuracy", "pass_at_1", "macro_pass_at_1", "ci95")),
                    "n": 0,
                    "problems": 0,
                    "sandbox_errors": sum(r.sandbox_error for r in role_rs),
                }
            continue
        per_problem: dict[tuple[str, str], list[bool]] = defaultdict(list)
        for r in rs:
            per_problem[(r.task, r.problem_id)].append(bool(r.correct))
        p1 = [sum(v) / len(v) for v in per_problem.values()]
        task_p1 = [e[role]["pass_at_1"] for e in tasks.values() if role in e]
        task_p1 = [x for x in task_p1 if x is not None]
        out[role] = {
            "accuracy": round(sum(bool(r.correct) for r in rs) / len(rs), 6),
            "pass_at_1": round(float(np.mean(p1)), 6),
            "macro_pass_at_1": round(float(np.mean(task_p1)), 6) if task_p1 else None,
            "n": len(rs),
            "problems": len(p1),
            "ci95": bootstrap_ci(p1, seed=seed),
            "sandbox_errors": sum(r.sandbox_error for r in role_rs),
        }
    return out
