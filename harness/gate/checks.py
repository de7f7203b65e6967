"""Rules against two snapshots: one verdict per task and check, and the gate's exit code."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from harness.gate.rules import DEFAULT_ALPHA, Rules, TaskRules
from harness.gate.snapshot import Item, Snapshot, TaskSnapshot
from harness.gate.stats import (
    RESAMPLES,
    DropTest,
    holm,
    paired_binary,
    paired_bootstrap,
    unpaired_binary,
    unpaired_bootstrap,
)

Verdict = Literal["pass", "warn", "fail", "skip"]
VERDICTS: tuple[Verdict, ...] = ("pass", "warn", "fail", "skip")
"""warn: passes, but worth a look (a drop above the allowance that the data do not show)."""


@dataclass(frozen=True)
class Check:
    """One task x check. Accuracy figures are fractions; delta, ci and limit of the accuracy
    drop and OOD gaps are in points."""

    task: str
    check: str
    """accuracy_drop, min_accuracy, max_ece, max_truncation, max_ood_gap:<kind>,
    min_retention, max_cause_share:<label>, or present (a baseline task the candidate lacks)."""
    verdict: Verdict
    message: str
    value: float | None = None
    """The candidate's value (accuracy drop: its accuracy on the compared items)."""
    baseline: float | None = None
    limit: float | None = None
    """The rule's number (max_drop: the allowed drop in points)."""
    limit_text: str = ""
    delta: float | None = None
    """Candidate minus baseline (points for accuracy and OOD gaps)."""
    ci: tuple[float, float] | None = None
    """Interval of delta (accuracy: the (1 - alpha) interval, in points)."""
    p: float | None = None
    """Accuracy: Holm-adjusted p of H0 'the drop is within the allowance'."""
    p_raw: float | None = None
    p_change: float | None = None
    n: int | None = None
    method: str = ""
    unit: Literal["fraction", "points"] = "fraction"

    @property
    def name(self) -> str:
        return f"{self.task} :: {self.check}"


@dataclass(frozen=True)
class GateResult:
    checks: tuple[Check, ...]
    alpha: float
    baseline: Snapshot
    candidate: Snapshot
    notes: tuple[str, ...] = ()
    tested: int = 0
    """Accuracy tests in Holm's family."""

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "fail"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def counts(self) -> dict[str, int]:
        return {v: sum(c.verdict == v for c in self.checks) for v in VERDICTS}


def _by_problem(items: Sequence[Item]) -> dict[str, list[bool]]:
    out: dict[str, list[bool]] = defaultdict(list)
    for pid, _sample, ok in sorted(items):
        out[pid].append(ok)
    return out


def _pt(x: float) -> str:
    return f"{100 * x:.1f}"


def drop_test(
    base: TaskSnapshot,
    cand: TaskSnapshot,
    max_drop: float,
    alpha: float,
    *,
    resamples: int = RESAMPLES,
) -> tuple[DropTest, float, float, str]:
    """The accuracy-drop test of one task: the test, the baseline's and the candidate's
    accuracy on the compared items, and what was compared (for the message)."""
    margin = max_drop / 100.0
    a, b = _by_problem(base.items), _by_problem(cand.items)
    shared = sorted(set(a) & set(b))
    if shared:
        left = (len(a) - len(shared), len(b) - len(shared))
        what = f"{len(shared)} shared problems"
        if any(left):
            what += f" ({left[0]} baseline-only and {left[1]} candidate-only left out)"
        base_mean = [sum(a[p]) / len(a[p]) for p in shared]
        cand_mean = [sum(b[p]) / len(b[p]) for p in shared]
        acc = (sum(base_mean) / len(shared), sum(cand_mean) / len(shared))
        if all(len(a[p]) == 1 and len(b[p]) == 1 for p in shared):
            worse = sum(a[p][0] and not b[p][0] for p in shared)
            better = sum(b[p][0] and not a[p][0] for p in shared)
            test = paired_binary(worse, better, len(shared), margin, alpha)
            what += f", {worse} right only in the baseline, {better} only in the candidate"
        else:
            diffs = [x - y for x, y in zip(base_mean, cand_mean, strict=True)]
            test = paired_bootstrap(diffs, margin, alpha, resamples=resamples)
            what += ", per-problem mean over samples"
        return test, acc[0], acc[1], what
    ka = [sum(v) / len(v) for v in a.values()]
    kb = [sum(v) / len(v) for v in b.values()]
    acc = (sum(ka) / len(ka), sum(kb) / len(kb))
    what = f"no shared problems: {len(a)} baseline and {len(b)} candidate problems, unpaired"
    if all(len(v) == 1 for v in a.values()) and all(len(v) == 1 for v in b.values()):
        test = unpaired_binary(
            sum(v[0] for v in a.values()),
            len(a),
            sum(v[0] for v in b.values()),
            len(b),
            margin,
            alpha,
        )
    else:
        test = unpaired_bootstrap(ka, kb, margin, alpha, resamples=resamples)
    return test, acc[0], acc[1], what


