"""OpenAI-compatible HTTP servers: DeepSeek's API, vLLM/SGLang serve, llama.cpp server, Ollama.

Requests run concurrently on an asyncio loop (httpx2, bounded by `#concurrency=`), and each
result is handed to the runner the moment it arrives, so the cache holds every finished
generation even when the run is killed. Transient failures (429, 5xx, timeouts, dropped
connections) are retried with exponential backoff and jitter, waiting at least what a
`Retry-After` header asks; a request that still fails becomes a recorded error (never cached, so
the next run retries it). A wrong key, URL or model name stops the run with one line instead.

The API key comes only from the environment (OPENAI_API_KEY, or the variable named by
`#key_env=`); it is sent in the Authorization header and nowhere else.

A fleet of servers of the same model is one spec: `openai:<model>@<url>+<url>+...` ('+' joins
values elsewhere in the grammar too, and a comma would end the option list). Each call goes to
the live server with the fewest calls in flight, at most `#concurrency=` at each. A server that
fails `#drop_after=` times in a row (refused or dropped connection, 5xx) is dropped for the rest
of the run; the calls it held go to the others without counting as retries. When every server
is dropped the run stops with one line naming them and the last error. Which server answered is
nowhere in a generation or its cache key: the first URL names the fleet (it is `base_url`, in
the cache key as for one server), the others are `#fleet=`, which is not, so a fleet's run
reuses, and is reused by, a run on its first server alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import os
import random
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from harness.backends.base import Backend, ThinkOptions, raw_prompt, sample_seed
from harness.console import warn
from harness.errors import BackendUnavailable, HarnessError
from harness.options import option
from harness.reasoning import THINK_OPEN, split_reasoning
from harness.spec import (
    PLAIN_SAMPLING,
    R1_FORMAT,
    R1_SAMPLING,
    ModelSpec,
    PromptFormat,
    SpecParts,
    think_option,
)
from harness.types import FinishReason, Generation, Request

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
RETRY_STATUS = {408, 409, 425, 429}
"""Besides every 5xx: statuses a server uses for 'try again later'."""
FATAL_STATUS = {401: "rejected the API key", 403: "refused access", 404: "has no such endpoint"}
MAX_RETRY_AFTER = 600.0
CLEANUP_SECONDS = 5.0
"""How long a stopped stream waits for its cancelled calls, and close() for each client."""
"""A Retry-After longer than this is not waited out: the request is recorded as failed."""


@dataclass(frozen=True)
class OpenAIOptions(ThinkOptions):
    """How requests reach the server; only `base_url` and `api` change what comes back."""

    base_url: str | None = option(
        None, "the server's URL, usually ending in /v1 (written as <model>@<base_url>)"
    )
    api: str = option(
        "chat",
        "chat: chat completions; completions: the turns as plain text, then the prefill",
        choices=("chat", "completions"),
    )
    key_env: str | None = option(
        None,
        f"environment variable holding the API key (then required; default: {DEFAULT_KEY_ENV} "
        "when set)",
        identity=False,
    )
    concurrency: int = option(8, "requests in flight at once at each server", identity=False, low=1)
    fleet: str | None = option(
        None,
        "more servers of the same model, joined by '+' (written as <model>@<url>+<url>); "
        "each request goes to the live one with the fewest in flight",
        identity=False,
    )
    drop_after: int = option(
        3,
        "a fleet's server failing this many times in a row (connection, 5xx) is dropped for "
        "the run; its requests go to the others",
        identity=False,
        low=1,
    )
    retries: int = option(
        6, "retries of a 429, 5xx, timeout or dropped connection", identity=False, low=0
    )
    timeout: float = option(1800.0, "seconds one request may take", identity=False, above=0)
    backoff: float = option(
        1.0, "first retry delay in seconds, doubled each time", identity=False, above=0
    )
    n: int = option(1, "samples of one prompt asked for in one call", identity=False, low=1)


def api_key(spec: ModelSpec) -> str | None:
    """The key from the environment: the spec's `#key_env=NAME` (then required), else
    OPENAI_API_KEY when set (local servers usually need none)."""
    name = OpenAIBackend.options_of(spec).key_env
    if name:
        value = os.environ.get(name, "").strip()
        if not value:
            raise HarnessError(
                f"model '{spec.name}' reads its API key from the environment variable {name}, "
                f"which is not set: export {name}=<your key> (keys are never read from files "
                "or flags)"
            )
        return value
    return os.environ.get(DEFAULT_KEY_ENV, "").strip() or None


def server_unreachable(base_url: str, timeout: float = 10.0) -> str | None:
    """Why nothing listens at the URL's host and port (one TCP connect), or None.

    A wrong port or a server that is not up fails in one line at once, instead of after every
    request's retries.
    """
    url = urlsplit(base_url)
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        return f"{host}:{port}: {e.strerror or e}"
    return None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header as seconds: delta-seconds or an HTTP date; None when absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(attempt: int, base: float, cap: float = 60.0) -> float:
    """Exponential backoff with jitter: half fixed, half random, so clients spread out."""
    full = min(cap, base * 2 ** max(0, attempt - 1))
    return full / 2 + random.uniform(0, full / 2)


class _Failed(Exception):
    """A request that ended without a generation: becomes a recorded error."""


def split_urls(text: str) -> list[str]:
    """`<url>+<url>+...` as a list (empty parts left out)."""
    return [u.strip() for u in text.split("+") if u.strip()]


@dataclass(eq=False)
class Endpoint:
    """One server of the fleet and what this run has seen of it."""

    url: str
    client: Any = None
    in_flight: int = 0
    served: int = 0
    """Calls it answered (for benchmarks and tests; never part of a result)."""
    failures: int = 0
    """Connection failures and 5xx in a row; a success resets it."""
    dead: bool = False
    last_error: str = ""


class OpenAIBackend(Backend):
    name = "openai"
    default_batch_size = 64
    """Requests handed over at once; `#concurrency=` of them are in flight at a time."""
    options_class = OpenAIOptions
    options: OpenAIOptions
    target = "<model>@<url>"

    @classmethod
    def spec_from(cls, parts: SpecParts) -> ModelSpec:
        """`<model>@<base_url>`. The same rule as every other backend: an explicit #think=
        wins, else the R1 family is recognised by its model id. The server applies the chat
        template, so the prefill matters only on the completions endpoint (where the turns go
        as plain text)."""
        model, at, url = parts.target.partition("@")
        urls = split_urls(url)
        if not at or not urls or not all(u.startswith(("http://", "https://")) for u in urls):
            raise HarnessError(
                f"{parts.where}: write openai:<model>@<base_url>, "
                "e.g. openai:deepseek-reasoner@https://api.deepseek.com "
                "(a fleet: <base_url>+<base_url>)"
            )
        opts = dict(parts.options)
        url = urls[0]
        if len(urls) > 1:  # the first URL names the fleet in the cache key; the rest do not
            opts["fleet"] = "+".join([*urls[1:], *split_urls(opts.get("fleet") or "")])
        think = think_option(opts.pop("think", None), model, parts.where)
        return ModelSpec(
            backend=cls.name,
            model=model,
            name=parts.raw,
            prompt=R1_FORMAT if think else PromptFormat(),
            sampling=R1_SAMPLING if think else PLAIN_SAMPLING,
            options=(("base_url", url), *sorted(opts.items())),
        )

    def __init__(self, spec: ModelSpec, **kw: Any) -> None:
        super().__init__(spec, **kw)
        try:
            import httpx2
        except ImportError as e:  # pragma: no cover - httpx2 comes with huggingface_hub
            raise BackendUnavailable(
                "the openai backend needs the httpx2 package: pip install httpx2"
            ) from e
        self.httpx = httpx2
        opts = self.options
        base = opts.base_url
        if not base or not base.startswith(("http://", "https://")):
            raise HarnessError(
                f"model spec '{spec.name}': write openai:<model>@<base_url>, "
                "e.g. openai:deepseek-reasoner@https://api.deepseek.com"
            )
        self.base_url = base.rstrip("/")
        urls = [self.base_url, *(u.rstrip("/") for u in split_urls(opts.fleet or ""))]
        bad = [u for u in urls if not u.startswith(("http://", "https://"))]
        if bad:
            raise HarnessError(
                f"model spec '{spec.name}': #fleet= takes http(s) URLs joined by '+', "
                f"not '{bad[0]}'"
            )
        self.endpoints = [Endpoint(u) for u in dict.fromkeys(urls)]
        # Health tracking is for fleets: one server keeps its retries-then-error behaviour.
        self.fleet = len(self.endpoints) > 1
        self.drop_after = opts.drop_after
        self._last_failure: tuple[str, str] | None = None
        self.api = opts.api
        self.concurrency = opts.concurrency
        self.retries = opts.retries
        self.samples_per_call = opts.n
        # A reasoning model's 32K-token answer takes many minutes, sent in one piece.
        self.timeout = opts.timeout
        self.backoff = opts.backoff
        self.key_env = opts.key_env or DEFAULT_KEY_ENV
        self.key = api_key(spec)
        self._check_reachable()
        self._loop = asyncio.new_event_loop()
        self._client: Any = None
        self._slots: asyncio.Semaphore | None = None
        self._changed: asyncio.Condition | None = None
        self.successes = 0
        self.attempts = 0

    def _check_reachable(self) -> None:
        """One TCP connect per server: one server down stops the run at once; in a fleet it is
        dropped with a warning, and only a fleet with none up stops the run."""
        if not self.fleet:
            down = server_unreachable(self.base_url)
            if down:
                raise HarnessError(
                    f"cannot reach the server of model '{self.spec.name}' at {self.base_url}: "
                    f"{down}; is it running, and is the URL right?"
                )
            return
        for ep in self.endpoints:
            down = server_unreachable(ep.url)
            if down:
                ep.dead, ep.last_error = True, f"unreachable ({down})"
                self._last_failure = (ep.url, ep.last_error)
        if all(ep.dead for ep in self.endpoints):
            raise self._all_down()
        for ep in self.endpoints:
            if ep.dead:
                warn(
                    f"model '{self.spec.name}': server {ep.url} is {ep.last_error}; the run "
                    "goes on with the others"
                )

    # -- the event loop -------------------------------------------------------------------
    async def _ensure_client(self) -> None:
        if self._client is None:
            headers = {"Content-Type": "application/json"}
            if self.key:
                headers["Authorization"] = f"Bearer {self.key}"
            for ep in self.endpoints:
                ep.client = self.httpx.AsyncClient(
                    base_url=ep.url,
                    headers=headers,
                    timeout=self.httpx.Timeout(self.timeout, connect=min(30.0, self.timeout)),
                    limits=self.httpx.Limits(
                        max_connections=self.concurrency,
                        max_keepalive_connections=self.concurrency,
                    ),
                )
            self._client = self.endpoints[0].client
            # Calls in progress (in flight or waiting out a backoff); each server still takes
            # at most `concurrency` in flight.
            self._slots = asyncio.Semaphore(self.concurrency * len(self.endpoints))
            self._changed = asyncio.Condition()

    async def _acquire(self) -> Endpoint:
        """The live server with the fewest calls in flight (then the fewest recent failures,
        then the first), waiting for a free slot; every server dropped stops the run."""
        assert self._changed is not None
        async with self._changed:
            while True:
                live = [ep for ep in self.endpoints if not ep.dead]
                if not live:
                    raise self._all_down()
                free = [ep for ep in live if ep.in_flight < self.concurrency]
                if free:
                    ep = min(free, key=lambda e: (e.in_flight, e.failures))
                    ep.in_flight += 1
                    return ep
                await self._changed.wait()

    async def _release(self, ep: Endpoint) -> None:
        assert self._changed is not None
        async with self._changed:
            ep.in_flight -= 1
            self._changed.notify_all()

    async def _failed_at(self, ep: Endpoint, why: str) -> bool:
        """Count a connection failure or 5xx against a fleet's server; True when that server
        is (now, or already) dropped, so the call goes to another one."""
        if not self.fleet:
            return False
        ep.last_error = why
        self._last_failure = (ep.url, why)
        if ep.dead:
            return True
        ep.failures += 1
        if ep.failures < self.drop_after:
            return False
        ep.dead = True
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()  # waiters re-check: another server, or none left
        live = [e.url for e in self.endpoints if not e.dead]
        if live:
            warn(
                f"model '{self.spec.name}': dropped server {ep.url} after {ep.failures} "
                f"failures in a row ({why}); its requests go to {', '.join(live)}"
            )
        return True

    def _all_down(self) -> HarnessError:
        urls = ", ".join(ep.url for ep in self.endpoints)
        where, why = self._last_failure or ("", "unknown")
        at = f" at {where}" if where else ""
        return HarnessError(
            f"every server of model '{self.spec.name}' failed and was dropped ({urls}); last "
            f"error{at}: {why}; are they running, and are the URLs (usually ending in /v1) right?"
        )

    def stream(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        loop = self._loop
        tasks = [loop.create_task(self._run_group(requests, g)) for g in self._groups(requests)]
        pending: set[asyncio.Task] = set(tasks)
        try:
            while pending:
                done, pending = loop.run_until_complete(
                    asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                )
                # Everything that finished is handed over before a fatal error is raised.
                failed = [t for t in done if t.exception() is not None]
                for task in done:
                    if task.exception() is None:
                        yield from task.result()
                if failed:
                    error = failed[0].exception()
                    assert error is not None
                    raise error
        finally:
            # Interrupted (Ctrl-C, a fatal error, the runner stopping): nothing keeps running.
            for task in pending:
                task.cancel()
            if pending:
                # Bounded: a Ctrl-C that lands inside the loop's own callbacks can leave a task
                # that is never woken again, and waiting for it would hang the run.
                loop.run_until_complete(asyncio.wait(pending, timeout=CLEANUP_SECONDS))

    def _groups(self, requests: Sequence[Request]) -> list[list[int]]:
        """Indices sent together: with `#n=K`, up to K samples of one prompt share a call."""
        if self.samples_per_call == 1:
            return [[i] for i in range(len(requests))]
        by_prompt: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            by_prompt.setdefault((r.messages, r.sampling, r.seed), []).append(i)
        groups = []
        for members in by_prompt.values():
            members.sort(key=lambda i: requests[i].sample)
            for start in range(0, len(members), self.samples_per_call):
                groups.append(members[start : start + self.samples_per_call])
        return groups

    async def _run_group(
        self, requests: Sequence[Request], group: list[int]
    ) -> list[tuple[int, Generation]]:
        await self._ensure_client()
        assert self._slots is not None
        out: list[tuple[int, Generation]] = []
        todo = list(group)
        async with self._slots:
            while todo:
                first = requests[todo[0]]
                path, body, prefill = self._payload(first, len(todo))
                t0 = time.perf_counter()
                try:
                    data = await self._call(path, body)
                except _Failed as e:
                    out.extend((i, self._error(str(e))) for i in todo)
                    return out
                seconds = time.perf_counter() - t0
                choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
                if not choices:
                    out.extend((i, self._error("the server returned no choices")) for i in todo)
                    return out
                usage = data.get("usage") or {}
                got = choices[: len(todo)]
                for i, choice in zip(todo, got, strict=False):
                    out.append((i, self._generation(choice, usage, len(got), seconds, prefill)))
                # A server that ignores `n` returned fewer choices: ask again for the rest.
                todo = todo[len(got) :]
        return out

    # -- one HTTP call, with retries ----------------------------------------------------------
    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        httpx = self.httpx
        attempt = 0
        while True:
            ep = await self._acquire()
            attempt += 1
            self.attempts += 1
            wait: float | None = None
            refused = False
            down = False  # a failure that counts against the server (gone or broken)
            try:
                resp = await ep.client.post(path, json=body)
            except httpx.TimeoutException:
                why = f"no answer within {self.timeout:g}s"
            except httpx.TransportError as e:
                refused = isinstance(e, httpx.ConnectError)
                down = True
                why = f"connection failed ({type(e).__name__}: {self._scrub(str(e))[:120]})"
            else:
                status = resp.status_code
                if status == 200:
                    try:
                        data = resp.json()
                    except ValueError:
                        why = "the server sent a response that is not JSON"
                    else:
                        if isinstance(data, dict):
                            self.successes += 1
                            ep.served += 1
                            ep.failures = 0
                            return data
                        why = "the server sent JSON that is not an object"
                elif status in FATAL_STATUS:
                    raise HarnessError(
                        f"{ep.url}{path} {FATAL_STATUS[status]} (HTTP {status}: "
                        f"{self._snippet(resp)}) for model '{self.spec.model}'; check the URL, "
                        f"the model name and the key in ${self.key_env}"
                    )
                elif status in RETRY_STATUS or status >= 500:
                    why = f"HTTP {status}: {self._snippet(resp)}"
                    down = status >= 500
                    wait = retry_after_seconds(resp.headers.get("retry-after"))
                    if wait is not None and wait > MAX_RETRY_AFTER:
                        raise _Failed(f"{why}; the server asked to retry after {wait:.0f}s")
                else:  # 400 and friends: this request is wrong (too long, bad parameter).
                    raise _Failed(f"HTTP {status}: {self._snippet(resp)}")
            finally:
                await self._release(ep)
            if down and await self._failed_at(ep, why):
                attempt -= 1  # that server is gone: the call goes to another, not a retry
                continue
            if attempt > self.retries:
                if refused and self.successes == 0 and not self.fleet:
                    raise HarnessError(
                        f"cannot reach the server at {self.base_url}: {why}; is it running, "
                        "and is the URL (usually ending in /v1) right?"
                    )
                raise _Failed(f"{why} (gave up after {attempt} attempts)")
            delay = backoff_delay(attempt, self.backoff)
            await asyncio.sleep(max(delay, wait) if wait is not None else delay)

    def _snippet(self, resp: Any) -> str:
        try:
            text = resp.text
        except Exception:  # noqa: BLE001 - a body we cannot decode says nothing useful
            text = ""
        return self._scrub(" ".join(text.split()))[:200] or resp.reason_phrase or "no body"

    def _scrub(self, text: str) -> str:
        """Servers sometimes echo what they were sent; a key never reaches a record or a log."""
        return text.replace(self.key, "***") if self.key else text

    def _error(self, why: str) -> Generation:
        return Generation(text="", finish_reason="error", error=f"openai: {why}")

    # -- payload and response ---------------------------------------------------------------
    def _payload(self, req: Request, n: int) -> tuple[str, dict[str, Any], str]:
        """(endpoint, JSON body, prefill sent at the end of the prompt)."""
        s = req.sampling
        body: dict[str, Any] = {
            "model": self.spec.model,
            "max_tokens": s.max_new_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "seed": sample_seed(req.seed, req.sample),
        }
        if n > 1:
            body["n"] = n
        if s.stop:
            body["stop"] = list(s.stop)
        raw, prefill = raw_prompt(req.messages), ""
        if raw is None and self.api == "completions":
            # No chat template on this path: the turns as plain text, then the prefill.
            prefill = self.spec.prompt.prefill
            raw = "\n\n".join(m.content for m in req.messages) + "\n" + prefill
        if raw is not None:
            body["prompt"] = raw
            if s.logprobs:
                body["logprobs"] = 1
            return "/completions", body, prefill
        body["messages"] = [m.to_dict() for m in req.messages]
        if s.logprobs:
            # Some servers (llama.cpp's) return token logprobs only when top ones are asked for.
            body["logprobs"] = True
            body["top_logprobs"] = 1
        return "/chat/completions", body, prefill

    def _generation(
        self,
        choice: dict[str, Any],
        usage: dict[str, Any],
        n: int,
        seconds: float,
        prefill: str = "",
    ) -> Generation:
        think = self.spec.prompt.think
        finish: FinishReason = "length" if choice.get("finish_reason") == "length" else "stop"
        message = choice.get("message")
        if isinstance(message, dict):  # chat
            content = message.get("content") or ""
            reasoning = message.get("reasoning_content") or message.get("reasoning")
            lp = (choice.get("logprobs") or {}).get("content")
            logprobs = [t.get("logprob") for t in lp] if isinstance(lp, list) else None
        else:  # completions
            content = prefill + (choice.get("text") or "")
            reasoning = None
            lp = (choice.get("logprobs") or {}).get("token_logprobs")
            logprobs = list(lp) if isinstance(lp, list) else None
        if isinstance(reasoning, str) and reasoning.strip():
            # The server split the chain off (DeepSeek, vLLM's reasoning parser). No content
            # after it (cut at the limit, or the server ended there): the answer was never
            # given, and nothing of the chain may be graded as one.
            text = content.strip()
            closed: bool | None = bool(text)
            reasoning_part: str | None = reasoning.strip()
        else:
            # Content that opens with <think> is a chain whatever the spec says (a think-tag
            # model not recognised by its id); never closed, it is no answer.
            opened = content.lstrip().startswith(THINK_OPEN)
            reasoning_part, text, closed = split_reasoning(content, think or opened)
        if logprobs is not None and any(not isinstance(x, (int, float)) for x in logprobs):
            logprobs = [float(x) if isinstance(x, (int, float)) else float("nan") for x in logprobs]
        completion = usage.get("completion_tokens") if n == 1 else None
        if completion is None and logprobs is not None:
            completion = len(logprobs)
        return Generation(
            text=text,
            reasoning=reasoning_part,
            finish_reason=finish,
            reasoning_closed=closed,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=completion,
            seconds=seconds / n,
            logprobs=tuple(logprobs) if logprobs is not None else None,
        )

    def close(self) -> None:
        if self._loop.is_closed():
            return
        if self._client is not None:
            for ep in self.endpoints:
                with contextlib.suppress(asyncio.TimeoutError, OSError):
                    self._loop.run_until_complete(
                        asyncio.wait_for(ep.client.aclose(), CLEANUP_SECONDS)
                    )
                ep.client = None
            self._client = None
        self._loop.close()
