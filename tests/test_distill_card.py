"""The model card: every training job's data mix, settings and before/after, escaped."""

from __future__ import annotations

import json
from pathlib import Path

from harness.distill.card import card_markdown, write_card
from harness.distill.sft import TrainResult, TrainSettings


def test_card_has_mix_settings_and_escaped_slices(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    result = TrainResult(
        out=tmp_path, model_dir=tmp_path / "model", steps=7, train_loss=0.5, seconds=1.0,
        method="sft", base="smollm2-135m", settings=TrainSettings(seed=3), extra={"rows": 9},
    )  # fmt: skip
    mix = {
        "rows": 9,
        "groups": [{"selector": "chains", "failure_weighted": True, "weight": 3.0,
                    "available": 9, "rows": 9}],
        "families": {"bank": 9},
    }  # fmt: skip
    evaluation = [
        {"slice": "chains/family=<b>|x", "label": "mismatch", "n": 4, "before": 0.25,
         "after": 0.75, "delta": 0.5, "delta_ci95": [0.25, 0.75], "agrees": "yes"},
    ]  # fmt: skip
    path = write_card(result, mix, evaluation)
    card = json.loads(path.read_text())
    assert (card["steps"], card["seed"], card["mix"]["rows"]) == (7, 3, 9)
    assert card["student_spec"] == f"hf:{tmp_path / 'model'}#think=1"
    text = (tmp_path / "model" / "README.md").read_text()
    assert text == card_markdown(card)
    assert "<b>" not in text and "\\<b\\>\\|x" in text
    assert "| +0.500 | +0.250..+0.750 | yes |" in text
    assert "| chains | yes | 3 | 9 | 9 |" in text
