"""Metrics as sections: a section plugs in with one registry line, and the document's keys
follow the registry's order."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest

from harness.errors import HarnessError
from harness.metrics import REGISTRY, MetricOptions, RunContext, Section, TaskContext, analyze
from harness.metrics.sections import Scope, load_sections
from harness.types import Record
from tests.metrics_records import make_record as rec

BUILTIN = ["cost", "accuracy", "calibration", "health", "paired", "chains", "ood", "routing"]


class Toy(Section[int]):
    """Counts characters per record; reads the shared pairs rather than pairing again."""

    name: ClassVar[str] = "toy"

    def per_item(self, ctx: TaskContext, records: Sequence[Record]) -> list[int | None]:
        return [len(r.text) if r.role == "student" else None for r in records]

    def aggregate(
        self, ctx: TaskContext, records: Sequence[Record], items: Sequence[int | None]
    ) -> dict[str, Any]:
        lengths = [n for n in items if n is not None]
        pairs = len(ctx.paired.agree) if ctx.paired is not None else 0
        return {"chars": sum(lengths), "items": len(lengths), "pairs": pairs}

    def overall(self, run: RunContext, tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
        return {"tasks": sum("toy" in e for e in tasks.values())}

    def document(self, run: RunContext) -> Mapping[str, Any]:
        return {"toy_records": len(run.records)}


class RoleToy(Section[None]):
    name: ClassVar[str] = "role_toy"
    scope: ClassVar[Scope] = "role"

    def aggregate(
        self, ctx: TaskContext, records: Sequence[Record], items: Sequence[None]
    ) -> dict[str, Any]:
        return {"role": records[0].role, "n": len(records)}


class Misnamed(Section[None]):
    name: ClassVar[str] = "something_else"


class Ragged(Section[int]):
    name: ClassVar[str] = "ragged"

    def per_item(self, ctx: TaskContext, records: Sequence[Record]) -> list[int | None]:
        return [1]


@contextmanager
def registered(name: str, target: type[Section[Any]] | str) -> Iterator[None]:
    REGISTRY.register(name, target)
    try:
        yield
    finally:
        REGISTRY.unregister(name)


def _records() -> list[Record]:
    rs = []
    for i in range(3):
        rs.append(rec(f"p{i}", "teacher", True))
        rs.append(rec(f"p{i}", "student", i != 1))
    rs.append(rec("q0", "student", True, task="solo"))
    return rs


def test_a_registered_section_appears_in_the_metrics_and_items_and_goes_away() -> None:
    records = _records()
    with registered("toy", Toy):
        got = analyze(records, {}, MetricOptions())
    t = got.metrics["tasks"]["t"]
    assert t["toy"] == {"chars": 3 * len("The answer is 1."), "items": 3, "pairs": 3}
    assert got.metrics["tasks"]["solo"]["toy"]["pairs"] == 0
    assert list(t)[-1] == "toy"  # after every built-in section
    assert got.metrics["overall"]["toy"] == {"tasks": 2}
    assert list(got.metrics)[-1] == "toy_records" and got.metrics["toy_records"] == 7
    for r, item in zip(records, got.items, strict=True):
        assert item.get("toy") == (len(r.text) if r.role == "student" else None)

    after = analyze(records, {}, MetricOptions())
    assert "toy" not in REGISTRY.names()
    assert "toy" not in after.metrics["tasks"]["t"] and "toy_records" not in after.metrics
    assert all("toy" not in item for item in after.items)


def test_a_role_section_writes_under_each_role_present() -> None:
    with registered("role_toy", RoleToy):
        m = analyze(_records(), {}, MetricOptions()).metrics
    t = m["tasks"]["t"]
    assert t["teacher"]["role_toy"] == {"role": "teacher", "n": 3}
    assert t["student"]["role_toy"] == {"role": "student", "n": 3}
    assert list(t["student"])[-1] == "role_toy"
    assert "teacher" not in m["tasks"]["solo"]


def test_sections_run_in_registry_order_with_their_names() -> None:
    assert REGISTRY.names()[: len(BUILTIN)] == BUILTIN
    sections = load_sections()
    assert [s.name for s in sections] == REGISTRY.names()
    for name, s in zip(REGISTRY.names(), sections, strict=True):
        assert REGISTRY.target(name) == f"{type(s).__module__}:{type(s).__qualname__}"
    # the document follows that order: task-scoped keys after the roles, role-scoped keys in
    # order inside each role (accuracy is inline: its keys come first), top-level keys last
    m = analyze(_records(), {}, MetricOptions(chains_off="off")).metrics
    t = m["tasks"]["t"]
    assert list(t) == ["teacher", "student", "paired", "chains", "routing"]
    assert list(t["student"])[-2:] == ["calibration", "health"]
    assert list(m) == ["tasks", "overall", "cost"]
    assert list(m["overall"])[-2:] == ["paired", "routing"]


def test_a_section_registered_under_another_name_is_refused() -> None:
    with registered("misnamed", Misnamed), pytest.raises(HarnessError, match="something_else"):
        analyze(_records(), {}, MetricOptions())


def test_per_item_must_align_with_the_records() -> None:
    with registered("ragged", Ragged), pytest.raises(ValueError, match="ragged"):
        analyze(_records(), {}, MetricOptions())


def test_metrics_import_no_task_code() -> None:
    code = (
        "import sys, harness.metrics, harness.metrics.builtin, harness.metrics.sections\n"
        "bad = sorted(m for m in sys.modules if m.startswith('harness.tasks'))\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
