"""The remedy test: distill a student aimed at a diagnosed run's failures, then check, slice by
slice, whether the diagnosis was right.

`harness distill --student S --teacher T --from-failures RUN` collects teacher chains (never of
the run's own problems: every lineage of the run is held out), mixes them with the failure
slices weighted, fine-tunes S, and evaluates the trained student on the run's items with the
run's own settings. Each diagnosed slice (and, when the run holds several task specs, each of
them: planted slices) then gets before, after, the paired delta with its
bootstrap interval and McNemar p, and whether the delta agrees with the diagnosis: a mismatch
slice should improve (interval above 0); a capacity band should not (more of the same data
does not add depth), so it agrees when its interval does not lie above 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError
from harness.types import Record

REMEDY_JSON = "remedy.json"


@dataclass(frozen=True)
class RemedyResult:
    out: Path
    before: Path
    after: Path
    student_spec: str
    slices: list[dict[str, Any]]


def agreement(label: str | None, ci: Sequence[float] | None) -> str:
    """Whether a slice's paired delta agrees with its diagnosis (`-` when none is expected)."""
    if label is None or ci is None:
        return "-"
    lo, hi = ci
    if label == "mismatch":
        return "yes" if lo > 0 else "no" if hi <= 0 else "unclear"
    if label == "capacity":
        return "no" if lo > 0 else "yes"
    return "-"


