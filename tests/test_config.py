"""RunConfig: run ids that never move, fields declared once, the `run` flags derived from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import create_model
from typer.testing import CliRunner

import harness.config as config_module
from harness.cli import app, given_fields, with_config_flags
from harness.config import (
    NOT_IDENTITY,
    RUN_FLAGS,
    RUN_ID_FIELDS,
    RunConfig,
    flag,
    run_flags,
)

PINNED: list[tuple[dict[str, Any], str]] = [
    # Computed with the code before run ids became a declared field list: a fixed command must
    # resume into the folder it always did, whatever fields RunConfig gains later.
    ({"student": "smollm2-135m"}, "smollm2-135m-0c2c30f5"),
    (
        {
            "student": "smollm2-135m",
            "tasks": ["chains", "gsm8k", "bbh:boolean_expressions"],
            "limit": 8,
            "max_new_tokens": 128,
            "logprobs": True,
            "data_dir": "../shared/data",
        },
        "smollm2-135m-eee9eace",
    ),
    (
        {"student": "smollm2-135m", "data_dir": "../shared/data", "limit": 20},
        "smollm2-135m-adc94b0e",
    ),
    (
        {
            "student": "R1-Distill-Qwen",
            "teacher": "reference",
            "tasks": ["gsm8k", "chains"],
            "samples": 4,
        },
        "R1-Distill-Qwen-fe71d4fc",
    ),
    (
        {"student": "reference", "teacher": "reference", "tasks": ["gsm8k"], "data_dir": "/data"},
        "reference-8a7176c8",
    ),
    (
        {"student": "replay:outputs.jsonl#response=completion", "tasks": ["gsm8k"]},
        "replay-outputs.jsonl-fe91a92a",
    ),
    (
        {
            "student": "hf:HuggingFaceTB/SmolLM2-135M-Instruct#revision=abc",
            "teacher": "R1",
            "tasks": ["chains:depth=1-4,n=3", "math500"],
            "seed": 7,
            "temperature": 0.6,
            "samples": 2,
        },
        "hf-HuggingFaceTB-SmolLM2-135M-Instruct-b7a371d5",
    ),
    (
        {
            "student": "smollm2-135m",
            "tasks": ["bbh"],
            "style": "cot-fewshot",
            "limit": 5,
            "batch_size": 4,
            "out": "elsewhere",
            "run_id": None,
            "cache_dir": "/c",
            "fresh": True,
            "chain_model": "none",
            "confidence": "stated",
        },
        "smollm2-135m-ebe5f5eb",
    ),
    (
        {
            "student": "vllm:deepseek-ai/DeepSeek-R1-Distill-Qwen-7B#tp=2",
            "teacher": "openai:deepseek-reasoner@https://api.deepseek.com/v1#key_env=DEEPSEEK_API_KEY",
            "tasks": ["aime24", "aime25"],
            "temperature": 0.0,
            "max_new_tokens": 32768,
            "style": "r1",
            "logprobs": False,
        },
        "-deepseek-ai-DeepSeek-R1-Distill-Qwen-7B-16a9a39a",
    ),
    (
        {
            "student": "llamacpp:smollm2-135m",
            "tasks": ["humaneval", "mbpp"],
            "style": "plain",
            "temperature": 1.5,
            "seed": 123,
            "samples": 3,
            "logprobs": True,
            "limit": 1,
        },
        "llamacpp-smollm2-135m-0e751b29",
    ),
    (
        {
            "student": "smollm2-135m",
            "tasks": ["gsm8k"],
            "style": "r1-confidence",
            "confidence": "logprob",
            "limit": 100,
        },
        "smollm2-135m-b20bf921",
    ),
]


@pytest.mark.parametrize("fields, run_id", PINNED)
def test_run_ids_are_pinned(fields: dict[str, Any], run_id: str) -> None:
    assert RunConfig.build(**fields).default_run_id() == run_id


class Later(RunConfig):
    """RunConfig as it would be after fields are added: each with a default, each a flag."""

    budget: int = flag(3, help="a budget for something")
    note: str | None = flag(None, help="a note")
    tags: list[str] = flag(default_factory=list, help="tags, comma-separated", parse="json:loads")


@pytest.mark.parametrize("fields, run_id", PINNED)
def test_a_new_field_with_a_default_keeps_every_run_id(fields: dict[str, Any], run_id: str) -> None:
    assert Later.build(**fields).default_run_id() == run_id
    # Set to something else, it changes the records, so it is a different run.
    assert Later.build(**fields, budget=4).default_run_id() != run_id
    assert Later.build(**fields, tags=["x"]).default_run_id() != run_id


def test_a_new_field_made_with_create_model_keeps_run_ids() -> None:
    extended = create_model("Extended", __base__=RunConfig, extra_knob=(int, 5))
    for fields, run_id in PINNED:
        assert extended(**fields).default_run_id() == run_id


def test_run_id_version_bump_moves_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "RUN_ID_VERSION", 2)
    for fields, run_id in PINNED:
        assert RunConfig.build(**fields).default_run_id() != run_id


def test_identity_fields_are_declared_fields() -> None:
    fields = set(RunConfig.model_fields)
    assert set(RUN_ID_FIELDS) <= fields and set(NOT_IDENTITY) <= fields
    assert not set(RUN_ID_FIELDS) & set(NOT_IDENTITY)


def _options(command: Any) -> dict[str, Any]:
    """A built command's options by parameter name."""
    return {p.name: p for p in command.params if p.param_type_name == "option"}


