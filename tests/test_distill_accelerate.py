"""harness distill --accelerate-config: a real SFT job handed to `accelerate launch` on two CPU
processes (gloo), only the main one writing the student and its card; resume under accelerate;
bad configs as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.distill.collect import collect, load_rows
from tests.conftest import cli
from tests.distill_tiny import tiny_model

TASK = "chains:depth=1-2,n=2,seed=1"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "distill" / "accelerate.yaml"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import yaml

    root = tmp_path_factory.mktemp("accelerate")
    collect("reference", [TASK], root / "data", cache_dir=root / "cache", progress=False)
    config = yaml.safe_load(EXAMPLE.read_text())
    assert (config["distributed_type"], config["num_processes"]) == ("MULTI_CPU", 2)
    (root / "accelerate.yaml").write_text(yaml.safe_dump(config))
    return {"root": root, "data": root / "data", "tiny": tiny_model(root / "tiny")}


def _weights(folder: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    return dict(load_file(str(folder / "model.safetensors")))


@pytest.mark.slow
def test_sft_on_two_processes_then_resumed(setup: dict[str, Path]) -> None:
    import torch

    from harness.distill.launch import accelerated
    from harness.distill.sft import load_settings, train_sft

    root, config = setup["root"], setup["root"] / "accelerate.yaml"
    out = root / "job"
    recipe = root / "recipe.yaml"
    recipe.write_text("train: {learning_rate: 0.01, logging_steps: 1}\n")
    done = cli(
        "distill", "sft", str(setup["data"]), "--student", str(setup["tiny"]), "--out", str(out),
        "--config", str(recipe), "--max-steps", "2", "--batch-size", "2", "--quiet",
        "--accelerate-config", str(config), timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # the result line is printed once, by the launched main process, not by every process or
    # again by the parent
    assert done.stdout.count("sft: 2 steps") == 1, done.stdout
    model = out / "model"
    assert (model / "config.json").is_file() and "2 processes (MULTI\\_CPU)" in (
        model / "README.md"
    ).read_text()
    card = json.loads((out / "card.json").read_text())
    assert card["distributed"]["world_size"] == 2
    assert card["distributed"]["distributed_type"] == "MULTI_CPU"
    # two data-parallel processes really ran: each step took 2 x 2 rows, so 2 steps are
    # 4 / rows of an epoch (one process would have covered half that)
    rows = len(load_rows(setup["data"]))
    state = json.loads((out / "checkpoints" / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["log_history"][-1]["epoch"] == pytest.approx(2 / -(-rows // 4), abs=1e-3)
    assert rows > 4  # so that the two readings differ
    assert sorted(p.name for p in (out / "checkpoints" / "checkpoint-2").glob("rng_state*")) == [
        "rng_state_0.pth",
        "rng_state_1.pth",
    ]
    trained, base = _weights(model), _weights(setup["tiny"])
    assert trained.keys() == base.keys()
    assert any(not torch.equal(trained[k], base[k]) for k in base)  # type: ignore[arg-type]

    # the same job with one more step, as the remedy test trains it: under accelerate it
    # resumes from checkpoint-2 (its history carries the mark left in it), not from step 0
    mark = out / "checkpoints" / "checkpoint-2" / "trainer_state.json"
    marked = json.loads(mark.read_text())
    first = next(e for e in marked["log_history"] if e.get("step") == 1 and "loss" in e)
    first["loss"] = 100.0
    mark.write_text(json.dumps(marked))
    settings = load_settings(recipe).replace(max_steps=3, batch_size=2)
    with accelerated(config):
        more = train_sft(setup["data"], str(setup["tiny"]), out, settings, progress=False)
    assert more.steps == 3 and more.world["world_size"] == 2
    state = json.loads((out / "checkpoints" / "checkpoint-3" / "trainer_state.json").read_text())
    losses = {e["step"]: e["loss"] for e in state["log_history"] if "loss" in e}
    assert sorted(losses) == [1, 2, 3] and losses[1] == 100.0
    assert more.train_loss is not None and more.train_loss > 100.0 / 3


def test_missing_config_is_one_line(tmp_path: Path) -> None:
    for stage in (
        ["sft", str(tmp_path), "--student", "x"],
        ["grpo", "--student", "x", "--tasks", "chains"],
        ["kd", str(tmp_path), "--student", "x", "--teacher", "y"],
    ):
        done = cli(
            "distill", *stage, "--out", str(tmp_path / "o"),
            "--accelerate-config", str(tmp_path / "missing.yaml"),
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "missing.yaml: no such file" in done.stderr
    assert not (tmp_path / "o").exists()


def test_bad_configs_are_one_line(tmp_path: Path) -> None:
    cases = {
        "list.yaml": ("- MULTI_CPU\n- 2\n", "expected a mapping"),
        "broken.yaml": ("distributed_type: [MULTI_CPU\n", "not readable YAML"),
        "procs.yaml": ("distributed_type: MULTI_CPU\nnum_processes: two\n", "num_processes"),
        "zero3.yaml": (
            "distributed_type: DEEPSPEED\ndeepspeed_config: {zero_stage: 3}\n",
            "ZeRO stage 3",
        ),
    }
    for name, (text, says) in cases.items():
        (tmp_path / name).write_text(text)
        done = cli(
            "distill", "sft", str(tmp_path), "--student", "x", "--out", str(tmp_path / "o"),
            "--accelerate-config", str(tmp_path / name),
        )  # fmt: skip
        assert done.returncode == 2, (name, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert says in done.stderr, done.stderr
    # the remedy test checks its config before it collects anything
    done = cli(
        "distill", "--student", "x", "--from-failures", "r", "--out", str(tmp_path / "r"),
        "--accelerate-config", str(tmp_path / "list.yaml"),
    )  # fmt: skip
    assert done.returncode == 2 and "expected a mapping" in done.stderr, done.stderr
    assert not (tmp_path / "r").exists()


def test_the_launched_command_repeats_the_given_arguments() -> None:
    from typer.main import get_command

    from harness.distill.command import distill_app
    from harness.distill.launch import launch_argv, launcher_command

    sft = get_command(distill_app).commands["sft"]  # type: ignore[attr-defined]
    given = ["d", "--student", "s", "--lora", "--max-steps", "2", "--accelerate-config", "a.yaml"]
    ctx = sft.make_context("sft", list(given))
    args = launch_argv(ctx)
    assert args == ["d", "--student", "s", "--max-steps", "2", "--lora"]
    ctx = sft.make_context("sft", ["d", "--student", "s", "--no-lora", "--quiet"])
    assert launch_argv(ctx) == ["d", "--student", "s", "--no-lora", "--quiet"]
    two_cpus = {"distributed_type": "MULTI_CPU", "num_processes": 2}
    cmd = launcher_command(Path("a.yaml"), two_cpus, args)
    assert cmd[cmd.index("-m", 3) :][:4] == ["-m", "harness", "distill", "d"]
    assert "--multi_gpu" in cmd and "--main_process_port" in cmd  # torchrun, a free port
    single = launcher_command(Path("a.yaml"), {"distributed_type": "NO"}, args)
    assert "--multi_gpu" not in single and "--main_process_port" not in single
