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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.base import (
    Backend,
    FormatOptions,
    raw_prompt,
    sample_seed,
    weights_fingerprint,
)
from harness.console import info, warn
from harness.errors import HarnessError
from harness.options import option
from harness.reasoning import split_reasoning
from harness.spec import ModelSpec, SpecParts, weights_location
from harness.types import FinishReason, Generation, Problem, Request

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


@dataclass(frozen=True)
class LlamaCppOptions(FormatOptions):
    """The context and where the layers run; threads only change the speed."""

    n_ctx: int | None = option(
        None,
        f"fixed context size (default: {DEFAULT_N_CTX}, grown to fit the longest prompt plus "
        "max_new_tokens, never past the training context)",
        low=1,
    )
    n_threads: int | None = option(
        None,
        "threads for generation and prompt reading (default: half the cores)",
        identity=False,
        low=1,
    )
    n_gpu_layers: int = option(0, "layers offloaded to a GPU (-1: all)", low=-1)


class LlamaCppBackend(Backend):
    name = "llamacpp"
    default_batch_size = 8
    """Requests decoded together in one llama.cpp context (`llamacpp_batch`); 1 decodes them
    one at a time through `Llama.create_completion`."""
    options_class = LlamaCppOptions
    options: LlamaCppOptions
    requires = ("llama_cpp", "pip install 'harness[llamacpp]'")
    target = "<file.gguf>"

    @classmethod
    def spec_from(cls, parts: SpecParts) -> ModelSpec:
        """A path to a .gguf file, or an alias whose packaged GGUF it runs."""
        spec = super().spec_from(parts)
        if parts.alias is None and not parts.target.endswith(".gguf"):
            raise HarnessError(f"{parts.where}: llamacpp: takes a path to a .gguf file")
        return spec

    @classmethod
    def fingerprint(cls, spec: ModelSpec, problem: Problem) -> str:
        """Local weights by content (size, mtime, config, chat template): replaced weights in
        the same place never reuse the old generations."""
        return weights_fingerprint(spec)

    @classmethod
    def ray_resources(cls, spec: ModelSpec) -> dict[str, float]:
        """An actor reserves the cores its threads spin on (one by default) and a GPU when
        layers are offloaded."""
        opts: LlamaCppOptions = cls.options_of(spec)
        needs: dict[str, float] = {"num_cpus": opts.n_threads or 1}
        if opts.n_gpu_layers:
            needs["num_gpus"] = 1
        return needs

    def __init__(self, spec: ModelSpec, **kw: Any) -> None:
        super().__init__(spec, **kw)
        try:
            import llama_cpp
        except ImportError as e:
            raise self.unavailable(e) from e
        self.llama_cpp = llama_cpp
        self.path = gguf_path(spec)
        self.fixed_ctx = self.options.n_ctx
        # Half the cores, as llama.cpp's own server does: its threads spin while they wait for
        # each other, so one more thread than there are free cores costs far more than it gives.
        # Prompts are read with as many: on a busy 2-core machine, 8 GSM8K prompts took 14 s
        # with one thread and 39-70 s when the prompts were read with two.
        self.n_threads = self.options.n_threads or max(1, (os.cpu_count() or 2) // 2)
        self.n_gpu_layers = self.options.n_gpu_layers
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
        if self.batch_size > 1:  # decoded together, in a context of their own
            if size != self.n_ctx:
                self._reload(size, logits_all=self.llm._logits_all)
            from harness.backends.llamacpp_batch import generate_batched

            yield from generate_batched(self, requests, prompts)
            return
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
        limit = self._limit(req, tokens)
        if isinstance(limit, Generation):
            return limit
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
        logprobs = None
        if s.logprobs and choice.get("logprobs"):
            logprobs = [float(x) for x in choice["logprobs"]["token_logprobs"]]
        return self._generation(
            req,
            choice.get("text") or "",
            "length" if choice.get("finish_reason") == "length" else "stop",
            prompt_tokens=usage.get("prompt_tokens", len(tokens)),
            completion_tokens=usage.get("completion_tokens"),
            seconds=seconds,
            logprobs=logprobs,
            limit=limit,
        )

    def _limit(self, req: Request, tokens: list[int]) -> int | Generation:
        """The request's token limit (max_new_tokens, capped to the context's room; the cap
        said once), or the error generation of a prompt that does not fit."""
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
        return limit

    def _generation(
        self,
        req: Request,
        text: str,
        finish: FinishReason,
        *,
        prompt_tokens: int,
        completion_tokens: int | None,
        seconds: float,
        logprobs: list[float] | None,
        limit: int,
    ) -> Generation:
        """The Generation of a completion's text, split into reasoning and answer."""
        prefill = "" if raw_prompt(req.messages) is not None else self.spec.prompt.prefill
        reasoning, answer, closed = split_reasoning(prefill + text, self.spec.prompt.think)
        return Generation(
            text=answer,
            reasoning=reasoning,
            finish_reason=finish,
            reasoning_closed=closed,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            seconds=seconds,
            logprobs=tuple(logprobs) if logprobs is not None else None,
            token_limit=limit if limit < req.sampling.max_new_tokens else None,
        )

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.close()
            self.llm = None
