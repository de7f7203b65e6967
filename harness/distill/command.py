"""`harness distill ...`: the stages as commands, and the remedy test as the group's own
command (`harness distill --student S --teacher T --from-failures RUN`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.errors import HarnessError

distill_app = typer.Typer(
    name="distill",
    help="Distill a student from a teacher, aimed at a run's diagnosed failures.",
    invoke_without_command=True,
    no_args_is_help=False,
)


_stdout: Console | None = None


def _out() -> Console:
    """Data goes to stdout (as `harness run`'s tables do); progress stays on stderr."""
    global _stdout
    if _stdout is None:
        _stdout = Console(highlight=False)
        if not _stdout.is_terminal:
            _stdout.width = 160
    return _stdout


def _say(text: str) -> None:
    """A result line, printed once: by the main process when the job was launched on several."""
    from harness.distill.launch import is_main_process

    if is_main_process():
        _out().print(text)


AccelerateConfig = Annotated[
    Path | None,
    typer.Option(
        "--accelerate-config",
        help="train under `accelerate launch` with this accelerate config (several GPUs, "
        "DeepSpeed ZeRO, several CPU processes); see examples/distill/accelerate.yaml",
    ),
]


def _relaunch(ctx: typer.Context, stage: str, config: Path) -> None:
    """The same stage with the same arguments, under accelerate launch; it prints the result."""
    from harness.distill.launch import launch_argv, run_launched

    run_launched(config, [stage, *launch_argv(ctx)])


def _split(text: str | None) -> list[str]:
    from harness.tasks import split_task_list

    return split_task_list(text) if text else []


def _settings(config: Path | None, **flags: Any) -> Any:
    from harness.distill.sft import load_settings

    return load_settings(config).replace(**flags)


def print_slices(rows: list[dict[str, Any]], title: str) -> None:
    table = Table(title=escape(title), title_justify="left")
    for col in ("slice", "diagnosis", "n", "before", "after", "delta", "95% CI", "p", "agrees"):
        table.add_column(col, justify="left" if col in ("slice", "diagnosis") else "right")
    for r in rows:
        ci = r.get("delta_ci95")
        table.add_row(
            escape(str(r["slice"])),
            escape(str(r.get("label") or "-")),
            str(r["n"]),
            "-" if r["before"] is None else f"{r['before']:.3f}",
            "-" if r["after"] is None else f"{r['after']:.3f}",
            "-" if r["delta"] is None else f"{r['delta']:+.3f}",
            f"{ci[0]:+.3f}..{ci[1]:+.3f}" if ci else "-",
            "-" if r.get("mcnemar_p") is None else f"{r['mcnemar_p']:.3g}",
            escape(str(r["agrees"])),
        )
    _out().print(table)


@distill_app.callback()
def remedy_cmd(
    ctx: typer.Context,
    student: Annotated[
        str | None, typer.Option(help="student to train (spec or local dir)")
    ] = None,
    teacher: Annotated[str, typer.Option(help="teacher spec or alias")] = "reference",
    from_failures: Annotated[
        str | None, typer.Option(help="a classified run (folder or id under --runs)")
    ] = None,
    tasks: Annotated[
        str | None,
        typer.Option(help="tasks to collect training chains from [default: the run's tasks]"),
    ] = None,
    recipe: Annotated[Path | None, typer.Option(help="YAML recipe: `mix:` and `train:`")] = None,
    out: Annotated[Path, typer.Option("--out", help="folder for this distillation")] = Path(
        "distill"
    ),
    runs: Annotated[str, typer.Option(help="folder of run folders")] = "runs",
    samples: Annotated[int, typer.Option(help="teacher samples per problem", min=1)] = 1,
    seed: Annotated[int, typer.Option(help="sampling seed")] = 0,
    limit: Annotated[int | None, typer.Option(help="first N problems per task", min=1)] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="optimizer steps (overrides epochs)")
    ] = None,
    lora: Annotated[
        bool | None, typer.Option(help="train a LoRA adapter (merged at the end)")
    ] = None,
    data_dir: Annotated[str | None, typer.Option(help="local data folder")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="generation cache folder")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bars")] = False,
    accelerate_config: AccelerateConfig = None,
) -> None:
    """The remedy test: collect, mix (failure slices weighted, the run's items held out),
    fine-tune, re-evaluate the run's items; per slice before/after and the paired delta.
    With --accelerate-config only the fine-tuning runs under accelerate launch."""
    if ctx.invoked_subcommand is not None:
        return
    if student is None or from_failures is None:
        raise HarnessError(
            "harness distill: name --student and --from-failures RUN (or a stage: collect, "
            "mix, sft, grpo, kd; see `harness distill --help`)"
        )
    from harness.distill.launch import accelerated, check_config
    from harness.distill.remedy import remedy

    if accelerate_config is not None:
        check_config(accelerate_config)
    settings = _settings(recipe, max_steps=max_steps, lora=lora)
    with accelerated(accelerate_config):
        result = remedy(
            student,
            teacher,
            from_failures,
            out,
            tasks=_split(tasks) or None,
            recipe=recipe,
            runs=runs,
            samples=samples,
            seed=seed,
            limit=limit,
            data_dir=data_dir,
            cache_dir=cache_dir,
            settings=settings,
            progress=not quiet,
        )
    print_slices(result.slices, f"remedy test: {result.student_spec} vs {result.before.name}")
    _out().print(
        f"model card and remedy.json in {escape(str(result.out))}; "
        f"evaluate again with `harness run --student {escape(result.student_spec)}`"
    )


