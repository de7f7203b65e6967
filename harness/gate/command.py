"""The `harness gate` flows, without printing (the command line prints the result)."""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.gate.checks import GateResult, evaluate
from harness.gate.render import junit, markdown, write_text
from harness.gate.rules import load_rules
from harness.gate.snapshot import from_run, load_snapshot, save_baseline


def run_gate(
    baseline: str,
    candidate: str,
    *,
    runs: str | Path = "runs",
    rules: Path | None = None,
    alpha: float | None = None,
    junit_path: Path | None = None,
    markdown_path: Path | None = None,
) -> GateResult:
    """Every input is read and validated before anything is decided; the JUnit and markdown
    files are written whatever the verdict (CI uploads them on failure too)."""
    if alpha is not None and not 0 < alpha < 1:
        raise HarnessError(f"--alpha must be between 0 and 1 (got {alpha:g})")
    parsed = load_rules(rules)
    base = load_snapshot(baseline, runs)
    cand = load_snapshot(candidate, runs)
    result = evaluate(base, cand, parsed, alpha)
    if junit_path is not None:
        write_text(junit_path, junit(result), "JUnit file")
    if markdown_path is not None:
        write_text(markdown_path, markdown(result), "markdown summary")
    return result


def save(run: str, out: Path, runs: str | Path = "runs") -> tuple[Path, int, int]:
    """Write RUN's baseline file: (path, tasks, items)."""
    from harness.export import locate_run

    snap = from_run(locate_run(run, runs))
    if not snap.tasks:
        raise HarnessError(f"run {run} has no task with student results: nothing to save")
    items = save_baseline(snap, out)
    return out, len(snap.tasks), items
