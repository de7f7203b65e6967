"""The report's plots, built as plotly figures and handed on as their JSON (the page draws
them with the plotly.js bundled in the plotly package; nothing is drawn by hand).

Each builder returns a `Plot` (an element id, a title, the figure) or, when the run has
nothing to plot there, a `Note` saying why in one line.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.report.data import RunData, tokens_of
from harness.types import ROLES, Record

COLORS = {"teacher": "#4c78a8", "student": "#f58518", "compare": "#54a24b"}
PALETTE = (
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#72b7b2",
    "#b279a2",
    "#ff9da6",
    "#9d755d",
    "#bab0ac",
    "#eeca3b",
)


@dataclass(frozen=True)
class Plot:
    id: str
    title: str
    figure: dict[str, Any]
    caption: str = ""


@dataclass(frozen=True)
class Note:
    id: str
    title: str
    text: str


Shown = Plot | Note


def _label(text: Any) -> str:
    """A run's name (task, kind, run id) as plotly text: plotly reads a few HTML tags in its
    labels (links among them), so `<`, `>` and `&` are written as entities, shown as is."""
    return html.escape(str(text), quote=False)


def _json(fig: Any) -> dict[str, Any]:
    """The figure as plain JSON (numpy arrays become lists), validated by plotly."""
    import plotly.io as pio

    out: dict[str, Any] = json.loads(pio.to_json(fig, validate=True, pretty=False))
    return out


def _layout(fig: Any, **extra: Any) -> None:
    fig.update_layout(
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 30, "b": 60},
        height=360,
        legend={"orientation": "h", "y": -0.25},
        **extra,
    )


def _err(value: float | None, ci: Sequence[float] | None) -> tuple[float, float]:
    if value is None or not ci:
        return 0.0, 0.0
    return max(0.0, float(ci[1]) - value), max(0.0, value - float(ci[0]))


def _groups(metrics: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The tasks, then `overall` when there is more than one task."""
    tasks = list(metrics["tasks"].items())
    if len(tasks) > 1 and isinstance(metrics.get("overall"), dict):
        tasks.append(("overall", metrics["overall"]))
    return tasks


def accuracy_by_task(run: RunData, other: RunData | None = None) -> Shown:
    import plotly.graph_objects as go

    groups = _groups(run.metrics)
    fig = go.Figure()
    sides: list[tuple[str, str, RunData]] = [
        ("teacher", "teacher", run),
        ("student", "student", run),
    ]
    if other is not None:
        sides.append(("student", "compare", other))
    for role, color_key, source in sides:
        names, ys, up, down = [], [], [], []
        theirs = _groups(source.metrics)
        by_name = dict(theirs)
        for name, _ in groups:
            m = (by_name.get(name) or {}).get(role) or {}
            y = m.get("accuracy")
            if y is None:
                continue
            hi, lo = _err(y, m.get("ci95"))
            names.append(_label(name))
            ys.append(y)
            up.append(hi)
            down.append(lo)
        label = role if color_key != "compare" else f"student ({source.run_id})"
        if color_key == "student" and other is not None:
            label = f"student ({run.run_id})"
        fig.add_trace(
            go.Bar(
                name=_label(label),
                x=names,
                y=ys,
                marker_color=COLORS[color_key],
                error_y={"type": "data", "symmetric": False, "array": up, "arrayminus": down},
            )
        )
    _layout(fig, barmode="group", yaxis={"title": "accuracy", "range": [0, 1.05]})
    return Plot(
        "fig-accuracy",
        "Accuracy by task",
        _json(fig),
        "Error bars: 95% bootstrap intervals over problems (metrics ci95).",
    )


def _wilson(k: int, n: int) -> tuple[float, float]:
    from harness.classify.advice import wilson

    return wilson(k, n)