@distill_app.command("collect")
def collect_cmd(
    teacher: Annotated[str, typer.Option(help="teacher spec or alias")] = "reference",
    tasks: Annotated[str | None, typer.Option(help="task specs, comma-separated")] = None,
    output: Annotated[Path | None, typer.Option("--out", help="data set folder to write")] = None,
    samples: Annotated[int, typer.Option(help="samples per problem", min=1)] = 1,
    seed: Annotated[int, typer.Option(help="sampling seed")] = 0,
    limit: Annotated[int | None, typer.Option(help="first N problems per task", min=1)] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="teacher's token limit")] = None,
    temperature: Annotated[float | None, typer.Option(help="teacher's temperature")] = None,
    data_dir: Annotated[str | None, typer.Option(help="local data folder")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="generation cache folder")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bars")] = False,
) -> None:
    """Teacher chains by rejection sampling (right, whole, not looping, distinct) as a
    chat-format data set."""
    from harness.distill.collect import collect

    if output is None:
        raise HarnessError("harness distill collect: name the data set folder with --out")
    r = collect(
        teacher,
        _split(tasks),
        output,
        samples=samples,
        seed=seed,
        limit=limit,
        data_dir=data_dir,
        cache_dir=cache_dir,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        progress=not quiet,
    )
    why = ", ".join(f"{k} {v}" for k, v in r.rejected.items() if v) or "none"
    _out().print(
        f"{r.rows} chains of {r.problems}/{r.asked} problems kept from {r.generations} "
        f"generations ({r.generated} generated now); rejected: {why}; "
        f"written to {escape(str(r.path))}"
    )


@distill_app.command("mix")
def mix_cmd(
    data: Annotated[Path, typer.Argument(help="data set folder from `distill collect`")],
    output: Annotated[Path | None, typer.Option("--out", help="mixed data set folder")] = None,
    recipe: Annotated[Path | None, typer.Option(help="YAML recipe (its `mix:` section)")] = None,
    from_failures: Annotated[
        str | None, typer.Option(help="a classified run: weight its mismatch slices")
    ] = None,
    runs: Annotated[str, typer.Option(help="folder of run folders")] = "runs",
) -> None:
    """Mix by a recipe's proportions; with --from-failures, weight the diagnosed slices and
    hold the run's items out (heldout.json)."""
    from harness.distill.mix import Recipe, mix

    if output is None:
        raise HarnessError("harness distill mix: name the folder to write with --out")
    r = mix(
        data,
        output,
        Recipe.load(recipe) if recipe else Recipe(),
        from_failures=from_failures,
        runs=runs,
    )
    table = Table(title=f"mix ({r.rows} rows)", title_justify="left")
    for col in ("selector", "failure weighted", "weight", "available", "rows"):
        table.add_column(col, justify="left" if col == "selector" else "right")
    for g in r.manifest["groups"]:
        table.add_row(
            escape(g["selector"]),
            "yes" if g["failure_weighted"] else "no",
            f"{g['weight']:g}",
            str(g["available"]),
            str(g["rows"]),
        )
    _out().print(table)
    held = r.manifest["dropped"]["held_out"]
    _out().print(f"{held} rows held out; written to {escape(str(r.path))}")


