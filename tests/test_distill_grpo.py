"""harness distill grpo: the graders as TRL rewards, and a short real GRPO job on a tiny Qwen2
model whose output `harness run` evaluates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.distill.grpo import correctness_reward, format_reward, prompt_rows, train_grpo
from harness.distill.sft import TrainSettings
from tests.distill_tiny import tiny_model

TASK = "chains:depth=1,n=1,seed=2"


def test_rewards_grade_with_the_task() -> None:
    rows = prompt_rows([TASK])
    assert len(rows) == 5 and rows[0]["prompt"][0]["role"] == "user"
    gold = json.loads(rows[0]["problem"])["answer"]
    right = f"<think>\nx\n</think>\n\nThe answer is \\boxed{{{gold}}}."
    completions = [
        [{"role": "assistant", "content": right}],
        [{"role": "assistant", "content": f"<think>\nx\n</think>\n\n\\boxed{{{int(gold) + 1}}}"}],
        [{"role": "assistant", "content": f"<think>\nstill thinking about {gold}"}],
        [{"role": "assistant", "content": f"The answer is {gold}."}],
    ]  # fmt: skip
    kw = {"problem": [rows[0]["problem"]] * 4, "task": [rows[0]["task"]] * 4}
    prompts = [rows[0]["prompt"]] * 4
    # an unclosed chain is not an answer; a bare answer without think tags is read as one
    assert correctness_reward(prompts, completions, **kw) == [1.0, 0.0, 0.0, 0.0]
    assert format_reward(prompts, completions, **kw) == [1.0, 1.0, 0.0, 0.0]
    plain = [f"<think>\n</think>\n\n\\boxed{{{gold}}}"]
    assert correctness_reward(prompts[:1], plain, **{k: v[:1] for k, v in kw.items()}) == [1.0]


@pytest.mark.slow
def test_grpo_trains_and_is_evaluated(tmp_path: Path) -> None:
    from tests.conftest import cli

    tiny = tiny_model(tmp_path / "tiny")
    settings = TrainSettings(
        max_steps=2, batch_size=4, num_generations=4, max_completion_length=16,
        learning_rate=1e-4, beta=0.04, logging_steps=1, save_steps=1,
    )  # fmt: skip
    r = train_grpo([TASK], str(tiny), tmp_path / "grpo", settings, progress=False)
    assert r.steps == 2 and r.method == "grpo"
    assert len(r.extra["rewards"]) == 2  # one logged mean reward per step
    card = json.loads((tmp_path / "grpo" / "card.json").read_text())
    assert (
        card["hyperparameters"]["beta"] == 0.04 and card["hyperparameters"]["num_generations"] == 4
    )
    done = cli(
        "run", "--student", r.student_spec(), "--tasks", TASK, "--max-new-tokens", "8",
        "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"),
        "--chain-model", "none", "--classify", "off", "--quiet", timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = next((tmp_path / "runs").iterdir())
    student = [
        json.loads(x)
        for x in (run / "records.jsonl").read_text().splitlines()
        if json.loads(x)["role"] == "student"
    ]
    assert len(student) == 5 and all(x["finish_reason"] in ("stop", "length") for x in student)
