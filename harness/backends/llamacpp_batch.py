"""Batched decoding for the llamacpp backend: several requests in one llama.cpp context.

One decoding step is one `llama_decode` of a batch holding the next token of every live
sequence, each under its own seq_id (its own KV-cache stream); a sequence that finishes is
removed from the KV cache and its slot goes to the next waiting request (continuous batching).
A step of N tokens reads the weights once for all N and pays llama.cpp's per-step and
llama-cpp-python's per-token overheads once; what that saves depends on the machine (on a
small quantized model on two CPU cores, where the dot products themselves take most of the
time, a step of 8 costs about 6.7 steps of one).

Each request is decoded exactly as `Llama.create_completion` decodes it on its own: the same
prompt tokens, greedy as the argmax of the same logits (llama.cpp computes every token's row on
its own, so a row does not depend on what else is in the batch), the same text rules (pieces
joined as llama-cpp-python joins them, its wait for a split UTF-8 character, stop strings found
in the bytes so far, end-of-generation tokens left out of the text and of the count) and the
same log-probabilities. Sampling (temperature > 0) draws from the distribution llama.cpp's
sampler chain draws from here (top-p over the untempered probabilities, then the temperature
over what it kept) with a numpy Generator per request, seeded by `sample_seed(seed, sample)`:
a request draws the same whatever batch it lands in, and the same on every run.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.backends.base import sample_seed
from harness.types import FinishReason, Generation, Request

if TYPE_CHECKING:
    from harness.backends.llamacpp import LlamaCppBackend

KV_PAD = 256
"""A sequence's KV stream is rounded up to this (llama.cpp pads the attention to it anyway)."""
SLACK = 8
"""Room past the prompt and the token limit: llama-cpp-python goes on past the limit while the
text ends in a split UTF-8 character, and so does this decoder."""
KV_SHARE = 4
"""The KV caches of one batch take at most 1/KV_SHARE of the machine's memory: a batch of long
generations on a large model runs fewer sequences at once (the same outputs, slower) rather
than exhausting it."""
SHARED_MIN = 64
"""A prompt prefix all of a call's requests share (a few-shot block) is read once, into a
stream of its own that each new sequence copies, when it is at least this many tokens."""
TOP_P_FIRST = 1024
"""Top-p is first tried among this many most likely tokens (a partial sort); the full sort
runs only when they do not reach p."""


@dataclass
class Job:
    """One request to decode: its index in the caller's list, prompt tokens and token limit."""

    index: int
    req: Request
    prompt: list[int]
    limit: int


@dataclass
class Done:
    """A finished job, in llama-cpp-python's terms (what `create_completion` would return)."""

    index: int
    text: str
    finish_reason: FinishReason
    completion_tokens: int
    seconds: float
    logprobs: list[float] | None


@dataclass
class _Seq:
    job: Job
    seq_id: int
    rng: np.random.Generator | None
    completion: list[int] = field(default_factory=list)
    raw: bytes = b""
    logprobs: list[float] = field(default_factory=list)
    multibyte_fix: int = 0
    seconds: float = 0.0
    pos: int = 0
    next_token: int = -1
    result: tuple[str, FinishReason] | None = None
    """(text, finish reason) once finished."""


def generate_batched(
    backend: LlamaCppBackend, requests: Sequence[Request], prompts: Sequence[list[int]]
) -> Iterator[tuple[int, Generation]]:
    """The backend's `stream` with up to `batch_size` requests decoded at once: each token
    limit and error as the sequential path has them, each Generation built the same way and
    yielded as soon as its request is finished. A context of its own per call, freed after."""
    jobs: list[Job] = []
    for i, (req, tokens) in enumerate(zip(requests, prompts, strict=True)):
        limit = backend._limit(req, tokens)
        if isinstance(limit, Generation):
            yield i, limit
        elif not tokens:  # llama-cpp-python fails on it too: nothing to read logits after
            yield i, Generation(text="", finish_reason="error", error="llamacpp: empty prompt")
        else:
            jobs.append(Job(i, req, tokens, limit))
    if not jobs:
        return
    n_ctx_seq = per_sequence_context(jobs)
    n_seq = min(backend.batch_size, len(jobs), sequences_that_fit(backend.llm, n_ctx_seq))
    shared = shared_prefix([j.prompt for j in jobs]) if len(jobs) > 1 else []
    if len(shared) < SHARED_MIN:
        shared = []
    decoder = BatchDecoder(backend.llm, n_seq, n_ctx_seq, shared=shared)
    by_index = {j.index: j for j in jobs}
    try:
        for done in decoder.run(jobs):
            job = by_index[done.index]
            yield (
                done.index,
                backend._generation(
                    job.req,
                    done.text,
                    done.finish_reason,
                    prompt_tokens=len(job.prompt),
                    completion_tokens=done.completion_tokens,
                    seconds=done.seconds,
                    logprobs=done.logprobs,
                    limit=job.limit,
                ),
            )
    finally:
        decoder.close()