def _shown(option: Any) -> str:
    """An option's help as `--help` shows it (rich markup escapes undone)."""
    return str(option.help).replace("\\[", "[")


def _run_command() -> Any:
    """The `run` command as typer builds it."""
    group: Any = typer.main.get_command(app)
    return group.commands["run"]


def test_every_field_is_a_run_flag_with_its_help() -> None:
    options = _options(_run_command())
    assert list(options) == [*RunConfig.model_fields, "config", "quiet"]
    for name, field in RunConfig.model_fields.items():
        assert field.description and _shown(options[name]).startswith(field.description)
    assert options["out"].opts == ["--out"]
    assert options["max_new_tokens"].opts == ["--max-new-tokens"]
    # --logprobs is a flag on its own; --fresh can be turned off over a --config file.
    assert options["logprobs"].opts == ["--logprobs"] and not options["logprobs"].secondary_opts
    assert options["fresh"].secondary_opts == ["--no-fresh"]
    assert _shown(options["teacher"]) == "teacher model spec or alias [default: reference]"
    assert RUN_FLAGS["limit"].flag == "--limit"


def _given(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[RunConfig, bool]:
    """What `harness run ARGV` would run, without running it."""
    import harness.runner

    seen: list[tuple[RunConfig, bool]] = []

    def fake_run(config: RunConfig, *, progress: bool = True) -> None:
        seen.append((config, progress))
        raise typer.Exit(0)

    monkeypatch.setattr(harness.runner, "run", fake_run)
    result = CliRunner().invoke(app, ["run", *argv])
    assert result.exit_code == 0, result.output
    return seen[0]


def test_flags_become_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["--student", "reference", "--tasks", "chains:depth=1-4,n=3,gsm8k", "--out", "o"]
    cfg, progress = _given([*argv, "--logprobs", "--samples", "2", "--quiet"], monkeypatch)
    assert cfg.tasks == ["chains:depth=1-4,n=3", "gsm8k"]
    assert (cfg.out, cfg.logprobs, cfg.samples, progress) == ("o", True, 2, False)
    cfg, progress = _given(["--student", "reference"], monkeypatch)
    assert cfg == RunConfig(student="reference") and progress


def test_given_flags_override_a_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = RunConfig(student="reference", tasks=["gsm8k"], samples=3, fresh=True, limit=7)
    path = tmp_path / "config.yaml"
    path.write_text(saved.to_yaml())
    cfg, _ = _given(["--config", str(path), "--samples", "2", "--no-fresh"], monkeypatch)
    assert (cfg.samples, cfg.fresh, cfg.tasks, cfg.limit) == (2, False, ["gsm8k"], 7)


def test_a_new_field_is_a_new_flag() -> None:
    flags = run_flags(Later)
    seen: list[Later] = []
    later = typer.Typer()

    @later.command()
    @with_config_flags(flags)
    def go(quiet: bool = False, **given: Any) -> None:
        seen.append(Later(**given_fields(flags, given)))

    argv = ["--student", "s", "--budget", "5", "--tags", '["a", "b"]']
    result = CliRunner().invoke(later, argv)
    assert result.exit_code == 0, result.output
    assert seen[0].budget == 5 and seen[0].tags == ["a", "b"] and seen[0].note is None
    options = _options(typer.main.get_command(later))
    assert options["budget"].opts == ["--budget"]
    assert _shown(options["budget"]) == "a budget for something [default: 3]"
    assert "--budget" in CliRunner().invoke(later, ["--help"]).output
