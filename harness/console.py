"""One stderr console for progress, warnings and the one-line errors (stdout stays for data)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True, highlight=False)


def warn(message: str) -> None:
    console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def info(message: str) -> None:
    console.print(escape(message), soft_wrap=True)


def progress_bars(show: bool = True) -> Progress:
    """The bars long work shows on stderr (a run's generations, a classify's probes): one row
    per task with done/total and the time so far; `show=False` for --quiet."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not show,
        transient=False,
    )
