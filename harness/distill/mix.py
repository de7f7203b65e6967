"""The training mix: per-task and per-slice proportions from a YAML recipe, aimed at failures.

A recipe weighs the collected rows by selectors, the most specific one that matches a row
deciding its weight:

```
seed: 0
total: 400                 # rows in the mix (default: as many as were collected)
default: 1                 # weight of a row no selector names (0 drops it)
weights:
  math: 1                  # a group: math | code | logic | general (the task's kind)
  chains: 1                # a task name
  chains/family=shop: 2    # a slice: task/dimension=value (family, subset, perturbation, depth)
failure_weight: 3          # --from-failures: multiplier of each slice diagnosed `mismatch`
```

With `--from-failures RUN` the run's `failures.advice` says which slices to weight: each
mismatch slice (task, family or perturbation kind) gets `failure_weight` times its weight. A
capacity band is recorded, not weighted: the diagnosis says more of the same data will not fix
it. Every problem of that run is held out of the mix by lineage (the same synthetic chain in
another telling, or a variant's original, counts as the same problem), so the run's items can
be evaluated again after training; their ids go to `heldout.json`, by diagnosed slice.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError

GROUPS: dict[str, str] = {"math": "math", "code": "code", "choice": "logic", "text": "general"}
"""Task kind -> recipe group."""
DIMENSIONS = ("family", "subset", "perturbation", "depth")
MANIFEST = "mix.json"
HELDOUT = "heldout.json"


@dataclass(frozen=True)
class Recipe:
    seed: int = 0
    total: int | None = None
    default: float = 1.0
    weights: Mapping[str, float] = field(default_factory=dict)
    failure_weight: float = 3.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "recipe") -> Recipe:
        known = {"seed", "total", "default", "weights", "failure_weight"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise HarnessError(
                f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        weights = data.get("weights") or {}
        if not isinstance(weights, Mapping):
            raise HarnessError(f"{where}: weights must be a mapping of selector: weight")
        parsed: dict[str, float] = {}
        for key, value in weights.items():
            parse_selector(str(key), where)
            parsed[str(key)] = _number(value, f"{where}: weights.{key}", low=0.0)
        total = data.get("total")
        if total is not None and (not isinstance(total, int) or total < 1):
            raise HarnessError(f"{where}: total takes a whole number >= 1, not {total!r}")
        seed = data.get("seed", 0)
        if not isinstance(seed, int):
            raise HarnessError(f"{where}: seed takes a whole number, not {seed!r}")
        return cls(
            seed=seed,
            total=total,
            default=_number(data.get("default", 1.0), f"{where}: default", low=0.0),
            weights=parsed,
            failure_weight=_number(
                data.get("failure_weight", 3.0), f"{where}: failure_weight", low=0.0
            ),
        )

    @classmethod
    def load(cls, path: Path) -> Recipe:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise HarnessError(f"cannot read the mix recipe {path}: {e}") from e
        if not isinstance(data, Mapping):
            raise HarnessError(f"mix recipe {path}: expected a mapping (seed, total, weights)")
        mix = data.get("mix", data)
        if not isinstance(mix, Mapping):
            raise HarnessError(f"mix recipe {path}: `mix` must be a mapping")
        return cls.from_dict(mix, f"mix recipe {path}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "total": self.total,
            "default": self.default,
            "weights": dict(self.weights),
            "failure_weight": self.failure_weight,
        }


def _number(value: Any, where: str, low: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise HarnessError(f"{where} takes a number >= {low:g}, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class Selector:
    """`math` (group), `chains` (task), `chains/family=shop` (slice)."""

    text: str
    task: str | None = None
    group: str | None = None
    dimension: str | None = None
    value: str | None = None

    @property
    def rank(self) -> int:
        """How specific: a slice beats a task beats a group."""
        return 2 if self.dimension else 1 if self.task else 0


def parse_selector(text: str, where: str = "recipe") -> Selector:
    if text in GROUPS.values():
        return Selector(text, group=text)
    task, sep, rest = text.partition("/")
    if not task:
        raise HarnessError(f"{where}: selector '{text}' names no task")
    if not sep:
        return Selector(text, task=task)
    dim, eq, value = rest.partition("=")
    if not eq or dim not in DIMENSIONS or not value:
        raise HarnessError(
            f"{where}: selector '{text}' is not task/dimension=value "
            f"(dimension: {', '.join(DIMENSIONS)}; e.g. chains/family=shop)"
        )
    return Selector(text, task=task, dimension=dim, value=value)


def row_slices(row: Mapping[str, Any]) -> dict[str, str]:
    """A row's value in each slice dimension (those it has)."""
    out: dict[str, str] = {}
    for dim in DIMENSIONS:
        v = row.get(dim)
        if v is not None and v != "":
            out[dim] = str(v)
    if "family" not in out and "subset" in out:
        out["family"] = out["subset"]
    return out


