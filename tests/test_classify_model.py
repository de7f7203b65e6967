"""The failure model: held-out planted-cause recovery, determinism, missing evidence, and one
hand-built student per cause."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from harness.classify import features, model, simulate
from harness.classify.base import UNDETERMINED
from harness.tasks.chains import FAMILIES, Chains
from harness.types import Record


@pytest.fixture(scope="module")
def trained() -> model.Model:
    return model.default_model()


def _record(
    pid: str,
    correct: bool,
    *,
    task: str = "chains",
    steps: int | None = None,
    subset: str | None = None,
    sample: int = 0,
) -> Record:
    return Record(
        run_id="t",
        task=task,
        problem_id=pid,
        role="student",
        sample=sample,
        model="m",
        backend="b",
        question=f"q {pid}",
        gold="1",
        text="\\boxed{1}" if correct else "\\boxed{2}",
        reasoning=None,
        answer="1" if correct else "2",
        extractor="boxed",
        lenient=False,
        correct=correct,
        truncated=False,
        finish_reason="stop",
        prompt_hash="",
        cache_key="",
        prompt_tokens=None,
        completion_tokens=None,
        seconds=0.0,
        cached=False,
        subset=subset,
        steps=steps,
    )


def _chains_student(right: object) -> list[Record]:
    """Every default family at depths 1-12, 3 chains each; `right(family, depth)` decides."""
    task = Chains({"n": "3"})
    out = []
    for p in task.load(None).problems:  # type: ignore[arg-type]
        d, fam = int(p.meta["depth"]), str(p.meta["family"])
        out.append(_record(p.id, bool(right(fam, d)), steps=d, subset=fam))  # type: ignore[operator]
    return out


def test_held_out_planted_runs(trained: model.Model) -> None:
    truth, pred = [], []
    for seed in range(90_000, 90_008):
        planted = simulate.simulate(seed, mixture=simulate.HELD_OUT_MIXTURE, noisy=False)
        feats, causes = simulate.planted_features(planted), planted.truth
        keys = [k for k, c in causes.items() if c != UNDETERMINED]
        truth += [causes[k] for k in keys]
        pred += [p[0] for p in trained.predict([feats[k] for k in keys])]
    t, p = np.array(truth), np.array(pred)
    decided = p != UNDETERMINED
    assert set(t) == {"capacity", "mismatch"}
    assert 1 - decided.mean() < 0.15
    assert f1_score(t[decided], p[decided], average="macro") >= 0.90


def test_deterministic() -> None:
    a, b = simulate.simulate(3), simulate.simulate(3)
    assert a == b
    assert simulate.planted_features(a) == simulate.planted_features(b)
    m1, m2 = model.train(range(0, 3), range(100, 102)), model.train(range(0, 3), range(100, 102))
    fs = list(simulate.planted_features(a).values())
    assert m1.predict(fs) == m2.predict(fs)
    assert m1.threshold == m2.threshold


def test_missing_evidence_is_undetermined(trained: model.Model) -> None:
    records = [_record(f"x-{i}", i % 3 == 0, task="plain") for i in range(30)]
    feats = features.compute(records)
    assert feats and all(f.depth is None and f.form_gap is None for f in feats.values())
    assert {p[0] for p in trained.predict(list(feats.values()))} == {UNDETERMINED}


def test_capacity_student(trained: model.Model) -> None:
    feats = features.compute(_chains_student(lambda fam, d: d <= 5))
    f = next(iter(feats.values()))
    assert f.frontier is not None and 4.5 < f.frontier < 6.5
    deep = [v for k, v in feats.items() if v.depth is not None and v.depth >= 8]
    labels = [p[0] for p in trained.predict(deep)]
    assert labels.count("capacity") >= 0.9 * len(labels)


def test_mismatch_student(trained: model.Model) -> None:
    feats = features.compute(_chains_student(lambda fam, d: fam != "bus"))
    bus = [v for v in feats.values() if v.form == "bus"]
    assert len(bus) == 36 and all(v.familiar is False for v in bus)
    labels = [p[0] for p in trained.predict(bus)]
    assert labels.count("mismatch") >= 0.9 * len(labels)
    assert "bus" in FAMILIES


def test_feature_names_and_weights(trained: model.Model) -> None:
    names = model.feature_names()
    assert len(names) == model.encode([]).shape[1] or model.encode([]).shape == (0, len(names))
    assert set(trained.weights()) == set(names)
