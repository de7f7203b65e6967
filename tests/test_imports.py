"""The import direction, read from the source: backends never import tasks, and no two parts of
harness import each other (directly or round a loop).

Every module under harness/ is parsed with `ast`, so imports inside functions count as much as
those at the top (a lazy import is still a dependency); only `if TYPE_CHECKING:` blocks are left
out, since they never run. The graph's nodes are harness's top-level names (`tasks`, `metrics`,
`backends`, `runner`, `config`, ... and `harness` for the package's own `__init__`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "harness"
ROOT_NODE = "harness"


def module_name(path: Path) -> str:
    """`harness/tasks/gsm8k.py` -> `harness.tasks.gsm8k`; a package is its `__init__`."""
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    """`TYPE_CHECKING` or `typing.TYPE_CHECKING`."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, leaving out the body of `if TYPE_CHECKING:` (its `else` still runs)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imports_in(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The dotted names one module imports (harness's and others'), relative imports resolved.

    `from pkg import name` names `pkg.name` when that is a module in `known`, else `pkg`.
    """
    found: set[str] = set()
    for node in _nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = module.split(".") if is_package else module.split(".")[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return found


def top(name: str) -> str | None:
    """The graph node a dotted name belongs to; None outside harness."""
    parts = name.split(".")
    if parts[0] != ROOT_NODE:
        return None
    return parts[1] if len(parts) > 1 else ROOT_NODE


def module_imports() -> dict[str, set[str]]:
    """module -> the harness modules and packages it imports."""
    modules = all_modules()
    known = set(modules)
    result: dict[str, set[str]] = {}
    for name, path in modules.items():
        got = imports_in(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", known)
        result[name] = {g for g in got if top(g) is not None}
    return result


def package_graph() -> dict[str, dict[str, set[str]]]:
    """node -> imported node -> the modules that make the edge (self-edges left out)."""
    graph: dict[str, dict[str, set[str]]] = {}
    for module, targets in module_imports().items():
        src = top(module)
        assert src is not None
        graph.setdefault(src, {})
        for target in targets:
            dst = top(target)
            if dst is not None and dst != src:
                graph[src].setdefault(dst, set()).add(f"{module} -> {target}")
    return graph


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of a directed graph as [a, b, ..., a], or None (depth first, sorted order)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def describe(graph: dict[str, dict[str, set[str]]], cycle: list[str]) -> str:
    """A cycle with, for each edge, the imports that make it."""
    lines = [" -> ".join(cycle)]
    for a, b in zip(cycle, cycle[1:], strict=False):
        lines.append(f"  {a} -> {b}: " + "; ".join(sorted(graph[a][b])))
    return "\n".join(lines)


def test_backends_never_import_tasks() -> None:
    bad = [
        f"{module} imports {target}"
        for module, targets in sorted(module_imports().items())
        if module.startswith("harness.backends")
        for target in sorted(targets)
        if target == "harness.tasks" or target.startswith("harness.tasks.")
    ]
    assert not bad, "backends must not import tasks:\n" + "\n".join(bad)


def test_no_import_cycle_between_parts_of_harness() -> None:
    graph = package_graph()
    edges = {a: set(b) for a, b in graph.items()}
    cycle = find_cycle(edges)
    print("import graph:")
    for a in sorted(edges):
        print(f"  {a} -> {', '.join(sorted(edges[a])) or '(nothing)'}")
    assert cycle is None, "import cycle:\n" + describe(graph, cycle or [])


def test_the_graph_sees_what_it_should() -> None:
    """Guard against a walker that silently finds nothing."""
    graph = package_graph()
    assert "tasks" in graph["runner"] and "generate" in graph["runner"]
    assert "generate" in graph["lmeval"] and "runner" not in graph["lmeval"]
    assert {"tasks", "metrics", "backends", "lmeval", "runner", "config", ROOT_NODE} <= set(graph)


KNOWN = {"pkg", "pkg.a", "pkg.a.b", "pkg.c", "pkg.d"}


@pytest.mark.parametrize(
    "source, module, is_package, expected",
    [
        ("import pkg.a.b\nimport os", "pkg.c", False, {"pkg.a.b", "os"}),
        ("from . import c", "pkg.a.b", False, {"pkg.a"}),  # pkg.a.c is not a module
        ("from .. import c", "pkg.a.b", False, {"pkg.c"}),
        ("from . import b", "pkg.a", True, {"pkg.a.b"}),
        ("from .b import x", "pkg.a", True, {"pkg.a.b"}),
        ("from pkg import d, __version__", "pkg.c", False, {"pkg.d", "pkg"}),
        ("def f():\n    from pkg.a import b\n", "pkg.c", False, {"pkg.a.b"}),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.d\n"
            "else:\n    import pkg.c\n",
            "pkg.a",
            True,
            {"typing", "pkg.c"},
        ),
        ("import typing\nif typing.TYPE_CHECKING:\n    import pkg.d\n", "pkg", True, {"typing"}),
    ],
)
def test_import_walker(source: str, module: str, is_package: bool, expected: set[str]) -> None:
    assert imports_in(source, module, is_package, KNOWN) == expected


def test_find_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
