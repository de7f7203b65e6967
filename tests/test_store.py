from __future__ import annotations

import sqlite3

from harness.store import GenerationCache, RunDir, cache_key, prompt_digest
from harness.types import Generation, Message, Record, Sampling


def test_cache_key_changes_with_every_component():
    s = Sampling(temperature=0.6, top_p=0.95, max_new_tokens=100)
    base = dict(model_id="m@r1", prompt="p", sampling=s, sample=0, seed=0, fingerprint="")
    k = cache_key(**base)
    assert k == cache_key(**base)
    variants = [
        {"model_id": "m@r2"},
        {"prompt": "q"},
        {"sample": 1},
        {"seed": 1},
        {"fingerprint": "f"},
        {"sampling": Sampling(temperature=0.7, top_p=0.95, max_new_tokens=100)},
        {"sampling": Sampling(temperature=0.6, top_p=0.95, max_new_tokens=101)},
        {"sampling": Sampling(temperature=0.6, top_p=0.95, max_new_tokens=100, stop=("x",))},
    ]
    for v in variants:
        assert cache_key(**{**base, **v}) != k, v


def test_prompt_digest_covers_messages_and_prefill():
    m = [Message("user", "2+2?")]
    assert prompt_digest(m) != prompt_digest([Message("user", "2+3?")])
    assert prompt_digest(m) != prompt_digest(m, "<think>\n")
    assert prompt_digest(m) != prompt_digest([Message("system", "s"), *m])


def test_cache_roundtrip_wal_and_errors_not_cached(tmp_path):
    path = tmp_path / "c" / "generations.sqlite"
    cache = GenerationCache(path)
    g = Generation(
        text="5",
        reasoning="2+3",
        finish_reason="stop",
        reasoning_closed=True,
        prompt_tokens=3,
        completion_tokens=4,
        seconds=0.5,
        logprobs=(-0.1, -0.2),
    )
    cache.put("k1", "m", g)
    cache.put("k2", "m", Generation(text="", finish_reason="missing", error="none recorded"))
    assert cache.get_many(["k1", "k2", "k3"]) == {"k1": g}
    assert cache.count("m") == 1
    cache.close()
    # Committed on put: another connection sees it at once; the journal is WAL.
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT COUNT(*) FROM generations").fetchone()[0] == 1
    assert GenerationCache(path).get_many(["k1"])["k1"].logprobs == (-0.1, -0.2)


def test_many_keys_lookup(tmp_path):
    cache = GenerationCache(tmp_path / "g.sqlite")
    for i in range(1200):
        cache.put(f"k{i}", "m", Generation(text=str(i)))
    got = cache.get_many(f"k{i}" for i in range(0, 2400, 2))
    assert len(got) == 600 and got["k1198"].text == "1198"


def test_run_dir_roundtrip(tmp_path):
    rd = RunDir(tmp_path / "r")
    rd.create()
    rec = Record(
        run_id="r",
        task="t",
        problem_id="p",
        role="student",
        sample=0,
        model="m",
        backend="b",
        question="q",
        gold="1",
        text="1",
        reasoning=None,
        answer="1",
        extractor="boxed",
        lenient=False,
        correct=True,
        truncated=False,
        finish_reason="stop",
        prompt_hash="h",
        cache_key="k",
        prompt_tokens=1,
        completion_tokens=1,
        seconds=0.1,
        cached=False,
        logprobs=(-1.0,),
    )
    rd.write_records([rec, rec])
    assert list(rd.read_records()) == [rec, rec]
    rd.write_metrics({"a": 1})
    assert rd.read_metrics() == {"a": 1}
    assert not list(tmp_path.glob("r/*.tmp"))