def _group_of(task_name: str) -> str | None:
    from harness.tasks import task_class

    try:
        return GROUPS.get(task_class(task_name).kind)
    except HarnessError:
        return None


def matches(sel: Selector, row: Mapping[str, Any], group: str | None) -> bool:
    if sel.group is not None:
        return sel.group == group
    if sel.task != row.get("task_name"):
        return False
    if sel.dimension is None:
        return True
    return row_slices(row).get(sel.dimension) == sel.value


@dataclass(frozen=True)
class Slice:
    """One slice the classifier diagnosed (from a run's `failures.advice`)."""

    task: str
    """The task's name (slices carry over from the run's task spec to the training tasks)."""
    dimension: str
    value: str
    label: str
    """mismatch | capacity"""
    failures: int
    problem_ids: tuple[str, ...] = ()
    run_task: str = ""

    @property
    def name(self) -> str:
        return f"{self.task}/{self.dimension}={self.value}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "run_task": self.run_task,
            "dimension": self.dimension,
            "value": self.value,
            "label": self.label,
            "failures": self.failures,
        }


def _task_name(spec: str) -> str:
    from harness.tasks import get_task

    try:
        return get_task(spec).name
    except HarnessError:
        return spec.split(":", 1)[0]


@dataclass(frozen=True)
class Diagnosis:
    """What a diagnosed run hands the mix: its slices, its items, their lineages."""

    run: Path
    slices: tuple[Slice, ...]
    problems: Mapping[str, Sequence[str]]
    """run task spec -> its original problem ids (every one is held out)."""
    lineages: frozenset[str]
    items: Mapping[str, Mapping[str, Any]]
    """`task\\0problem_id` -> the item's slice values (family, depth, perturbation)."""

    def slice_ids(self, s: Slice) -> list[tuple[str, str]]:
        """(run task, problem id) of the run's items in a slice."""
        out: list[tuple[str, str]] = []
        for key, values in self.items.items():
            task, pid = key.split("\0", 1)
            # the classifier's advice is per task spec of the run: two specs of one task (two
            # planted slices) keep their own items
            if (task != s.run_task) if s.run_task else (_task_name(task) != s.task):
                continue
            if s.dimension == "depth":
                lo, _, hi = s.value.partition("-")
                d = values.get("depth")
                if d is not None and float(lo) <= float(d) <= float(hi or lo):
                    out.append((task, pid))
            elif str(values.get(s.dimension)) == s.value:
                out.append((task, pid))
        return sorted(out)