def _frontier_from_failures(run: RunData, task: str) -> float | None:
    values = sorted(
        float(f["features"]["frontier"])
        for f in run.failures
        if f.get("task") == task
        and isinstance(f.get("features"), dict)
        and isinstance(f["features"].get("frontier"), int | float)
    )
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def accuracy_by_depth(run: RunData) -> list[Shown]:
    """Per task whose records have a depth: accuracy per depth of each model on the original
    problems (Wilson intervals), the logistic fit over problems and the frontier."""
    import plotly.graph_objects as go

    from harness.classify.features import fit_frontier

    by_task: dict[str, list[Record]] = defaultdict(list)
    for r in run.records:
        if r.steps is not None and r.perturbation is None and r.correct is not None:
            by_task[r.task].append(r)
    out: list[Shown] = []
    for n_task, task in enumerate(sorted(by_task)):
        recs = by_task[task]
        depths = sorted({int(r.steps or 0) for r in recs})
        fig = go.Figure()
        notes = []
        for role in ROLES:
            mine = [r for r in recs if r.role == role]
            if not mine:
                continue
            k: dict[int, int] = defaultdict(int)
            n: dict[int, int] = defaultdict(int)
            for r in mine:
                k[int(r.steps or 0)] += bool(r.correct)
                n[int(r.steps or 0)] += 1
            xs = sorted(n)
            ys = [k[d] / n[d] for d in xs]
            cis = [_wilson(k[d], n[d]) for d in xs]
            fig.add_trace(
                go.Scatter(
                    name=f"{role} (measured)",
                    x=xs,
                    y=ys,
                    mode="markers",
                    marker={"color": COLORS[role], "size": 9},
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": [hi - y for y, (_, hi) in zip(ys, cis, strict=True)],
                        "arrayminus": [y - lo for y, (lo, _) in zip(ys, cis, strict=True)],
                    },
                    customdata=[n[d] for d in xs],
                    hovertemplate="depth %{x}: %{y:.3f} of %{customdata}<extra></extra>",
                )
            )
            problems: dict[str, list[Record]] = defaultdict(list)
            for r in mine:
                problems[r.problem_id].append(r)
            d_arr = np.array([float(v[0].steps or 0) for v in problems.values()])
            k_arr = np.array([float(sum(bool(r.correct) for r in v)) for v in problems.values()])
            n_arr = np.array([float(len(v)) for v in problems.values()])
            fit = fit_frontier(d_arr, k_arr, n_arr, np.random.default_rng(0), boot=False)
            if len(xs) >= 2:
                grid = np.linspace(xs[0], xs[-1], 60)
                fig.add_trace(
                    go.Scatter(
                        name=f"{role} (logistic fit)",
                        x=grid.round(3).tolist(),
                        y=fit.predict(grid).round(4).tolist(),
                        mode="lines",
                        line={"color": COLORS[role]},
                        hoverinfo="skip",
                    )
                )
            frontier, source = fit.frontier, "fit on all originals"
            if role == "student":
                classified = _frontier_from_failures(run, task)
                if classified is not None:
                    frontier, source = classified, "familiar forms, from the classifier"
            if frontier is None:
                continue
            if depths[0] <= frontier <= depths[-1]:
                fig.add_vline(
                    x=frontier,
                    line={"color": COLORS[role], "dash": "dash"},
                    annotation_text=f"{role} frontier {frontier:.1f}",
                    annotation_position="top",
                )
                notes.append(f"{role} frontier {frontier:.1f} ({source})")
            elif frontier < depths[0]:
                notes.append(f"{role} frontier below depth {depths[0]} ({source})")
            else:
                notes.append(f"{role} frontier beyond depth {depths[-1]} ({source})")
        _layout(
            fig,
            xaxis={"title": "depth (reasoning steps of the gold solution)", "dtick": 1},
            yaxis={"title": "accuracy", "range": [-0.05, 1.05]},
        )
        out.append(
            Plot(
                f"fig-depth-{n_task}",
                f"Accuracy vs depth: {task}",
                _json(fig),
                "Original problems; error bars are Wilson 95% intervals. Frontier: the depth "
                "where the fit crosses 50%. " + "; ".join(notes),
            )
        )
    if not out:
        out.append(Note("fig-depth", "Accuracy vs depth", "No task in this run records a depth."))
    return out