def slice_rows(
    before: Sequence[Record],
    after: Sequence[Record],
    slices: Sequence[tuple[str, str | None, set[tuple[str, str]] | None]],
    same_answer: Mapping[str, Any],
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Per slice (name, diagnosis, items or None for all): before/after pass@1 of the student
    on the slice's items both runs graded, and the paired delta (after - before)."""
    from harness.metrics.paired import compare_runs

    rows: list[dict[str, Any]] = []
    for name, label, items in slices:

        def keep(r: Record, items: set[tuple[str, str]] | None = items) -> bool:
            return (
                r.role == "student"
                and r.parent_id is None
                and (items is None or (r.task, r.problem_id) in items)
            )

        b = [r for r in before if keep(r)]
        a = [r for r in after if keep(r)]
        stats = compare_runs(b, a, dict(same_answer), seed=seed)["overall"]
        n = stats.get("paired_problems") or 0
        shared = {(r.task, r.problem_id) for r in a} & {(r.task, r.problem_id) for r in b}
        rows.append(
            {
                "slice": name,
                "label": label,
                "n": n,
                "before": _pass1(b, shared),
                "after": _pass1(a, shared),
                "delta": stats.get("diff"),
                "delta_ci95": stats.get("diff_ci95"),
                "mcnemar_p": stats.get("mcnemar_p"),
                "agrees": agreement(label, stats.get("diff_ci95")),
            }
        )
    return rows


def _pass1(records: Sequence[Record], shared: set[tuple[str, str]]) -> float | None:
    by: dict[tuple[str, str], list[bool]] = {}
    for r in records:
        key = (r.task, r.problem_id)
        if key in shared and r.correct is not None:
            by.setdefault(key, []).append(bool(r.correct))
    if not by:
        return None
    return round(sum(sum(v) / len(v) for v in by.values()) / len(by), 6)


def evaluate_after(
    before: Path, student: str, out: Path, *, cache_dir: Path | None, progress: bool
) -> Path:
    """Run the trained student on the diagnosed run's tasks with that run's settings (limit,
    samples, seed, style, prompt tokens), greedy unless the run sampled."""
    from harness.config import RunConfig
    from harness.runner import run as run_eval

    config_path = before / "config.yaml"
    if not config_path.is_file():
        raise HarnessError(f"{before}: no config.yaml, so its settings cannot be repeated")
    saved = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    sampling = ((saved.get("resolved") or {}).get("student") or {}).get("sampling") or {}
    overrides: dict[str, Any] = {
        "student": student,
        "out": str(out),
        "run_id": "after",
        "fresh": False,
        "classify": "off",
        "chain_model": "none",
        "tasks": saved.get("tasks") or [],
    }
    if saved.get("max_new_tokens") is None and sampling.get("max_new_tokens"):
        overrides["max_new_tokens"] = int(sampling["max_new_tokens"])
    if saved.get("temperature") is None:
        overrides["temperature"] = float(sampling.get("temperature", 0.0))
    if cache_dir is not None:
        overrides["cache_dir"] = str(cache_dir)
    config = RunConfig.load_yaml(config_path, **overrides)
    return run_eval(config, progress=progress).run_dir


def remedy_report(
    before: Path, after: Path, heldout: Mapping[str, Any], seed: int = 0
) -> list[dict[str, Any]]:
    """Rows for every diagnosed slice, then all held-out items."""
    from harness.store import RunDir
    from harness.tasks import get_task

    b = list(RunDir(before).read_records())
    a = list(RunDir(after).read_records())
    same = {}
    for task in {r.task for r in b}:
        try:
            same[task] = get_task(task).same_answer
        except HarnessError:
            continue
    slices: list[tuple[str, str | None, set[tuple[str, str]] | None]] = []
    named = [f"{s['task']}/{s['dimension']}={s['value']}" for s in heldout.get("slices", [])]
    for s, name in zip(heldout.get("slices", []), named, strict=True):
        items = {(i["task"], i["problem_id"]) for i in s.get("items", [])}
        if named.count(name) > 1 and s.get("run_task"):  # one task in several specs
            name = f"{s['run_task']} [{s['dimension']}={s['value']}]"
        slices.append((name, s["label"], items))
    by_task = {t: {(t, p) for p in ids} for t, ids in heldout.get("problem_ids", {}).items()}
    if len(by_task) > 1:
        # a run of several task specs is a set of planted slices (e.g. one surface family, one
        # depth band): each gets its own row, whatever the classifier said of it
        slices += [(task, None, items) for task, items in sorted(by_task.items())]
    every = set().union(*by_task.values()) if by_task else set()
    slices.append(("all held-out items", None, every))
    return slice_rows(b, a, slices, same, seed=seed)


def remedy(
    student: str,
    teacher: str,
    from_failures: str | Path,
    out: Path,
    *,
    tasks: Sequence[str] | None = None,
    recipe: Path | None = None,
    runs: str = "runs",
    samples: int = 1,
    seed: int = 0,
    limit: int | None = None,
    data_dir: str | None = None,
    cache_dir: Path | None = None,
    settings: Any = None,
    progress: bool = True,
) -> RemedyResult:
    """Collect, mix, train, re-evaluate and report (see the module docstring)."""
    from harness.console import info
    from harness.distill.card import write_card
    from harness.distill.collect import collect, lineage_key
    from harness.distill.mix import HELDOUT, Recipe, mix, read_diagnosis
    from harness.distill.sft import TrainSettings, load_settings, train_sft

    diagnosis = read_diagnosis(from_failures, runs)
    mix_recipe = Recipe.load(recipe) if recipe is not None else Recipe()
    train: TrainSettings = settings if settings is not None else load_settings(recipe)
    train_tasks = list(tasks) if tasks else sorted(diagnosis.problems)
    out.mkdir(parents=True, exist_ok=True)
    info(f"distill: collecting teacher chains of {', '.join(train_tasks)}")
    collected = collect(
        teacher,
        train_tasks,
        out / "data",
        samples=samples,
        seed=seed,
        limit=limit,
        data_dir=data_dir,
        cache_dir=cache_dir,
        exclude=lambda p: lineage_key(p) in diagnosis.lineages,
        progress=progress,
    )
    info(f"distill: kept {collected.rows} chains of {collected.problems} problems")
    mixed = mix(out / "data", out / "mix", mix_recipe, from_failures=diagnosis.run, runs=runs)
    info(f"distill: training on {mixed.rows} rows")
    trained = train_sft(out / "mix", student, out / "train", train, cache_dir=cache_dir)
    spec = trained.student_spec()
    info(f"distill: evaluating {spec} on the held-out items")
    after = evaluate_after(
        diagnosis.run, spec, out / "runs", cache_dir=cache_dir, progress=progress
    )
    heldout = json.loads((out / "mix" / HELDOUT).read_text(encoding="utf-8"))
    rows = remedy_report(diagnosis.run, after, heldout, seed=seed)
    write_card(trained, mixed.manifest, rows)
    result = RemedyResult(out, diagnosis.run, after, spec, rows)
    (out / REMEDY_JSON).write_text(
        json.dumps(
            {
                "student": student,
                "teacher": teacher,
                "before": str(diagnosis.run),
                "after": str(after),
                "trained": spec,
                "collect": {"rows": collected.rows, "rejected": collected.rejected},
                "mix_rows": mixed.rows,
                "train": {"steps": trained.steps, "loss": trained.train_loss},
                "slices": rows,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return result


__all__ = [
    "REMEDY_JSON",
    "RemedyResult",
    "agreement",
    "evaluate_after",
    "remedy",
    "remedy_report",
    "slice_rows",
]
