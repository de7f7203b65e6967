"""The remedy test: collect, mix, train, re-evaluate the diagnosed run's items, per slice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.distill.remedy import agreement, remedy
from harness.distill.sft import TrainSettings
from harness.store import RunDir
from tests.distill_tiny import tiny_model
from tests.test_distill_mix import RUN_TASK, classified_run


def test_agreement_with_the_diagnosis() -> None:
    assert agreement("mismatch", [0.05, 0.3]) == "yes"
    assert agreement("mismatch", [-0.1, 0.3]) == "unclear"
    assert agreement("mismatch", [-0.3, 0.0]) == "no"
    assert agreement("capacity", [-0.1, 0.2]) == "yes"
    assert agreement("capacity", [0.1, 0.2]) == "no"
    assert agreement(None, [0.1, 0.2]) == "-"
    assert agreement("mismatch", None) == "-"


@pytest.mark.slow
def test_remedy_end_to_end_on_a_tiny_student(tmp_path: Path) -> None:
    run = classified_run(tmp_path / "run")
    RunDir(run).write_config(
        {"student": "s", "teacher": "reference", "tasks": [RUN_TASK], "max_new_tokens": 8}
    )
    tiny = tiny_model(tmp_path / "tiny")
    result = remedy(
        str(tiny),
        "reference",
        run,
        tmp_path / "d",
        tasks=["chains:depth=1-2,n=2,seed=0"],
        cache_dir=tmp_path / "cache",
        settings=TrainSettings(max_steps=2, batch_size=4, learning_rate=1e-3),
        progress=False,
    )
    by = {r["slice"]: r for r in result.slices}
    assert list(by) == ["chains/family=bank", "chains/depth=2-2", "all held-out items"]
    bank, depth, every = by.values()
    assert (bank["n"], bank["label"], bank["before"]) == (2, "mismatch", 0.0)
    assert (depth["n"], depth["label"]) == (5, "capacity")
    assert every["n"] == 10 and every["before"] == 0.8
    assert every["delta"] == pytest.approx(every["after"] - every["before"], abs=1e-6)
    # training saw only the index-1 chains of seed 0: the run's index-0 chains were held out
    data = json.loads((tmp_path / "d" / "data" / "collect.json").read_text())
    assert data["asked"] == 10
    card = json.loads((tmp_path / "d" / "train" / "card.json").read_text())
    assert card["evaluation"][0]["slice"] == "chains/family=bank"
    assert card["mix"]["from_failures"]["weighted"][0]["value"] == "bank"
    assert "Before / after" in (tmp_path / "d" / "train" / "model" / "README.md").read_text()
    saved = json.loads((tmp_path / "d" / "remedy.json").read_text())
    assert saved["slices"] == result.slices
    after = [r for r in RunDir(result.after).read_records() if r.role == "student"]
    assert len(after) == 10 and all(r.completion_tokens and r.completion_tokens <= 8 for r in after)


def test_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    from tests.conftest import cli

    bare = cli("distill")
    assert bare.returncode == 2 and "--from-failures" in bare.stderr
    missing = cli("distill", "--student", "smollm2-135m", "--from-failures", str(tmp_path / "no"))
    assert missing.returncode == 2 and "no run" in missing.stderr
    assert "Traceback" not in bare.stderr + missing.stderr
