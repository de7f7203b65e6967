"""Task registry: one line per task. `get_task("chains:depth=1-4")` builds one with options.

Entries are `"module:Class"`, imported only when their task is used, so listing the names
costs nothing. Each task declares its options as a frozen dataclass (`Task.options_type`);
`get_task` splits the spec and the task checks its options against that declaration.

Another package adds tasks without touching this file: a `harness.tasks` entry point whose
value is its Task subclass, e.g. in its pyproject.toml

    [project.entry-points."harness.tasks"]
    mytask = "mypkg.tasks:MyTask"

(or, at run time, `TASKS.register("mytask", "mypkg.tasks:MyTask")`).
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.registry import Registry
from harness.tasks.base import DataSource, Loaded, Task

TASKS = Registry[Task](
    "task",
    Task,
    {
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
        "lmeval": "harness.tasks.lmeval:LMEvalTask",
        "file": "harness.tasks.file:FileTask",
    },
    group="harness.tasks",
    hint="run `harness tasks`",
)
REGISTRY = TASKS
"""The same registry under its older name (iterate it, `in`, `sorted(REGISTRY)`)."""


def task_class(name: str) -> type[Task]:
    """The Task subclass registered under `name` (one line with close names if none)."""
    return TASKS.load(name)


def split_options(spec: str, name: str, text: str, positional: str | None) -> dict[str, str]:
    """`key=value,key=value` (and one bare value for the task's positional option, if it has
    one) as a dict of strings in the order written; one line for anything else."""
    options: dict[str, str] = {}
    if positional and "#" in text.split(",", 1)[0]:
        # `file:PATH#key=value,...`: the positional value, then its options after the '#'.
        head, _, text = text.partition("#")
        options[positional] = head.strip()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" in part:
            k, v = part.split("=", 1)
            options[k.strip()] = v.strip()
            continue
        if positional and positional not in options:
            options[positional] = part
            continue
        example = f"{name}:<{positional}>" if positional else "chains:depth=1-4,n=3"
        again = ""
        if positional:
            both = f"{name}:{options[positional]},{name}:{part}"
            again = f"; one {positional} per entry: write --tasks {both}"
        raise HarnessError(
            f"task '{spec}': option '{part}' is not key=value (example: {example}){again}"
        )
    return options


def get_task(spec: str) -> Task:
    """`name`, `name:key=value,key=value`, or `name:value[,key=value]` (also written
    `name:value#key=value`) for a task with a positional option (`bbh:navigate` sets bbh's
    subtask, `lmeval:gsm8k` names the lm-eval task, `file:my.jsonl#grader=math` a file)."""
    name, _, opts = spec.strip().partition(":")
    name = name.strip().lower()
    cls = task_class(name)
    return cls(split_options(spec, name, opts, cls.positional))


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


__all__ = [
    "REGISTRY",
    "TASKS",
    "DataSource",
    "Loaded",
    "Task",
    "get_task",
    "split_options",
    "split_task_list",
    "task_class",
]
