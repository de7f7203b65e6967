"""Task registry: one line per task. `get_task("chains:depth=1-4")` builds one with options."""

from __future__ import annotations

import importlib

from harness.errors import HarnessError
from harness.tasks.base import DataSource, Loaded, Task

# name -> "module:Class"; modules are imported only when their task is used.
REGISTRY: dict[str, str] = {
    "chains": "harness.tasks.chains:Chains",
    "gsm8k": "harness.tasks.gsm8k:GSM8K",
    "math": "harness.tasks.math:MATH",
    "math500": "harness.tasks.math:MATH500",
    "aime": "harness.tasks.aime:AIME",
    "aime24": "harness.tasks.aime:AIME24",
    "aime25": "harness.tasks.aime:AIME25",
    "humaneval": "harness.tasks.humaneval:HumanEval",
    "mbpp": "harness.tasks.mbpp:MBPP",
    "mbpp-sanitized": "harness.tasks.mbpp:MBPPSanitized",
    "arc-challenge": "harness.tasks.arc:ARCChallenge",
    "logiqa": "harness.tasks.logiqa:LogiQA",
    "bbh": "harness.tasks.bbh:BBH",
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
    """`name`, `name:key=value,key=value`, or `name:value[,key=value]` for a task with a
    positional option (`bbh:navigate` sets bbh's subtask)."""
    name, _, opts = spec.strip().partition(":")
    if name.strip().lower() == "lmeval":  # `lmeval:<task>`: any lm-eval task, not a registry entry
        from harness.tasks.lmeval import LMEvalTask

        return LMEvalTask.from_spec(opts)
    cls = task_class(name.strip().lower())
    options: dict[str, str] = {}
    for i, part in enumerate(p.strip() for p in opts.split(",")):
        if not part:
            continue
        if "=" not in part:
            if i == 0 and cls.positional:
                options[cls.positional] = part
                continue
            example = f"{name}:<{cls.positional}>" if cls.positional else "chains:depth=1-4,n=3"
            raise HarnessError(
                f"task '{spec}': option '{part}' is not key=value (example: {example})"
            )
        k, v = part.split("=", 1)
        options[k.strip()] = v.strip()
    return cls(options)


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
