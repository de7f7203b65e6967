"""`harness` command line. Bad input: one line on stderr, exit 2. Internal error: exit 1.
Ctrl-C: exit 130."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.exceptions import TyperException

from harness.config import RUN_FLAGS, RunConfig, RunFlag
from harness.console import console
from harness.errors import HarnessError, Interrupted

CommandT = TypeVar("CommandT", bound=Callable[..., Any])

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


def print_ood(metrics: dict[str, Any]) -> None:
    """Per task and perturbation kind: accuracy on the variants, the paired change against
    their parents (95% CI), and teacher-student retention there (only runs with variants)."""
    rows = [
        (task, kind, e)
        for task, m in metrics["tasks"].items()
        for kind, e in ((m.get("ood") or {}).get("kinds") or {}).items()
    ]
    if not rows:
        return
    table = Table(title="perturbed variants (delta: vs their own parents)", title_justify="left")
    for col in (
        "task",
        "kind",
        "teacher acc",
        "student acc",
        "student delta",
        "delta 95% CI",
        "retention",
        "n",
    ):
        table.add_column(col, justify="left" if col in ("task", "kind") else "right")
    for task, kind, e in rows:
        t, s = e.get("teacher") or {}, e.get("student") or {}
        ci = s.get("delta_ci95")
        delta = s.get("delta")
        table.add_row(
            escape(task),
            escape(kind),
            _fmt(t.get("accuracy")),
            _fmt(s.get("accuracy")),
            "-" if delta is None else f"{delta:+.3f}",
            f"{ci[0]:+.3f}..{ci[1]:+.3f}" if ci else "-",
            _fmt((e.get("paired") or {}).get("retention")),
            str(s.get("n", t.get("n", "-"))),
        )
    out.print(table)


def print_failures(section: dict[str, Any], title: str, advice: int = 10) -> None:
    """The failure labels per task (counts and shares) and the first lines of advice."""
    from harness.classify import LABELS

    table = Table(title=escape(title), title_justify="left")
    table.add_column("task")
    table.add_column("failed", justify="right")
    shown = [label for label in LABELS if section["overall"]["counts"].get(label)]
    for label in shown:
        table.add_column(label.replace("_", " "), justify="right")
    groups = [*section["tasks"].items(), ("overall", section["overall"])]
    for task, g in groups:
        cells = [
            f"{g['counts'][label]} ({g['shares'][label]['share']:.0%})" if g["n"] else "0"
            for label in shown
        ]
        table.add_row(escape(task), str(g["n"]), *cells)
    out.print(table)
    for line in section["advice"]["lines"][:advice]:
        out.print(escape(line))


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
    print_ood(metrics)
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
    failures = metrics.get("failures")
    if isinstance(failures, dict) and "overall" in failures:
        print_failures(failures, "why the student failed (failures.jsonl)", advice=3)
    out.print(
        f"total {metrics['run']['seconds']:.1f}s; records and metrics in {escape(str(run_dir))}"
    )


def _from_flag(flag: RunFlag, value: Any) -> Any:
    """A flag's value as its field takes it (`--tasks a,b` through the tasks' own splitter)."""
    if flag.parse is None:
        return value
    module, _, function = flag.parse.partition(":")
    return getattr(importlib.import_module(module), function)(value)


def with_config_flags(flags: dict[str, RunFlag]) -> Callable[[CommandT], CommandT]:
    """Give a command one option per config field, read from the field's declaration, before
    its own options; typer builds the command from this signature and passes the flags given
    as keyword arguments. So a new RunConfig field is a new `harness run` flag."""

    def decorate(command: CommandT) -> CommandT:
        own = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in inspect.signature(command, eval_str=True).parameters.values()
            if p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        clash = {p.name for p in own} & set(flags)
        if clash:
            raise RuntimeError(f"config fields {sorted(clash)} clash with the command's options")
        fields = []
        for flag in flags.values():
            shown = f" [default: {flag.shown_default}]" if flag.shown_default is not None else ""
            option = typer.Option(*flag.names, help=escape(flag.help + shown))
            kind = str if flag.parse is not None else flag.annotation
            fields.append(
                inspect.Parameter(
                    flag.field,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=None,  # None: not given, so a --config file's value stands
                    annotation=Annotated[kind | None, option],
                )
            )
        signature = inspect.Signature([*fields, *own], return_annotation=None)
        cast(Any, command).__signature__ = signature
        return command

    return decorate


def given_fields(flags: dict[str, RunFlag], given: dict[str, Any]) -> dict[str, Any]:
    """The flags given on the command line (None: not given), as their fields take them."""
    return {k: _from_flag(flags[k], v) for k, v in given.items() if v is not None}


@app.command()
@with_config_flags(RUN_FLAGS)
def run(
    config: Annotated[Path | None, typer.Option(help="YAML RunConfig; flags override it")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bars")] = False,
    **given: Any,
) -> None:
    """Run (or resume) student and teacher on the tasks; write records and metrics."""
    from harness.runner import run as run_eval

    # Only what was given on the command line overrides a --config file.
    fields = given_fields(RUN_FLAGS, given)
    cfg = RunConfig.load_yaml(config, **fields) if config else RunConfig.build(**fields)
    result = run_eval(cfg, progress=not quiet)
    print_summary(result.metrics, result.run_dir)


@app.command()
def models(
    backend: Annotated[
        str | None, typer.Option("--backend", help="a backend whose options to list")
    ] = None,
) -> None:
    """List model aliases: backend, model id, prompt format, recommended sampling; with
    --backend NAME, that backend's options too (from its declaration)."""
    from harness.backends import BACKENDS
    from harness.models import alias_names, aliases, spec_forms
    from harness.options import describe

    wanted = (backend or "").strip().lower() or None
    chosen = BACKENDS.load(wanted) if wanted else None  # an unknown name fails before any table
    table = Table(
        title=escape(f"model aliases (or {', '.join(spec_forms())})"), title_justify="left"
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
    if chosen is None or wanted is None:
        return
    form = f"{wanted}:{chosen.target}" if chosen.target else wanted
    needs = f"; needs {chosen.requires[0]}: {chosen.requires[1]}" if chosen.requires else ""
    infos = describe(chosen.options_class)
    if not infos:
        out.print(escape(f"backend {wanted} ({form}) takes no options{needs}"))
        return
    shown = Table(
        title=escape(f"{wanted} options: {form}#key=value,...{needs}"), title_justify="left"
    )
    for col in ("option", "type", "default", "cache identity", "help"):
        shown.add_column(col)
    for o in sorted(infos, key=lambda o: o.name):
        if isinstance(o.default, bool):
            default = "1" if o.default else "0"
        elif isinstance(o.default, float):
            default = f"{o.default:g}"
        else:
            default = "-" if o.default in (None, "") else str(o.default)
        bounds = [f"> {o.above:g}"] if o.above is not None else []
        bounds += [f">= {o.low:g}"] if o.low is not None else []
        bounds += [f"<= {o.high:g}"] if o.high is not None else []
        kind = "|".join(o.choices) if o.choices else " ".join([o.type, *bounds])
        identity = "yes" if o.identity else "no"
        shown.add_row(escape(o.name), escape(kind), escape(default), identity, escape(o.help))
    out.print(shown)


@app.command("tasks")
def tasks_cmd(
    name: Annotated[
        str | None, typer.Argument(help="a task whose options to list (same as --task)")
    ] = None,
    task_name: Annotated[
        str | None, typer.Option("--task", help="a task whose options to list")
    ] = None,
    data_dir: Annotated[str | None, typer.Option(help="local data folder")] = None,
) -> None:
    """List tasks with their sizes and where their data would come from; with a task name,
    that task's options too (from its declaration)."""
    from harness.options import describe
    from harness.tasks import REGISTRY, DataSource, get_task, task_class

    if name and task_name and name.strip().lower() != task_name.strip().lower():
        raise HarnessError(f"name one task: '{name}' or --task {task_name}, not both")
    wanted = (task_name or name or "").strip().lower() or None
    chosen = task_class(wanted) if wanted else None  # an unknown name fails before any table
    source = DataSource.resolve(data_dir)
    table = Table(title="tasks", title_justify="left")
    for col in ("task", "problems", "source", "description"):
        table.add_column(col)
    for listed in sorted(REGISTRY):
        task = get_task(listed)
        size = task.size(source)
        where = task.origin(source)
        table.add_row(listed, "-" if size is None else str(size), where, task.description)
    out.print(table)
    if chosen is None or wanted is None:
        return
    infos = describe(chosen.options_type)
    if not infos:
        out.print(f"task {wanted} takes no options")
        return
    shown = Table(title=f"{wanted} options", title_justify="left")
    for col in ("option", "type", "default", "help"):
        shown.add_column(col)
    for o in infos:
        label = o.name + (f" ({wanted}:<{o.name}>)" if o.name == chosen.positional else "")
        if isinstance(o.default, bool):
            default = "1" if o.default else "0"
        else:
            default = "-" if o.default in (None, "") else str(o.default)
        text = o.help + (f" (one of: {', '.join(o.choices)})" if o.choices else "")
        kind = o.type + (f" >= {o.low:g}" if o.low is not None else "")
        shown.add_row(escape(label), kind, escape(default), escape(text))
    out.print(shown)


@app.command()
def perturb(
    task: Annotated[
        str | None, typer.Option("--task", help="task spec(s), comma-separated, e.g. gsm8k")
    ] = None,
    kinds: Annotated[str, typer.Option(help="perturbation kinds, comma-separated, or all")] = "all",
    per_problem: Annotated[int, typer.Option(help="variants per problem and kind", min=1)] = 1,
    seed: Annotated[int, typer.Option(help="the same seed gives the same variants")] = 0,
    output: Annotated[Path | None, typer.Option("--out", help="JSON Lines file to write")] = None,
    limit: Annotated[int | None, typer.Option(help="first N problems of each task", min=1)] = None,
    originals: Annotated[
        bool, typer.Option(help="write the original problems too (the parents of the variants)")
    ] = True,
    data_dir: Annotated[str | None, typer.Option(help="local data folder")] = None,
    list_kinds: Annotated[bool, typer.Option("--list", help="list the kinds and stop")] = False,
) -> None:
    """Write perturbed variants of a task's problems (answers recomputed, lineage kept), to
    evaluate with `harness run --tasks file:OUT`; or run them in place with `run --perturb`."""
    from harness.perturb import (
        KINDS,
        context_for,
        parse_kinds,
        perturb_problems,
        skip_summary,
        write_rows,
    )
    from harness.tasks import DataSource, get_task, split_task_list

    if list_kinds:
        table = Table(title="perturbation kinds", title_justify="left")
        for col in ("kind", "tasks", "gold", "description"):
            table.add_column(col)
        for name in KINDS.names():
            cls = KINDS.load(name)
            gold = "kept" if cls.preserves_answer else "recomputed"
            table.add_row(name, ", ".join(cls.tasks), gold, escape(cls.description))
        out.print(table)
        return
    if not task:
        raise HarnessError("harness perturb: name the task with --task (e.g. --task gsm8k)")
    if output is None:
        raise HarnessError("harness perturb: name the file to write with --out variants.jsonl")
    names, per = parse_kinds(kinds)
    source = DataSource.resolve(data_dir)
    rows: list[dict[str, Any]] = []
    table = Table(title=f"variants (seed {seed})", title_justify="left")
    for col in ("task", "kind", "problems", "covered", "variants", "skipped (most common)"):
        table.add_column(col, justify="left" if col in ("task", "kind") else "right")
    for spec in split_task_list(task):
        t = get_task(spec)
        got = t.load(source, limit)
        ctx = context_for(t, got.problems)
        outcome = perturb_problems(
            got.problems, ctx, names, per_problem=per or per_problem, seed=seed
        )
        if not outcome.variants:
            from harness.console import warn

            warn(f"{t.spec}: none of {', '.join(names)} made a variant of its problems")
        if originals:
            rows += [{**p.to_dict(), "task": t.spec} for p in ctx.pool]
        rows += [{**v.to_dict(), "task": t.spec} for v in outcome.variants]
        for kind in names:
            made = sum(v.perturbation == kind for v in outcome.variants)
            if not made and KINDS.load(kind)().supports(ctx):
                continue  # a kind for other tasks: no row
            table.add_row(
                escape(t.spec),
                kind,
                str(outcome.attempted[kind]),
                str(outcome.covered(kind)),
                str(made),
                escape(skip_summary(outcome, kind, top=2)),
            )
    write_rows(output, rows)
    out.print(table)
    out.print(
        f"{len(rows)} rows written to {escape(str(output))}; evaluate them with "
        f"`harness run --tasks file:{escape(str(output))}`"
    )


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


@app.command()
def classify(
    run: Annotated[str, typer.Argument(help="run folder, or a run id under --runs")],
    runs: Annotated[str, typer.Option(help="folder of run folders")] = "runs",
    probe: Annotated[
        bool, typer.Option(help="causal probes: extra student generations (decompose, familiarize)")
    ] = False,
    reference: Annotated[
        Path | None,
        typer.Option(help="distillation data (JSON Lines) for the OOD distance"),
    ] = None,
) -> None:
    """Label each failed student item (mechanical cause, capacity, mismatch or undetermined):
    writes failures.jsonl and the `failures` section of metrics.json."""
    from harness.classify import classify_run
    from harness.export import locate_run

    run_dir = locate_run(run, runs)
    path = classify_run(run_dir.path, probe=probe, reference=reference)
    section = run_dir.read_metrics()["failures"]
    print_failures(section, f"failures of {run_dir.path.name}")
    if probe and section.get("probes") != "run":
        out.print(f"probes: {escape(str(section.get('probes')))}")
    out.print(f"{section['n']} failures labelled in {escape(str(path))}")


@app.command()
def report(
    run: Annotated[str, typer.Argument(help="run folder, or a run id under --runs")],
    runs: Annotated[str, typer.Option(help="folder of run folders")] = "runs",
    compare: Annotated[
        str | None,
        typer.Option(help="a second run (folder or id): its student paired with this one's"),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="file to write (default: <run>/report.html)")
    ] = None,
    open_page: Annotated[
        bool, typer.Option("--open", help="open the report in the web browser")
    ] = False,
) -> None:
    """Write a run's report: one self-contained HTML file (tables, plots, item explorer)
    that opens offline; with --compare, two students paired on their shared items."""
    from harness.report import build_report

    path = build_report(run, runs=runs, compare=compare, out=output)
    out.print(f"report written to {escape(str(path))}")
    if open_page:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