def reliability(run: RunData) -> Shown:
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            name="perfect calibration",
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"color": "#999", "dash": "dot"},
            hoverinfo="skip",
        )
    )
    drawn = 0
    reasons = []
    for n_task, (task, m) in enumerate(run.metrics["tasks"].items()):
        for role in ROLES:
            cal = (m.get(role) or {}).get("calibration") or {}
            bins = cal.get("reliability")
            if not cal.get("confidence_source") or not bins:
                if cal.get("reason"):
                    reasons.append(f"{task} {role}: {cal['reason']}")
                continue
            drawn += 1
            fig.add_trace(
                go.Scatter(
                    name=_label(
                        f"{task} {role} ({cal['confidence_source']}, ECE {cal.get('ece', 0):.3f})"
                    ),
                    x=[b["confidence"] for b in bins],
                    y=[b["accuracy"] for b in bins],
                    mode="lines+markers",
                    marker={
                        "size": [max(6.0, min(24.0, 4 + 2 * float(np.sqrt(b["n"])))) for b in bins],
                        "color": PALETTE[(2 * n_task + (role == "student")) % len(PALETTE)],
                    },
                    customdata=[b["n"] for b in bins],
                    hovertemplate="confidence %{x:.2f}: accuracy %{y:.2f} (n=%{customdata})"
                    "<extra></extra>",
                )
            )
    if not drawn:
        why = reasons[0] if reasons else "no calibration section in the metrics"
        return Note("fig-reliability", "Reliability diagram", f"No confidences to plot: {why}.")
    _layout(
        fig,
        xaxis={"title": "mean confidence in bin", "range": [0, 1]},
        yaxis={"title": "accuracy in bin", "range": [0, 1.05]},
    )
    return Plot(
        "fig-reliability",
        "Reliability diagram",
        _json(fig),
        "Equal-width confidence bins (metrics calibration.reliability); marker size grows "
        "with the bin's answers.",
    )


