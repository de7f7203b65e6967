"""`harness` command line. Bad input: one line on stderr, exit 2. Internal error: exit 1.
Ctrl-C: exit 130."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.exceptions import TyperException

from harness.console import console
from harness.errors import HarnessError, Interrupted

app = typer.Typer(
    name="harness",
    help="Evaluate distilled reasoning models against their teachers.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
if not out.is_terminal:
    out.width = 160


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def print_summary(metrics: dict[str, Any], run_dir: Path) -> None:
    table = Table(title=f"run {escape(metrics['run']['run_id'])}", title_justify="left")
    for col in (
        "task",
        "teacher acc",
        "student acc",
        "student 95% CI",
        "agreement",
        "retention",
        "chain sim",
        "student ECE",
        "n",
        "missing",
    ):
        table.add_column(col, justify="left" if col == "task" else "right")
    for task, m in metrics["tasks"].items():
        t, s, p = m.get("teacher", {}), m.get("student", {}), m.get("paired", {})
        ci = s.get("ci95")
        calibration = s.get("calibration") or {}
        source = calibration.get("confidence_source")
        table.add_row(
            escape(task),
            _fmt(t.get("accuracy")),
            _fmt(s.get("accuracy")),
            f"{ci[0]:.3f}-{ci[1]:.3f}" if ci else "-",
            _fmt(p.get("agreement")),
            _fmt(p.get("retention")),
            _fmt((m.get("chains") or {}).get("similarity")),
            f"{_fmt(calibration.get('ece'))} ({source})" if source else "-",
            str(s.get("n", "-")),
            str(s.get("missing", 0) + t.get("missing", 0)),
        )
    out.print(table)
    lost = [
        f"{task} {role} {m[role]['sandbox_errors']}"
        for task, m in metrics["tasks"].items()
        for role in ("teacher", "student")
        if m.get(role, {}).get("sandbox_errors")
    ]
    if lost:
        out.print(
            f"sandbox errors (answers the sandbox could not grade, not in n): {', '.join(lost)}"
        )
    for role, c in metrics["cost"].items():
        ex = c.get("executions") or {}
        ran = ex.get("executed", 0) + ex.get("calibration_runs", 0)
        reused = ex.get("cached", 0) + ex.get("duplicates", 0)
        programs = (
            f", {ran} programs run, {reused} from the execution cache" if ran or reused else ""
        )
        out.print(
            f"{role}: {c['generated']} generated, {c['cached']} from cache, "
            f"{c['tokens']} tokens, {c['seconds']:.1f}s generating{programs}"
        )
    out.print(
        f"total {metrics['run']['seconds']:.1f}s; records and metrics in {escape(str(run_dir))}"
    )


@app.command()
def run(
    student: Annotated[
        str | None, typer.Option(help="student model spec or alias (see `harness models`)")
    ] = None,
    teacher: Annotated[
        str | None, typer.Option(help="teacher model spec or alias [default: reference]")
    ] = None,
    tasks: Annotated[
        str | None,
        typer.Option(
            help="comma-separated task specs, e.g. chains:depth=1-6,gsm8k "
            "(default: chains plus every real set found in the data dir)"
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="first N problems of each task")] = None,
    samples: Annotated[int | None, typer.Option(help="samples per problem [default: 1]")] = None,
    seed: Annotated[int | None, typer.Option(help="sampling seed [default: 0]")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="override both models' limit")] = None,
    temperature: Annotated[float | None, typer.Option(help="override both (0 = greedy)")] = None,
    style: Annotated[
        str | None, typer.Option(help="prompt style: r1, cot-fewshot, plain, r1-confidence")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="generation batch size")] = None,
    data_dir: Annotated[
        str | None, typer.Option(help="local data folder (default: $HARNESS_DATA_DIR, then hub)")
    ] = None,
    out_dir: Annotated[
        str | None, typer.Option("--out", help="folder of run folders [default: runs]")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option(help="run folder name (default: from config)")
    ] = None,
    cache_dir: Annotated[
        str | None, typer.Option(help="generation cache (default: $HARNESS_CACHE_DIR, user cache)")
    ] = None,
    fresh: Annotated[
        bool | None, typer.Option(help="ignore cached generations and start over")
    ] = None,
    logprobs: Annotated[
        bool | None, typer.Option("--logprobs", help="record generated tokens' log-probs")
    ] = None,
    chain_model: Annotated[
        str | None,
        typer.Option(help="embedding model for chain similarity (none: off) [default: MiniLM]"),
    ] = None,
    confidence: Annotated[
        str | None,
        typer.Option(help="calibration's confidence: auto, stated, logprob, agreement"),
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML RunConfig; flags override it")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bars")] = False,
) -> None:
    """Run (or resume) student and teacher on the tasks; write records and metrics."""
    from harness.config import RunConfig
    from harness.runner import run as run_eval
    from harness.tasks import split_task_list

    fields: dict[str, Any] = {
        "student": student,
        "teacher": teacher,
        "tasks": split_task_list(tasks) if tasks is not None else None,
        "limit": limit,
        "samples": samples,
        "seed": seed,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "style": style,
        "batch_size": batch_size,
        "data_dir": data_dir,
        "out": out_dir,
        "run_id": run_id,
        "cache_dir": cache_dir,
        "fresh": fresh,
        "logprobs": logprobs,
        "chain_model": chain_model,
        "confidence": confidence,
    }
    # Only what was given on the command line overrides a --config file.
    given = {k: v for k, v in fields.items() if v is not None}
    cfg = RunConfig.load_yaml(config, **given) if config else RunConfig.build(**given)
    result = run_eval(cfg, progress=not quiet)
    print_summary(result.metrics, result.run_dir)


@app.command()
def models() -> None:
    """List model aliases: backend, model id, prompt format, recommended sampling."""
    from harness.models import alias_names, aliases

    table = Table(
        title="model aliases (or hf:<id>, vllm:<id>, openai:<model>@<url>, "
        "llamacpp:<file.gguf>, replay:<file.jsonl>)",
        title_justify="left",
    )
    for col in ("alias", "also", "backend", "model", "format", "sampling"):
        table.add_column(col)
    for spec in aliases():
        s = spec.sampling
        fmt = (
            "think" + (" +prefill" if spec.prompt.prefill else "") if spec.prompt.think else "plain"
        )
        samp = (
            "n/a"
            if s.max_new_tokens == 0
            else (f"T={s.temperature} top_p={s.top_p} max={s.max_new_tokens}")
        )
        table.add_row(
            spec.name, ", ".join(alias_names(spec)), spec.backend, escape(spec.model), fmt, samp
        )
    out.print(table)


@app.command("tasks")
def tasks_cmd(
    data_dir: Annotated[str | None, typer.Option(help="local data folder")] = None,
) -> None:
    """List tasks with their sizes and where their data would come from."""
    from harness.tasks import REGISTRY, DataSource, get_task

    source = DataSource.resolve(data_dir)
    table = Table(title="tasks", title_justify="left")
    for col in ("task", "problems", "source", "description"):
        table.add_column(col)
    for name in sorted(REGISTRY):
        task = get_task(name)
        size = task.size(source)
        where = "local" if task.available(source) else "hub"
        if name == "chains":
            where = "generated"
        table.add_row(name, "-" if size is None else str(size), where, task.description)
    out.print(table)


@app.command()
def export(
    run: Annotated[str, typer.Argument(help="run folder, or a run id under --runs")],
    fmt: Annotated[str, typer.Option("--format", help="parquet, csv or jsonl")] = "parquet",
    output: Annotated[
        Path | None, typer.Option(help="file to write [default: <run>/items.<format>]")
    ] = None,
    runs: Annotated[str, typer.Option(help="folder of run folders")] = "runs",
    chains: Annotated[
        bool, typer.Option(help="per-record chain similarity (embeds what is not cached)")
    ] = True,
) -> None:
    """Write a run's records with their per-item metrics as one pandas-ready table."""
    from harness.export import export_run

    path, rows = export_run(run, fmt, output=output, runs=runs, chains=chains)
    out.print(f"{rows} rows written to {escape(str(path))}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps every failure to one line and an exit code."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="harness", standalone_mode=False)
    except Interrupted as e:  # Ctrl-C during a run: what finished is cached
        console.print(f"[red]{escape(str(e))}[/]", soft_wrap=True)
        sys.exit(e.exit_code)
    except HarnessError as e:
        console.print(f"[red]error:[/] {escape(str(e))}", soft_wrap=True)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        console.print("[red]interrupted[/]")
        sys.exit(130)
    except TyperException as e:  # usage errors: bad flag, bad value, missing option
        if type(e).__name__ == "NoArgsIsHelpError":
            sys.exit(0)
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        console.print(f"[red]error:[/] {escape(message)} (see `harness --help`)", soft_wrap=True)
        sys.exit(2)
    except Exception as e:  # noqa: BLE001 - the last line of defence
        if os.environ.get("HARNESS_DEBUG"):
            traceback.print_exc()
        console.print(
            f"[red]internal error:[/] {escape(type(e).__name__)}: {escape(str(e)[:300])} "
            "(set HARNESS_DEBUG=1 for the traceback)",
            soft_wrap=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
