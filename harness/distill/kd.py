"""Logit distillation with quantization-aware training, and the post-training baseline.

The student learns the teacher's next-token distribution on the completions of the mix
(forward KL(teacher || student) or reverse KL(student || teacher), at a temperature), mixed with
the completion's cross-entropy by `kd_alpha`. Token distributions are compared position by
position, so the two tokenizers must be the same vocabulary (checked). With `qat_bits` 4 or 8,
torchao fake-quantizes every linear weight (symmetric, per group of 32) during training, so the
student learns weights that survive quantization. The export snaps each weight onto that grid
(what an integer kernel computes), written as an ordinary model folder that the transformers
backend loads. `ptq_export` does the same snapping to a student trained without fake
quantization: post-training quantization of the same student, for the comparison.

The trainer is transformers' Trainer with the distillation loss as its `compute_loss`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.distill.sft import TrainResult, TrainSettings
from harness.errors import HarnessError

GROUP_SIZE = 32


def _weight_config(bits: int) -> Any:
    import torch

    from harness.distill.sft import require

    qat = require("torchao.quantization.qat")
    dtype = {4: torch.int4, 8: torch.int8}[bits]  # type: ignore[attr-defined]
    return qat.IntxFakeQuantizeConfig(dtype, group_size=GROUP_SIZE, is_symmetric=True)


def _quantizable(module: Any, fqn: str) -> bool:
    """Linear layers whose input width splits into groups; the output head stays float (it
    shares its weights with the embedding in small models)."""
    import torch

    return (
        isinstance(module, torch.nn.Linear)
        and "lm_head" not in fqn
        and module.in_features % GROUP_SIZE == 0
    )


def prepare_qat(model: Any, bits: int) -> int:
    """Fake-quantize the model's linear weights in place; returns how many layers."""
    from harness.distill.sft import require

    ao = require("torchao.quantization")
    qat = require("torchao.quantization.qat")
    ao.quantize_(model, qat.QATConfig(weight_config=_weight_config(bits), step="prepare"),
                 filter_fn=_quantizable)  # fmt: skip
    return sum(hasattr(m, "weight_fake_quantizer") for m in model.modules())


def snap_weights(model: Any, bits: int) -> int:
    """Replace every fake-quantized (or quantizable) linear layer by a plain one whose weight
    lies on the quantization grid; returns how many layers were snapped."""
    import torch

    from harness.distill.sft import require

    fq = require("torchao.quantization.qat.fake_quantizer")
    quantizer = fq.IntxFakeQuantizer(_weight_config(bits))
    count = 0
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            fqn = f"{name}.{child_name}" if name else child_name
            if not _quantizable(child, fqn):
                continue
            with torch.no_grad():
                snapped = quantizer(child.weight.detach()).to(child.weight.dtype)
            plain = torch.nn.Linear(
                child.in_features, child.out_features, bias=child.bias is not None
            ).to(device=child.weight.device, dtype=child.weight.dtype)
            with torch.no_grad():
                plain.weight.copy_(snapped)
                if child.bias is not None:
                    plain.bias.copy_(child.bias)
            setattr(module, child_name, plain)
            count += 1
    return count


def same_vocabulary(student_tok: Any, teacher_tok: Any) -> bool:
    return bool(student_tok.get_vocab() == teacher_tok.get_vocab())


