"""A small fault-injecting HTTP proxy for loopback tests of the openai backend.

It sits between the backend and a real OpenAI-compatible server and, per a plan, answers a
request itself (500, 503, 429 with Retry-After), drops the connection before or after the
server did the work, cuts a response in half, or delays it. Everything else is forwarded
unchanged. It counts what it did, so a test can check that every fault was met and that no
generation was lost or made twice.

Only loopback addresses are used; each plan is finite, so every request eventually gets
through unless the plan says otherwise.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2

FAULTS = ("500", "503", "429", "drop", "lost", "cut", "slow", "echo")
"""500/503/429: answered by the proxy; drop: closed before forwarding; lost: forwarded, then
closed without an answer (the server did the work); cut: half the real response, then closed;
slow: forwarded after `slow_seconds`; echo: a 400 whose body repeats the request's headers
(a careless server leaking the key back)."""

Plan = Callable[[dict[str, Any], int], "str | None"]


def plan_by_text(faults: dict[str, list[str]]) -> Plan:
    """Faults for the attempts of any request whose body contains a given text.

    `{"Natalia sold": ["500", "429"]}`: that request's first attempt gets a 500, its second a
    429, its third and later go through.
    """
    bad = [f for seq in faults.values() for f in seq if f not in FAULTS and f != "ok"]
    if bad:
        raise ValueError(f"unknown faults {bad}; known: {FAULTS}")

    def plan(body: dict[str, Any], attempt: int) -> str | None:
        parts = [m.get("content", "") for m in body.get("messages", []) if isinstance(m, dict)]
        parts.append(body.get("prompt", "") if isinstance(body.get("prompt"), str) else "")
        blob = "\n".join(p for p in parts if isinstance(p, str))
        for text, seq in faults.items():
            if text in blob and attempt < len(seq):
                return None if seq[attempt] == "ok" else seq[attempt]
        return None

    return plan


@dataclass
class Seen:
    digest: str
    attempt: int
    fault: str | None
    status: int | None
    t: float
    """When the request arrived (time.monotonic)."""


@dataclass
class FaultProxy:
    upstream: str
    """Base of the real server, e.g. http://127.0.0.1:8080 (paths are passed through)."""
    plan: Plan | None = None
    retry_after: float = 1.0
    slow_seconds: float = 3.0
    seen: list[Seen] = field(default_factory=list)
    authorization: set[str] = field(default_factory=set)
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: Counter[str] = Counter()
        self._in_flight = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        # A fresh upstream connection per request: the server's idle keep-alive timeout must
        # not turn into faults nobody planned.
        self._client = httpx2.AsyncClient(
            base_url=self.upstream,
            timeout=600.0,
            limits=httpx2.Limits(max_keepalive_connections=0),
        )
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
        await self._client.aclose()

    # -- counting ------------------------------------------------------------------------------
    def faults(self) -> Counter[str]:
        with self._lock:
            return Counter(s.fault for s in self.seen if s.fault)

    def forwarded(self) -> int:
        """Requests the real server answered (including those the client never saw)."""
        with self._lock:
            return sum(1 for s in self.seen if s.fault in (None, "slow", "lost", "cut"))

    def requests(self) -> int:
        with self._lock:
            return len(self.seen)

    def wait_idle(self, timeout: float = 120.0) -> None:
        """Until no request is being handled (a killed client's requests still finish here)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._in_flight == 0:
                    return
            time.sleep(0.1)
        raise TimeoutError("fault proxy still busy")

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()
            self._attempts.clear()

    # -- one connection ------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                if not await self._one(method, path, headers, body, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _one(
        self, method: str, path: str, headers: dict[str, str], body: bytes, writer
    ) -> bool:
        """Answer one request; False when the connection is to be dropped."""
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = {}
        arrived = time.monotonic()
        digest = hashlib.sha256(method.encode() + path.encode() + body).hexdigest()[:16]
        with self._lock:
            attempt = self._attempts[digest]
            self._attempts[digest] += 1
            self._in_flight += 1
            if "authorization" in headers:
                self.authorization.add(headers["authorization"])
        fault = self.plan(payload, attempt) if self.plan and method == "POST" else None
        status: int | None = None
        try:
            if fault in ("500", "503", "429"):
                status = int(fault)
                extra = {"Retry-After": f"{self.retry_after:g}"} if fault == "429" else {}
                msg = json.dumps({"error": {"message": f"injected {fault}"}}).encode()
                await self._write(writer, status, msg, extra)
                return True
            if fault == "drop":
                return False
            if fault == "echo":
                status = 400
                sent = headers.get("authorization", "no authorization")
                msg = json.dumps({"error": {"message": f"bad request from '{sent}'"}})
                await self._write(writer, status, msg.encode(), {})
                return True
            if fault == "slow":
                await asyncio.sleep(self.slow_seconds)
            fwd = {k: v for k, v in headers.items() if k in ("content-type", "authorization")}
            try:
                resp = await self._client.request(method, path, content=body, headers=fwd)
            except httpx2.TransportError:
                status = 502
                await self._write(writer, status, b'{"error": "upstream failed"}', {})
                return True
            status = resp.status_code
            if fault == "lost":
                return False
            if fault == "cut":
                head = (
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(resp.content)}\r\n\r\n"
                ).encode()
                writer.write(head + resp.content[: len(resp.content) // 2])
                await writer.drain()
                return False
            await self._write(writer, status, resp.content, {})
            return True
        finally:
            with self._lock:
                self.seen.append(Seen(digest, attempt, fault, status, arrived))
                self._in_flight -= 1

    @staticmethod
    async def _write(writer, status: int, content: bytes, extra: dict[str, str]) -> None:
        lines = [
            f"HTTP/1.1 {status} X",
            "Content-Type: application/json",
            f"Content-Length: {len(content)}",
            *(f"{k}: {v}" for k, v in extra.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + content)
        await writer.drain()
