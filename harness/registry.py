"""One generic, lazy registry for every kind of extension (tasks, backends, later stages).

A registry maps a name to `"module:Class"`; the module is imported the first time the name is
used, so listing names costs nothing and a backend's heavy library loads only when that backend
runs. Third-party packages add entries through an entry-point group (`harness.tasks`,
`harness.backends`, ...) without touching this code. An unknown name gets one line with the
closest known names; a class that is not of the registry's base type is refused when loaded.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from harness.errors import HarnessError

T = TypeVar("T")


def suggest(name: str, known: list[str], n: int = 3) -> str:
    """`; did you mean 'x'?` for a close known name, else ''."""
    close = difflib.get_close_matches(name, known, n=n, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


class Registry(Generic[T]):
    """name -> "module:Class" (or a class), imported on first use and checked against `base`.

    `base` is a class, or a function returning it (so a registry can be declared before the
    module that defines its base is imported).
    """

    def __init__(
        self,
        kind: str,
        base: type[T] | Callable[[], type[T]],
        entries: dict[str, str] | None = None,
        *,
        group: str | None = None,
        hint: str = "",
    ) -> None:
        self.kind = kind
        self._base = base
        self._targets: dict[str, str | type[T]] = dict(entries or {})
        self._loaded: dict[str, type[T]] = {}
        self.group = group
        """Entry-point group third-party packages register under (None: none read)."""
        self.hint = hint
        """Said after the list of known names (e.g. "run `harness tasks`")."""
        self._plugins_read = group is None

    @property
    def base(self) -> type[T]:
        b = self._base
        return b if isinstance(b, type) else b()

    def register(self, name: str, target: str | type[T]) -> None:
        """Add (or replace) an entry: `"module:Class"` or the class itself."""
        if isinstance(target, str) and ":" not in target:
            raise ValueError(f"{self.kind} '{name}': target must be 'module:Class', not {target!r}")
        self._targets[name] = target
        self._loaded.pop(name, None)

    def unregister(self, name: str) -> None:
        self._targets.pop(name, None)
        self._loaded.pop(name, None)

    def _read_plugins(self) -> None:
        if self._plugins_read:
            return
        self._plugins_read = True
        for ep in entry_points(group=self.group or ""):
            self._targets.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        """Every registered name, entry points included, in registration order."""
        self._read_plugins()
        return list(self._targets)

    def __contains__(self, name: object) -> bool:
        self._read_plugins()
        return name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def target(self, name: str) -> str:
        """Where an entry lives (`module:Class`), without importing it."""
        t = self._lookup(name)
        return t if isinstance(t, str) else f"{t.__module__}:{t.__qualname__}"

    def _lookup(self, name: str) -> str | type[T]:
        self._read_plugins()
        found = self._targets.get(name)
        if found is None:
            known = sorted(self._targets)
            raise HarnessError(
                f"unknown {self.kind} '{name}'{suggest(name, known)}; known: {', '.join(known)}"
                + (f" ({self.hint})" if self.hint else "")
            )
        return found

    def load(self, name: str) -> type[T]:
        """The class registered under `name`, imported now if it was not yet."""
        cls = self._loaded.get(name)
        if cls is not None:
            return cls
        target = self._lookup(name)
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            try:
                obj = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as e:
                raise HarnessError(
                    f"{self.kind} '{name}': cannot import {target} ({type(e).__name__}: {e})"
                ) from e
        else:
            obj = target
        base = self.base
        if not (isinstance(obj, type) and issubclass(obj, base)):
            raise HarnessError(
                f"{self.kind} '{name}': {self.target(name)} is not a subclass of "
                f"{base.__module__}.{base.__qualname__}"
            )
        self._loaded[name] = obj
        return obj


__all__ = ["Registry", "suggest"]