def _accuracy_check(
    task: str,
    base: TaskSnapshot,
    cand: TaskSnapshot,
    rules: TaskRules,
    alpha: float,
    resamples: int,
) -> Check:
    assert rules.max_drop is not None
    empty = Check(
        task=task,
        check="accuracy_drop",
        verdict="skip",
        message=f"the baseline graded no item of {task}: no accuracy to compare against",
        value=cand.accuracy,
        limit=rules.max_drop,
        limit_text=f"drop <= {rules.max_drop:g}pt",
        unit="points",
    )
    if not base.items:
        return empty
    test, acc_b, acc_c, what = drop_test(base, cand, rules.max_drop, alpha, resamples=resamples)
    lo, hi = test.ci
    return replace(
        empty,
        verdict="pass",  # decided after Holm's correction, over every task's test
        message=what,
        value=acc_c,
        baseline=acc_b,
        delta=-100 * test.drop,
        ci=(-100 * hi, -100 * lo),
        p_raw=test.p,
        p_change=test.p_change,
        n=test.n,
        method=test.method,
    )


def _decide_accuracy(check: Check, p: float, alpha: float, family: int) -> Check:
    """The verdict of an accuracy drop from its Holm-adjusted p."""
    assert check.delta is not None and check.ci is not None and check.limit is not None
    drop, (lo, hi) = -check.delta, (-check.ci[1], -check.ci[0])
    level = f"{1 - alpha:.0%}"
    holm_note = f" (Holm over {family} tasks; raw p {check.p_raw:.3g})" if family > 1 else ""
    said = (
        f"accuracy drop {drop:.1f}pt, {level} CI {lo:.1f} to {hi:.1f}pt, allowed "
        f"{check.limit:g}pt: p = {p:.3g}{holm_note}; {check.method} on {check.message}"
    )
    if p < alpha:
        verdict: Verdict = "fail"
        message = f"regression: {said}; the drop is shown to exceed the allowance"
    elif drop > check.limit:
        verdict = "warn"
        message = f"{said}; above the allowance but not shown to exceed it (p >= {alpha:g})"
    else:
        verdict = "pass"
        message = said
    return replace(check, verdict=verdict, message=message, p=p)


Getter = Callable[[TaskSnapshot], float | None]


def _threshold(
    task: str,
    name: str,
    label: str,
    base: TaskSnapshot | None,
    cand: TaskSnapshot,
    get: Getter,
    limit: float,
    upper: bool,
    reason: str,
    missing: str,
    unit: Literal["fraction", "points"] = "fraction",
) -> Check:
    value = get(cand)
    baseline = get(base) if base is not None else None
    sign = "<=" if upper else ">="
    limit_text = f"{sign} {limit:g}" + ("pt" if unit == "points" else "")
    if value is None:
        verdict: Verdict = "fail" if missing == "fail" else "skip"
        message = (
            f"the candidate has no {label} for {task} ({reason}): the rule cannot be checked"
            + ("; set `missing: skip` to let it pass" if verdict == "fail" else "")
        )
    else:
        ok = value <= limit if upper else value >= limit
        verdict = "pass" if ok else "fail"
        shown = f"{value:.1f}pt" if unit == "points" else f"{value:.3g}"
        message = f"{label} {shown} (candidate), limit {limit_text}"
        if baseline is not None:
            was = f"{baseline:.1f}pt" if unit == "points" else f"{baseline:.3g}"
            message += f"; baseline {was}"
        if not ok:
            message = f"regression: {message}"
    return Check(
        task=task,
        check=name,
        verdict=verdict,
        message=message,
        value=value,
        baseline=baseline,
        limit=limit,
        limit_text=limit_text,
        delta=None if value is None or baseline is None else value - baseline,
        method="candidate's value",
        unit=unit,
    )


