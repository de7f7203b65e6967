"""A scripted OpenAI-compatible server on loopback, for what a real small model cannot show.

It answers `POST .../chat/completions` with whatever `respond(body, n)` returns for the n-th
request (0-based), after `delay(n)` seconds. Tests use it for a server that splits reasoning
off (`reasoning_content`, as DeepSeek's API and vLLM's reasoning parser do), and for one slow
enough that a run can be interrupted while requests are in flight. Each request's JSON body is
kept in `bodies`. Only loopback addresses are used.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Respond = Callable[[dict[str, Any], int], dict[str, Any]]


def chat_reply(
    content: str | None,
    *,
    reasoning: str | None = None,
    finish: str = "stop",
    completion_tokens: int = 8,
) -> dict[str, Any]:
    """A chat completion with one choice, as an OpenAI-compatible server sends it."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 12, "completion_tokens": completion_tokens},
    }


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
    """One JSON answer with its length (the loopback servers of the tests share it)."""
    blob = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(blob)))
    handler.end_headers()
    handler.wfile.write(blob)


class FakeOpenAI:
    """`with FakeOpenAI(respond) as server:` serves on a free port; `server.url` ends in /v1."""

    def __init__(self, respond: Respond, delay: Callable[[int], float] = lambda n: 0.0) -> None:
        self.respond = respond
        self.delay = delay
        self.bodies: list[dict[str, Any]] = []
        self.answered = 0
        self.release = threading.Event()
        """Set to cut every pending delay short (the test is done with slow answers)."""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def requests(self) -> int:
        with self._lock:
            return len(self.bodies)

    def __enter__(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    n = len(fake.bodies)
                    fake.bodies.append(body)
                wait = fake.delay(n)
                if wait > 0:
                    fake.release.wait(wait)
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                reply = fake.respond(body, n)
                try:
                    self._send(200, reply)
                except OSError:  # the client gave up (interrupted): nobody to answer
                    return
                with fake._lock:
                    fake.answered += 1

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                send_json(self, status, payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
