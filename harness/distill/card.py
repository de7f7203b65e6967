"""The model card every training job writes beside its student: what data, how trained, and
(once re-evaluated) how it did before and after, per slice.

`card.json` is the machine-readable card; `README.md` in the model folder is the same in words,
so a student copied elsewhere carries its card. Model text never appears in a card; names that
come from data (task, family) are escaped as markdown table cells.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.distill.sft import TrainResult

CARD_JSON = "card.json"


def _cell(value: Any) -> str:
    text = "-" if value is None else str(value)
    for ch in ("\\", "|", "`", "*", "_", "<", ">", "[", "]"):
        text = text.replace(ch, "\\" + ch)
    return " ".join(text.split())


def _fmt(x: Any, signed: bool = False) -> str:
    if x is None:
        return "-"
    if isinstance(x, int | float):
        return f"{x:+.3f}" if signed else f"{x:.3f}"
    return _cell(x)


def card_dict(
    result: TrainResult,
    mix_manifest: Mapping[str, Any] | None = None,
    evaluation: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    from harness import __version__

    return {
        "method": result.method,
        "base": result.base,
        "model_dir": str(result.model_dir),
        "student_spec": result.student_spec(),
        "steps": result.steps,
        "train_loss": result.train_loss,
        "seconds": result.seconds,
        "seed": result.settings.seed,
        "hyperparameters": result.settings.to_dict(),
        "distributed": dict(result.world) or {"world_size": 1, "distributed_type": "NO"},
        "data": dict(result.extra),
        "mix": dict(mix_manifest) if mix_manifest else None,
        "evaluation": [dict(e) for e in evaluation] if evaluation else None,
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "harness_version": __version__,
    }


def card_markdown(card: Mapping[str, Any]) -> str:
    lines = [
        f"# Student trained by `harness distill` ({_cell(card['method'])})",
        "",
        f"- base: {_cell(card['base'])}",
        f"- steps: {card['steps']}, train loss: {_fmt(card['train_loss'])}, "
        f"seconds: {card['seconds']}, seed: {card['seed']}",
        f"- evaluate with: `harness run --student {card['student_spec']}`",
        f"- trained on: {_trained_on(card.get('distributed') or {})}",
        "",
        "## Hyper-parameters",
        "",
        "| setting | value |",
        "|---|---|",
    ]
    for k, v in card["hyperparameters"].items():
        lines.append(f"| {_cell(k)} | {_cell(v)} |")
    mix = card.get("mix")
    if mix:
        lines += ["", "## Data mix", "", f"{mix.get('rows')} rows.", ""]
        lines += [
            "| selector | failure weighted | weight | available | rows |",
            "|---|---|---|---|---|",
        ]
        for g in mix.get("groups", []):
            lines.append(
                f"| {_cell(g['selector'])} | {'yes' if g['failure_weighted'] else 'no'} | "
                f"{g['weight']:g} | {g['available']} | {g['rows']} |"
            )
        fams = mix.get("families") or {}
        if fams:
            lines += ["", "Families: " + ", ".join(f"{_cell(k)} {v}" for k, v in fams.items())]
    quantized = (card.get("data") or {}).get("quantization_comparison")
    if quantized:
        lines += [
            "",
            "## Quantized students on the same problems",
            "",
            "| student | accuracy | vs | n | difference | 95% CI |",
            "|---|---|---|---|---|---|",
        ]
        for q in quantized:
            ci = q.get("diff_ci95")
            lines.append(
                f"| {_cell(q['student'])} | {_fmt(q.get('accuracy'))} | "
                f"{_cell(q.get('versus'))} | {_cell(q.get('n'))} | {_fmt(q.get('diff'), True)} | "
                + (f"{ci[0]:+.3f}..{ci[1]:+.3f}" if ci else "-")
                + " |"
            )
    evaluation = card.get("evaluation")
    if evaluation:
        lines += [
            "",
            "## Before / after (held-out items, paired)",
            "",
            "| slice | diagnosis | n | before | after | delta | 95% CI | agrees |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for e in evaluation:
            ci = e.get("delta_ci95")
            lines.append(
                f"| {_cell(e['slice'])} | {_cell(e.get('label'))} | {e.get('n')} | "
                f"{_fmt(e.get('before'))} | {_fmt(e.get('after'))} | "
                f"{_fmt(e.get('delta'), True)} | "
                + (f"{ci[0]:+.3f}..{ci[1]:+.3f}" if ci else "-")
                + f" | {_cell(e.get('agrees'))} |"
            )
    return "\n".join(lines) + "\n"


def _trained_on(world: Mapping[str, Any]) -> str:
    """`1 process`, or `2 processes (MULTI_CPU), accelerate config accelerate.yaml`."""
    n = int(world.get("world_size") or 1)
    text = f"{n} process" + ("es" if n != 1 else "")
    kind = world.get("distributed_type")
    if kind and kind != "NO":
        text += f" ({_cell(kind)})"
    if world.get("accelerate_config"):
        text += f", accelerate config {_cell(Path(str(world['accelerate_config'])).name)}"
    return text


def write_card(
    result: TrainResult,
    mix_manifest: Mapping[str, Any] | None = None,
    evaluation: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """card.json in the job's folder, README.md in its model folder (by the main process only,
    when the job was launched on several)."""
    from harness.distill.launch import is_main_process

    path = result.out / CARD_JSON
    if not is_main_process():
        return path
    card = card_dict(result, mix_manifest, evaluation)
    path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    if result.model_dir.is_dir():
        (result.model_dir / "README.md").write_text(card_markdown(card), encoding="utf-8")
    return path


__all__ = ["CARD_JSON", "card_dict", "card_markdown", "write_card"]
