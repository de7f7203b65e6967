"""Training at scale: `--accelerate-config FILE` hands a training command to `accelerate launch`,
and the rank checks that keep the launched processes from writing the same files.

The parent process checks the config, then runs the same command again as
`accelerate launch --config_file FILE -m harness distill <stage> <its arguments>`; TRL's and
transformers' trainers pick the process group up from the environment the launcher sets
(data-parallel over GPUs, DeepSpeed ZeRO, or several CPU processes over gloo). Inside the
launched processes only the main one (global rank 0) writes the merged student, the card and the
result line; the others wait at a barrier so that no process leaves before the student exists.

accelerate's own MULTI_CPU launcher starts one process unless an MPI host file is configured, so
a one-machine MULTI_CPU config with several processes goes through accelerate's torchrun
launcher instead (`--multi_gpu`, which on a CPU-only job means "torchrun", the CPU kept by
ACCELERATE_USE_CPU).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.distill.sft import TrainResult, TrainSettings

CONFIG_ENV = "HARNESS_ACCELERATE_CONFIG"
"""Set in the launched processes: the config they were launched with (for the card)."""
SETTINGS_FILE = "accelerate-train.yaml"
"""The settings a launched training step reads (`--config`), written beside its checkpoints."""
RANK_ENV = ("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK")

_active: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "accelerate_config", default=None
)


def check_config(path: Path) -> dict[str, Any]:
    """The accelerate config as a mapping, or one line saying what is wrong with it; and one
    line naming the extra when accelerate is missing."""
    import importlib.util

    if not path.is_file():
        raise HarnessError(
            f"--accelerate-config {path}: no such file (write one with `accelerate config "
            "--config_file FILE`, or start from examples/distill/accelerate.yaml)"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise HarnessError(f"--accelerate-config {path}: not readable YAML ({first})") from e
    if not isinstance(data, Mapping):
        raise HarnessError(
            f"--accelerate-config {path}: expected a mapping of accelerate settings "
            f"(distributed_type, num_processes, ...), not {type(data).__name__}"
        )
    kind = data.get("distributed_type", "NO")
    if not isinstance(kind, str):
        hint = " (quote it, 'NO': YAML reads a bare NO as false)" if kind is False else ""
        raise HarnessError(
            f"--accelerate-config {path}: distributed_type must be a name such as MULTI_GPU{hint}"
        )
    procs = data.get("num_processes", 1)
    if not isinstance(procs, int) or isinstance(procs, bool) or procs < 1:
        raise HarnessError(f"--accelerate-config {path}: num_processes must be an integer >= 1")
    zero = (data.get("deepspeed_config") or {}).get("zero_stage")
    if kind.upper() == "DEEPSPEED" and zero == 3:
        raise HarnessError(
            f"--accelerate-config {path}: ZeRO stage 3 shards the weights, and the merged "
            "student is written from whole weights; use zero_stage 2 (or 1)"
        )
    if importlib.util.find_spec("accelerate") is None:
        raise HarnessError(
            "harness distill --accelerate-config needs accelerate; pip install 'harness[distill]'"
        )
    return dict(data)


def launched() -> bool:
    """Whether this process was started by a distributed launcher."""
    return CONFIG_ENV in os.environ or any(v in os.environ for v in (*RANK_ENV, "LOCAL_RANK"))


def is_main_process() -> bool:
    """Global rank 0, or not distributed at all: the one process that writes shared files."""
    dist = _process_group()
    if dist is not None:
        return bool(dist.get_rank() == 0)
    for var in RANK_ENV:
        if var in os.environ:
            return os.environ[var].strip() in ("", "0")
    return True


def wait_for_everyone() -> None:
    """A barrier across the launched processes (nothing when there is one)."""
    dist = _process_group()
    if dist is not None:
        dist.barrier()


def _process_group() -> Any:
    """torch.distributed when a process group is up (the trainers start one), else None."""
    if "torch" not in sys.modules:  # nothing was trained in this process
        return None
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def world(trainer: Any) -> dict[str, Any]:
    """How a job was trained, for its card: processes, accelerate's distributed type, and the
    config it was launched with."""
    accelerator = getattr(trainer, "accelerator", None)
    kind = getattr(accelerator, "distributed_type", None)
    info: dict[str, Any] = {
        "world_size": int(getattr(trainer.args, "world_size", 1) or 1),
        "distributed_type": str(getattr(kind, "value", kind or "NO")),
    }
    config = os.environ.get(CONFIG_ENV)
    if config:
        info["accelerate_config"] = config
    return info


def launch_argv(ctx: Any, drop: Sequence[str] = ("accelerate_config",)) -> list[str]:
    """The arguments a click/typer command was given on the command line (its defaults left
    out), rebuilt from the parsed values, without the options named in `drop`."""
    # duck-typed: typer carries its own copy of click, whose classes are not click's
    positional: list[str] = []
    options: list[str] = []
    for param in ctx.command.params:
        name = param.name
        if name is None or name in drop:
            continue
        source = getattr(ctx.get_parameter_source(name), "name", None)
        if source not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        value = ctx.params.get(name)
        if value is None:
            continue
        if param.param_type_name == "argument":
            positional.append(str(value))
        elif param.param_type_name == "option":
            if getattr(param, "is_flag", False) and isinstance(value, bool):
                if value:
                    options.append(param.opts[0])
                elif param.secondary_opts:
                    options.append(param.secondary_opts[0])
            else:
                options += [param.opts[0], str(value)]
    return [*positional, *options]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launcher_command(config: Path, settings: Mapping[str, Any], args: Sequence[str]) -> list[str]:
    """`python -m accelerate.commands.launch --config_file FILE ... -m harness distill ARGS`."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)]
    cmd.append("--quiet")  # a failed job's own error, without the launcher's traceback
    kind = str(settings.get("distributed_type", "NO")).upper()
    procs = int(settings.get("num_processes", 1))
    machines = int(settings.get("num_machines", 1) or 1)
    if kind == "MULTI_CPU" and procs > 1 and machines <= 1 and not settings.get("mpirun_hostfile"):
        cmd.append("--multi_gpu")  # accelerate's torchrun launcher (its MULTI_CPU one starts 1)
    if machines <= 1 and procs > 1 and settings.get("main_process_port") is None:
        cmd += ["--main_process_port", str(_free_port())]  # not 29500, which a job may hold
    return [*cmd, "-m", "harness", "distill", *args]


