"""Metrics as sections: each family of numbers is a `Section`, registered like tasks.

A section has up to four parts, each optional:
- `per_item`: one measurement per record (`item_fields` makes them the columns `harness
  export` adds to each row);
- `aggregate`: its part of a task's metrics, computed from those measurements, written at
  `tasks.<task>.<name>` (scope "task") or `tasks.<task>.<role>.<name>` (scope "role"); an
  `inline` section merges its keys into that place instead (accuracy's keys are the role's
  headline numbers, `tasks.<task>.<role>.{accuracy, n, ci95, ...}`);
- `overall`: its part of `overall` (`overall.<name>`, or merged when inline);
- `document`: top-level keys of its own (cost, embeddings), after `overall`.

What several sections read (the task's records by role, the teacher-student pairs, the task's
answer equivalence, the options, the embedder) is computed once into a frozen `TaskContext`,
so no section pairs records again. `evaluate` runs the sections in registry order, which is the
order of their keys in metrics.json: the built-in ones below, then entry points of the
`harness.metrics` group. A new stage is one module with a `Section` subclass and one
`REGISTRY.register` (or entry-point) line; nothing central changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from harness.errors import HarnessError
from harness.metrics.accuracy import str_equal
from harness.metrics.paired import PairedData, pair_records
from harness.registry import Registry
from harness.types import ROLES, Record

if TYPE_CHECKING:
    from harness.metrics import MetricOptions
    from harness.metrics.chainsim import Embedder

SameAnswer = Callable[[str, str], bool]
Scope = Literal["task", "role"]
M = TypeVar("M")


@dataclass(frozen=True)
class TaskContext:
    """One task's records and what sections share about them, computed once per task."""

    task: str
    records: tuple[Record, ...]
    """The task's headline records, in the order given to analyze(): its originals (records
    of perturbed variants are left out, so headline figures count original problems only),
    or every record when the task has no originals at all (a file of variants alone)."""
    roles: Mapping[str, tuple[Record, ...]]
    """Records per role, for the roles present, in ROLES order."""
    same_answer: SameAnswer
    """The task's answer equivalence (exact, whitespace- and case-blind strings by default)."""
    options: MetricOptions
    embedder: Embedder | None
    """The step embedder, when options ask for chains (or one was passed in)."""
    paired: PairedData | None
    """Teacher-student pairs (student sample s with teacher sample s mod teacher samples);
    None unless the task has both roles."""
    all_records: tuple[Record, ...] = ()
    """Every record of the task, perturbed variants included, in the order given to
    analyze(): what the ood section reads to compare variants with their parents."""

    @property
    def teacher(self) -> tuple[Record, ...]:
        return self.roles.get("teacher", ())

    @property
    def student(self) -> tuple[Record, ...]:
        return self.roles.get("student", ())


@dataclass(frozen=True)
class RunContext:
    """Every record and every task's context, for the run-level parts."""

    records: tuple[Record, ...]
    """Every record of the run, variants included (what cost counts)."""
    options: MetricOptions
    embedder: Embedder | None
    tasks: tuple[TaskContext, ...]
    """In the order tasks first appear in the records."""

    @property
    def headline(self) -> tuple[Record, ...]:
        """The records headline figures count: each task's originals (see TaskContext)."""
        return tuple(r for ctx in self.tasks for r in ctx.records)


class Section(Generic[M]):
    """One family of metrics. A fresh instance serves one analyze() call, so a section may
    carry state from task to task (chains remembers a model that failed to load).

    M is the section's per-record measurement; `item_fields` turns one into export columns.
    """

    name: ClassVar[str]
    """Its registry name and the key it writes."""
    scope: ClassVar[Scope] = "task"
    """"task": called once per task with all its records; "role": once per role present."""
    inline: ClassVar[bool] = False
    """Merge the aggregate (and overall) mapping into its place instead of nesting it."""

    def per_item(self, ctx: TaskContext, records: Sequence[Record]) -> Sequence[M | None] | None:
        """A measurement per record of `records` (aligned with it; None for a record it says
        nothing about); None: no per-item part."""
        return None

    def item_fields(self, item: M) -> Mapping[str, Any]:
        """The export columns of one measurement: the measurement itself when it is a
        mapping, else one column named after the section."""
        if isinstance(item, Mapping):
            return item
        return {self.name: item}

    def aggregate(
        self, ctx: TaskContext, records: Sequence[Record], items: Sequence[M | None]
    ) -> Any:
        """This section's value for the task (or the role) from its per-record measurements
        (all None without a per-item part); None leaves the key out."""
        return None

    def overall(self, run: RunContext, tasks: Mapping[str, Mapping[str, Any]]) -> Any:
        """Its part of `overall`, given every task's finished entry; None: nothing."""
        return None

    def document(self, run: RunContext) -> Mapping[str, Any]:
        """Top-level keys of its own, written after `overall` in section order."""
        return {}


