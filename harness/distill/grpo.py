"""Reinforcement from the graders: TRL's GRPOTrainer with this project's tasks as rewards.

The reward for a completion is the task's own score (the same extraction and grading as
`harness run`: a chain whose `</think>` never came is not correct), plus a format reward for a
closed think block followed by a `\\boxed{}` answer, weighted by `format_weight`. Group size
(`num_generations`), the KL coefficient (`beta`) and the completion length
(`max_completion_length`) come from the settings. The prompts are the tasks' problems (held-out
lineages excluded), each row carrying its problem so the reward can grade it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.distill.sft import TrainResult, TrainSettings
from harness.errors import HarnessError
from harness.types import Generation, Problem


def _text(completion: Any) -> str:
    """A completion as TRL hands it: a string, or a conversational list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return str(completion)


def as_generation(text: str) -> Generation:
    """A student completion read with think tags, as the trained student is evaluated."""
    from harness.reasoning import split_reasoning

    reasoning, answer, closed = split_reasoning(text, True)
    return Generation(text=answer, reasoning=reasoning, reasoning_closed=closed)


def correctness_reward(
    prompts: Sequence[Any], completions: Sequence[Any], **kw: Any
) -> list[float]:
    """1 when the task grades the completion right, else 0 (`problem`, `task` columns)."""
    from harness.tasks import get_task

    out: list[float] = []
    tasks: dict[str, Any] = {}
    for completion, problem_json, spec in zip(completions, kw["problem"], kw["task"], strict=True):
        task = tasks.get(spec) or tasks.setdefault(spec, get_task(spec))
        problem = Problem.from_dict(json.loads(problem_json))
        score = task.score(as_generation(_text(completion)), problem)
        out.append(1.0 if score.correct else 0.0)
    return out


def format_reward(prompts: Sequence[Any], completions: Sequence[Any], **kw: Any) -> list[float]:
    """1 for a closed think block then an answer in `\\boxed{}`, 0.5 for either, else 0."""
    out: list[float] = []
    for completion in completions:
        gen = as_generation(_text(completion))
        closed = gen.reasoning_closed is True
        boxed = "\\boxed{" in gen.text
        out.append((float(closed) + float(boxed)) / 2.0)
    return out


def prompt_rows(
    tasks: Sequence[str],
    *,
    limit: int | None = None,
    data_dir: str | None = None,
    style: str = "r1",
    exclude: Callable[[Problem], bool] | None = None,
) -> list[dict[str, Any]]:
    """One conversational prompt per problem, with the problem for the reward to grade."""
    from harness.tasks import DataSource, get_task

    source = DataSource.resolve(data_dir)
    rows: list[dict[str, Any]] = []
    for spec in tasks:
        task = get_task(spec)
        for p in task.load(source, limit).problems:
            if exclude is not None and exclude(p):
                continue
            rows.append(
                {
                    "prompt": [m.to_dict() for m in task.prompt(p, style)],
                    "problem": json.dumps(p.to_dict()),
                    "task": task.spec,
                }
            )
    if not rows:
        raise HarnessError("harness distill grpo: no prompts (name --tasks with problems)")
    return rows


def train_grpo(
    tasks: Sequence[str],
    base: str,
    out: Path,
    settings: TrainSettings,
    *,
    limit: int | None = None,
    data_dir: str | None = None,
    cache_dir: Path | None = None,
    exclude: Callable[[Problem], bool] | None = None,
    progress: bool = True,
) -> TrainResult:
    """GRPO on the tasks' problems with the graders as rewards; the student goes to
    `<out>/model` with its card."""
    import datasets

    from harness.distill.card import write_card
    from harness.distill.launch import world
    from harness.distill.sft import (
        common_args,
        fit,
        load_model,
        lora_config,
        require,
        resolve_base,
        save_student,
        train_loss,
    )

    trl = require("trl")
    settings.check()
    rows = prompt_rows(tasks, limit=limit, data_dir=data_dir, exclude=exclude)
    source = resolve_base(base, cache_dir)
    model, tok = load_model(source)
    out.mkdir(parents=True, exist_ok=True)
    args = trl.GRPOConfig(
        **common_args(out, settings, progress),
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length,
        beta=settings.beta,
        temperature=settings.temperature,
        reward_weights=[1.0, settings.format_weight],
        remove_unused_columns=False,
    )
    trainer = trl.GRPOTrainer(
        model=model,
        reward_funcs=[correctness_reward, format_reward],
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tok,
        peft_config=lora_config(settings) if settings.lora else None,
    )
    seconds = fit(trainer, out)
    model_dir = save_student(trainer.model, tok, out)
    history = trainer.state.log_history
    rewards = [float(e["reward"]) for e in history if "reward" in e]
    result = TrainResult(
        out=out,
        model_dir=model_dir,
        steps=int(trainer.state.global_step),
        train_loss=train_loss(history),
        seconds=round(seconds, 3),
        method="grpo-lora" if settings.lora else "grpo",
        base=base,
        settings=settings,
        extra={"prompts": len(rows), "tasks": list(tasks), "rewards": rewards},
        world=world(trainer),
    )
    write_card(result)
    return result


__all__ = ["as_generation", "correctness_reward", "format_reward", "prompt_rows", "train_grpo"]
