"""Requests and the cache-first generation loop, shared by the runner and the lm-eval bridge.

Both directions of the bridge and `harness run` build requests and keys here, so a generation
made by one is reused by the other. This module sits below tasks, the runner and the bridge:
it knows models, backends and the cache, never a task.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from harness.backends import Backend, backend_class
from harness.models import ModelSpec
from harness.store import GenerationCache, cache_key, prompt_digest
from harness.types import Generation, Message, Problem, Request, Sampling


def role_sampling(
    spec: ModelSpec,
    *,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    logprobs: bool = False,
) -> Sampling:
    """The model's recommended sampling with a run's overrides, for backends that sample.

    A backend that does not generate (reference, replay) keeps its fixed parameters, so its
    cache keys do not change when a run overrides the student's temperature.
    """
    s = spec.sampling
    if not backend_class(spec.backend).generates:
        return s
    if max_new_tokens is not None:
        s = dataclasses.replace(s, max_new_tokens=max_new_tokens)
    if temperature is not None:
        s = dataclasses.replace(s, temperature=temperature)
    if logprobs:
        s = dataclasses.replace(s, logprobs=True)
    return s


def make_request(
    spec: ModelSpec,
    problem: Problem,
    messages: Sequence[Message],
    sample: int,
    sampling: Sampling,
    seed: int,
) -> Request:
    """One request with its content-addressed cache key; every caller builds keys here, so a
    run and the lm-eval bridge reuse each other's generations."""
    if spec.prompt.system:
        messages = [Message("system", spec.prompt.system), *messages]
    digest = prompt_digest(messages, spec.prompt.prefill)
    fingerprint = backend_class(spec.backend).fingerprint(spec, problem)
    key = cache_key(
        spec.cache_id, digest, sampling, sample, seed, fingerprint, think=spec.prompt.think
    )
    return Request(key, problem, tuple(messages), sample, sampling, seed)


def plan_batches(requests: Sequence[Request], batch_size: int) -> list[list[Request]]:
    """Fixed batches over all requests (cached or not), similar prompt lengths together.

    Planned over the whole list, not the pending part, so a resumed run hands the backend the
    same batches an uninterrupted run would: identical outputs, not merely similar ones.
    """
    order = sorted(
        requests, key=lambda r: (sum(len(m.content) for m in r.messages), r.problem.id, r.sample)
    )
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _ignore(n: int) -> None:
    """No progress display."""


def generate_missing(
    requests: Sequence[Request],
    results: dict[str, tuple[Generation, bool]],
    cache: GenerationCache,
    spec: ModelSpec,
    backend: Callable[[], Backend],
    batch_size: int,
    advance: Callable[[int], object] = _ignore,
) -> None:
    """Generate what `results` (key -> (generation, cached)) lacks, committing each generation
    to the cache as it arrives; `backend` is called only when something is missing."""
    for batch in plan_batches(requests, batch_size):
        pending = list({r.key: r for r in batch if r.key not in results}.values())
        if not pending:
            continue
        for i, gen in backend().stream(pending):
            req = pending[i]
            cache.put(req.key, spec.cache_id, gen)
            results[req.key] = (gen, False)
            advance(1)


__all__ = ["generate_missing", "make_request", "plan_batches", "role_sampling"]