def read_diagnosis(run: str | Path, runs: str = "runs") -> Diagnosis:
    """A classified run's slices and items (`harness classify` or `harness run` wrote them)."""
    from harness.distill.collect import lineage_key
    from harness.export import locate_run
    from harness.tasks import DataSource, get_task

    run_dir = locate_run(str(run), runs)
    metrics = run_dir.read_metrics()
    failures = metrics.get("failures")
    if not isinstance(failures, dict) or "advice" not in failures:
        raise HarnessError(
            f"{run_dir.path}: no failure labels in metrics.json; run "
            f"`harness classify {run_dir.path}` first"
        )
    slices: list[Slice] = []
    for m in failures["advice"].get("mismatch", []):
        dim = "perturbation" if m["dimension"] == "format" else m["dimension"]
        value = "format" if m["dimension"] == "format" else m["value"]
        slices.append(
            Slice(
                task=_task_name(m["task"]),
                run_task=m["task"],
                dimension=dim,
                value=str(value),
                label="mismatch",
                failures=int(m["failures"]),
                problem_ids=tuple(m.get("problem_ids", ())),
            )
        )
    for c in failures["advice"].get("capacity", []):
        band = c.get("depth_band")
        if not band:
            continue
        slices.append(
            Slice(
                task=_task_name(c["task"]),
                run_task=c["task"],
                dimension="depth",
                value=f"{band[0]:g}-{band[1]:g}",
                label="capacity",
                failures=int(c["failures"]),
            )
        )
    records = [r for r in run_dir.read_records() if r.role == "student"]
    config: dict[str, Any] = {}
    if run_dir.config_path.is_file():
        config = yaml.safe_load(run_dir.config_path.read_text(encoding="utf-8")) or {}
    source = DataSource.resolve(config.get("data_dir"))
    lineages: set[str] = set()
    problems: defaultdict[str, set[str]] = defaultdict(set)
    items: dict[str, dict[str, Any]] = {}
    by_task: defaultdict[str, set[str]] = defaultdict(set)
    for r in records:
        by_task[r.task].add(r.problem_id)
    for task_spec, ids in by_task.items():
        known: dict[str, Any] = {}
        try:
            task = get_task(task_spec)
            known = {p.id: p for p in task.load(source).problems if p.id in ids}
        except HarnessError:
            task = None
        for pid in ids:
            p = known.get(pid)
            if p is not None:
                lineages.add(lineage_key(p))
        for r in records:
            if r.task != task_spec:
                continue
            p = known.get(r.problem_id)
            if p is None:
                lineages.add(f"{_task_name(task_spec)}/{r.parent_id or r.problem_id}")
            if r.parent_id is None:
                problems[task_spec].add(r.problem_id)
            family = (p.meta.get("family") if p is not None else None) or r.subset
            items[f"{task_spec}\0{r.problem_id}"] = {
                "family": family,
                "subset": r.subset,
                "perturbation": r.perturbation,
                "depth": r.steps,
            }
    return Diagnosis(
        run=run_dir.path,
        slices=tuple(slices),
        problems={k: sorted(v) for k, v in problems.items()},
        lineages=frozenset(lineages),
        items=items,
    )


@dataclass(frozen=True)
class MixResult:
    path: Path
    rows: int
    manifest: dict[str, Any]