@distill_app.command("sft")
def sft_cmd(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="data set folder (collected or mixed)")],
    student: Annotated[str, typer.Option(help="model to train (spec, alias or local dir)")],
    output: Annotated[Path | None, typer.Option("--out", help="training folder")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML recipe (its `train:` section)")] = None,
    max_steps: Annotated[int | None, typer.Option(help="optimizer steps")] = None,
    epochs: Annotated[float | None, typer.Option(help="epochs (when no --max-steps)")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="learning rate")] = None,
    batch_size: Annotated[int | None, typer.Option(help="per-device batch size")] = None,
    lora: Annotated[
        bool | None, typer.Option(help="LoRA (merged into the weights at the end)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="training seed")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="cache folder (converted models)")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bars")] = False,
    accelerate_config: AccelerateConfig = None,
) -> None:
    """Fine-tune with TRL's SFTTrainer (loss on the completions); resumes from its last
    checkpoint."""
    from harness.distill.sft import train_sft

    if output is None:
        raise HarnessError("harness distill sft: name the training folder with --out")
    settings = _settings(
        config,
        max_steps=max_steps,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        lora=lora,
        seed=seed,
    )
    if accelerate_config is not None:
        _relaunch(ctx, "sft", accelerate_config)
        return
    r = train_sft(data, student, output, settings, cache_dir=cache_dir, progress=not quiet)
    loss = "-" if r.train_loss is None else f"{r.train_loss:.4f}"
    _say(
        f"{r.method}: {r.steps} steps, train loss {loss}, {r.seconds:.1f}s; student in "
        f"{escape(str(r.model_dir))}; evaluate with `harness run --student "
        f"{escape(r.student_spec())}`"
    )