REGISTRY: Registry[Section[Any]] = Registry(
    "metrics section",
    Section,
    {
        "cost": "harness.metrics.builtin:Cost",
        "accuracy": "harness.metrics.builtin:Accuracy",
        "calibration": "harness.metrics.builtin:Calibration",
        "health": "harness.metrics.builtin:Health",
        "paired": "harness.metrics.builtin:Paired",
        "chains": "harness.metrics.builtin:Chains",
        "ood": "harness.metrics.builtin:OOD",
        "routing": "harness.metrics.routing:Routing",
    },
    group="harness.metrics",
)
"""Section name -> "module:Class", in the order they run and their keys appear in
metrics.json. Built-ins first (cost only writes a top-level key, so it can go first and keep
`cost` right after `overall`); entry points of `harness.metrics` after them."""


def load_sections() -> list[Section[Any]]:
    """A fresh instance of every registered section, in registry order."""
    out: list[Section[Any]] = []
    for name in REGISTRY.names():
        cls = REGISTRY.load(name)
        if getattr(cls, "name", None) != name:
            raise HarnessError(
                f"metrics section '{name}': {REGISTRY.target(name)} writes key "
                f"{getattr(cls, 'name', None)!r}; register it under its own name"
            )
        out.append(cls())
    return out


@dataclass(frozen=True)
class Evaluation:
    """What the sections produced: the document and every record's item fields."""

    metrics: dict[str, Any]
    items: list[dict[str, Any]]


def evaluate(
    sections: Sequence[Section[Any]],
    records: Sequence[Record],
    same_answer: Mapping[str, SameAnswer],
    options: MetricOptions,
    embedder: Embedder | None,
) -> Evaluation:
    """Run the sections over the records: tasks.<task>, then overall, then the sections'
    own top-level keys. Items are aligned with `records`."""
    records = tuple(records)
    items: list[dict[str, Any]] = [{} for _ in records]
    positions: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        positions.setdefault(r.task, []).append(i)
    contexts = []
    tasks: dict[str, Any] = {}
    for task, every in positions.items():
        # Headline sections see the originals; variants are the ood section's to compare.
        where = [i for i in every if records[i].perturbation is None] or every
        ctx = _task_context(task, [records[i] for i in where], same_answer, options, embedder)
        if len(where) < len(every):
            ctx = replace(ctx, all_records=tuple(records[i] for i in every))
        contexts.append(ctx)
        by_role = {role: [i for i in where if records[i].role == role] for role in ctx.roles}
        entry: dict[str, Any] = {}
        for section in sections:
            if section.scope == "role":
                for role, at in by_role.items():
                    value = _run(section, ctx, at, records, items)
                    _place(entry.setdefault(role, {}), section, value)
            else:
                _place(entry, section, _run(section, ctx, where, records, items))
        tasks[task] = entry
    run = RunContext(records, options, embedder, tuple(contexts))
    overall: dict[str, Any] = {}
    for section in sections:
        _place(overall, section, section.overall(run, tasks))
    metrics: dict[str, Any] = {"tasks": tasks, "overall": overall}
    for section in sections:
        metrics.update(section.document(run))
    return Evaluation(metrics, items)


def _task_context(
    task: str,
    records: list[Record],
    same_answer: Mapping[str, SameAnswer],
    options: MetricOptions,
    embedder: Embedder | None,
) -> TaskContext:
    roles: dict[str, tuple[Record, ...]] = {}
    for role in ROLES:
        rs = tuple(r for r in records if r.role == role)
        if rs:
            roles[role] = rs
    same = same_answer.get(task, str_equal)
    t, s = roles.get("teacher"), roles.get("student")
    paired = pair_records(t, s, same) if t and s else None
    return TaskContext(
        task, tuple(records), MappingProxyType(roles), same, options, embedder, paired
    )


def _run(
    section: Section[Any],
    ctx: TaskContext,
    where: list[int],
    records: tuple[Record, ...],
    items: list[dict[str, Any]],
) -> Any:
    """One section over one view (a task, or one role of it): item fields, then its value."""
    view = [records[i] for i in where]
    measured = section.per_item(ctx, view)
    if measured is None:
        measured = [None] * len(view)
    elif len(measured) != len(view):
        raise ValueError(
            f"metrics section '{section.name}': {len(measured)} item measurements for "
            f"{len(view)} records"
        )
    else:
        for i, m in zip(where, measured, strict=True):
            if m is not None:
                items[i].update(section.item_fields(m))
    return section.aggregate(ctx, view, measured)


def _place(into: dict[str, Any], section: Section[Any], value: Any) -> None:
    if value is None:
        return
    if section.inline:
        into.update(value)
    else:
        into[section.name] = value


__all__ = [
    "REGISTRY",
    "Evaluation",
    "RunContext",
    "Scope",
    "Section",
    "TaskContext",
    "evaluate",
    "load_sections",
]
