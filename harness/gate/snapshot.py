"""What the gate compares: a run's student, per task, as the rules need it.

A snapshot comes from a run folder (metrics.json, records.jsonl, config.yaml) or from a
baseline file (`harness gate --save-baseline RUN --out baseline.json`), small enough to
commit: the metrics the rules read plus each graded student item's correctness (task,
problem id, sample, right or wrong; never a text). Baseline file, format version 1:

```
{
  "format": "harness-gate-baseline",
  "version": 1,
  "run_id": str, "student": str | null, "teacher": str | null, "harness_version": str | null,
  "config": {...},            the run's identity (RunConfig.identity(): what decides records)
  "config_digest": str,       sha256 of that identity, first 16 hex digits
  "tasks": {
    "<task spec>": {
      "accuracy": float | null, "n": int, "problems": int, "samples_per_problem": int,
      "ece": float | null, "ece_source": str | null,
      "truncated_rate": float | null, "retention": float | null,
      "ood_gap": {"<kind>": float | null},       points: original minus variant accuracy
      "failures": {"n": int, "shares": {"<label>": float | null}} | null,
      "reasons": {"<metric>": str},              why a metric is null
      "items": [[problem_id, sample, 0 | 1], ...]  graded student originals, sorted
    }
  }
}
```

Loading validates all of it: a file that is not this, or another version, is one line and
exit 2, never a half-read baseline that passes everything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.store import RunDir

FORMAT = "harness-gate-baseline"
VERSION = 1
Item = tuple[str, int, bool]
"""(problem id, sample, correct)."""


@dataclass(frozen=True)
class TaskSnapshot:
    """One task of one run's student: the rules' metrics and every graded original item."""

    accuracy: float | None
    n: int
    problems: int
    samples_per_problem: int
    ece: float | None = None
    ece_source: str | None = None
    truncated_rate: float | None = None
    retention: float | None = None
    ood_gap: Mapping[str, float | None] = field(default_factory=dict)
    """Per perturbation kind, in points: original minus variant accuracy (paired on parents)."""
    failures: int | None = None
    """Labelled failures of this task; None: the run's failures were not labelled."""
    cause_shares: Mapping[str, float | None] = field(default_factory=dict)
    reasons: Mapping[str, str] = field(default_factory=dict)
    """Why a metric is None, by metric name (ece, truncated_rate, retention, ood, failures)."""
    items: tuple[Item, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    run_id: str
    source: str
    """Where it was read from, for messages: `run runs/x` or `baseline file b.json`."""
    tasks: Mapping[str, TaskSnapshot]
    student: str | None = None
    teacher: str | None = None
    harness_version: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def config_digest(self) -> str:
        return config_digest(self.config)


def config_digest(config: Mapping[str, Any]) -> str:
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _get(d: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def task_from_metrics(
    task: str, metrics: Mapping[str, Any], items: tuple[Item, ...]
) -> TaskSnapshot:
    """A task's snapshot from a metrics.json document and its graded student items."""
    entry = _get(metrics, "tasks", task) or {}
    student = entry.get("student") or {}
    calibration = student.get("calibration") or {}
    health = student.get("health") or {}
    paired = entry.get("paired") or {}
    reasons: dict[str, str] = {}
    ece = _num(calibration.get("ece"))
    if ece is None:
        reasons["ece"] = str(
            calibration.get("reason") or "no calibration section in the run's metrics"
        )
    truncated = _num(health.get("truncated_rate"))
    if truncated is None:
        reasons["truncated_rate"] = str(health.get("reason") or "no health section")
    retention = _num(paired.get("retention"))
    if retention is None:
        reasons["retention"] = str(
            paired.get("retention_reason")
            or paired.get("reason")
            or "no teacher-student pairs in the run"
        )
    kinds = _get(entry, "ood", "kinds") or {}
    gaps: dict[str, float | None] = {}
    for kind, k in sorted(kinds.items()):
        delta = _num(_get(k, "student", "delta"))
        gaps[str(kind)] = None if delta is None else round(-100.0 * delta, 6)
    if not kinds:
        reasons["ood"] = "no perturbed variants in the run (run with --perturb)"
    section = metrics.get("failures")
    failures: int | None = None
    shares: dict[str, float | None] = {}
    if isinstance(section, dict) and isinstance(section.get("tasks"), dict):
        got = section["tasks"].get(task)
        failures = int(got["n"]) if isinstance(got, dict) else 0
        for label, s in ((got or {}).get("shares") or {}).items():
            shares[str(label)] = _num(_get(s, "share"))
    elif isinstance(section, dict) and section.get("error"):
        reasons["failures"] = f"labelling the failures failed: {section['error']}"
    else:
        reasons["failures"] = "the run's failures are not labelled (run `harness classify RUN`)"
    return TaskSnapshot(
        accuracy=_num(student.get("accuracy")),
        n=int(student.get("n") or 0),
        problems=int(student.get("problems") or 0),
        samples_per_problem=int(student.get("samples_per_problem") or 0),
        ece=ece,
        ece_source=calibration.get("confidence_source"),
        truncated_rate=truncated,
        retention=retention,
        ood_gap=gaps,
        failures=failures,
        cause_shares=shares,
        reasons=reasons,
        items=items,
    )


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HarnessError(f"cannot read {what} {path}: {e}") from e


def _identity(run_dir: RunDir) -> dict[str, Any]:
    """The run's identity from its config.yaml (what decides its records), or {}."""
    from harness.config import RunConfig

    if not run_dir.config_path.is_file():
        return {}
    try:
        return RunConfig.load_yaml(run_dir.config_path).identity()
    except HarnessError:
        return {}  # a config this version cannot read: the metrics and items still compare


def from_run(run_dir: RunDir) -> Snapshot:
    """A run folder's snapshot (its student; originals only, as the headline figures)."""
    metrics = _read_json(run_dir.metrics_path, "the run's metrics")
    if not isinstance(metrics, dict) or not isinstance(metrics.get("tasks"), dict):
        raise HarnessError(
            f"{run_dir.metrics_path} is not a run's metrics.json (no `tasks`): "
            "run `harness run` again"
        )
    items: dict[str, list[Item]] = {}
    try:
        for r in run_dir.read_records():
            if r.role == "student" and r.perturbation is None and r.correct is not None:
                items.setdefault(r.task, []).append((r.problem_id, r.sample, bool(r.correct)))
    except (OSError, json.JSONDecodeError, TypeError, UnicodeDecodeError) as e:
        raise HarnessError(f"cannot read the records of {run_dir.path}: {e}") from e
    tasks = {
        task: task_from_metrics(task, metrics, tuple(sorted(items.get(task, []))))
        for task in metrics["tasks"]
        if isinstance(metrics["tasks"][task], dict) and "student" in metrics["tasks"][task]
    }
    run = metrics.get("run") or {}
    return Snapshot(
        run_id=str(run.get("run_id") or run_dir.path.name),
        source=f"run {run_dir.path}",
        tasks=tasks,
        student=run.get("student"),
        teacher=run.get("teacher"),
        harness_version=run.get("harness_version"),
        config=_identity(run_dir),
    )


def to_document(snap: Snapshot) -> dict[str, Any]:
    """The baseline file's document (see the module docstring)."""
    tasks: dict[str, Any] = {}
    for name, t in snap.tasks.items():
        tasks[name] = {
            "accuracy": t.accuracy,
            "n": t.n,
            "problems": t.problems,
            "samples_per_problem": t.samples_per_problem,
            "ece": t.ece,
            "ece_source": t.ece_source,
            "truncated_rate": t.truncated_rate,
            "retention": t.retention,
            "ood_gap": dict(t.ood_gap),
            "failures": None
            if t.failures is None
            else {"n": t.failures, "shares": dict(t.cause_shares)},
            "reasons": dict(t.reasons),
            "items": [[pid, sample, int(ok)] for pid, sample, ok in t.items],
        }
    return {
        "format": FORMAT,
        "version": VERSION,
        "run_id": snap.run_id,
        "student": snap.student,
        "teacher": snap.teacher,
        "harness_version": snap.harness_version,
        "config": dict(snap.config),
        "config_digest": snap.config_digest,
        "tasks": tasks,
    }


def dumps(doc: Mapping[str, Any]) -> str:
    """JSON with one item a line, so a committed baseline diffs item by item."""
    d = lambda x: json.dumps(x, ensure_ascii=False, sort_keys=True)  # noqa: E731
    lines = ["{"]
    for key, value in doc.items():
        if key != "tasks":
            lines.append(f"  {d(key)}: {d(value)},")
    lines.append('  "tasks": {')
    tasks = list(doc["tasks"].items())
    for i, (task, entry) in enumerate(tasks):
        lines.append(f"    {d(task)}: {{")
        for key, value in entry.items():
            if key != "items":
                lines.append(f"      {d(key)}: {d(value)},")
        items = entry["items"]
        if items:
            lines.append('      "items": [')
            lines += [
                f"        {d(it)}{',' if j < len(items) - 1 else ''}" for j, it in enumerate(items)
            ]
            lines.append("      ]")
        else:
            lines.append('      "items": []')
        lines.append("    }" + ("," if i < len(tasks) - 1 else ""))
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def save_baseline(snap: Snapshot, path: Path) -> int:
    """Write the baseline file; returns the number of items written."""
    text = dumps(to_document(snap))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise HarnessError(f"cannot write the baseline {path}: {e}") from e
    return sum(len(t.items) for t in snap.tasks.values())


class _Bad(Exception):
    """A baseline document that does not hold: what is wrong, where."""


def _need(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise _Bad(f"{where} {what}")


def _opt_num(entry: Mapping[str, Any], key: str, where: str) -> float | None:
    v = entry.get(key)
    _need(v is None or _num(v) is not None, f"{where}.{key}", "must be a number or null")
    return _num(v)


def _count(entry: Mapping[str, Any], key: str, where: str) -> int:
    v = entry.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise _Bad(f"{where}.{key} must be a count")
    return v


def _task_from_document(name: str, entry: Any) -> TaskSnapshot:
    where = f"tasks.{name}"
    _need(isinstance(entry, dict), where, "must be an object")
    raw_items = entry.get("items")
    _need(isinstance(raw_items, list), f"{where}.items", "must be a list")
    items: list[Item] = []
    for j, it in enumerate(raw_items):
        ok = (
            isinstance(it, list)
            and len(it) == 3
            and isinstance(it[0], str)
            and isinstance(it[1], int)
            and not isinstance(it[1], bool)
            and it[1] >= 0
            and it[2] in (0, 1)
        )
        _need(ok, f"{where}.items[{j}]", "must be [problem_id, sample, 0 or 1]")
        items.append((it[0], it[1], bool(it[2])))
    _need(len({(p, s) for p, s, _ in items}) == len(items), f"{where}.items", "repeats an item")
    gaps = entry.get("ood_gap") or {}
    _need(isinstance(gaps, dict), f"{where}.ood_gap", "must be an object")
    failures = entry.get("failures")
    _need(failures is None or isinstance(failures, dict), f"{where}.failures", "bad")
    shares: dict[str, float | None] = {}
    n_failures: int | None = None
    if isinstance(failures, dict):
        n_failures = _count(failures, "n", f"{where}.failures")
        raw = failures.get("shares") or {}
        _need(isinstance(raw, dict), f"{where}.failures.shares", "must be an object")
        shares = {str(k): _opt_num(raw, k, f"{where}.failures.shares") for k in raw}
    reasons = entry.get("reasons") or {}
    _need(isinstance(reasons, dict), f"{where}.reasons", "must be an object")
    source = entry.get("ece_source")
    _need(source is None or isinstance(source, str), f"{where}.ece_source", "must be a string")
    return TaskSnapshot(
        accuracy=_opt_num(entry, "accuracy", where),
        n=_count(entry, "n", where),
        problems=_count(entry, "problems", where),
        samples_per_problem=_count(entry, "samples_per_problem", where),
        ece=_opt_num(entry, "ece", where),
        ece_source=source,
        truncated_rate=_opt_num(entry, "truncated_rate", where),
        retention=_opt_num(entry, "retention", where),
        ood_gap={str(k): _opt_num(gaps, k, f"{where}.ood_gap") for k in gaps},
        failures=n_failures,
        cause_shares=shares,
        reasons={str(k): str(v) for k, v in reasons.items()},
        items=tuple(items),
    )


def from_document(doc: Any, source: str) -> Snapshot:
    """A snapshot from a parsed baseline document, validated (HarnessError on any fault)."""
    redo = "make it again with `harness gate --save-baseline RUN --out FILE`"
    try:
        _need(isinstance(doc, dict), "the document", "must be a JSON object")
        _need(doc.get("format") == FORMAT, "`format`", f"must be {FORMAT!r}")
        version = doc.get("version")
        if version != VERSION:
            raise HarnessError(
                f"baseline file {source} has format version {version!r}; this harness reads "
                f"version {VERSION}: {redo}"
            )
        _need(isinstance(doc.get("run_id"), str), "`run_id`", "must be a string")
        tasks = doc.get("tasks")
        _need(isinstance(tasks, dict), "`tasks`", "must be an object")
        config = doc.get("config") or {}
        _need(isinstance(config, dict), "`config`", "must be an object")
        digest = doc.get("config_digest")
        _need(
            digest is None or digest == config_digest(config),
            "`config_digest`",
            "does not match `config` (the file was edited)",
        )
        for key in ("student", "teacher", "harness_version"):
            v = doc.get(key)
            _need(v is None or isinstance(v, str), f"`{key}`", "must be a string or null")
        parsed = {str(name): _task_from_document(str(name), e) for name, e in tasks.items()}
    except _Bad as e:
        raise HarnessError(f"baseline file {source} is not a valid baseline: {e}; {redo}") from e
    return Snapshot(
        run_id=doc["run_id"],
        source=f"baseline file {source}",
        tasks=parsed,
        student=doc.get("student"),
        teacher=doc.get("teacher"),
        harness_version=doc.get("harness_version"),
        config=config,
    )


def load_baseline(path: Path) -> Snapshot:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise HarnessError(f"cannot read baseline file {path}: {e}") from e
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise HarnessError(
            f"baseline file {path} is not JSON ({e.msg} at line {e.lineno}): the file is "
            "corrupted; make it again with `harness gate --save-baseline RUN --out FILE`"
        ) from e
    return from_document(doc, str(path))


def load_snapshot(ref: str, runs: str | Path = "runs") -> Snapshot:
    """A baseline file (a path to a file) or a run (a folder, or a run id under `runs`)."""
    from harness.export import locate_run

    path = Path(ref).expanduser()
    if path.is_file():
        return load_baseline(path)
    if path.suffix == ".json" and not (Path(runs).expanduser() / ref).is_dir():
        raise HarnessError(f"no baseline file {path}: make one with `harness gate --save-baseline`")
    return from_run(locate_run(ref, runs))