@app.command()
def gate(
    baseline: Annotated[
        str | None, typer.Option(help="a run (folder or id under --runs) or a baseline.json")
    ] = None,
    candidate: Annotated[
        str | None, typer.Option(help="the run to gate (folder or id), or a baseline.json")
    ] = None,
    runs: Annotated[str, typer.Option(help="folder of run folders")] = "runs",
    rules: Annotated[
        Path | None,
        typer.Option(help="YAML rules (examples/gate.yaml); default: max_drop 2 points"),
    ] = None,
    alpha: Annotated[
        float | None, typer.Option(help="significance level; default: the rules', else 0.05")
    ] = None,
    junit: Annotated[Path | None, typer.Option(help="write JUnit XML here")] = None,
    markdown: Annotated[
        Path | None, typer.Option(help="write a markdown summary (a PR comment) here")
    ] = None,
    save_baseline: Annotated[
        str | None, typer.Option(help="write this run's baseline file (with --out) and stop")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="the file --save-baseline writes")
    ] = None,
) -> None:
    """Gate a candidate run against a baseline: paired tests of each task's accuracy drop,
    threshold rules; exit 0 pass, 1 regression, 2 bad input. With --save-baseline RUN --out
    FILE, write a small baseline file to commit instead."""
    from harness.gate import lines, table
    from harness.gate.command import run_gate, save

    if save_baseline is not None:
        if baseline or candidate:
            raise HarnessError("harness gate: --save-baseline takes no --baseline/--candidate")
        if output is None:
            raise HarnessError("harness gate: name the file with --save-baseline RUN --out FILE")
        path, tasks, items = save(save_baseline, output, runs)
        out.print(f"baseline of {tasks} tasks, {items} items written to {escape(str(path))}")
        return
    if not baseline or not candidate:
        raise HarnessError(
            "harness gate: name both --baseline and --candidate (or --save-baseline RUN --out FILE)"
        )
    result = run_gate(
        baseline,
        candidate,
        runs=runs,
        rules=rules,
        alpha=alpha,
        junit_path=junit,
        markdown_path=markdown,
    )
    out.print(table(result))
    for line in lines(result):
        out.print(escape(line), soft_wrap=True)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def _add_distill() -> None:
    """`harness distill ...`: the distillation stage's command group, defined with the stage."""
    from harness.distill.command import distill_app

    app.add_typer(distill_app, name="distill")


_add_distill()


def _quiet_libraries() -> None:
    """torchao (which transformers imports when it is installed) logs a warning per CUDA
    kernel library it cannot load on a CPU machine and per enum it registers with torch;
    none of it concerns a harness user."""
    import logging

    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps every failure to one line and an exit code."""
    _quiet_libraries()
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