def _threshold_checks(
    task: str, base: TaskSnapshot | None, cand: TaskSnapshot, rules: TaskRules
) -> list[Check]:
    out: list[Check] = []
    r, why, miss = rules, cand.reasons, rules.missing
    if r.min_accuracy is not None:
        out.append(
            _threshold(
                task,
                "min_accuracy",
                "accuracy",
                base,
                cand,
                lambda t: t.accuracy,
                r.min_accuracy,
                False,
                "no graded item",
                miss,
            )
        )
    if r.max_ece is not None:
        source = f" ({cand.ece_source})" if cand.ece_source else ""
        out.append(
            _threshold(
                task,
                "max_ece",
                f"ECE{source}",
                base,
                cand,
                lambda t: t.ece,
                r.max_ece,
                True,
                why.get("ece", "not measured"),
                miss,
            )
        )
    if r.max_truncation is not None:
        out.append(
            _threshold(
                task,
                "max_truncation",
                "truncation rate",
                base,
                cand,
                lambda t: t.truncated_rate,
                r.max_truncation,
                True,
                why.get("truncated_rate", "not measured"),
                miss,
            )
        )
    if r.max_ood_gap is not None:
        # every kind either run has: a kind the candidate lost is a gap it cannot show
        kinds = sorted(set(cand.ood_gap) | set(base.ood_gap if base else {})) or [""]
        for kind in kinds:

            def gap(t: TaskSnapshot, k: str = kind) -> float | None:
                return t.ood_gap.get(k)

            out.append(
                _threshold(
                    task,
                    f"max_ood_gap:{kind}" if kind else "max_ood_gap",
                    f"OOD gap ({kind})" if kind else "OOD gap",
                    base,
                    cand,
                    gap,
                    r.max_ood_gap,
                    True,
                    why.get("ood")
                    or (
                        f"no parent of its {kind} variants was scored"
                        if kind in cand.ood_gap
                        else f"no {kind} variants in the candidate run"
                    ),
                    miss,
                    unit="points",
                )
            )
    if r.min_retention is not None:
        out.append(
            _threshold(
                task,
                "min_retention",
                "retention",
                base,
                cand,
                lambda t: t.retention,
                r.min_retention,
                False,
                why.get("retention", "not measured"),
                miss,
            )
        )
    for label, limit in sorted(r.max_cause_share.items()):

        def share(t: TaskSnapshot, lab: str = label) -> float | None:
            if t.failures is None:
                return None
            return 0.0 if t.failures == 0 else t.cause_shares.get(lab)

        out.append(
            _threshold(
                task,
                f"max_cause_share:{label}",
                f"share of failures labelled {label}",
                base,
                cand,
                share,
                limit,
                True,
                why.get("failures", "not labelled"),
                miss,
            )
        )
    return out


def _config_notes(base: Snapshot, cand: Snapshot) -> list[str]:
    """Where the two runs' identities differ beyond the student and seed (worth saying: a
    changed task limit or token budget explains a drop as well as a worse model does)."""
    if not base.config or not cand.config:
        return []
    differ = [
        k
        for k in sorted(set(base.config) | set(cand.config))
        if k not in ("student", "seed") and base.config.get(k) != cand.config.get(k)
    ]
    return [
        f"the runs differ in {k}: baseline {base.config.get(k)!r}, candidate {cand.config.get(k)!r}"
        for k in differ
    ]


def evaluate(
    baseline: Snapshot,
    candidate: Snapshot,
    rules: Rules,
    alpha: float | None = None,
    *,
    resamples: int = RESAMPLES,
) -> GateResult:
    """Every rule on every task: the baseline's tasks (a missing one fails), then the
    candidate's tasks the baseline lacks (threshold rules only)."""
    a = alpha if alpha is not None else rules.alpha if rules.alpha is not None else DEFAULT_ALPHA
    checks: list[Check] = []
    notes = _config_notes(baseline, candidate)
    for task, base in baseline.tasks.items():
        cand = candidate.tasks.get(task)
        task_rules = rules.for_task(task)
        if cand is None or not cand.items:
            what = "has no results for" if cand is None else "graded no item of"
            checks.append(
                Check(
                    task=task,
                    check="present",
                    verdict="fail",
                    message=(
                        f"regression: the candidate {what} task {task}, which the baseline "
                        f"has ({len(base.items)} items): evaluate every baseline task "
                        f"(candidate tasks: {', '.join(candidate.tasks) or 'none'})"
                    ),
                    baseline=base.accuracy,
                    n=len(base.items),
                )
            )
            continue
        if task_rules.max_drop is not None:
            checks.append(_accuracy_check(task, base, cand, task_rules, a, resamples))
        checks += _threshold_checks(task, base, cand, task_rules)
    for task, cand in candidate.tasks.items():
        if task in baseline.tasks:
            continue
        notes.append(f"task {task} is new (not in the baseline): no accuracy drop to test")
        checks += _threshold_checks(task, None, cand, rules.for_task(task))
    named = set(baseline.tasks) | set(candidate.tasks)
    names = named | {t.split(":", 1)[0] for t in named}
    unused = [key for key in rules.tasks if key != "*" and key not in names]
    if unused:
        notes.append(f"rules for tasks in neither run (misspelt?): {', '.join(unused)}")
    tested = [i for i, c in enumerate(checks) if c.check == "accuracy_drop" and c.p_raw is not None]
    adjusted = holm([checks[i].p_raw or 1.0 for i in tested])
    for i, p in zip(tested, adjusted, strict=True):
        checks[i] = _decide_accuracy(checks[i], p, a, len(tested))
    return GateResult(tuple(checks), a, baseline, candidate, tuple(notes), len(tested))