def shared_prefix(prompts: Sequence[list[int]]) -> list[int]:
    """The tokens every prompt starts with, less at least the last token of the shortest (a
    sequence must read one token of its own to have logits to start from)."""
    first, n = prompts[0], min(len(p) for p in prompts) - 1
    for p in prompts[1:]:
        k = 0
        while k < n and p[k] == first[k]:
            k += 1
        n = k
    return list(first[: max(n, 0)])


def per_sequence_context(jobs: Sequence[Job]) -> int:
    """KV cells one sequence needs: its prompt, its limit and the slack, rounded up."""
    need = max((len(j.prompt) + j.limit for j in jobs), default=1) + SLACK
    return -(-need // KV_PAD) * KV_PAD


def sequences_that_fit(llm: Any, n_ctx_seq: int) -> int:
    """How many streams of `n_ctx_seq` F16 KV cells fit in 1/KV_SHARE of physical memory
    (at least one): the cell size from the model's layers and KV heads."""
    import llama_cpp

    model = llm._model.model
    n_layer = llama_cpp.llama_model_n_layer(model)
    n_head = max(1, llama_cpp.llama_model_n_head(model))
    head_dim = llama_cpp.llama_model_n_embd(model) // n_head
    cell = n_layer * 2 * llama_cpp.llama_model_n_head_kv(model) * head_dim * 2
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 1 << 30
    return max(1, memory // KV_SHARE // max(1, cell * n_ctx_seq))


def draw(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """One sampled token, from the distribution of llama-cpp-python's chain as the backend sets
    it (top-k, typical, min-p and penalties neutral): top-p over softmax(logits), then
    softmax(logits / temperature) over the tokens kept."""
    x = logits.astype(np.float64)
    ids: np.ndarray | None = None
    if top_p < 1.0:
        top = x.max()
        total = np.exp(x - top).sum()
        ids = _nucleus(x, top, total, top_p, min(TOP_P_FIRST, x.size))
        if ids is None:
            ids = _nucleus(x, top, total, top_p, x.size)
        x = x[ids]
    z = x / temperature
    cdf = np.cumsum(np.exp(z - z.max()))
    j = min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), cdf.size - 1)
    return int(ids[j]) if ids is not None else j


def _nucleus(x: np.ndarray, top: float, total: float, p: float, k: int) -> np.ndarray | None:
    """The smallest most-likely prefix whose probability reaches p, searched among the k most
    likely tokens; None when those k do not reach it (then search them all)."""
    cand = np.argpartition(-x, k - 1)[:k] if k < x.size else np.arange(x.size)
    cand = cand[np.argsort(-x[cand], kind="stable")]
    cum = np.cumsum(np.exp(x[cand] - top)) / total
    at = int(np.searchsorted(cum, p, side="left"))
    if at >= cand.size:
        return cand if k >= x.size else None
    return cand[: at + 1]


class BatchDecoder:
    """A llama.cpp context with `n_seq` KV streams over the model a `Llama` has loaded.

    It is created with the `Llama`'s own context parameters (threads, batch sizes, attention
    kernels, KV types), so a sequence is computed as the `Llama` computes it, with
    `n_seq_max=n_seq` and a stream of `n_ctx_seq` cells for each sequence (not a unified
    cache: a sequence attends only to its own cells, laid out as in a context of its own).
    The context is freed with the model (`Llama.close`) or by `close`.
    """

    def __init__(self, llm: Any, n_seq: int, n_ctx_seq: int, *, shared: Sequence[int] = ()) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self.lib = llama_cpp
        self.llm = llm
        self.n_seq = n_seq
        self.shared = list(shared)
        """A prefix every job's prompt starts with: read once into stream `n_seq` (one more
        than the sequences use) and copied into each sequence's stream when it starts."""
        streams = n_seq + (1 if self.shared else 0)
        params = llama_cpp.llama_context_params.from_buffer_copy(llm.context_params)
        params.n_ctx = streams * n_ctx_seq
        params.n_seq_max = streams
        params.kv_unified = False
        self.n_batch = int(params.n_batch)  # prompt chunks as the Llama reads them
        params.n_batch = max(self.n_batch, n_seq)  # a step holds a token of every sequence
        params.n_ubatch = max(int(params.n_ubatch), n_seq)
        self.context = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        self.ctx = self.context.ctx
        self.n_ctx_seq = int(llama_cpp.llama_n_ctx_seq(self.ctx))
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.batch_holder = _internals.LlamaBatch(
            n_tokens=max(self.n_batch, n_seq), embd=0, n_seq_max=1, verbose=False
        )
        self.batch = self.batch_holder.batch
        self.vocab = llm._model.vocab
        self.n_vocab = int(llm.n_vocab())
        self.bos = int(llm.token_bos())
        self._pieces: dict[int, bytes] = {}
        self._piece_buffer = (ctypes.c_char * 32)()

    def close(self) -> None:
        self.batch_holder.close()
        self.context.close()

    # -- decoding -------------------------------------------------------------------------

    def run(self, jobs: Sequence[Job]) -> Iterator[Done]:
        """Decode every job, at most `n_seq` at once; yield each as soon as it is finished."""
        waiting = deque(jobs)
        free = list(range(self.n_seq - 1, -1, -1))
        live: list[_Seq] = []
        self.lib.llama_memory_clear(self.memory, True)
        if self.shared:
            self._read(self.shared, 0, self.n_seq)
        while waiting or live:
            while waiting and free:
                seq = self._start(waiting.popleft(), free.pop())
                if self._take(seq, self._prefill(seq)):
                    yield self._finish(seq, free)
                else:
                    live.append(seq)
            if not live:
                continue
            t0 = time.perf_counter()
            self._decode_step(live)
            share = (time.perf_counter() - t0) / len(live)
            still: list[_Seq] = []
            for i, seq in enumerate(live):
                seq.seconds += share
                if self._take(seq, self._logits(i)):
                    yield self._finish(seq, free)
                else:
                    still.append(seq)
            live = still

    def _start(self, job: Job, seq_id: int) -> _Seq:
        s = job.req.sampling
        rng = None if s.greedy else np.random.default_rng(sample_seed(job.req.seed, job.req.sample))
        return _Seq(job=job, seq_id=seq_id, rng=rng)

    def _prefill(self, seq: _Seq) -> np.ndarray:
        """Read the prompt into the sequence's stream (after a copy of the shared prefix's
        stream, when there is one), in `n_batch` chunks as `Llama.eval` does (which likewise
        reuses the prefix a prompt shares with the one before); the logits after its last
        token."""
        t0 = time.perf_counter()
        prompt = seq.job.prompt
        start = 0
        if self.shared:
            self.lib.llama_memory_seq_cp(self.memory, self.n_seq, seq.seq_id, -1, -1)
            start = len(self.shared)
        self._read(prompt[start:], start, seq.seq_id)
        seq.pos = len(prompt)
        logits = self._logits(self.batch.n_tokens - 1)
        seq.seconds += time.perf_counter() - t0
        return logits

    def _read(self, tokens: Sequence[int], at: int, seq_id: int) -> None:
        """Decode `tokens` at positions from `at` into one stream, `n_batch` at a time, with
        logits for the last token only."""
        b = self.batch
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start : start + self.n_batch]
            b.n_tokens = len(chunk)
            for i, tok in enumerate(chunk):
                b.token[i] = tok
                b.pos[i] = at + start + i
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = seq_id
                b.logits[i] = 0
            b.logits[len(chunk) - 1] = 1
            self._decode()

    def _decode_step(self, live: Sequence[_Seq]) -> None:
        b = self.batch
        b.n_tokens = len(live)
        for i, seq in enumerate(live):
            b.token[i] = seq.next_token
            b.pos[i] = seq.pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq.seq_id
            b.logits[i] = 1
            seq.pos += 1
        self._decode()

    def _decode(self) -> None:
        rc = self.lib.llama_decode(self.ctx, self.batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    def _logits(self, i: int) -> np.ndarray:
        ptr = self.lib.llama_get_logits_ith(self.ctx, i)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _piece(self, token: int) -> bytes:
        """A token's bytes, as llama-cpp-python's detokenize gets them (a 32-byte buffer)."""
        piece = self._pieces.get(token)
        if piece is None:
            buf = self._piece_buffer
            n = self.lib.llama_token_to_piece(self.vocab, token, buf, 32, 0, False)
            piece = self._pieces[token] = buf.raw[:n]
        return piece

    def _text(self, seq: _Seq) -> bytes:
        """`Llama.detokenize(completion)`: the pieces, less a leading space after a BOS."""
        raw = seq.raw
        if seq.completion and seq.completion[0] == self.bos and raw[:1] == b" ":
            return raw[1:]
        return raw

    def _take(self, seq: _Seq, logits: np.ndarray) -> bool:
        """Choose the next token from `logits` and apply `_create_completion`'s rules to it;
        True when the sequence is finished (its text and finish reason in `seq.result`)."""
        s = seq.job.req.sampling
        if seq.rng is None:
            token = int(np.argmax(logits))
        else:
            token = draw(logits, s.temperature, s.top_p, seq.rng)
        if self.lib.llama_vocab_is_eog(self.vocab, token):
            return self._end(seq, self._text(seq), "stop")
        if s.logprobs and token != self.bos:
            seq.logprobs.append(float(self.llm.logits_to_logprobs(logits)[token]))
        seq.completion.append(token)
        seq.raw += self._piece(token)
        seq.next_token = token
        all_text = self._text(seq)
        # llama-cpp-python's guard against a UTF-8 character split over tokens, as it is.
        for k, char in enumerate(all_text[-3:]):
            k = 3 - k
            for num, pattern in ((2, 192), (3, 224), (4, 240)):
                if num > k and pattern & char == pattern:
                    seq.multibyte_fix = num - k
        if seq.multibyte_fix > 0:
            seq.multibyte_fix -= 1
            return self._room_left(seq, all_text)
        hits = [x for x in s.stop if x.encode("utf-8") in all_text]
        if hits:
            first = hits[0].encode("utf-8")
            return self._end(seq, all_text[: all_text.index(first)], "stop")
        if len(seq.completion) >= seq.job.limit:
            return self._end(seq, all_text, "length")
        return self._room_left(seq, all_text)

    def _room_left(self, seq: _Seq, all_text: bytes) -> bool:
        """Past its stream's end a sequence stops at its length (llama-cpp-python would fail)."""
        if seq.pos >= self.n_ctx_seq:
            return self._end(seq, all_text, "length")
        return False

    def _end(self, seq: _Seq, text: bytes, finish: FinishReason) -> bool:
        seq.result = (text.decode("utf-8", errors="ignore"), finish)
        return True

    def _finish(self, seq: _Seq, free: list[int]) -> Done:
        """Drop the sequence's cells, free its slot, and say what it made."""
        self.lib.llama_memory_seq_rm(self.memory, seq.seq_id, -1, -1)
        free.append(seq.seq_id)
        assert seq.result is not None
        text, finish = seq.result
        return Done(
            index=seq.job.index,
            text=text,
            finish_reason=finish,
            completion_tokens=len(seq.completion),
            seconds=seq.seconds,
            logprobs=seq.logprobs if seq.job.req.sampling.logprobs else None,
        )
