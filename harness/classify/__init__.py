"""The failure classifier: for each problem the student got wrong, why.

`classify_records` labels every failed student record (role student, graded wrong): first by
the mechanical rules (`rules.mechanical`), then, for what they leave, by the calibrated model
over evidence features (`features.compute`, `model`), which answers capacity, mismatch or
undetermined. `classify_run` does it for a run folder: writes `failures.jsonl` (one row per
failed student item: `Failure.to_dict()`, i.e. task, problem_id, sample, label, probability,
probabilities, evidence, features, parent_id, perturbation) and the `failures` section of
`metrics.json` (`advice.failures_section`, documented there).

The features, model and probes modules are imported only when used, so the rules, evidence
and aggregates work (and a run is still labelled, `undetermined` where the model would
decide) whichever of them is available.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.classify.advice import failures_section
from harness.classify.base import CAUSES, LABELS, MECHANICAL, UNDETERMINED, Failure, Features
from harness.classify.evidence import Context, describe
from harness.classify.rules import mechanical, off_form
from harness.errors import HarnessError
from harness.store import json_safe
from harness.types import Record

Key = tuple[str, str, int]
SameAnswerArg = Callable[[str, str], bool] | Mapping[str, Callable[[str, str], bool]] | None
FAILURES_FILE = "failures.jsonl"
Prediction = tuple[str, float | None, dict[str, float]]


def _same_for(same_answer: SameAnswerArg, task: str) -> Callable[[str, str], bool] | None:
    if same_answer is None or callable(same_answer):
        return same_answer
    return same_answer.get(task)


def _basic_features(r: Record) -> Features:
    """What the records alone say when the features module cannot be used."""
    form = "/".join(x for x in (r.subset, r.perturbation) if x)
    return Features(
        r.task, r.problem_id, r.sample, depth=float(r.steps) if r.steps else None, form=form
    )


ReferenceArg = Sequence[str] | Mapping[str, Sequence[str]] | None


def _reference_for(reference: ReferenceArg, task: str) -> Sequence[str] | None:
    if reference is None or isinstance(reference, Mapping):
        return None if reference is None else reference.get(task)
    return reference


def _features(
    records: Sequence[Record],
    same_answer: SameAnswerArg,
    reference: ReferenceArg,
    embedder: Any,
) -> tuple[dict[Key, Features], str | None]:
    """Features per failed item, and why there are none (None: computed)."""
    try:
        from harness.classify import features as feature_module
    except ImportError as e:
        return {}, f"features not available ({type(e).__name__})"
    by_task: defaultdict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_task[r.task].append(r)
    out: dict[Key, Features] = {}
    note = None
    for task, recs in sorted(by_task.items()):
        same = _same_for(same_answer, task)
        ref = _reference_for(reference, task)
        try:
            got = feature_module.compute(recs, same, reference=ref, embedder=embedder)
        except HarnessError as e:  # the embedding model cannot be loaded: no OOD distance
            if embedder is None:
                raise
            embedder, note = None, f"features+model (no OOD distance or divergence: {e})"
            got = feature_module.compute(recs, same, reference=ref, embedder=None)
        out.update(got)
    return out, note


def _predictor() -> tuple[Callable[[list[Features]], list[Any]] | None, str, dict[str, float]]:
    """The calibrated model's predict, its description (or why there is none) and its
    feature weights."""
    import importlib

    try:
        model_module = importlib.import_module("harness.classify.model")
    except ImportError as e:
        return None, f"model not available ({type(e).__name__})", {}
    factory = getattr(model_module, "default_model", None) or getattr(model_module, "train", None)
    if factory is None:
        return None, "model not available (no default_model/train)", {}
    fitted = factory()
    weights = getattr(fitted, "weights", None)
    found = dict(weights() if callable(weights) else {})
    probe_weights = getattr(fitted, "probe_weights", None)
    if callable(probe_weights):  # the combiner's coefficients, apart from the importances
        found |= {f"combiner:{k}": v for k, v in probe_weights().items()}
    return fitted.predict, "features+model", {str(k): float(v) for k, v in found.items()}


def _prediction(raw: Any) -> Prediction:
    label, probability, probs = raw
    if label not in (*CAUSES, UNDETERMINED):
        raise HarnessError(f"classifier returned an unknown label {label!r}")
    p = None if probability is None else float(probability)
    return str(label), p, {str(k): float(v) for k, v in dict(probs or {}).items()}


def classify_records(
    records: Iterable[Record],
    same_answer: SameAnswerArg = None,
    *,
    probes: Mapping[Key, Mapping[str, bool]] | None = None,
    reference: ReferenceArg = None,
    embedder: Any = None,
    style: str | None = "r1",
    predict: Callable[[list[Features]], list[Any]] | None = None,
    probe_steps: Mapping[Key, tuple[int, str | None]] | None = None,
) -> tuple[list[Failure], dict[str, Any]]:
    """Every failed student record labelled, in (task, problem_id, sample) order, and the
    `failures` section. `same_answer`: one equivalence or one per task; `probes`: probe
    outcomes per item; `reference`: problem texts the OOD distance is measured against
    (one list, or one per task; default: the run's unperturbed problems); `style`: the
    student's prompt style (the format rule reads it);
    `predict`: a model's predict (default: the repo's trained model); `probe_steps`: per
    item, the steps a decompose probe gave and where from (for the evidence's wording)."""
    recs = list(records)
    teachers: defaultdict[tuple[str, str], list[Record]] = defaultdict(list)
    students: defaultdict[tuple[str, str], list[Record]] = defaultdict(list)
    children: defaultdict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in recs:
        (teachers if r.role == "teacher" else students)[(r.task, r.problem_id)].append(r)
        if r.role == "student" and r.parent_id:
            children[(r.task, r.parent_id)].append(r)
    for group in teachers.values():
        group.sort(key=lambda t: t.sample)
    failed = sorted(
        (r for r in recs if r.role == "student" and r.correct is False),
        key=lambda r: (r.task, r.problem_id, r.sample),
    )
    teacher_of: dict[Key, list[Record]] = {}
    mech: dict[Key, str | None] = {}
    for r in failed:
        key = (r.task, r.problem_id, r.sample)
        ts = teachers.get((r.task, r.problem_id), [])
        teacher_of[key] = [ts[r.sample % len(ts)]] if ts else []
        parents = students.get((r.task, r.parent_id), []) if r.parent_id else []
        same = _same_for(same_answer, r.task)
        value_right = None
        if same is not None and r.answer is not None:
            try:
                value_right = bool(same(r.answer, r.gold))
            except Exception:  # an equivalence that cannot read this answer: not known
                value_right = None
        mech[key] = mechanical(
            r, teacher_of[key], style=style, parent_records=parents, value_right=value_right
        )

    feats, feature_note = (
        _features(recs, same_answer, reference, embedder) if failed else ({}, None)
    )
    no_features = (feature_note or "").startswith("features not")
    merged: dict[Key, Features] = {}
    for r in failed:
        key = (r.task, r.problem_id, r.sample)
        f = feats.get(key) or _basic_features(r)
        extra = (probes or {}).get(key)
        if extra:
            f = replace(f, probes={**f.probes, **{str(k): bool(v) for k, v in extra.items()}})
        merged[key] = f

    todo = [k for k in merged if mech[k] is None]
    predictions: dict[Key, Prediction] = {}
    model_weights: dict[str, float] = {}
    model_note = feature_note or "features+model"
    if todo:
        if no_features:
            predict = None
        elif predict is None:
            predict, model_note, model_weights = _predictor()
            if feature_note and predict is not None:
                model_note = feature_note
        if predict is not None:
            raw = predict([merged[k] for k in todo])
            if len(raw) != len(todo):
                raise HarnessError("classifier returned a different number of predictions")
            predictions = {k: _prediction(p) for k, p in zip(todo, raw, strict=True)}

    out: list[Failure] = []
    for r in failed:
        key = (r.task, r.problem_id, r.sample)
        graded = [t for t in teacher_of[key] if t.correct is not None]
        teacher_right = all(bool(t.correct) for t in graded) if graded else None
        variants: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
        for c in children.get((r.task, r.problem_id), []):
            if c.sample == r.sample and c.correct is not None and c.perturbation:
                variants[c.perturbation][0] += bool(c.correct)
                variants[c.perturbation][1] += 1
        f = merged[key]
        cause = mech[key]
        given = (probe_steps or {}).get(key)
        context = Context(
            mechanical=cause,
            teacher_right=teacher_right,
            variants={k: (v[0], v[1]) for k, v in variants.items()},
            perturbation=r.perturbation,
            decompose_k=given[0] if given else None,
            decompose_from=given[1] if given else None,
            off_form=cause is None and off_form(r, teacher_of[key], style),
        )
        probs: dict[str, float]
        if cause is not None:
            label, probability, probs = cause, None, {}
        else:
            label, probability, probs = predictions.get(key, (UNDETERMINED, None, {}))
        out.append(
            Failure(
                r.task,
                r.problem_id,
                r.sample,
                label,
                probability,
                probs,
                describe(f, context),
                f,
                parent_id=r.parent_id,
                perturbation=r.perturbation,
            )
        )
    section = failures_section(
        out,
        recs,
        teacher_of,
        model=model_note if todo else "not needed (every failure has a mechanical cause)",
        probes="run" if probes else "not run",
    )
    if model_weights:
        section["model_weights"] = model_weights
    return out, section


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise HarnessError(f"cannot write {path}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)


def read_reference(path: Path) -> list[str]:
    """Problem texts of a distillation data file (JSON Lines or a JSON list of rows with
    `question`, `prompt`, `problem` or chat `messages`: the first user turn)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise HarnessError(f"--reference {path}: cannot read it ({e})") from e
    try:
        stripped = text.lstrip()
        if stripped.startswith("["):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise HarnessError(f"--reference {path}: not JSON Lines or a JSON list ({e})") from e
    out: list[str] = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        q = row.get("question") or row.get("prompt") or row.get("problem")
        if not q and isinstance(row.get("messages"), list):
            q = next(
                (
                    m.get("content")
                    for m in row["messages"]
                    if isinstance(m, dict) and m.get("role") == "user"
                ),
                None,
            )
        if isinstance(q, str) and q.strip():
            out.append(q)
    if not out:
        raise HarnessError(
            f"--reference {path}: no rows with a question, prompt, problem or user message"
        )
    return out


def _same_answers(records: Sequence[Record]) -> dict[str, Callable[[str, str], bool]]:
    from harness.metrics.accuracy import str_equal
    from harness.tasks import get_task

    out: dict[str, Callable[[str, str], bool]] = {}
    for spec in sorted({r.task for r in records}):
        try:
            out[spec] = get_task(spec).same_answer
        except HarnessError:
            out[spec] = str_equal  # a task this version does not know: exact answers only
    return out


def _run_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _student_style(config: Mapping[str, Any]) -> str | None:
    resolved = ((config.get("resolved") or {}).get("student") or {}).get("prompt") or {}
    style = resolved.get("style") or config.get("style")
    return str(style) if style else "r1"


def _embedder(config: Mapping[str, Any]) -> Any:
    """The run's chain-similarity embedder for OOD distance (None with --chain-model none)."""
    chain_model = config.get("chain_model")
    if str(chain_model or "").lower() == "none":
        return None
    from harness.metrics.chainsim import Embedder
    from harness.store import default_cache_dir

    cache_dir = config.get("cache_dir")
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return Embedder(chain_model, cache)


REFERENCE_MAX = 2000
"""At most this many training-split problems make a task's OOD reference (the split's first)."""


def _references(
    records: Sequence[Record], config: Mapping[str, Any], reference: Path | None
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Per task, the texts its OOD distance is measured against and where they came from: the
    distillation data given, else the task's training split, else the run's own originals."""
    tasks = sorted({r.task for r in records})
    if reference is not None:
        texts = read_reference(reference)
        return {t: texts for t in tasks}, {t: f"distillation data {reference}" for t in tasks}
    from harness.tasks import DataSource, get_task

    refs: dict[str, list[str]] = {}
    where: dict[str, str] = {}
    try:
        source = DataSource.resolve(config.get("data_dir"))
    except HarnessError:
        source = None
    for spec in tasks:
        got = None
        if source is not None:
            try:
                got = get_task(spec).train_questions(source, REFERENCE_MAX)
            except HarnessError:
                got = None
        if got:
            refs[spec], where[spec] = got[0], f"training split ({got[1]})"
        else:
            where[spec] = "the run's unperturbed problems"
    return refs, where


def classify_run(
    run_dir: Path,
    *,
    probe: bool = False,
    reference: Path | None = None,
    predict: Callable[[list[Features]], list[Any]] | None = None,
    progress: bool = True,
) -> Path:
    """Label a run folder's failures: writes failures.jsonl and metrics.json's `failures`
    key; returns the failures.jsonl path. With `probe`, runs the causal probes first (their
    generations go through the run's student backend and cache). `predict`: a model's
    predict (default: the repo's trained model, trained on first use)."""
    from harness.store import RunDir

    run = RunDir(Path(run_dir))
    if not run.records_path.is_file():
        raise HarnessError(
            f"no records in {run.path}: expected {run.records_path.name} there "
            "(run `harness run` first)"
        )
    try:
        records = list(run.read_records())
    except (ValueError, TypeError, KeyError) as e:
        raise HarnessError(
            f"{run.records_path}: not a records file this version reads ({e})"
        ) from e
    config = _run_config(run.path)
    style = _student_style(config)
    same = _same_answers(records)
    ref, ref_where = _references(records, config, reference)
    embedder = _embedder(config)
    try:
        failures, section = classify_records(
            records, same, reference=ref, embedder=embedder, style=style, predict=predict
        )
        probe_note = "not run"
        if probe:
            try:
                from harness.classify.probes import read_probes, run_probes
            except ImportError:
                probe_note = "not available yet"
            else:
                items = [
                    (f.task, f.problem_id, f.sample)
                    for f in failures
                    if f.label in (*CAUSES, UNDETERMINED)
                ]
                outcomes = run_probes(run.path, records, items, progress=progress) if items else {}
                steps = {
                    (p.task, p.problem_id, p.sample): (p.k, p.steps_from)
                    for p in (read_probes(run.path) if items else [])
                    if p.kind == "decompose" and p.k
                }
                failures, section = classify_records(
                    records,
                    same,
                    probes=outcomes,
                    reference=ref,
                    embedder=embedder,
                    style=style,
                    predict=predict,
                    probe_steps=steps,
                )
                probe_note = "run" if items else "nothing to probe"
        section["probes"] = probe_note
        section["ood_reference"] = (
            ref_where
            if embedder is not None
            else {t: "not measured (--chain-model none)" for t in ref_where}
        )
    finally:
        close = getattr(embedder, "close", None)
        if callable(close):
            close()
    path = run.path / FAILURES_FILE
    lines = (json.dumps(json_safe(f.to_dict()), ensure_ascii=False) for f in failures)
    _atomic_write(path, "".join(line + "\n" for line in lines))
    metrics: dict[str, Any] = {}
    if run.metrics_path.is_file():
        try:
            loaded = json.loads(run.metrics_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise HarnessError(f"{run.metrics_path}: not readable JSON ({e})") from e
        if not isinstance(loaded, dict):
            raise HarnessError(f"{run.metrics_path}: not a metrics document (not an object)")
        metrics = loaded
    metrics["failures"] = json_safe(section)
    _atomic_write(run.metrics_path, json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    return path


__all__ = [
    "CAUSES",
    "FAILURES_FILE",
    "LABELS",
    "MECHANICAL",
    "UNDETERMINED",
    "Failure",
    "Features",
    "classify_records",
    "classify_run",
    "read_reference",
]
