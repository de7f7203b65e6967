"""OpenAI-compatible HTTP servers: DeepSeek's API, vLLM/SGLang serve, llama.cpp server, Ollama.

Requests run concurrently on an asyncio loop (httpx2, bounded by `#concurrency=`), and each
result is handed to the runner the moment it arrives, so the cache holds every finished
generation even when the run is killed. Transient failures (429, 5xx, timeouts, dropped
connections) are retried with exponential backoff and jitter, waiting at least what a
`Retry-After` header asks; a request that still fails becomes a recorded error (never cached, so
the next run retries it). A wrong key, URL or model name stops the run with one line instead.

The API key comes only from the environment (OPENAI_API_KEY, or the variable named by
`#key_env=`); it is sent in the Authorization header and nowhere else.
"""

from __future__ import annotations

import asyncio
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
    concurrency: int = option(8, "requests in flight at once", identity=False, low=1)
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
        if not at or not url.startswith(("http://", "https://")):
            raise HarnessError(
                f"{parts.where}: write openai:<model>@<base_url>, "
                "e.g. openai:deepseek-reasoner@https://api.deepseek.com"
            )
        opts = dict(parts.options)
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
        self.api = opts.api
        self.concurrency = opts.concurrency
        self.retries = opts.retries
        self.samples_per_call = opts.n
        # A reasoning model's 32K-token answer takes many minutes, sent in one piece.
        self.timeout = opts.timeout
        self.backoff = opts.backoff
        self.key_env = opts.key_env or DEFAULT_KEY_ENV
        self.key = api_key(spec)
        down = server_unreachable(self.base_url)
        if down:
            raise HarnessError(
                f"cannot reach the server of model '{spec.name}' at {self.base_url}: {down}; "
                "is it running, and is the URL right?"
            )
        self._loop = asyncio.new_event_loop()
        self._client: Any = None
        self._slots: asyncio.Semaphore | None = None
        self.successes = 0
        self.attempts = 0

    # -- the event loop -------------------------------------------------------------------
    async def _ensure_client(self) -> None:
        if self._client is None:
            headers = {"Content-Type": "application/json"}
            if self.key:
                headers["Authorization"] = f"Bearer {self.key}"
            self._client = self.httpx.AsyncClient(
                base_url=self.base_url,
                headers=headers,
                timeout=self.httpx.Timeout(self.timeout, connect=min(30.0, self.timeout)),
                limits=self.httpx.Limits(
                    max_connections=self.concurrency, max_keepalive_connections=self.concurrency
                ),
            )
            self._slots = asyncio.Semaphore(self.concurrency)

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
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

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
            attempt += 1
            self.attempts += 1
            wait: float | None = None
            refused = False
            try:
                resp = await self._client.post(path, json=body)
            except httpx.TimeoutException:
                why = f"no answer within {self.timeout:g}s"
            except httpx.TransportError as e:
                refused = isinstance(e, httpx.ConnectError)
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
                            return data
                        why = "the server sent JSON that is not an object"
                elif status in FATAL_STATUS:
                    raise HarnessError(
                        f"{self.base_url}{path} {FATAL_STATUS[status]} (HTTP {status}: "
                        f"{self._snippet(resp)}) for model '{self.spec.model}'; check the URL, "
                        f"the model name and the key in ${self.key_env}"
                    )
                elif status in RETRY_STATUS or status >= 500:
                    why = f"HTTP {status}: {self._snippet(resp)}"
                    wait = retry_after_seconds(resp.headers.get("retry-after"))
                    if wait is not None and wait > MAX_RETRY_AFTER:
                        raise _Failed(f"{why}; the server asked to retry after {wait:.0f}s")
                else:  # 400 and friends: this request is wrong (too long, bad parameter).
                    raise _Failed(f"HTTP {status}: {self._snippet(resp)}")
            if attempt > self.retries:
                if refused and self.successes == 0:
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
            self._loop.run_until_complete(self._client.aclose())
            self._client = None
        self._loop.close()
