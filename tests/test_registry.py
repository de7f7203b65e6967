"""The generic registry: names cost nothing until used, a wrong class is refused when loaded, a
mistyped name gets the close ones, and entry points add names without touching the code."""

from __future__ import annotations

import importlib
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import harness.registry as registry_module
from harness.errors import HarnessError
from harness.registry import Registry, suggest


class Shape:
    """The base type of the test registry."""


class Square(Shape):
    pass


class NotAShape:
    pass


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module on the path that nobody has imported yet."""
    name = "harness_registry_test_plugin"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            class Shape:
                pass

            class Circle(Shape):
                pass

            class Ring(Shape):
                pass

            class Stone:
                pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def late_base(module: str) -> type:
    """The plug-in module's own base class, looked up only when a registry checks a class."""
    return importlib.import_module(module).Shape


def test_a_name_is_imported_only_when_loaded(plugin_module: str) -> None:
    shapes: Registry[Shape] = Registry(
        "shape", lambda: late_base(plugin_module), {"circle": f"{plugin_module}:Circle"}
    )
    assert "circle" in shapes and shapes.names() == ["circle"] and len(shapes) == 1
    assert shapes.target("circle") == f"{plugin_module}:Circle"
    assert plugin_module not in sys.modules  # listing and looking up import nothing
    cls = shapes.load("circle")
    assert plugin_module in sys.modules and cls.__name__ == "Circle"
    assert shapes.load("circle") is cls


def test_a_class_of_another_type_is_refused_when_loaded(plugin_module: str) -> None:
    shapes: Registry[Shape] = Registry("shape", Shape, {"stone": f"{plugin_module}:Stone"})
    assert "stone" in shapes  # registering checks nothing: nothing is imported yet
    with pytest.raises(HarnessError) as e:
        shapes.load("stone")
    assert "is not a subclass of" in str(e.value) and "Shape" in str(e.value)
    shapes.register("odd", NotAShape)  # type: ignore[arg-type]
    with pytest.raises(HarnessError, match="not a subclass"):
        shapes.load("odd")


def test_a_target_that_does_not_import_is_one_line() -> None:
    shapes: Registry[Shape] = Registry(
        "shape",
        Shape,
        {"gone": "harness_no_such_module_anywhere:X", "typo": "tests.test_registry:Sqare"},
    )
    for name in ("gone", "typo"):
        with pytest.raises(HarnessError) as e:
            shapes.load(name)
        assert f"shape '{name}': cannot import" in str(e.value) and "\n" not in str(e.value)


def test_unknown_names_get_the_close_ones() -> None:
    shapes: Registry[Shape] = Registry(
        "shape", Shape, {"square": Square, "circle": Square}, hint="run `shapes list`"
    )
    with pytest.raises(HarnessError) as e:
        shapes.load("sqare")
    text = str(e.value)
    assert text.startswith("unknown shape 'sqare'; did you mean 'square'?")
    assert "known: circle, square" in text and text.endswith("(run `shapes list`)")
    assert suggest("zzz", ["square"]) == ""


def test_register_replaces_and_unregister_removes() -> None:
    class OtherSquare(Shape):
        pass

    shapes: Registry[Shape] = Registry("shape", Shape)
    shapes.register("sq", Square)
    assert shapes.load("sq") is Square and shapes.target("sq").endswith(":Square")
    shapes.register("sq", OtherSquare)
    assert shapes.load("sq") is OtherSquare  # the loaded class is forgotten with its entry
    shapes.unregister("sq")
    assert "sq" not in shapes
    with pytest.raises(ValueError, match="module:Class"):
        shapes.register("bad", "no_colon_here")


def test_entry_points_add_names(monkeypatch: pytest.MonkeyPatch, plugin_module: str) -> None:
    asked: list[str] = []

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        asked.append(group)
        return [
            EntryPoint(name="circle", value=f"{plugin_module}:Circle", group=group),
            EntryPoint(name="ring", value=f"{plugin_module}:Stone", group=group),
        ]

    monkeypatch.setattr(registry_module, "entry_points", fake_entry_points)
    shapes: Registry[Shape] = Registry(
        "shape",
        lambda: late_base(plugin_module),
        {"ring": f"{plugin_module}:Ring"},
        group="test.shapes",
    )
    assert shapes.names() == ["ring", "circle"]
    assert shapes.load("circle").__name__ == "Circle"
    assert shapes.load("ring").__name__ == "Ring"  # a plug-in never replaces a built-in name
    shapes.names()
    assert asked == ["test.shapes"]  # the group is read once
    silent: Registry[Shape] = Registry("shape", Shape, {"square": Square})
    assert silent.names() == ["square"] and asked == ["test.shapes"]  # no group: none read


def test_the_backend_registry_reads_its_entry_point_group() -> None:
    from harness.backends import BACKENDS, Backend

    assert BACKENDS.group == "harness.backends" and BACKENDS.base is Backend
    assert {"hf", "transformers", "vllm", "openai", "llamacpp", "replay", "reference"} <= set(
        BACKENDS
    )
    assert BACKENDS.load("hf") is BACKENDS.load("transformers")
