"""harness distill kd: logit distillation with torchao fake quantization, the snapped export,
and the post-training-quantization baseline, both evaluated by `harness run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.distill.collect import collect
from harness.distill.kd import (
    compare_quantized,
    kd_loss,
    prepare_qat,
    ptq_export,
    snap_weights,
    train_kd,
)
from harness.distill.sft import TrainSettings
from harness.errors import HarnessError
from tests.distill_tiny import tiny_model


def test_kd_loss_is_zero_only_for_the_teachers_distribution() -> None:
    import torch

    torch.manual_seed(0)
    logits = torch.randn(2, 6, 11)
    labels = torch.tensor([[-100, -100, 3, 4, 5, 1], [-100, 2, 2, 2, 2, 2]])
    for mode in ("forward", "reverse"):
        same = kd_loss(logits, logits, labels, mode=mode, temperature=2.0, alpha=1.0)
        other = kd_loss(
            logits, torch.randn(2, 6, 11), labels, mode=mode, temperature=2.0, alpha=1.0
        )
        assert float(same) == pytest.approx(0.0, abs=1e-6) and float(other) > 0.05
    fwd = kd_loss(logits, logits * 3, labels, mode="forward", temperature=1.0, alpha=1.0)
    rev = kd_loss(logits, logits * 3, labels, mode="reverse", temperature=1.0, alpha=1.0)
    assert float(fwd) != pytest.approx(float(rev))  # KL is not symmetric


@pytest.mark.parametrize("bits", [4, 8])
def test_snapped_weights_lie_on_the_grid(bits: int) -> None:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    assert prepare_qat(model, bits) == 1  # 16 inputs do not split into groups of 32
    model(torch.randn(3, 64)).sum().backward()  # fake quantization passes gradients
    assert model[0].weight.grad is not None
    before = model[0].weight.detach().clone()
    assert snap_weights(model, bits) == 1
    error = (model[0].weight.detach() - before).abs()
    assert 0 < float(error.max()) < float(before.abs().max()) / 2**bits * 2
    assert type(model[0]) is torch.nn.Linear
    for group in model[0].weight.detach().reshape(-1, 32):
        values = group.unique()
        assert values.numel() <= 2**bits
        # every value is a whole number of grid steps from the smallest one (the smallest gap
        # seen may span a few steps when few of the 2**bits levels occur in a group)
        gaps = (values - values[0]) / values.diff().min()
        assert any(torch.allclose(gaps * k, (gaps * k).round(), atol=1e-2) for k in (1, 2, 3, 4))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("kd")
    collect("reference", ["chains:depth=1-2,n=1,seed=3"], root / "data", progress=False,
            cache_dir=root / "cache")  # fmt: skip
    return {
        "root": root,
        "data": root / "data",
        "student": tiny_model(root / "student"),
        "teacher": tiny_model(root / "teacher", hidden=64),
    }


def test_different_vocabularies_are_refused(setup: dict[str, Path]) -> None:
    other = tiny_model(setup["root"] / "other", vocab=300)
    with pytest.raises(HarnessError, match="tokenize differently"):
        train_kd(setup["data"], str(setup["student"]), str(other), setup["root"] / "x",
                 TrainSettings(max_steps=1), progress=False)  # fmt: skip


@pytest.mark.slow
def test_qat_kd_and_ptq_students_are_evaluated(setup: dict[str, Path]) -> None:
    root = setup["root"]
    common = {"max_steps": 2, "batch_size": 4, "learning_rate": 1e-3, "save_steps": 1}
    qat = train_kd(setup["data"], str(setup["student"]), str(setup["teacher"]), root / "qat",
                   TrainSettings(qat_bits=4, **common), progress=False)  # fmt: skip
    assert qat.steps == 2 and qat.method == "kd-qat-int4"
    assert qat.extra["fake_quantized_layers"] == qat.extra["snapped_layers"] > 0
    flt = train_kd(setup["data"], str(setup["student"]), str(setup["teacher"]), root / "float",
                   TrainSettings(qat_bits=0, **common), progress=False)  # fmt: skip
    ptq = ptq_export(flt.model_dir, root / "ptq", 4)
    rows = compare_quantized(
        {"qat": qat.model_dir, "ptq": ptq}, ["chains:depth=1,n=1,seed=3"], root / "runs",
        max_new_tokens=8, cache_dir=root / "cache", progress=False,
    )  # fmt: skip
    assert [r["student"] for r in rows] == ["qat", "ptq"]
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    assert rows[1]["versus"] == "qat" and rows[1]["n"] == 5
    for name in ("qat", "ptq"):
        metrics = json.loads((root / "runs" / name / "metrics.json").read_text())
        assert metrics["overall"]["student"]["accuracy"] == next(
            r["accuracy"] for r in rows if r["student"] == name
        )


@pytest.mark.slow
def test_cli_kd_with_ptq_baseline_side_by_side(setup: dict[str, Path]) -> None:
    from tests.conftest import cli

    out = setup["root"] / "cli"
    done = cli(
        "distill", "kd", str(setup["data"]), "--student", str(setup["student"]),
        "--teacher", str(setup["teacher"]), "--out", str(out), "--qat-bits", "8",
        "--max-steps", "1", "--ptq", "--tasks", "chains:depth=1,n=1,seed=3",
        "--max-new-tokens", "8", "--cache-dir", str(setup["root"] / "cache"), "--quiet",
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "kd-qat-int8: 1 steps" in done.stdout and "ptq-int8" in done.stdout
    card = json.loads((out / "card.json").read_text())
    compared = card["data"]["quantization_comparison"]
    assert [r["student"] for r in compared] == ["qat", "ptq-int8"]
    assert (out / "float" / "model").is_dir() and (out / "ptq" / "config.json").is_file()
    assert "Quantized students on the same problems" in (out / "model" / "README.md").read_text()
    bad = cli(
        "distill", "kd", str(setup["data"]), "--student", str(setup["student"]),
        "--teacher", str(setup["teacher"]), "--out", str(out / "bad"), "--tasks", "nosuch",
    )  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert not (out / "bad" / "model").exists()  # refused before any training