@distill_app.command("grpo")
def grpo_cmd(
    ctx: typer.Context,
    student: Annotated[str, typer.Option(help="model to train (spec, alias or local dir)")],
    tasks: Annotated[str, typer.Option(help="task specs whose problems are the prompts")],
    output: Annotated[Path | None, typer.Option("--out", help="training folder")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML recipe (its `train:` section)")] = None,
    max_steps: Annotated[int | None, typer.Option(help="optimizer steps")] = None,
    num_generations: Annotated[int | None, typer.Option(help="group size per prompt")] = None,
    beta: Annotated[float | None, typer.Option(help="KL coefficient")] = None,
    max_completion_length: Annotated[int | None, typer.Option(help="completion tokens")] = None,
    lora: Annotated[bool | None, typer.Option(help="LoRA (merged at the end)")] = None,
    limit: Annotated[int | None, typer.Option(help="first N problems per task", min=1)] = None,
    data_dir: Annotated[str | None, typer.Option(help="local data folder")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="cache folder (converted models)")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bars")] = False,
    accelerate_config: AccelerateConfig = None,
) -> None:
    """GRPO with TRL: the tasks' graders are the reward (plus a format reward)."""
    from harness.distill.grpo import train_grpo

    if output is None:
        raise HarnessError("harness distill grpo: name the training folder with --out")
    settings = _settings(
        config,
        max_steps=max_steps,
        num_generations=num_generations,
        beta=beta,
        max_completion_length=max_completion_length,
        lora=lora,
    )
    if accelerate_config is not None:
        _relaunch(ctx, "grpo", accelerate_config)
        return
    r = train_grpo(
        _split(tasks),
        student,
        output,
        settings,
        limit=limit,
        data_dir=data_dir,
        cache_dir=cache_dir,
        progress=not quiet,
    )
    rewards = r.extra.get("rewards") or []
    last = f"{rewards[-1]:.3f}" if rewards else "-"
    _say(
        f"{r.method}: {r.steps} steps, last mean reward {last}, {r.seconds:.1f}s; student in "
        f"{escape(str(r.model_dir))}; evaluate with `harness run --student "
        f"{escape(r.student_spec())}`"
    )


@distill_app.command("kd")
def kd_cmd(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="data set folder (collected or mixed)")],
    student: Annotated[str, typer.Option(help="model to train (spec, alias or local dir)")],
    teacher: Annotated[str, typer.Option(help="teacher weights (same tokenizer as the student)")],
    output: Annotated[Path | None, typer.Option("--out", help="training folder")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML recipe (its `train:` section)")] = None,
    qat_bits: Annotated[int | None, typer.Option(help="fake-quantized bits: 4, 8 or 0")] = None,
    kd_loss: Annotated[str | None, typer.Option(help="forward or reverse KL")] = None,
    max_steps: Annotated[int | None, typer.Option(help="optimizer steps")] = None,
    ptq: Annotated[
        bool, typer.Option(help="also train without QAT and quantize after (the baseline)")
    ] = False,
    tasks: Annotated[
        str | None,
        typer.Option(help="evaluate the student(s) on these tasks (with --ptq: side by side)"),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="first N problems per task", min=1)] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option(help="token limit of the evaluation")
    ] = None,
    data_dir: Annotated[str | None, typer.Option(help="local data folder")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="cache folder (converted models)")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bars")] = False,
    accelerate_config: AccelerateConfig = None,
) -> None:
    """Logit distillation with quantization-aware training (torchao); the student is exported
    on the quantization grid. --ptq adds post-training quantization of the same student;
    --tasks evaluates them on the same problems and pairs them."""
    from dataclasses import replace

    from harness.distill.card import write_card
    from harness.distill.kd import compare_quantized, ptq_export, train_kd
    from harness.distill.launch import is_main_process
    from harness.distill.sft import student_spec

    if output is None:
        raise HarnessError("harness distill kd: name the training folder with --out")
    settings = _settings(config, qat_bits=qat_bits, kd_loss=kd_loss, max_steps=max_steps)
    task_list = _split(tasks)
    if task_list:
        from harness.tasks import get_task

        for t in task_list:
            get_task(t)  # a bad spec is one line before any training
    if accelerate_config is not None:
        _relaunch(ctx, "kd", accelerate_config)
        return
    r = train_kd(data, student, teacher, output, settings, cache_dir=cache_dir, progress=not quiet)
    _say(
        f"{r.method}: {r.steps} steps, {r.extra['snapped_layers']} layers on the grid; "
        f"evaluate with `harness run --student {escape(r.student_spec())}`"
    )
    students = {"qat" if settings.qat_bits else "kd": r.model_dir}
    if ptq:
        bits = settings.qat_bits or 8
        base = (
            train_kd(
                data,
                student,
                teacher,
                output / "float",
                settings.replace(qat_bits=0),
                cache_dir=cache_dir,
                progress=not quiet,
            )
            if settings.qat_bits
            else r
        )
        folder = ptq_export(base.model_dir, output / "ptq", bits)
        students[f"ptq-int{bits}"] = folder
        _say(
            f"post-training int{bits} of the same student: `harness run --student "
            f"{escape(student_spec(folder))}`"
        )
    if task_list and is_main_process():  # one evaluation, not one per launched process
        rows = compare_quantized(
            students,
            task_list,
            output / "runs",
            limit=limit,
            max_new_tokens=max_new_tokens,
            data_dir=data_dir,
            cache_dir=cache_dir,
            progress=not quiet,
        )
        print_quantized(rows)
        write_card(replace(r, extra={**r.extra, "quantization_comparison": rows}))


def print_quantized(rows: list[dict[str, Any]]) -> None:
    table = Table(title="quantized students on the same problems", title_justify="left")
    for col in ("student", "accuracy", "vs", "n", "diff", "95% CI", "p"):
        table.add_column(col, justify="left" if col in ("student", "vs") else "right")
    for row in rows:
        ci = row.get("diff_ci95")
        table.add_row(
            escape(row["student"]),
            "-" if row["accuracy"] is None else f"{row['accuracy']:.3f}",
            escape(str(row.get("versus", "-"))),
            str(row.get("n", "-")),
            "-" if row.get("diff") is None else f"{row['diff']:+.3f}",
            f"{ci[0]:+.3f}..{ci[1]:+.3f}" if ci else "-",
            "-" if row.get("mcnemar_p") is None else f"{row['mcnemar_p']:.3g}",
        )
    _out().print(table)


__all__ = ["distill_app", "print_quantized", "print_slices"]
