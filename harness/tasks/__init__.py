"""Task registry: one line per task. `get_task("chains:depth=1-4")` builds one with options."""

from __future__ import annotations

import importlib

from harness.errors import HarnessError
from harness.tasks.base import DataSource, Loaded, Task

# name -> "module:Class"; modules are imported only when their task is used.
REGISTRY: dict[str, str] = {
    "chains": "harness.tasks.chains:Chains",
    "gsm8k": "harness.tasks.gsm8k:GSM8K",
}


def task_class(name: str) -> type[Task]:
    target = REGISTRY.get(name)
    if target is None:
        raise HarnessError(
            f"unknown task '{name}'; known tasks: {', '.join(sorted(REGISTRY))} "
            "(run `harness tasks`)"
        )
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def get_task(spec: str) -> Task:
    """`name` or `name:key=value,key=value`."""
    name, _, opts = spec.strip().partition(":")
    options: dict[str, str] = {}
    for part in filter(None, opts.split(",")):
        if "=" not in part:
            raise HarnessError(
                f"task '{spec}': option '{part}' is not key=value (example: chains:depth=1-4,n=3)"
            )
        k, v = part.split("=", 1)
        options[k.strip()] = v.strip()
    return task_class(name.strip().lower())(options)


def split_task_list(text: str) -> list[str]:
    """Split `--tasks` on commas; a `key=value` piece continues the previous task's options.

    So `chains:depth=1-4,n=3,gsm8k` is two tasks: `chains:depth=1-4,n=3` and `gsm8k`.
    """
    specs: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        if "=" in piece and ":" not in piece and specs:
            specs[-1] += "," + piece
        else:
            specs.append(piece)
    if not specs:
        raise HarnessError("--tasks is empty: name at least one task (see `harness tasks`)")
    return specs


__all__ = ["REGISTRY", "DataSource", "Loaded", "Task", "get_task", "split_task_list", "task_class"]