def _allocate(total: int, shares: Sequence[float]) -> list[int]:
    """Largest-remainder split of `total` over `shares` (deterministic)."""
    s = sum(shares)
    if s <= 0:
        return [0] * len(shares)
    exact = [total * w / s for w in shares]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(shares)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def build_mix(
    rows: Sequence[Mapping[str, Any]],
    recipe: Recipe,
    diagnosis: Diagnosis | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The mixed rows and the manifest that says how they were drawn."""
    selectors = [parse_selector(k) for k in recipe.weights]
    boosted = [s for s in (diagnosis.slices if diagnosis else ()) if s.label == "mismatch"]
    held = diagnosis.lineages if diagnosis else frozenset()
    groups: dict[tuple[str, bool], list[dict[str, Any]]] = defaultdict(list)
    weight_of: dict[tuple[str, bool], float] = {}
    dropped_heldout = dropped_zero = 0
    for row in rows:
        if row.get("lineage") in held:
            dropped_heldout += 1
            continue
        group = _group_of(str(row.get("task_name", "")))
        hits = [s for s in selectors if matches(s, row, group)]
        best = max(hits, key=lambda s: s.rank) if hits else None
        weight = recipe.weights[best.text] if best else recipe.default
        slices = row_slices(row)
        boost = any(
            s.task == row.get("task_name") and slices.get(s.dimension) == s.value for s in boosted
        )
        if boost:
            weight *= recipe.failure_weight
        if weight <= 0:
            dropped_zero += 1
            continue
        key = (best.text if best else "default", boost)
        groups[key].append(dict(row))
        weight_of[key] = weight
    if not groups:
        raise HarnessError(
            "harness distill mix: no row is left to mix "
            f"({dropped_heldout} held out, {dropped_zero} at weight 0)"
        )
    keys = sorted(groups)
    available = sum(len(groups[k]) for k in keys)
    total = recipe.total or available
    counts = _allocate(total, [weight_of[k] * len(groups[k]) for k in keys])
    rng = random.Random(recipe.seed)
    mixed: list[dict[str, Any]] = []
    table = []
    for key, n in zip(keys, counts, strict=True):
        pool = list(groups[key])
        rng.shuffle(pool)
        drawn = [pool[i % len(pool)] for i in range(n)]
        mixed.extend(drawn)
        table.append(
            {
                "selector": key[0],
                "failure_weighted": key[1],
                "weight": weight_of[key],
                "available": len(pool),
                "rows": n,
                "repeated": max(0, n - len(pool)),
            }
        )
    rng.shuffle(mixed)
    manifest: dict[str, Any] = {
        "recipe": recipe.to_dict(),
        "rows": len(mixed),
        "available": available,
        "groups": table,
        "tasks": dict(sorted(Counter(str(r.get("task")) for r in mixed).items())),
        "families": dict(
            sorted(Counter(str(row_slices(r).get("family", "-")) for r in mixed).items())
        ),
        "depths": dict(
            sorted(Counter(str(r.get("depth")) for r in mixed).items(), key=lambda kv: kv[0])
        ),
        "dropped": {"held_out": dropped_heldout, "zero_weight": dropped_zero},
    }
    if diagnosis is not None:
        manifest["from_failures"] = {
            "run": str(diagnosis.run),
            "weighted": [s.to_dict() for s in boosted],
            "not_weighted": [
                {**s.to_dict(), "why": "capacity: more of the same data will not fix it"}
                for s in diagnosis.slices
                if s.label != "mismatch"
            ],
        }
    return mixed, manifest


def heldout_dict(diagnosis: Diagnosis) -> dict[str, Any]:
    """`heldout.json`: every item of the diagnosed run, and each diagnosed slice's items."""
    return {
        "run": str(diagnosis.run),
        "problem_ids": {k: list(v) for k, v in diagnosis.problems.items()},
        "slices": [
            {
                **s.to_dict(),
                "items": [{"task": t, "problem_id": p} for t, p in diagnosis.slice_ids(s)],
            }
            for s in diagnosis.slices
        ],
    }


def mix(
    data: Path,
    out: Path,
    recipe: Recipe,
    *,
    from_failures: str | Path | None = None,
    runs: str = "runs",
) -> MixResult:
    """Mix a collected data set by `recipe` (aimed at a diagnosed run's failures) into `out`."""
    from harness.distill.collect import load_rows, save_rows

    rows = load_rows(data)
    diagnosis = read_diagnosis(from_failures, runs) if from_failures is not None else None
    mixed, manifest = build_mix(rows, recipe, diagnosis)
    manifest["source"] = str(data)
    save_rows(mixed, out)
    if diagnosis is not None:
        (out / HELDOUT).write_text(
            json.dumps(heldout_dict(diagnosis), indent=2) + "\n", encoding="utf-8"
        )
        manifest["heldout"] = HELDOUT
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return MixResult(out, len(mixed), manifest)


__all__ = [
    "GROUPS",
    "Diagnosis",
    "MixResult",
    "Recipe",
    "Selector",
    "Slice",
    "build_mix",
    "heldout_dict",
    "matches",
    "mix",
    "parse_selector",
    "read_diagnosis",
    "row_slices",
]
