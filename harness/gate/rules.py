"""The gate's rules file: per task (or `*`), what the candidate must keep.

Read strictly, since a misspelt key silently checking nothing is the worst thing a gate can
do: an unknown key, a wrong type or a value out of range is one line naming the key and
the file (exit 2). The keys, their units and defaults are listed in `harness.gate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError

DEFAULT_ALPHA = 0.05
MISSING_MODES = ("fail", "skip")


@dataclass(frozen=True)
class TaskRules:
    """What one task must keep. None: the check is off."""

    max_drop: float | None = 2.0
    """Accuracy drop allowed, in points (0-100), decided by a paired test (see harness.gate)."""
    min_accuracy: float | None = None
    """Candidate accuracy at least this (a fraction, 0-1)."""
    max_ece: float | None = None
    """Candidate expected calibration error at most this (0-1)."""
    max_truncation: float | None = None
    """Candidate share of generations cut at the token limit at most this (0-1)."""
    max_ood_gap: float | None = None
    """Per perturbation kind: original minus variant accuracy at most this, in points."""
    min_retention: float | None = None
    """Candidate P(right | teacher right) at least this (0-1)."""
    max_cause_share: Mapping[str, float] = field(default_factory=dict)
    """Per failure label (capacity, truncated, ...): its share of the failures at most this."""
    missing: str = "fail"
    """A rule whose metric the candidate lacks: `fail` (the default) or `skip`."""


_POINTS = ("max_drop", "max_ood_gap")
_FRACTIONS = ("min_accuracy", "max_ece", "max_truncation", "min_retention")
KEYS = tuple(f.name for f in fields(TaskRules))
TOP_KEYS = ("alpha", "tasks")


@dataclass(frozen=True)
class Rules:
    """The rules of every task: `tasks` maps a task spec, a task name or `*` to its keys."""

    tasks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    alpha: float | None = None
    """The rules file's alpha (the command line's --alpha wins over it)."""
    source: str = "the default rules"

    def for_task(self, spec: str) -> TaskRules:
        """The rules of one task: `*`, then its name (the spec before `:`), then its exact
        spec, each overriding the keys it sets."""
        merged = TaskRules()
        name = spec.split(":", 1)[0]
        for key in dict.fromkeys(("*", name, spec)):
            given = self.tasks.get(key)
            if given:
                merged = replace(merged, **given)
        return merged


def _fail(source: str, where: str, message: str) -> HarnessError:
    return HarnessError(f"rules file {source}: {where} {message}")


def _number(source: str, where: str, value: Any, high: float, unit: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(source, where, f"must be a number ({unit}) or null, not {value!r}")
    if not 0 <= value <= high:
        hint = " (a fraction: 0.4, not 40)" if high == 1 and 1 < value <= 100 else ""
        raise _fail(source, where, f"must be within 0-{high:g} ({unit}), not {value!r}{hint}")
    return float(value)


def _task_block(source: str, task: str, block: Any) -> dict[str, Any]:
    from harness.classify.base import LABELS

    where = f"tasks.{task}"
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise _fail(source, where, f"must be a mapping of rules, not {block!r}")
    out: dict[str, Any] = {}
    for key, value in block.items():
        at = f"{where}.{key}"
        if key not in KEYS:
            raise _fail(source, at, f"is not a rule (known: {', '.join(KEYS)})")
        if key in _POINTS:
            out[key] = _number(source, at, value, 100, "points")
        elif key in _FRACTIONS:
            out[key] = _number(source, at, value, 1, "a fraction")
        elif key == "missing":
            if value not in MISSING_MODES:
                raise _fail(source, at, f"must be one of {', '.join(MISSING_MODES)}, not {value!r}")
            out[key] = value
        else:  # max_cause_share
            if value is None:
                out[key] = {}
                continue
            if not isinstance(value, dict):
                raise _fail(source, at, f"must map failure labels to shares, not {value!r}")
            shares: dict[str, float] = {}
            for label, share in value.items():
                if label not in LABELS:
                    raise _fail(
                        source, f"{at}.{label}", f"is not a failure label ({', '.join(LABELS)})"
                    )
                got = _number(source, f"{at}.{label}", share, 1, "a share of the failures")
                if got is not None:
                    shares[str(label)] = got
            out[key] = shares
    return out


def parse_rules(data: Any, source: str) -> Rules:
    """Rules from the parsed YAML document (validated; `source` names it in errors)."""
    if data is None:
        return Rules(source=source)
    if not isinstance(data, dict):
        raise HarnessError(
            f"rules file {source}: expected a mapping with `tasks:` (and optionally `alpha:`)"
        )
    for key in data:
        if key not in TOP_KEYS:
            raise _fail(source, str(key), f"is not a top-level key (known: {', '.join(TOP_KEYS)})")
    alpha = data.get("alpha")
    if alpha is not None:
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
            raise _fail(source, "alpha", f"must be a number between 0 and 1, not {alpha!r}")
        alpha = float(alpha)
    tasks = data.get("tasks") or {}
    if not isinstance(tasks, dict):
        raise _fail(source, "tasks", "must map task specs (or `*`) to their rules")
    blocks = {str(task): _task_block(source, str(task), block) for task, block in tasks.items()}
    return Rules(tasks=blocks, alpha=alpha, source=source)


def load_rules(path: Path | None) -> Rules:
    """The rules file at `path` (None: the defaults, max_drop 2 points on every task)."""
    if path is None:
        return Rules()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise HarnessError(f"cannot read rules file {path}: {e}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        first = " ".join(str(e).split())
        raise HarnessError(f"rules file {path} is not valid YAML: {first}") from e
    return parse_rules(data, str(path))
