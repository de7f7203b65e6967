"""harness distill sft: a real TRL SFT job on a tiny Qwen2 model, completion-only loss, resume,
LoRA merged, the student evaluated by `harness run` through the transformers backend."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from harness.distill.collect import collect, load_rows
from harness.distill.sft import TrainSettings, load_settings, prompt_completion, train_sft
from harness.errors import HarnessError
from tests.distill_tiny import tiny_model

TASK = "chains:depth=1-2,n=2,seed=1"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sft")
    collect("reference", [TASK], root / "data", cache_dir=root / "cache", progress=False)
    return {"root": root, "data": root / "data", "tiny": tiny_model(root / "tiny")}


def completion_nll(model_dir: Path, rows: list[dict[str, Any]]) -> tuple[float, float]:
    """Mean NLL per token of the completions and of the prompts, each given what precedes it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    comp = prompt_tot = 0.0
    n_comp = n_prompt = 0
    for row in prompt_completion(rows):
        prompt = tok.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        full = tok.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
        p_ids = tok(prompt)["input_ids"]
        ids = torch.tensor([tok(full)["input_ids"]])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0, :-1], dim=-1)
        nll = -logp.gather(1, ids[0, 1:, None])[:, 0]
        k = len(p_ids) - 1
        prompt_tot += float(nll[:k].sum())
        n_prompt += k
        comp += float(nll[k:].sum())
        n_comp += nll.numel() - k
    return comp / n_comp, prompt_tot / n_prompt


@pytest.mark.slow
def test_sft_learns_completions_only_and_resumes(setup: dict[str, Path]) -> None:
    out = setup["root"] / "job"
    rows = load_rows(setup["data"])
    before = completion_nll(setup["tiny"], rows)
    settings = TrainSettings(
        max_steps=4, batch_size=4, learning_rate=1e-2, save_steps=2, logging_steps=1
    )
    first = train_sft(setup["data"], str(setup["tiny"]), out, settings, progress=False)
    assert first.steps == 4 and (out / "checkpoints" / "checkpoint-4").is_dir()
    # the same job with more steps resumes from checkpoint-4, not from step 0
    more = train_sft(
        setup["data"], str(setup["tiny"]), out, settings.replace(max_steps=12), progress=False
    )
    assert more.steps == 12
    state = json.loads((out / "checkpoints" / "checkpoint-12" / "trainer_state.json").read_text())
    logged = [e["step"] for e in state["log_history"] if "loss" in e]
    assert logged == list(range(1, 13))  # one history, continued
    after = completion_nll(more.model_dir, rows)
    # the completions got much likelier; the prompts (never in the loss) far less so
    assert after[0] < before[0] - 0.5
    assert before[1] - after[1] < (before[0] - after[0]) / 2
    card = json.loads((out / "card.json").read_text())
    assert card["steps"] == 12 and card["hyperparameters"]["learning_rate"] == 1e-2
    assert card["student_spec"] == f"hf:{more.model_dir}#think=1"
    assert "## Hyper-parameters" in (more.model_dir / "README.md").read_text()
    # a finished job asked again trains nothing and still reports the job's loss, not 0
    again = train_sft(
        setup["data"], str(setup["tiny"]), out, settings.replace(max_steps=12), progress=False
    )
    assert again.steps == 12 and again.train_loss == more.train_loss
    assert more.train_loss is not None and more.train_loss > 0


@pytest.mark.slow
def test_lora_is_merged_and_evaluated_by_harness_run(setup: dict[str, Path]) -> None:
    from tests.conftest import cli

    out = setup["root"] / "lora"
    settings = TrainSettings(lora=True, lora_r=4, max_steps=2, batch_size=4, learning_rate=1e-3)
    r = train_sft(setup["data"], str(setup["tiny"]), out, settings, progress=False)
    assert r.method == "sft-lora"
    assert not (r.model_dir / "adapter_config.json").exists()  # merged into plain weights
    done = cli(
        "run", "--student", r.student_spec(), "--tasks", "chains:depth=1,n=1",
        "--max-new-tokens", "8", "--out", str(setup["root"] / "runs"),
        "--cache-dir", str(setup["root"] / "cache"), "--chain-model", "none",
        "--classify", "off", "--quiet", timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = next((setup["root"] / "runs").iterdir())
    records = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]
    student = [x for x in records if x["role"] == "student"]
    assert len(student) == 5 and all(x["backend"] == "transformers" for x in student)
    assert all(x["completion_tokens"] and x["completion_tokens"] <= 8 for x in student)


def test_settings_from_yaml(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("train: {max_steps: 3, lora: true, learning_rate: 0.001}\n")
    s = load_settings(p)
    assert (s.max_steps, s.lora, s.learning_rate) == (3, True, 0.001)
    assert math.isclose(s.replace(learning_rate=0.5).learning_rate, 0.5)
    p.write_text("train: {max_stepz: 3}\n")
    with pytest.raises(HarnessError, match="unknown setting"):
        load_settings(p)
    p.write_text("train: {lora: 3}\n")
    with pytest.raises(HarnessError, match="lora takes a bool"):
        load_settings(p)
    for bad in ("beta: -1", "max_steps: 0", "max_steps: -4", "kd_temperature: 0"):
        p.write_text(f"train: {{{bad}}}\n")
        with pytest.raises(HarnessError, match="must be|>= 1|> 0"):
            load_settings(p)


def test_bad_student_is_one_line(setup: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="needs weights"):
        train_sft(setup["data"], "reference", tmp_path / "x", TrainSettings(), progress=False)


@pytest.mark.slow
def test_cli_sft(setup: dict[str, Path]) -> None:
    from tests.conftest import cli

    out = setup["root"] / "cli"
    done = cli(
        "distill", "sft", str(setup["data"]), "--student", str(setup["tiny"]), "--out", str(out),
        "--max-steps", "1", "--batch-size", "2", "--quiet", timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "sft: 1 steps" in done.stdout and (out / "model" / "config.json").is_file()


def test_cli_stages_name_their_folder(setup: dict[str, Path]) -> None:
    from tests.conftest import cli

    for stage in (
        ["sft", str(setup["data"]), "--student", "x"],
        ["grpo", "--student", "x", "--tasks", "chains"],
        ["kd", str(setup["data"]), "--student", "x", "--teacher", "y"],
    ):
        done = cli("distill", *stage)
        assert done.returncode == 2 and "--out" in done.stderr, done.stderr