def tokenize(rows: Sequence[Mapping[str, Any]], tok: Any, max_length: int) -> list[dict[str, Any]]:
    """Prompt + completion token ids with the prompt masked out of the labels."""
    from harness.distill.sft import prompt_completion

    out: list[dict[str, Any]] = []
    for row in prompt_completion(rows):
        prompt = tok.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        full = tok.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
        if not full.startswith(prompt):
            raise HarnessError("the chat template does not extend the prompt with the answer")
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        ids = tok(full, add_special_tokens=False)["input_ids"][:max_length]
        labels = [-100] * min(len(p_ids), len(ids)) + ids[len(p_ids) :]
        if all(x == -100 for x in labels):
            continue
        out.append({"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)})
    if not out:
        raise HarnessError("harness distill kd: every row's completion was cut by max_length")
    return out


def kd_loss(
    student_logits: Any,
    teacher_logits: Any,
    labels: Any,
    *,
    mode: str,
    temperature: float,
    alpha: float,
) -> Any:
    """alpha x KL over the completion tokens + (1 - alpha) x their cross-entropy."""
    import torch
    import torch.nn.functional as F

    s = student_logits[:, :-1].float()
    t = teacher_logits[:, :-1].float()
    target = labels[:, 1:]
    mask = target != -100
    ce = F.cross_entropy(s[mask], target[mask])
    ls = torch.log_softmax(s[mask] / temperature, dim=-1)
    lt = torch.log_softmax(t[mask] / temperature, dim=-1)
    if mode == "forward":
        kl = (lt.exp() * (lt - ls)).sum(-1).mean()
    else:
        kl = (ls.exp() * (ls - lt)).sum(-1).mean()
    return alpha * kl * temperature**2 + (1.0 - alpha) * ce


def train_kd(
    data: Path,
    base: str,
    teacher: str,
    out: Path,
    settings: TrainSettings,
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Distil `teacher`'s logits into `base` on the rows at `data`, fake-quantized at
    `settings.qat_bits` (0: float training); the student is exported snapped to the grid."""
    import datasets
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from harness.distill.card import write_card
    from harness.distill.collect import load_rows
    from harness.distill.launch import world
    from harness.distill.sft import (
        common_args,
        fit,
        load_model,
        resolve_base,
        save_student,
        train_loss,
    )

    settings.check()
    student, tok = load_model(resolve_base(base, cache_dir))
    teacher_model, teacher_tok = load_model(resolve_base(teacher, cache_dir))
    if not same_vocabulary(tok, teacher_tok):
        raise HarnessError(
            f"harness distill kd: the teacher {teacher} and the student {base} tokenize "
            "differently; logit distillation needs one vocabulary (use `distill sft` instead)"
        )
    teacher_model.eval().requires_grad_(False)
    rows = tokenize(load_rows(data), tok, settings.max_length)
    layers = prepare_qat(student, settings.qat_bits) if settings.qat_bits else 0
    out.mkdir(parents=True, exist_ok=True)

    class KDTrainer(Trainer):
        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            labels = inputs["labels"]
            ids, mask = inputs["input_ids"], inputs["attention_mask"]
            outputs = model(input_ids=ids, attention_mask=mask)
            with torch.no_grad():
                teacher_logits = teacher_model(input_ids=ids, attention_mask=mask).logits
            loss = kd_loss(
                outputs.logits,
                teacher_logits,
                labels,
                mode=settings.kd_loss,
                temperature=settings.kd_temperature,
                alpha=settings.kd_alpha,
            )
            return (loss, outputs) if return_outputs else loss

    args = TrainingArguments(**common_args(out, settings, progress), remove_unused_columns=False)
    teacher_model.to(args.device)  # this process's device (cuda:<local rank> when launched)
    trainer = KDTrainer(
        model=student,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        data_collator=DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100),
    )
    seconds = fit(trainer, out)
    model = trainer.model
    snapped = snap_weights(model, settings.qat_bits) if settings.qat_bits else 0
    model_dir = save_student(model, tok, out)
    result = TrainResult(
        out=out,
        model_dir=model_dir,
        steps=int(trainer.state.global_step),
        train_loss=train_loss(trainer.state.log_history),
        seconds=round(seconds, 3),
        method=f"kd-qat-int{settings.qat_bits}" if settings.qat_bits else "kd",
        base=base,
        settings=settings,
        extra={
            "teacher": teacher,
            "rows": len(rows),
            "data": str(data),
            "fake_quantized_layers": layers,
            "snapped_layers": snapped,
        },
        world=world(trainer),
    )
    write_card(result)
    return result


def ptq_export(model_dir: Path, out: Path, bits: int) -> Path:
    """Post-training quantization of a trained student: the same grid, no training with it.
    Under a distributed launch only the main process writes it."""
    from harness.distill.launch import is_main_process, wait_for_everyone
    from harness.distill.sft import load_model

    if bits not in (4, 8):
        raise HarnessError(f"post-training quantization takes 4 or 8 bits, not {bits}")
    if is_main_process():
        model, tok = load_model(str(model_dir))
        snap_weights(model, bits)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(out))
        tok.save_pretrained(str(out))
    wait_for_everyone()
    return out


def compare_quantized(
    students: Mapping[str, Path],
    tasks: Sequence[str],
    out: Path,
    *,
    limit: int | None = None,
    max_new_tokens: int | None = None,
    data_dir: str | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Evaluate each student (name -> model folder) with `harness run` on the same tasks,
    greedy, and pair every later one with the first (quantization-aware vs post-training):
    accuracy of each, and the paired difference with its interval and McNemar p."""
    from harness.config import RunConfig
    from harness.distill.sft import student_spec
    from harness.metrics.paired import compare_runs
    from harness.runner import run as run_eval
    from harness.store import RunDir
    from harness.tasks import get_task

    dirs: dict[str, Path] = {}
    for name, folder in students.items():
        config = RunConfig.build(
            student=student_spec(folder),
            tasks=list(tasks),
            limit=limit,
            max_new_tokens=max_new_tokens,
            temperature=0.0,
            data_dir=data_dir,
            out=str(out),
            run_id=name,
            cache_dir=str(cache_dir) if cache_dir else None,
            chain_model="none",
            classify="off",
        )
        dirs[name] = run_eval(config, progress=progress).run_dir
    records = {n: list(RunDir(d).read_records()) for n, d in dirs.items()}
    same: dict[str, Callable[[str, str], bool]] = {t: get_task(t).same_answer for t in tasks}
    names = list(students)
    rows: list[dict[str, Any]] = []
    for name in names:
        accuracy = RunDir(dirs[name]).read_metrics()["overall"]["student"].get("accuracy")
        row: dict[str, Any] = {"student": name, "run": str(dirs[name]), "accuracy": accuracy}
        if name != names[0]:
            stats = compare_runs(records[names[0]], records[name], same, seed=seed)["overall"]
            row.update(
                {
                    "versus": names[0],
                    "n": stats.get("paired_problems"),
                    "diff": stats.get("diff"),
                    "diff_ci95": stats.get("diff_ci95"),
                    "mcnemar_p": stats.get("mcnemar_p"),
                }
            )
        rows.append(row)
    return rows


__all__ = [
    "compare_quantized",
    "kd_loss",
    "prepare_qat",
    "ptq_export",
    "same_vocabulary",
    "snap_weights",
    "tokenize",
    "train_kd",
]
