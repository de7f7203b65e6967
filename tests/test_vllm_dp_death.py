"""vLLM `#dp=N` supervision without vLLM: a stand-in engine worker in its own process.

The stand-in is started exactly as `_dp_worker` is (spawned by `EnginePool`, same arguments)
and speaks the same queue protocol through the same `serve_batches` loop; only the engine is
a plain function whose answer depends on the prompt tokens. It can exit with os._exit(3) after
answering some requests, or before it is ready. Every scenario runs under a hard deadline, so
a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import os
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.backends.vllm import EnginePool, VLLMBackend, serve_batches
from harness.errors import HarnessError
from harness.types import Message, Problem, Request, Sampling

DEADLINE = 60.0


def fields_for(toks: list[int]) -> dict[str, Any]:
    return {
        "text": f"sum {sum(toks)}",
        "finish_reason": "stop",
        "prompt_tokens": len(toks),
        "completion_tokens": 2,
        "logprobs": None,
    }


def standin_worker(
    rank: int, devices: str | None, kwargs: dict, inbox: Any, outbox: Any, parent: int
) -> None:
    """`_dp_worker` with a fake engine. kwargs: `die`: {rank: answers before os._exit(3)},
    `no_start`: ranks that exit with code 5 before saying ready, `delay`: seconds a request
    takes."""
    if rank in kwargs.get("no_start", ()):
        os._exit(5)
    outbox.put(("ready", rank, None))
    limit = kwargs.get("die", {}).get(rank)
    answered = 0

    def generate(batch: list) -> Iterator[tuple[Any, dict]]:
        nonlocal answered
        for key, toks, _params, _lp in batch:
            if limit is not None and answered >= limit:
                time.sleep(0.2)  # what it put has reached the pipe: the parent must dedupe
                os._exit(3)
            time.sleep(kwargs.get("delay", 0.0))
            answered += 1
            yield key, fields_for(toks)

    serve_batches(rank, inbox, outbox, parent, generate)


def items(n: int) -> list[tuple[int, list[int], dict, bool]]:
    return [(i, [i, i + 1, 7], {"seed": i}, False) for i in range(n)]


def shards_of(its: list, dp: int) -> list[list]:
    return [its[r::dp] for r in range(dp)]


def within_deadline(body: Callable[[], Any], pool: EnginePool) -> Any:
    """Run body in a thread; past DEADLINE the engines are killed and the test fails."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = body()
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t0 = time.monotonic()
    t.start()
    t.join(DEADLINE)
    if t.is_alive():
        for proc in pool.processes:
            proc.kill()
        pytest.fail(f"the dp pool hung for more than {DEADLINE:g}s")
    box["seconds"] = time.monotonic() - t0
    if "error" in box:
        raise box["error"]
    return box["value"], box["seconds"]


def make_pool(dp: int, **kwargs: Any) -> EnginePool:
    return EnginePool(
        standin_worker, kwargs, [None] * dp, poll=0.2, what="stand-in engine", advice="try dp=1"
    )


def test_a_healthy_pool_answers_every_request_once_and_in_request_order(tmp_path):
    pool = make_pool(3, delay=0.01)
    try:
        within_deadline(pool.start, pool)
        reqs = [
            Request(
                f"k{i}",
                Problem(id=f"p{i}", task="t", question="q", answer=""),
                (Message("user", "q"),),
                0,
                Sampling(max_new_tokens=4),
                0,
            )
            for i in range(10)
        ]
        prepared = [(i, [i, i + 1, 7], "") for i in range(10)]
        fake = types.SimpleNamespace(dp=3, pool=pool)

        def both_calls() -> list[list[tuple[int, dict]]]:
            # The backend's own sharding, twice: a second call on the same engines works too.
            return [list(VLLMBackend._stream_dp(fake, reqs, prepared)) for _ in range(2)]  # type: ignore[arg-type]

        calls, _ = within_deadline(both_calls, pool)
    finally:
        pool.close()
    for got in calls:
        assert sorted(i for i, _ in got) == list(range(10))
        by_index = dict(got)
        assert [by_index[i]["text"] for i in range(10)] == [
            f"sum {i + i + 1 + 7}" for i in range(10)
        ]
    assert not any(p.is_alive() for p in pool.processes)


def test_a_dead_engine_has_its_requests_requeued_on_the_survivors(tmp_path, capsys):
    pool = make_pool(3, die={1: 2}, delay=0.02)
    try:
        within_deadline(pool.start, pool)
        its = items(30)
        got, seconds = within_deadline(lambda: list(pool.run(shards_of(its, 3))), pool)
    finally:
        pool.close()
    assert sorted(i for i, _ in got) == list(range(30))  # each once: none lost, none twice
    for (i, f), (j, toks, _, _) in zip(sorted(got), its, strict=True):
        assert i == j and f == fields_for(toks)
    assert pool.dead == {1: 3}
    assert seconds < 30
    assert "stand-in engine 1 (exit code 3) died with" in capsys.readouterr().err


def test_every_engine_dead_ends_in_one_line_naming_it_and_its_exit_code():
    pool = make_pool(2, die={0: 1, 1: 3})
    try:
        within_deadline(pool.start, pool)
        got: list = []

        def run() -> None:
            for x in pool.run(shards_of(items(12), 2)):
                got.append(x)

        with pytest.raises(HarnessError) as e:
            _, seconds = within_deadline(run, pool)
    finally:
        pool.close()
    message = str(e.value)
    assert "\n" not in message
    assert "exit code 3" in message and "no engine left" in message and "try dp=1" in message
    assert set(pool.dead) == {0, 1}
    assert len({i for i, _ in got}) == len(got) <= 4


def test_an_engine_that_dies_before_it_is_ready_is_one_line():
    pool = make_pool(2, no_start=(1,))
    try:
        with pytest.raises(HarnessError) as e:
            within_deadline(pool.start, pool)
    finally:
        pool.close()
    assert str(e.value) == "stand-in engine 1 (exit code 5) exited before it was ready; try dp=1"
    assert not any(p.is_alive() for p in pool.processes)
