"""Planted-cause runs over chains and GSM8K-shaped problems with probes and divergence, the model
reading them, the divergence point from the step alignment, a task's training split as the
OOD reference, and `harness run` labelling its own failures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from harness.classify import FAILURES_FILE, LABELS, model, simulate
from harness.classify.base import UNDETERMINED, Features
from harness.classify.evidence import describe
from harness.metrics.chainsim import divergence_step
from harness.tasks import DataSource, get_task
from tests.conftest import cli


@pytest.fixture(scope="module")
def trained() -> model.Model:
    return model.default_model()


def _planted_runs(task: str, count: int, *, variants: bool = False) -> list[simulate.Planted]:
    out: list[simulate.Planted] = []
    seed = 70_000
    while len(out) < count:
        planted = simulate.simulate(seed, mixture=simulate.HELD_OUT_MIXTURE, noisy=False)
        with_variants = any(r.parent_id for r in planted.records)
        if planted.records[0].task == task and (with_variants or not variants):
            out.append(planted)
        seed += 1
    return out


def test_gsm8k_shaped_runs_follow_gsm8k_depths_and_lineage() -> None:
    planted = _planted_runs("gsm8k", 1, variants=True)[0]
    originals = [r for r in planted.records if r.role == "teacher" and r.parent_id is None]
    assert originals and {r.steps for r in originals} <= set(simulate.GSM8K_DEPTHS)
    variants = [r for r in planted.records if r.role == "teacher" and r.parent_id]
    ids = {r.problem_id for r in originals}
    assert variants and all(v.parent_id in ids for v in variants)
    assert all(v.problem_id == f"{v.parent_id}~{v.perturbation}-0" for v in variants)
    steps = {r.problem_id: r.steps for r in originals}
    for v in variants:
        if v.perturbation == "compose":
            assert v.steps is not None and v.steps > steps[v.parent_id or ""]
        else:
            assert v.steps == steps[v.parent_id or ""]


def test_probes_and_divergence_reach_the_features() -> None:
    seen_probes = seen_div = False
    for seed in range(0, 40):
        planted = simulate.simulate(seed)
        feats = simulate.planted_features(planted)
        for key, more in planted.extra.items():
            f = feats[key]
            if "probes" in more:
                assert f.probes == more["probes"]
                seen_probes = seen_probes or bool(f.probes)
            if "divergence" in more:
                assert f.divergence == more["divergence"]
                seen_div = True
        if seen_probes and seen_div:
            break
    assert seen_probes and seen_div


@pytest.mark.parametrize("task", ["chains", "gsm8k"])
def test_held_out_recovery_per_problem_set(trained: model.Model, task: str) -> None:
    truth, pred = [], []
    for planted in _planted_runs(task, 5):
        feats = simulate.planted_features(planted)
        keys = [k for k, c in planted.truth.items() if c != UNDETERMINED]
        truth += [planted.truth[k] for k in keys]
        pred += [p[0] for p in trained.predict([feats[k] for k in keys])]
    t, p = np.array(truth), np.array(pred)
    decided = p != UNDETERMINED
    assert 1 - decided.mean() < 0.15
    assert f1_score(t[decided], p[decided], average="macro") >= 0.90


def test_probe_outcomes_move_the_probability(trained: model.Model) -> None:
    """An item whose correlational evidence is mixed: right with a prefix is read as capacity,
    and a success in a familiar form never pushes toward capacity."""
    base = Features(
        "chains",
        "p",
        0,
        depth=6.0,
        frontier=5.0,
        frontier_sd=0.8,
        depth_margin=1.25,
        form="shop/rename",
        familiar=False,
        form_gap=0.15,
        parent_right=1.0,
    )

    def p_capacity(**probes: bool) -> float:
        from dataclasses import replace

        return float(trained.proba([replace(base, probes=probes)])[0])

    assert p_capacity(decompose=True) > p_capacity(decompose=False) + 0.05
    assert p_capacity(familiarize=True) <= p_capacity(familiarize=False)


def test_monotonic_constraints_cover_every_column() -> None:
    assert len(model.monotonic()) == len(model.feature_names())
    names = model.feature_names()
    direction = dict(zip(names, model.monotonic(), strict=True))
    assert direction["depth_margin"] == 1 and direction["form_gap"] == -1
    assert direction["probe_decompose"] == 1 and direction["probe_familiarize"] == -1
    assert all(direction[n] == 0 for n in names if n.endswith("_missing"))


def _unit(rows: list[list[float]]) -> np.ndarray:
    a = np.asarray(rows, dtype=float)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_divergence_step_follows_the_teacher_in_order() -> None:
    e = np.eye(4)
    teacher = e[[0, 1, 2, 3]]
    assert divergence_step(teacher, e[[0, 1, 2, 3]]) == 4  # follows every step
    assert divergence_step(teacher, e[[0, 1, 3]]) == 2  # skips step 3: leaves after 2
    assert divergence_step(teacher, e[[1, 0]]) == 1  # order matters: 0 then nothing after
    assert divergence_step(teacher, e[[3]]) == 0
    assert divergence_step(teacher, np.zeros((0, 4))) == 0
    near = _unit([[1.0, 0.3, 0, 0]])  # cosine ~0.96 with step 0: a match
    assert divergence_step(teacher[:1], near) == 1


def test_divergence_in_plain_words() -> None:
    f = Features("chains", "p", 0, divergence=0.25, divergence_step=2, teacher_steps=8)
    assert "leaves the teacher's chain after 2 of its 8 steps" in describe(f)
    whole = Features("chains", "p", 0, divergence=1.0, divergence_step=8, teacher_steps=8)
    assert "follows all 8 of the teacher's steps" in describe(whole)


def test_evidence_words_for_ranks_and_a_frontier_below_depth_one() -> None:
    lines = describe(Features("gsm8k", "p", 0, ood_percentile=43.0))
    assert "OOD distance at the 43rd percentile" in lines
    assert "OOD distance at the 11th percentile" in describe(
        Features("g", "p", 0, ood_percentile=11)
    )
    assert "OOD distance at the 2nd percentile" in describe(Features("g", "p", 0, ood_percentile=2))
    weak = Features("g", "p", 0, depth=3.0, frontier=-3.0, frontier_sd=0.4, depth_margin=12.0)
    text = " ".join(describe(weak))
    assert "under 50% even at depth 1" in text and "frontier -3" not in text


def test_training_split_questions(tmp_path: Path) -> None:
    task = get_task("gsm8k")
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text(
        json.dumps({"question": "Test?", "answer": "x\n#### 1"}) + "\n"
    )
    assert task.train_questions(DataSource.resolve(tmp_path)) is None  # local data: no hub
    (tmp_path / "gsm8k" / "train.jsonl").write_text(
        "".join(
            json.dumps({"question": f"Train {i}?", "answer": "#### 1"}) + "\n" for i in range(3)
        )
    )
    got = task.train_questions(DataSource.resolve(tmp_path), limit=2)
    assert got is not None and got[0] == ["Train 0?", "Train 1?"]
    assert "train.jsonl" in got[1]
    assert get_task("chains").train_questions(DataSource.resolve(tmp_path)) is None


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python not installed: pip install '.[llamacpp]'",
)
def test_harness_run_labels_its_failures_with_probes(tmp_path: Path) -> None:
    """A real run of SmolLM2 (llama.cpp) on chains and held-out retellings: `harness run
    --classify probe` writes a labelled row with evidence for every failed student item."""
    p = cli(
        "run",
        "--student",
        "llamacpp:smollm2-135m",
        "--teacher",
        "reference",
        "--tasks",
        "chains:depth=1-4,n=1",
        "--perturb",
        "surface",
        "--max-new-tokens",
        "96",
        "--classify",
        "probe",
        "--out",
        str(tmp_path),
        "--run-id",
        "r",
        "--quiet",
        env={"HARNESS_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert p.returncode == 0, p.stdout + p.stderr
    run = tmp_path / "r"
    records = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines() if x]
    failed = {
        (r["task"], r["problem_id"], r["sample"])
        for r in records
        if r["role"] == "student" and r["correct"] is False
    }
    assert failed, "SmolLM2 fails some chains at depth 4"
    rows = [json.loads(x) for x in (run / FAILURES_FILE).read_text().splitlines()]
    assert {(r["task"], r["problem_id"], r["sample"]) for r in rows} == failed
    assert all(r["label"] in LABELS and r["evidence"] for r in rows)
    metrics = json.loads((run / "metrics.json").read_text())
    section = metrics["failures"]
    assert section["n"] == len(failed) and section["probes"] in ("run", "nothing to probe")
    assert section["ood_reference"] == {"chains:depth=1-4,n=1": "the run's unperturbed problems"}
    assert "why the student failed" in p.stdout
    decided = [r for r in rows if r["label"] in ("capacity", "mismatch", UNDETERMINED)]
    if decided:
        assert (run / "probes.jsonl").is_file()
        assert any(r["features"]["divergence_step"] is not None for r in decided)
