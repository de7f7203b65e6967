"""The llamacpp backend for real: llama-cpp-python in-process on the packaged SmolLM2 GGUF."""

from __future__ import annotations

import importlib.util
import json

import pytest

from harness.models import parse_spec
from harness.types import Message, Problem, Request, Sampling
from tests.conftest import cli
from tests.llama_server import smollm2_gguf

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python not installed: pip install '.[llamacpp]'",
)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    from harness.backends.llamacpp import LlamaCppBackend

    b = LlamaCppBackend(parse_spec("llamacpp:smollm2-135m"), cache_dir=tmp_path_factory.mktemp("c"))
    yield b
    b.close()


def req(text: str, sample=0, role="user", seed=0, **sampling) -> Request:
    problem = Problem(id="p", task="t", question=text, answer="")
    s = Sampling(**{"max_new_tokens": 24, **sampling})
    return Request(f"k{sample}", problem, (Message(role, text),), sample, s, seed)


def test_greedy_seeds_logprobs_and_raw_prompts(backend):
    q = "What is 2+3? Answer with one number."
    reqs = [
        req(q),
        req(q, logprobs=True),
        req(q, sample=1, temperature=1.0),
        req(q, sample=1, temperature=1.0),
        req(q, sample=1, temperature=1.0, seed=7),
        req("Question: What is 2+3?\nAnswer:", role="raw", max_new_tokens=6),
    ]
    out = dict(backend.stream(reqs))
    assert sorted(out) == list(range(len(reqs)))
    assert out[0].text and out[0].text == out[1].text  # greedy, and logprobs change nothing
    assert out[0].finish_reason in ("stop", "length") and out[0].prompt_tokens > 10
    lp = out[1].logprobs
    assert lp is not None and len(lp) == out[1].completion_tokens and all(x <= 0 for x in lp)
    assert out[2].text == out[3].text  # same (seed, sample): same draw
    assert out[5].completion_tokens <= 6
    # The raw prompt went in without the chat template: far fewer prompt tokens.
    assert out[5].prompt_tokens < out[0].prompt_tokens


def test_render_uses_the_gguf_chat_template_and_the_prefill(tmp_path):
    from harness.backends.llamacpp import LlamaCppBackend

    b = LlamaCppBackend(
        parse_spec(f"llamacpp:{smollm2_gguf()}#think=1,prefill=<think>\\n"), cache_dir=tmp_path
    )
    try:
        text, templated = b.render(req("hi"))
        assert templated and "<|im_start|>user\nhi<|im_end|>" in text
        assert text.endswith("<|im_start|>assistant\n<think>\n")
        ((_, gen),) = b.stream([req("What is 2+3?", max_new_tokens=12)])
        # SmolLM2 never closes a <think> it was handed: the answer was never given.
        assert gen.reasoning_closed is False and gen.text == "" and gen.reasoning
    finally:
        b.close()


@pytest.mark.slow
def test_harness_run_with_llamacpp_on_gsm8k(tmp_path, data_dir):
    """The issue's command, `harness run --student llamacpp:<gguf> --teacher reference
    --tasks gsm8k --limit 20` (shorter outputs here), then again from the cache."""
    args = ["run", "--student", f"llamacpp:{smollm2_gguf()}", "--teacher", "reference"]
    args += ["--tasks", "gsm8k", "--limit", "20", "--max-new-tokens", "48"]
    args += ["--data-dir", str(data_dir), "--out", str(tmp_path / "runs")]
    args += ["--cache-dir", str(tmp_path / "cache"), "--run-id", "l"]
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "l"
    recs = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]
    student = [r for r in recs if r["role"] == "student"]
    assert len(student) == 20 and {r["backend"] for r in student} == {"llamacpp"}
    assert all(r["error"] is None and 0 < r["completion_tokens"] <= 48 for r in student)
    assert all(r["finish_reason"] in ("stop", "length") for r in student)
    assert any(r["answer"] is not None for r in student)
    again = cli(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    cost = json.loads((run / "metrics.json").read_text())["cost"]["student"]
    assert cost["generated"] == 0 and cost["cached"] == 20


def test_missing_gguf_is_one_line(tmp_path):
    proc = cli(
        "run",
        *("--student", f"llamacpp:{tmp_path / 'none.gguf'}", "--tasks", "chains", "--limit", "1"),
        *("--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "c")),
    )
    assert proc.returncode == 2
    assert "no GGUF file" in proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr
