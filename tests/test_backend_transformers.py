"""The transformers backend: prompts, threads, and decoding in segments."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.backends.base import RAW_ROLE
from harness.backends.transformers import TransformersBackend
from harness.models import parse_spec
from harness.types import Message, Problem, Request, Sampling


class StubTokenizer:
    """Records how it was called: a chat template that marks turns, a BOS that it adds."""

    bos_token = "<s>"
    chat_template = "marks turns"

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert not tokenize and add_generation_prompt
        return "<s>" + "".join(f"[{m['role']}]{m['content']}" for m in messages) + "[assistant]"

    def __call__(self, text, add_special_tokens):
        self.calls.append((text, add_special_tokens))
        ids = [ord(c) for c in text]
        return {"input_ids": ([1] if add_special_tokens else []) + ids}


def backend(spec_text: str) -> TransformersBackend:
    b = TransformersBackend.__new__(TransformersBackend)  # no model: render and encode only
    b.spec = parse_spec(spec_text)
    b.tokenizer = StubTokenizer()
    return b


def request(*messages: Message) -> Request:
    problem = Problem(id="p", task="t", question="q", answer="a")
    return Request("k", problem, tuple(messages), 0, Sampling(), 0)


def test_raw_prompt_goes_as_is_with_the_tokenizers_special_tokens():
    """An lm-eval context: no chat template, no prefill, the tokenizer's BOS (as lm-eval's hf
    model encodes it), and no second BOS when the context starts with one."""
    b = backend("hf:some/DeepSeek-R1-Distill-Qwen-1.5B")  # an R1 id: prefill "<think>\n"
    assert b.spec.prompt.prefill
    raw = request(Message(RAW_ROLE, "Question: 2+3?\nAnswer:"))
    assert b.render(raw) == "Question: 2+3?\nAnswer:"
    ids = b.prompt_ids(raw)
    assert ids[0] == 1 and len(ids) == 1 + len("Question: 2+3?\nAnswer:")
    assert b.tokenizer.calls[-1] == ("Question: 2+3?\nAnswer:", True)
    b.prompt_ids(request(Message(RAW_ROLE, "<s>Question: 1+1?")))
    assert b.tokenizer.calls[-1][1] is False


def test_chat_prompt_gets_the_template_and_the_prefill_once():
    b = backend("hf:some/DeepSeek-R1-Distill-Qwen-1.5B")
    chat = request(Message("user", "2+3?"))
    text = b.render(chat)
    assert text == "<s>[user]2+3?[assistant]" + b.spec.prompt.prefill
    b.prompt_ids(chat)
    assert b.tokenizer.calls[-1] == (text, False)  # the template wrote the BOS itself


def _policy(env: dict[str, str], code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return proc.stdout.strip()


def test_openmp_threads_sleep_unless_told_otherwise():
    """Set before torch loads OpenMP; a user's own setting wins; too late once torch is in."""
    code = (
        "import os; from harness.backends.transformers import passive_openmp_waits; "
        "passive_openmp_waits(); print(os.environ.get('OMP_WAIT_POLICY'))"
    )
    assert _policy({}, code) == "PASSIVE"
    assert _policy({"OMP_WAIT_POLICY": "ACTIVE"}, code) == "ACTIVE"
    assert _policy({}, "import torch; " + code) == "None"


@pytest.mark.slow
def test_segments_drop_finished_rows_without_changing_a_token(cache_dir, monkeypatch):
    """SmolLM2 on a batch whose answers end at very different lengths: decoding in short
    segments (finished rows leave the batch between them) gives the same tokens, stop-string
    cuts, finish reasons and log-probs as one `generate` call for the whole batch."""
    from harness.backends import load_backend
    from harness.backends import transformers as module

    questions = ["Say yes.", "Count from 1 to 30.", "What is 2+2?", "Write a long story."]
    greedy = Sampling(temperature=0.0, max_new_tokens=40, logprobs=True)
    stopped = Sampling(temperature=0.0, max_new_tokens=40, stop=("5",))
    b = load_backend(parse_spec("smollm2-135m"), cache_dir=cache_dir, batch_size=4)
    try:
        runs = {}
        for segment in (10**6, 8):
            monkeypatch.setattr(module, "SEGMENT", segment)
            runs[segment] = {
                name: b.generate([request_for(q, s) for q in questions])
                for name, s in (("greedy", greedy), ("stopped", stopped))
            }
    finally:
        b.close()
    whole, parts = runs[10**6], runs[8]
    lengths = {g.completion_tokens for g in whole["greedy"]}
    assert len(lengths) > 1 and max(lengths) == 40  # rows did end at different steps
    for name in whole:
        for a, c in zip(whole[name], parts[name], strict=True):
            assert (a.text, a.finish_reason, a.completion_tokens) == (
                c.text,
                c.finish_reason,
                c.completion_tokens,
            )
            if a.logprobs is not None:
                assert len(a.logprobs) == len(c.logprobs) == a.completion_tokens
                assert max(abs(x - y) for x, y in zip(a.logprobs, c.logprobs, strict=True)) < 1e-4
    assert any(g.finish_reason == "stop" and "5" not in g.text for g in whole["stopped"])


def request_for(question: str, sampling: Sampling) -> Request:
    problem = Problem(id=question, task="t", question=question, answer="")
    return Request(question, problem, (Message("user", question),), 0, sampling, 0)
