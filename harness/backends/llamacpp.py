"""llama.cpp in-process (llama-cpp-python): the fastest way to run a GGUF on a CPU.

The prompt is rendered here with the GGUF's own chat template (so the model's prefill can be
appended, which llama.cpp's chat endpoint cannot do) and generated token by token with plain
sampling: temperature and top-p only, with llama.cpp's extra samplers (top-k, min-p,
repetition penalty) switched off so a sampling setting means the same on every backend.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.backends.base import Backend, raw_prompt, sample_seed, weights_fingerprint
from harness.console import info, warn
from harness.errors import BackendUnavailable, HarnessError
from harness.models import ModelSpec, weights_location
from harness.tasks.grading.extract import split_reasoning
from harness.types import Generation, Problem, Request

DEFAULT_N_CTX = 4096
"""The context first loaded when `#n_ctx=` is not given (less if the model was trained on less);
grown to fit the longest prompt plus `max_new_tokens` when a batch needs more."""
CTX_STEP = 1024
"""A grown context is rounded up to this, so prompts a little longer do not reload again."""


def context_size(needed: int, current: int, train: int | None, fixed: int | None) -> int:
    """n_ctx for requests that need `needed` tokens (the longest prompt + max_new_tokens):
    a fixed `#n_ctx=` stays; otherwise the current context, grown in CTX_STEP steps to fit,
    never past the model's training context."""
    if fixed is not None:
        return fixed
    size = current if needed <= current else -(-needed // CTX_STEP) * CTX_STEP
    return min(size, train) if train else size


def gguf_path(spec: ModelSpec) -> Path:
    """The GGUF file of a spec: a path, or an alias's packaged file (`llamacpp:smollm2-135m`)."""
    source, gguf = weights_location(spec)
    path = Path(source) / gguf if gguf else Path(source)
    if not path.is_file():
        raise HarnessError(
            f"model spec '{spec.name}': no GGUF file at {path}; pass llamacpp:<path/to/model.gguf>"
        )
    return path


def _positive(spec: ModelSpec, key: str, default: int | None) -> int | None:
    raw = spec.option(key)
    if raw is None:
        return default
    if not raw.lstrip("-").isdigit():
        raise HarnessError(f"model spec '{spec.name}': #{key}= takes a whole number")
    return int(raw)


class LlamaCppBackend(Backend):
    name = "llamacpp"
    default_batch_size = 8
    """llama.cpp decodes one sequence at a time here; the batch only sets how often the
    runner's progress bar moves."""

    @classmethod
    def fingerprint(cls, spec: ModelSpec, problem: Problem) -> str:
        """Local weights by content (size, mtime, config, chat template): replaced weights in
        the same place never reuse the old generations."""
        return weights_fingerprint(spec)

    def __init__(self, spec: ModelSpec, **kw: Any) -> None:
        super().__init__(spec, **kw)
        try:
            import llama_cpp
        except ImportError as e:
            raise BackendUnavailable(
                f"the llamacpp backend needs llama-cpp-python, which is not installed: "
                f"pip install 'harness[llamacpp]' ({e})"
            ) from e
        self.llama_cpp = llama_cpp
        self.path = gguf_path(spec)
        self.fixed_ctx = _positive(spec, "n_ctx", None)
        if self.fixed_ctx is not None and self.fixed_ctx < 1:
            raise HarnessError(f"model spec '{spec.name}': #n_ctx= takes a whole number >= 1")
        # Half the cores, as llama.cpp's own server does: its threads spin while they wait for
        # each other, so one more thread than there are free cores costs far more than it gives.
        # Prompts are read with as many: on a busy 2-core machine, 8 GSM8K prompts took 14 s
        # with one thread and 39-70 s when the prompts were read with two.
        self.n_threads = _positive(spec, "n_threads", None) or max(1, (os.cpu_count() or 2) // 2)
        self.n_gpu_layers = _positive(spec, "n_gpu_layers", 0) or 0
        self.n_ctx = self.fixed_ctx or DEFAULT_N_CTX
        self.llm = self._load(logits_all=False)
        self.n_ctx_train = self._train_context()
        if self.fixed_ctx is None and self.n_ctx_train and self.n_ctx > self.n_ctx_train:
            self._reload(self.n_ctx_train, logits_all=False)
        self._formatter = self._chat_formatter()
        self._capped_said = False

    def _train_context(self) -> int | None:
        """The context the model was trained on (GGUF `<arch>.context_length`), if it says."""
        try:
            n = int(self.llm._model.n_ctx_train())
        except (AttributeError, TypeError, ValueError):
            arch = self.llm.metadata.get("general.architecture", "")
            raw = self.llm.metadata.get(f"{arch}.context_length", "")
            n = int(raw) if str(raw).isdigit() else 0
        return n if n > 0 else None

    def _reload(self, n_ctx: int, *, logits_all: bool) -> None:
        self.llm.close()
        self.n_ctx = n_ctx
        self.llm = self._load(logits_all=logits_all)
        self._formatter = self._chat_formatter()

    def _load(self, *, logits_all: bool) -> Any:
        t0 = time.perf_counter()
        try:
            llm = self.llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_gpu_layers=self.n_gpu_layers,
                logits_all=logits_all,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as e:
            raise HarnessError(
                f"llama.cpp cannot load {self.path}: {str(e).splitlines()[0][:200]}; "
                "is it a GGUF file this llama-cpp-python version supports?"
            ) from e
        info(
            f"loaded {self.path.name} with llama.cpp (n_ctx={self.n_ctx}) in "
            f"{time.perf_counter() - t0:.1f}s"
        )
        return llm

    def _chat_formatter(self) -> Any:
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        model = self.llm._model
        eos, bos = self.llm.token_eos(), self.llm.token_bos()
        return Jinja2ChatFormatter(
            template=template,
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(bos) if bos != -1 else "",
        )

    def render(self, req: Request) -> tuple[str, bool]:
        """(prompt text, whether the text already carries the model's special tokens)."""
        raw = raw_prompt(req.messages)
        if raw is not None:
            return raw, False
        messages = [m.to_dict() for m in req.messages]
        if self._formatter is not None:
            text = self._formatter(messages=messages).prompt
            templated = True
        else:
            text = "\n\n".join(m["content"] for m in messages) + "\n"
            templated = False
        prefill = self.spec.prompt.prefill
        if prefill and not text.endswith(prefill) and not text.rstrip().endswith(prefill.strip()):
            text += prefill
        return text, templated

    def tokens(self, req: Request) -> list[int]:
        """The prompt's tokens as llama.cpp will see them."""
        text, templated = self.render(req)
        # A template that writes the BOS itself must not get a second one.
        bos = self.llm.token_bos()
        bos_text = self.llm._model.token_get_text(bos) if bos != -1 else ""
        add_bos = not (templated and bos_text and text.startswith(bos_text))
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def stream(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        prompts = [self.tokens(r) for r in requests]
        pairs = zip(prompts, requests, strict=True)
        needed = max((len(t) + r.sampling.max_new_tokens for t, r in pairs), default=0)
        size = context_size(needed, self.n_ctx, self.n_ctx_train, self.fixed_ctx)
        # llama.cpp keeps per-token logits only when loaded for it (n_ctx x vocab floats).
        logits = any(r.sampling.logprobs for r in requests) or self.llm._logits_all
        if size != self.n_ctx or logits != self.llm._logits_all:
            self._reload(size, logits_all=logits)
        for i, (req, tokens) in enumerate(zip(requests, prompts, strict=True)):
            yield i, self._generate(req, tokens)

    def _why_small(self) -> str:
        if self.fixed_ctx is not None:
            return f"n_ctx={self.n_ctx} is fixed by #n_ctx= (pass a larger one)"
        return f"n_ctx={self.n_ctx} is the model's training context"

    def _generate(self, req: Request, tokens: list[int]) -> Generation:
        s = req.sampling
        room = self.n_ctx - len(tokens)
        if room <= 0:
            return Generation(
                text="",
                finish_reason="error",
                prompt_tokens=len(tokens),
                error=f"llamacpp: the prompt has {len(tokens)} tokens, more than fit: "
                f"{self._why_small()}",
            )
        limit = min(s.max_new_tokens, room)
        if limit < s.max_new_tokens and not self._capped_said:
            self._capped_said = True
            warn(
                f"{self.spec.name}: max_new_tokens {s.max_new_tokens} capped to {limit} for a "
                f"prompt of {len(tokens)} tokens: {self._why_small()}; each capped generation "
                "records its token_limit"
            )
        t0 = time.perf_counter()
        out = self.llm.create_completion(
            prompt=tokens,
            max_tokens=limit,
            temperature=s.temperature,
            top_p=s.top_p,
            top_k=0,
            min_p=0.0,
            typical_p=1.0,
            repeat_penalty=1.0,
            stop=list(s.stop),
            seed=sample_seed(req.seed, req.sample),
            logprobs=1 if s.logprobs else None,
        )
        seconds = time.perf_counter() - t0
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        logprobs = None
        if s.logprobs and choice.get("logprobs"):
            logprobs = tuple(float(x) for x in choice["logprobs"]["token_logprobs"])
        prefill = "" if raw_prompt(req.messages) is not None else self.spec.prompt.prefill
        reasoning, answer, closed = split_reasoning(
            prefill + (choice.get("text") or ""), self.spec.prompt.think
        )
        return Generation(
            text=answer,
            reasoning=reasoning,
            finish_reason=finish,
            reasoning_closed=closed,
            prompt_tokens=usage.get("prompt_tokens", len(tokens)),
            completion_tokens=usage.get("completion_tokens"),
            seconds=seconds,
            logprobs=logprobs,
            token_limit=limit if limit < s.max_new_tokens else None,
        )

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.close()
            self.llm = None