def lengths(run: RunData) -> Shown:
    """Output length of right, wrong and truncated answers, per model."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    roles = [role for role in ROLES if any(r.role == role for r in run.records)]
    if not roles:
        return Note("fig-lengths", "Reasoning length", "No records.")
    fig = make_subplots(rows=1, cols=len(roles), subplot_titles=roles)
    kinds = (("right", "#54a24b"), ("wrong", "#e45756"), ("truncated", "#7f7f7f"))
    for col, role in enumerate(roles, start=1):
        values: dict[str, list[int]] = defaultdict(list)
        units = set()
        for r in run.records:
            if r.role != role or r.finish_reason in ("missing", "error"):
                continue
            n, unit = tokens_of(r)
            units.add(unit)
            kind = "truncated" if r.truncated else ("right" if r.correct else "wrong")
            values[kind].append(n)
        for kind, color in kinds:
            if not values[kind]:
                continue
            fig.add_trace(
                go.Histogram(
                    name=f"{role} {kind} ({len(values[kind])})",
                    x=values[kind],
                    marker_color=color,
                    opacity=0.85,
                    nbinsx=30,
                ),
                row=1,
                col=col,
            )
        unit = (
            "tokens" if units == {"tokens"} else "words" if units == {"words"} else "tokens/words"
        )
        fig.update_xaxes(title_text=f"output length ({unit})", row=1, col=col)
        fig.update_yaxes(title_text="outputs", row=1, col=col)
    _layout(fig, barmode="stack")
    return Plot(
        "fig-lengths",
        "Reasoning length",
        _json(fig),
        "Completion tokens (words where the backend gives no token count) of each output, "
        "right, wrong and truncated (cut at the token limit or never closing its reasoning).",
    )


def ood(run: RunData) -> Shown:
    import plotly.graph_objects as go

    rows = [
        (task, kind, entry)
        for task, m in run.metrics["tasks"].items()
        for kind, entry in ((m.get("ood") or {}).get("kinds") or {}).items()
    ]
    if not rows:
        return Note(
            "fig-ood",
            "OOD delta by perturbation",
            "This run has no perturbed variants (run with --perturb).",
        )
    fig = go.Figure()
    several = len({task for task, _, _ in rows}) > 1
    for role in ROLES:
        xs, ys, up, down = [], [], [], []
        for task, kind, entry in rows:
            e = entry.get(role) or {}
            if e.get("delta") is None:
                continue
            hi, lo = _err(e["delta"], e.get("delta_ci95"))
            xs.append(_label(f"{task} · {kind}" if several else kind))
            ys.append(e["delta"])
            up.append(hi)
            down.append(lo)
        fig.add_trace(
            go.Bar(
                name=role,
                x=xs,
                y=ys,
                marker_color=COLORS[role],
                error_y={"type": "data", "symmetric": False, "array": up, "arrayminus": down},
            )
        )
    fig.add_hline(y=0, line={"color": "#666", "width": 1})
    _layout(fig, barmode="group", yaxis={"title": "pass@1 change vs the parent problems"})
    return Plot(
        "fig-ood",
        "OOD delta by perturbation kind",
        _json(fig),
        "Paired change of pass@1 on each kind's variants against their own parents; error "
        "bars are 95% bootstrap intervals (metrics ood).",
    )


def failure_causes(run: RunData) -> Shown:
    import plotly.graph_objects as go

    section = run.metrics.get("failures")
    if not isinstance(section, dict):
        return Note(
            "fig-failures",
            "Failure causes",
            "This run has no failures section (run `harness classify`).",
        )
    if "error" in section:
        return Note(
            "fig-failures", "Failure causes", f"Failures were not labelled: {section['error']}"
        )
    tasks = section.get("tasks") or {}
    labels = [str(label) for label in section.get("labels") or []]
    shown = [
        label for label in labels if any((g.get("counts") or {}).get(label) for g in tasks.values())
    ]
    if not shown:
        return Note("fig-failures", "Failure causes", "The student failed no graded item.")
    fig = go.Figure()
    names = list(tasks)
    for i, label in enumerate(shown):
        fig.add_trace(
            go.Bar(
                name=_label(label.replace("_", " ")),
                x=[_label(t) for t in names],
                y=[(tasks[t].get("counts") or {}).get(label, 0) for t in names],
                marker_color=PALETTE[i % len(PALETTE)],
            )
        )
    _layout(fig, barmode="stack", yaxis={"title": "failed student items"})
    return Plot(
        "fig-failures",
        "Failure causes by task",
        _json(fig),
        "Each failed student item's label (failures.jsonl): mechanical causes first, then "
        "capacity, mismatch or undetermined.",
    )


def routing_groups(run: RunData) -> list[tuple[str, dict[str, Any]]]:
    """(name, routing section) per task and overall, where the run has one."""
    out = []
    for task, m in run.metrics["tasks"].items():
        if isinstance(m.get("routing"), dict):
            out.append((task, m["routing"]))
    overall = (run.metrics.get("overall") or {}).get("routing")
    if isinstance(overall, dict):
        out.append(("overall", overall))
    return out


def routing(run: RunData) -> Shown:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    groups = [(name, g) for name, g in routing_groups(run) if g.get("curve")]
    if not groups:
        text = (
            "This run has no routing section in its metrics."
            if not routing_groups(run)
            else "The routing section has no curve: "
            + "; ".join(f"{n}: {g.get('reason')}" for n, g in routing_groups(run))
        )
        return Note("fig-routing", "Routing curve", text)
    tokens = any(g.get("teacher_tokens_known") for _, g in groups)
    titles = ["accuracy vs fraction routed to the teacher"]
    if tokens:
        titles.append("accuracy vs teacher tokens")
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles)
    for i, (name, g) in enumerate(groups):
        color = PALETTE[i % len(PALETTE)]
        curve = g["curve"]
        fig.add_trace(
            go.Scatter(
                name=_label(name),
                x=[p.get("fraction") for p in curve],
                y=[p.get("accuracy") for p in curve],
                mode="lines+markers",
                line={"color": color},
                legendgroup=_label(name),
            ),
            row=1,
            col=1,
        )
        if g.get("teacher_accuracy") is not None:
            fig.add_trace(
                go.Scatter(
                    name=_label(f"{name}: teacher"),
                    x=[0, 1],
                    y=[g["teacher_accuracy"]] * 2,
                    mode="lines",
                    line={"color": color, "dash": "dot"},
                    legendgroup=_label(name),
                    hoverinfo="skip",
                ),
                row=1,
                col=1,
            )
        if tokens and g.get("teacher_tokens_known"):
            fig.add_trace(
                go.Scatter(
                    name=_label(f"{name} (tokens)"),
                    x=[p.get("teacher_tokens") for p in curve],
                    y=[p.get("accuracy") for p in curve],
                    mode="lines+markers",
                    line={"color": color},
                    legendgroup=_label(name),
                    showlegend=False,
                ),
                row=1,
                col=2,
            )
    fig.update_xaxes(title_text="fraction of items routed (least confident first)", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", row=1, col=1)
    if tokens:
        fig.update_xaxes(title_text="teacher tokens spent", row=1, col=2)
    _layout(fig)
    return Plot(
        "fig-routing",
        "Routing curve",
        _json(fig),
        "Send the student's least confident answers to the teacher: accuracy as the routed "
        "share grows (dotted: the teacher alone).",
    )


def all_plots(run: RunData, other: RunData | None = None) -> list[Shown]:
    """Every plot of the report, in page order."""
    return [
        accuracy_by_task(run, other),
        *accuracy_by_depth(run),
        reliability(run),
        lengths(run),
        ood(run),
        failure_causes(run),
        routing(run),
    ]
