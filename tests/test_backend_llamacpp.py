"""The llamacpp backend for real: llama-cpp-python in-process on the packaged SmolLM2 GGUF."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from harness.backends.llamacpp import LlamaCppBackend

    b = LlamaCppBackend(parse_spec("llamacpp:smollm2-135m"), cache_dir=tmp_path_factory.mktemp("c"))
    yield b
    b.close()


def req(text: str, sample: int = 0, role: str = "user", seed: int = 0, **sampling: Any) -> Request:
    problem = Problem(id="p", task="t", question=text, answer="")
    s = Sampling(**{"max_new_tokens": 24, **sampling})
    return Request(f"k{sample}", problem, (Message(role, text),), sample, s, seed)


def test_greedy_seeds_logprobs_and_raw_prompts(backend: Any) -> None:
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


def test_render_uses_the_gguf_chat_template_and_the_prefill(tmp_path: Path) -> None:
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
def test_harness_run_with_llamacpp_on_gsm8k(tmp_path: Path, data_dir: Path) -> None:
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


def test_missing_gguf_is_one_line(tmp_path: Path) -> None:
    proc = cli(
        "run",
        *("--student", f"llamacpp:{tmp_path / 'none.gguf'}", "--tasks", "chains", "--limit", "1"),
        *("--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "c")),
    )
    assert proc.returncode == 2
    assert "no GGUF file" in proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr


# -- the context: sized to fit, or the cap said and recorded -----------------------------------


def test_context_size_fits_the_prompt_and_new_tokens() -> None:
    from harness.backends.llamacpp import context_size

    assert context_size(300, 4096, 8192, None) == 4096  # fits: no reload
    assert context_size(5000, 4096, 8192, None) == 5120  # grown in 1024 steps
    assert context_size(9000, 4096, 8192, None) == 8192  # never past the training context
    assert context_size(9000, 4096, None, None) == 9216  # a model that does not say
    assert context_size(9000, 4096, 8192, 256) == 256  # #n_ctx= is the user's
    assert context_size(9000, 4096, 8192, 20000) == 20000


def _capped_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if "capped" in ln and "max_new_tokens" in ln]


def test_context_grows_to_fit_then_stops_at_the_training_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.backends.llamacpp import LlamaCppBackend

    b = LlamaCppBackend(parse_spec("llamacpp:smollm2-135m"), cache_dir=tmp_path)
    try:
        assert (b.n_ctx_train, b.n_ctx) == (8192, 4096)
        q = "What is 2+3? Answer with one number."
        stop = ("\n", ".")  # the limit is what is tested, not a long generation
        ((_, g),) = b.stream([req(q, max_new_tokens=6000, stop=stop)])
        assert g.ok and g.token_limit is None and g.prompt_tokens is not None
        need = g.prompt_tokens + 6000
        assert b.n_ctx == -(-need // 1024) * 1024 >= need  # grown to fit, in 1024 steps
        assert not _capped_lines(capsys.readouterr().err)
        out = dict(
            b.stream(
                [
                    req(q, max_new_tokens=9000, stop=stop),
                    req(q + " ", max_new_tokens=9000, stop=stop),
                ]
            )
        )
        assert b.n_ctx == 8192  # the training context, no more
        for g in out.values():
            assert g.ok and g.prompt_tokens is not None
            assert g.token_limit == 8192 - g.prompt_tokens
        (line,) = _capped_lines(capsys.readouterr().err)  # said once, not per generation
        assert "9000" in line and "training context" in line and "token_limit" in line
    finally:
        b.close()


def test_a_fixed_n_ctx_too_small_caps_max_new_tokens_in_one_line(tmp_path: Path) -> None:
    args = ["run", "--student", f"llamacpp:{smollm2_gguf()}#n_ctx=256", "--teacher", "reference"]
    args += ["--tasks", "chains:depth=1-2", "--limit", "2", "--max-new-tokens", "400", "--quiet"]
    args += ["--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")]
    proc = cli(*args, "--run-id", "n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = _capped_lines(proc.stderr)
    assert "400" in line and "#n_ctx=" in line
    recs = [json.loads(x) for x in (tmp_path / "runs/n/records.jsonl").read_text().splitlines()]
    student = [r for r in recs if r["role"] == "student"]
    assert len(student) == 2
    for r in student:
        assert r["token_limit"] == 256 - r["prompt_tokens"]
        assert 0 < r["completion_tokens"] <= r["token_limit"]
    # A prompt longer than a fixed context is a recorded error that says what to do.
    from harness.backends.llamacpp import LlamaCppBackend

    b = LlamaCppBackend(parse_spec(f"llamacpp:{smollm2_gguf()}#n_ctx=16"), cache_dir=tmp_path)
    try:
        ((_, g),) = b.stream([req("Tell me a long story about a cat and a dog " * 3)])
    finally:
        b.close()
    assert not g.ok and "#n_ctx=" in (g.error or "") and g.finish_reason == "error"


# -- batched decoding: the same generations as one request at a time --------------------------


def _mixed_requests() -> list[Request]:
    """Prompts of different lengths whose answers end at different steps: at an end-of-turn
    token, at a stop string, at their token limit; a raw prompt; UTF-8 split over tokens."""
    return [
        req("What is 2+3? Answer with one number.", max_new_tokens=40),
        req("Name three colors.", max_new_tokens=48),
        req("Write one long paragraph about the history of Rome.", max_new_tokens=56),
        req("Hi", max_new_tokens=8),
        # Emoji of several tokens each: the limit falls inside one, which is finished first.
        req("Write a sentence using the emoji \U0001f600.", max_new_tokens=20, logprobs=True),
        req(
            "Question: What is 7 times 6?\nAnswer:",
            role="raw",
            max_new_tokens=30,
            stop=("Question:",),
        ),
        req("Count from 1 to 20.", max_new_tokens=60, stop=("5.",)),
        req("Say the word cat.", max_new_tokens=32, logprobs=True),
        req("Translate 'good morning' into French, German and Spanish.", max_new_tokens=36),
        req("Write 'cat' in Japanese characters.", max_new_tokens=24),
    ]


@pytest.mark.slow
def test_batched_decoding_gives_what_one_request_at_a_time_gives(tmp_path: Path) -> None:
    """Greedy: the same text, finish reason, token counts and log-probs (within 1e-4) as the
    sequential path, with fewer slots than requests (finished sequences replaced) and each
    result yielded as soon as it is finished, not in the requests' order."""
    from harness.backends.llamacpp import LlamaCppBackend

    reqs = _mixed_requests()
    seq = LlamaCppBackend(parse_spec("llamacpp:smollm2-135m#batch_size=1"), cache_dir=tmp_path)
    try:
        assert seq.batch_size == 1
        one = dict(seq.stream(reqs))
    finally:
        seq.close()
    bat = LlamaCppBackend(parse_spec("llamacpp:smollm2-135m#batch_size=4"), cache_dir=tmp_path)
    try:
        order = [i for i, _ in bat.stream(reqs)]
        together = dict(bat.stream(reqs))
    finally:
        bat.close()
    assert sorted(order) == list(range(len(reqs))) and order != sorted(order)
    assert {g.finish_reason for g in one.values()} == {"stop", "length"}
    assert len({g.completion_tokens for g in one.values()}) >= 5
    # The emoji's last character was split over the limit: llama-cpp-python finishes it.
    assert (one[4].completion_tokens or 0) > reqs[4].sampling.max_new_tokens
    for i, r in enumerate(reqs):
        a, b = one[i], together[i]
        assert (b.text, b.reasoning, b.finish_reason) == (a.text, a.reasoning, a.finish_reason), i
        assert (b.completion_tokens, b.prompt_tokens, b.token_limit) == (
            a.completion_tokens,
            a.prompt_tokens,
            a.token_limit,
        ), i
        assert b.seconds > 0
        if r.sampling.logprobs:
            assert a.logprobs is not None and b.logprobs is not None
            assert len(b.logprobs) == len(a.logprobs) == a.completion_tokens
            assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs, strict=True)) < 1e-4
        else:
            assert a.logprobs is None and b.logprobs is None


@pytest.mark.slow
def test_a_shared_few_shot_prefix_is_read_once_with_the_same_results(tmp_path: Path) -> None:
    """Prompts that open with the same few-shot block: the batch reads it once and copies it
    into each sequence (slots reused), and gives what one request at a time gives."""
    from harness.backends import llamacpp_batch
    from harness.backends.llamacpp import LlamaCppBackend

    shots = "\n\n".join(
        f"Q: A box holds {n} pens and {n + 3} pencils. How many items?\nA: {n} + {n + 3} = "
        f"{2 * n + 3}. The answer is {2 * n + 3}."
        for n in range(2, 9)
    )
    tails = ["4 pens and 9 pencils", "10 pens and 1 pencil", "6 pens and 6 pencils", "a pen"]
    reqs = [
        req(f"{shots}\n\nQ: A box holds {t}. How many items?\nA:", role="raw", max_new_tokens=m)
        for t, m in zip(tails + tails[:1], (20, 28, 12, 24, 16), strict=True)
    ]
    reqs[1] = dataclasses.replace(
        reqs[1], sampling=dataclasses.replace(reqs[1].sampling, logprobs=True)
    )
    seq = LlamaCppBackend(parse_spec("llamacpp:smollm2-135m#batch_size=1"), cache_dir=tmp_path)
    try:
        one = dict(seq.stream(reqs))
        prompts = [seq.tokens(r) for r in reqs]
    finally:
        seq.close()
    shared = llamacpp_batch.shared_prefix(prompts)
    assert len(shared) >= llamacpp_batch.SHARED_MIN and len(shared) < min(map(len, prompts))
    bat = LlamaCppBackend(parse_spec("llamacpp:smollm2-135m#batch_size=3"), cache_dir=tmp_path)
    try:
        together = dict(bat.stream(reqs))
    finally:
        bat.close()
    for i in range(len(reqs)):
        a, b = one[i], together[i]
        assert (b.text, b.finish_reason, b.completion_tokens) == (
            a.text,
            a.finish_reason,
            a.completion_tokens,
        ), i
    assert one[1].logprobs and together[1].logprobs
    assert (
        max(abs(x - y) for x, y in zip(one[1].logprobs, together[1].logprobs, strict=True)) < 1e-4
    )