def run_launched(config: Path, args: Sequence[str]) -> None:
    """Run `harness distill ARGS` under accelerate launch; its output streams through. A
    failure is one line with the exit status and the launched job's last error line."""
    settings = check_config(config)
    cmd = launcher_command(config.resolve(), settings, args)
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env[CONFIG_ENV] = str(config)
    env.setdefault("MASTER_ADDR", "127.0.0.1")
    kind = str(settings.get("distributed_type", "NO")).upper()
    if kind == "MULTI_CPU" or settings.get("use_cpu") is True:
        env["ACCELERATE_USE_CPU"] = "true"
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    tail = b""
    last_error = ""
    try:
        while chunk := os.read(proc.stderr.fileno(), 65536):
            sys.stderr.buffer.write(chunk)
            sys.stderr.buffer.flush()
            tail = (tail + chunk)[-65536:]
            for line in _lines(chunk):
                if line.startswith(("error:", "internal error:")):
                    last_error = line.removeprefix("error:").strip()
        code = proc.wait()
    except BaseException:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        raise
    if code != 0:
        why = last_error or _last_line(tail) or "no error output"
        raise HarnessError(
            f"accelerate launch --config_file {config} exited with status {code}: {why}"
        )


def _lines(data: bytes) -> list[str]:
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", data.decode("utf-8", "replace"))
    return [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]


def _last_line(data: bytes) -> str:
    """The last line that says something (not a rule of `=` or `-`)."""
    for line in reversed(_lines(data)):
        if line.strip("=-_ "):
            return line[:400]
    return ""


@contextlib.contextmanager
def accelerated(config: Path | None) -> Iterator[None]:
    """Within: every SFT step (the remedy test's) trains under accelerate launch with `config`."""
    token = _active.set(config)
    try:
        yield
    finally:
        _active.reset(token)


def active_config() -> Path | None:
    """The config an enclosing `accelerated()` set (never inside a launched process)."""
    return None if launched() else _active.get()


def train_sft_launched(
    config: Path,
    data: Path,
    base: str,
    out: Path,
    settings: TrainSettings,
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """`train_sft` as `harness distill sft` under accelerate launch; the result read back from
    the card the launched job wrote."""
    out.mkdir(parents=True, exist_ok=True)
    recipe = out / SETTINGS_FILE
    recipe.write_text(yaml.safe_dump({"train": settings.to_dict()}), encoding="utf-8")
    args = ["sft", str(data), "--student", base, "--out", str(out), "--config", str(recipe)]
    if cache_dir is not None:
        args += ["--cache-dir", str(cache_dir)]
    if not progress:
        args.append("--quiet")
    run_launched(config, args)
    return result_from_card(out, settings)


def result_from_card(out: Path, settings: TrainSettings) -> TrainResult:
    """The TrainResult a launched job left in `out/card.json`."""
    from harness.distill.card import CARD_JSON
    from harness.distill.sft import TrainResult

    path = out / CARD_JSON
    if not path.is_file():
        raise HarnessError(f"the launched training job wrote no {path}")
    card = json.loads(path.read_text(encoding="utf-8"))
    return TrainResult(
        out=out,
        model_dir=Path(card["model_dir"]),
        steps=int(card["steps"]),
        train_loss=card.get("train_loss"),
        seconds=float(card.get("seconds") or 0.0),
        method=str(card["method"]),
        base=str(card["base"]),
        settings=settings,
        extra=dict(card.get("data") or {}),
        world=dict(card.get("distributed") or {}),
    )


__all__ = [
    "CONFIG_ENV",
    "accelerated",
    "active_config",
    "check_config",
    "is_main_process",
    "launch_argv",
    "launched",
    "run_launched",
    "train_sft_launched",
    "wait_for_everyone",
    "world",
]
