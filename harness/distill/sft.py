"""Supervised fine-tuning on the mix with TRL's SFTTrainer, full or LoRA (PEFT), loss on the
completion only.

The mix's chat rows become TRL prompt-completion rows (the user turn as the prompt, the
teacher's `<think>...</think>` chain and answer as the completion), so the loss never trains the
student to write the question. Checkpoints go to `<out>/checkpoints` every `save_steps`; the same
command resumes from the last one. The trained student is written to `<out>/model` (a LoRA
adapter merged into the weights), loadable as `hf:<out>/model#think=1`, with a model card.

What is shared by every trainer of this package (the settings, where a base model's weights
are, writing the student) lives here too; `grpo` and `kd` import it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError

MODEL_DIR = "model"
CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of one training job (YAML `train:` section; CLI flags override)."""

    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    learning_rate: float = 5e-5
    epochs: float = 1.0
    max_steps: int = -1
    """> 0: stop after this many optimizer steps (overrides epochs)."""
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 512
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    seed: int = 0
    save_steps: int = 50
    logging_steps: int = 5
    # GRPO
    num_generations: int = 4
    max_completion_length: int = 64
    beta: float = 0.0
    """KL coefficient against the reference policy (0: no reference model is kept)."""
    temperature: float = 1.0
    format_weight: float = 0.2
    """Weight of the format reward beside correctness."""
    # KD + QAT
    kd_loss: str = "forward"
    """forward | reverse: KL(teacher || student) or KL(student || teacher)."""
    kd_temperature: float = 1.0
    kd_alpha: float = 0.5
    """Share of the KL term; the rest is the completion's cross-entropy."""
    qat_bits: int = 8
    """Fake-quantized weight bits during KD training: 4 or 8 (0: no QAT)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "train settings") -> TrainSettings:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise HarnessError(
                f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(fields)}"
            )
        values: dict[str, Any] = {}
        for key, value in data.items():
            default = getattr(cls(), key)
            kind = type(default)
            if kind is bool:
                ok = isinstance(value, bool)
            elif kind is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif kind is float:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
            else:
                ok = isinstance(value, kind)
            if not ok:
                raise HarnessError(f"{where}: {key} takes a {kind.__name__}, not {value!r}")
            values[key] = float(value) if kind is float else value
        settings = cls(**values)
        settings.check(where)
        return settings

    def check(self, where: str = "train settings") -> None:
        if self.batch_size < 1 or self.grad_accum < 1 or self.max_length < 8:
            raise HarnessError(f"{where}: batch_size, grad_accum >= 1 and max_length >= 8")
        if self.learning_rate <= 0:
            raise HarnessError(f"{where}: learning_rate must be > 0")
        if self.kd_loss not in ("forward", "reverse"):
            raise HarnessError(f"{where}: kd_loss is forward or reverse, not {self.kd_loss!r}")
        if self.qat_bits not in (0, 4, 8):
            raise HarnessError(f"{where}: qat_bits is 4, 8 or 0 (off), not {self.qat_bits}")
        if self.num_generations < 2:
            raise HarnessError(f"{where}: num_generations must be >= 2 (GRPO compares a group)")
        if not 0.0 <= self.kd_alpha <= 1.0:
            raise HarnessError(f"{where}: kd_alpha must be within 0..1")
        if self.beta < 0 or self.temperature <= 0 or self.kd_temperature <= 0:
            raise HarnessError(f"{where}: beta must be >= 0, temperature and kd_temperature > 0")
        if self.max_completion_length < 1 or self.lora_r < 1 or self.save_steps < 1:
            raise HarnessError(f"{where}: max_completion_length, lora_r and save_steps >= 1")
        if self.logging_steps < 1 or self.epochs <= 0 or self.max_steps == 0 or self.max_steps < -1:
            raise HarnessError(f"{where}: logging_steps >= 1, epochs > 0, max_steps > 0 (or -1)")
        if not 0.0 <= self.warmup_ratio < 1.0 or self.weight_decay < 0 or self.format_weight < 0:
            raise HarnessError(
                f"{where}: warmup_ratio within 0..1, weight_decay and format_weight >= 0"
            )

    def replace(self, **changes: Any) -> TrainSettings:
        given = {k: v for k, v in changes.items() if v is not None}
        if not given:
            return self
        merged = {**dataclasses.asdict(self), **given}
        return TrainSettings.from_dict(merged)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_settings(path: Path | None) -> TrainSettings:
    """The `train:` section of a recipe YAML (the whole file when it has no such section)."""
    if path is None:
        return TrainSettings()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise HarnessError(f"cannot read the recipe {path}: {e}") from e
    if not isinstance(data, Mapping):
        raise HarnessError(f"recipe {path}: expected a mapping")
    section = data.get("train", {} if "mix" in data else data)
    if not isinstance(section, Mapping):
        raise HarnessError(f"recipe {path}: `train` must be a mapping of settings")
    return TrainSettings.from_dict(section, f"recipe {path} train")


@dataclass(frozen=True)
class TrainResult:
    out: Path
    model_dir: Path
    steps: int
    train_loss: float | None
    seconds: float
    method: str
    base: str
    settings: TrainSettings
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    world: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """How it was trained: world_size, distributed_type (and the accelerate config, if any)."""

    def student_spec(self) -> str:
        """How `harness run` names the trained student."""
        return student_spec(self.model_dir)


def student_spec(model_dir: Path) -> str:
    """The spec of a trained student: its folder on the transformers backend, read with think
    tags (the completions it learnt open with `<think>`)."""
    return f"hf:{model_dir}#think=1"


def require(module: str) -> Any:
    """An optional trainer library, or one line naming the extra that installs it."""
    import importlib
    import warnings

    # TRL calls transformers' gradient-checkpointing helpers by their old names; the
    # deprecation notices are for TRL's authors, not for someone training a student
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise HarnessError(
            f"harness distill needs {module.split('.')[0]} ({e}); pip install 'harness[distill]'"
        ) from e


def resolve_base(model: str, cache_dir: Path | None = None) -> str:
    """A local folder, or a spec or alias on the transformers backend (`smollm2-135m`: its
    converted copy), as a folder or hub id `from_pretrained` takes."""
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path)
    from harness.backends.transformers import local_weights
    from harness.models import parse_spec
    from harness.store import default_cache_dir

    spec = parse_spec(model)
    if spec.backend != "transformers":
        raise HarnessError(
            f"student '{model}' runs on the {spec.backend} backend: training needs weights "
            "(a local folder, a hub id, or a transformers alias such as smollm2-135m)"
        )
    source, _ = local_weights(spec, cache_dir or default_cache_dir())
    return source


def on_cpu() -> bool:
    """Train on the CPU: no GPU, or a job launched with a CPU accelerate config
    (ACCELERATE_USE_CPU), which stays on the CPU even where there is a GPU."""
    import os

    import torch

    forced = os.environ.get("ACCELERATE_USE_CPU", "").strip().lower() in ("1", "true", "yes")
    return forced or not torch.cuda.is_available()


def load_model(source: str) -> tuple[Any, Any]:
    """Model (float32 on a CPU, bfloat16 on a GPU) and tokenizer with a pad token."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(source)
        dtype = torch.float32 if on_cpu() else torch.bfloat16
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except OSError as e:
        raise HarnessError(f"cannot load the model at {source}: {str(e).splitlines()[0]}") from e
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok


def prompt_completion(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Chat rows as TRL prompt-completion rows: every turn before the last is the prompt, the
    last (the teacher's assistant turn) the completion."""
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        messages = row.get("messages")
        if not isinstance(messages, list) or len(messages) < 2:
            raise HarnessError(f"row {i} has no messages (a user turn and an assistant turn)")
        if messages[-1].get("role") != "assistant":
            raise HarnessError(f"row {i}: the last message is not the assistant's")
        out.append({"prompt": list(messages[:-1]), "completion": [messages[-1]]})
    return out


def lora_config(settings: TrainSettings) -> Any:
    return require("peft").LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def common_args(out: Path, settings: TrainSettings, progress: bool) -> dict[str, Any]:
    """TrainingArguments every trainer here shares."""
    cpu = on_cpu()
    return {
        "output_dir": str(out / CHECKPOINTS),
        "per_device_train_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.grad_accum,
        "learning_rate": settings.learning_rate,
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps,
        "warmup_steps": settings.warmup_ratio,  # a float under 1 is a share of the steps
        "weight_decay": settings.weight_decay,
        "logging_steps": settings.logging_steps,
        "save_strategy": "steps",
        "save_steps": settings.save_steps,
        "save_total_limit": 2,
        "seed": settings.seed,
        "data_seed": settings.seed,
        "report_to": "none",
        "disable_tqdm": not progress,
        "use_cpu": cpu,
        "bf16": not cpu,
        "dataloader_num_workers": 0,
    }


def last_checkpoint(out: Path) -> str | None:
    """The checkpoint a killed job resumes from (None: start afresh)."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = out / CHECKPOINTS
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def save_student(model: Any, tokenizer: Any, out: Path) -> Path:
    """The trained weights (a LoRA adapter merged in) as a plain model folder. Under a
    distributed launch only the main process writes it; the others wait until it exists."""
    from harness.distill.launch import is_main_process, wait_for_everyone

    target = out / MODEL_DIR
    if is_main_process():
        if hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
        target.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(target))
        tokenizer.save_pretrained(str(target))
    wait_for_everyone()
    return target


def fit(trainer: Any, out: Path) -> float:
    """Train (from the job's last checkpoint when there is one); the seconds it took. A job
    whose last checkpoint already reached its step budget is loaded, not trained further
    (the trainer would take one more step)."""
    from transformers.trainer_callback import TrainerState

    checkpoint = last_checkpoint(out)
    if checkpoint is not None:
        state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
        wanted = trainer.args.max_steps if trainer.args.max_steps > 0 else state.max_steps
        if state.global_step >= wanted:
            trainer._load_from_checkpoint(checkpoint)
            trainer.state = state
            card = out / "card.json"
            if card.is_file():  # the seconds the job took when it ran
                return float(json.loads(card.read_text(encoding="utf-8")).get("seconds") or 0)
            return 0.0
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=checkpoint)
    return time.perf_counter() - t0


def train_loss(history: Sequence[Mapping[str, Any]]) -> float | None:
    """The mean of the losses logged over the whole job. The trainer's own `train_loss` covers
    only the steps of the last call, so a resumed (or already finished) job would report 0."""
    logged = [float(e["loss"]) for e in history if "loss" in e]
    if logged:
        return round(sum(logged) / len(logged), 6)
    for entry in reversed(history):
        if "train_loss" in entry and entry.get("train_runtime", 1) and entry["train_loss"]:
            return float(entry["train_loss"])
    return None


def train_sft(
    data: Path,
    base: str,
    out: Path,
    settings: TrainSettings,
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Fine-tune `base` on the chat rows at `data` (loss on the completions only). Within
    `launch.accelerated(config)` the job runs under accelerate launch instead."""
    from harness.distill.launch import active_config, train_sft_launched

    settings.check()
    config = active_config()
    if config is not None:
        return train_sft_launched(
            config, data, base, out, settings, cache_dir=cache_dir, progress=progress
        )
    import datasets

    trl = require("trl")
    from harness.distill.card import write_card
    from harness.distill.collect import load_rows
    from harness.distill.launch import world

    rows = prompt_completion(load_rows(data))
    source = resolve_base(base, cache_dir)
    model, tok = load_model(source)
    out.mkdir(parents=True, exist_ok=True)
    args = trl.SFTConfig(
        **common_args(out, settings, progress),
        completion_only_loss=True,
        max_length=settings.max_length,
        packing=False,
    )
    trainer = trl.SFTTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tok,
        peft_config=lora_config(settings) if settings.lora else None,
    )
    seconds = fit(trainer, out)
    model_dir = save_student(trainer.model, tok, out)
    result = TrainResult(
        out=out,
        model_dir=model_dir,
        steps=int(trainer.state.global_step),
        train_loss=train_loss(trainer.state.log_history),
        seconds=round(seconds, 3),
        method="sft-lora" if settings.lora else "sft",
        base=base,
        settings=settings,
        extra={"rows": len(rows), "data": str(data)},
        world=world(trainer),
    )
    write_card(result, mix_manifest=_mix_manifest(data))
    return result


def _mix_manifest(data: Path) -> dict[str, Any] | None:
    from harness.distill.mix import MANIFEST

    path = data / MANIFEST
    if not path.is_file():
        return None
    loaded = json.loads(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else None


__all__ = [
    "TrainResult",
    "TrainSettings",
    "common_args",
    "fit",
    "last_checkpoint",
    "load_model",
    "load_settings",
    "lora_config",
    "on_cpu",
    "prompt_completion",
    "require",
    "resolve_base",
    "save_student",
    "student_spec",
    "train_sft",
]