def test_shared_prefix_leaves_each_prompt_a_token_of_its_own() -> None:
    from harness.backends.llamacpp_batch import shared_prefix

    assert shared_prefix([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 3, 4, 6]]) == [1, 2, 3]
    assert shared_prefix([[1, 2, 3], [1, 2, 3, 4]]) == [1, 2]
    assert shared_prefix([[7, 1], [8, 1]]) == []


@pytest.mark.slow
def test_batched_sampling_draws_the_same_whatever_the_batch(backend: Any) -> None:
    """A sampled request draws from its own seeded generator: alone or beside others, first
    or last, it writes the same text; another sample index or seed draws otherwise."""
    q = "Write a short poem about the sea."
    hot: dict[str, Any] = {"temperature": 1.0, "top_p": 0.9, "max_new_tokens": 24}
    alone = dict(backend.stream([req(q, sample=3, **hot)]))[0]
    crowd = [req("Hi", max_new_tokens=5), req(q, sample=1, **hot), req(q, sample=3, **hot)]
    crowd += [req(q, sample=3, seed=9, **hot), req("What is 2+3?", max_new_tokens=12)]
    out = dict(backend.stream(crowd))
    assert out[2].text == alone.text and out[2].completion_tokens == alone.completion_tokens
    assert out[1].text != alone.text and out[3].text != alone.text
    again = dict(backend.stream(list(reversed(crowd))))
    assert again[2].text == alone.text and again[3].text == out[1].text


def test_draw_keeps_the_nucleus_then_applies_the_temperature() -> None:
    """top-p over the untempered probabilities, then the temperature over the tokens kept."""
    import numpy as np

    from harness.backends.llamacpp_batch import draw

    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32))
    rng = np.random.default_rng(0)
    drawn = [draw(logits, 1.0, 0.8, rng) for _ in range(4000)]
    assert set(drawn) == {0, 1}  # 0.5 + 0.3 reaches 0.8: the rest is never drawn
    assert abs(drawn.count(0) / 4000 - 0.5 / 0.8) < 0.03
    hot = [draw(logits, 100.0, 0.8, rng) for _ in range(4000)]
    assert set(hot) == {0, 1} and abs(hot.count(0) / 4000 - 0.5) < 0.03
    every = {draw(logits, 1.0, 1.0, rng) for _ in range(2000)}
    assert every == {0, 1, 2, 3}
    # Many tokens: the nucleus is found among the most likely first, else over all of them.
    flat = np.zeros(50_000, dtype=np.float32)
    assert 0 <= draw(flat, 1.0, 0.9, rng) < 50_000
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    wide = np.random.default_rng(1).normal(size=50_000).astype(np.float32)
    assert [draw(wide, 0.7, 0.95, a) for _ in range(20)] == [
        draw(wide, 0.7, 0.95, b) for _ in range(20)
    ]
