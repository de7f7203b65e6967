"""The openai backend against a fleet: `openai:<model>@<url>+<url>`.

Two or three small OpenAI-compatible servers on loopback (http.server in threads) answer each
chat completion with text that depends only on the prompt, so any server's answer is the
answer. They count what they served and how many calls they held at once, and can die after
N requests (in-flight calls cut, then connections refused) or answer every call with a 5xx.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.backends.openai import OpenAIBackend
from harness.errors import HarnessError
from harness.models import parse_spec
from harness.store import cache_key
from harness.types import Generation, Message, Problem, Request, Sampling
from tests.conftest import cli
from tests.fakeopenai import chat_reply, send_json
from tests.llama_server import free_port


def answer_for(prompt: str) -> str:
    """What every server says to a prompt: the same text whichever one answers."""
    return f"Reply {hashlib.sha256(prompt.encode()).hexdigest()[:10]}. \\boxed{{{len(prompt)}}}"


class Server:
    """`with Server(...) as s:` serves chat completions on a free loopback port.

    `delay`: seconds each call takes. `die_after`: after answering that many calls the server
    dies: calls in flight or arriving are cut without an answer and the port is closed.
    `status`: answer every call with this HTTP error instead.
    """

    def __init__(
        self, delay: float = 0.0, die_after: int | None = None, status: int | None = None
    ) -> None:
        self.delay = delay
        self.die_after = die_after
        self.status = status
        self.served = 0
        self.received = 0
        self.current = 0
        self.max_current = 0
        self.dead = False
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def kill(self) -> None:
        """Stop listening: from now on a connection is refused."""
        with self._lock:
            if self.dead:
                return
            self.dead = True
        httpd = self._httpd
        assert httpd is not None

        def stop() -> None:
            httpd.shutdown()
            httpd.server_close()

        threading.Thread(target=stop, daemon=True).start()

    def __enter__(self) -> Server:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with srv._lock:
                    srv.received += 1
                    srv.current += 1
                    srv.max_current = max(srv.max_current, srv.current)
                try:
                    if srv.delay:
                        time.sleep(srv.delay)
                    with srv._lock:
                        dying = srv.die_after is not None and srv.served >= srv.die_after
                    if dying or srv.dead:
                        srv.kill()
                        self.close_connection = True  # cut: no answer at all
                        return
                    if srv.status is not None:
                        self._send(srv.status, {"error": {"message": "overloaded"}})
                        return
                    prompt = body["messages"][-1]["content"]
                    self._send(200, chat_reply(answer_for(prompt)))
                    with srv._lock:
                        srv.served += 1
                finally:
                    with srv._lock:
                        srv.current -= 1

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                send_json(self, status, payload)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.dead:
            self.kill()


def fleet_spec(servers: list[Server], **opts: str) -> str:
    options = {"backoff": "0.05", "timeout": "20", **opts}
    fragment = ",".join(f"{k}={v}" for k, v in options.items())
    return f"openai:m@{'+'.join(s.url for s in servers)}#{fragment}"


def requests_for(n: int) -> list[Request]:
    s = Sampling(temperature=0.0, max_new_tokens=16)
    out = []
    for i in range(n):
        text = f"question number {i}"
        problem = Problem(id=f"p{i}", task="t", question=text, answer="")
        out.append(Request(f"k{i}", problem, (Message("user", text),), 0, s, 0))
    return out


def run_all(spec: str, reqs: list[Request], tmp_path: Path) -> tuple[OpenAIBackend, list]:
    backend = OpenAIBackend(parse_spec(spec), cache_dir=tmp_path)
    try:
        return backend, backend.generate(reqs)
    finally:
        backend.close()


def assert_all_answered(reqs: list[Request], gens: list[Generation]) -> None:
    for r, g in zip(reqs, gens, strict=True):
        assert g.error is None, g.error
        assert g.text == answer_for(r.messages[-1].content)


# -- the spec ----------------------------------------------------------------------------------


def test_a_fleet_spec_has_the_cache_identity_of_its_first_server():
    single = parse_spec("openai:m@http://a:8000/v1#concurrency=4")
    fleet = parse_spec("openai:m@http://a:8000/v1+http://b:8000/v1+http://c:8000/v1")
    assert fleet.option("base_url") == "http://a:8000/v1"
    assert fleet.option("fleet") == "http://b:8000/v1+http://c:8000/v1"
    assert fleet.cache_id == single.cache_id
    r = requests_for(1)[0]
    keys = {cache_key(s.cache_id, "prompt", r.sampling, r.sample, r.seed) for s in (single, fleet)}
    assert len(keys) == 1
    # Another first server is another identity, as for one server.
    assert parse_spec("openai:m@http://b:8000/v1+http://a:8000/v1").cache_id != single.cache_id


@pytest.mark.parametrize(
    "spec",
    ["openai:m@http://a/v1+ftp://b/v1", "openai:m@+", "openai:m@http://a/v1+b:80/v1"],
)
def test_a_bad_fleet_url_is_one_line(spec):
    with pytest.raises(HarnessError) as e:
        parse_spec(spec)
    assert "\n" not in str(e.value) and "<base_url>+<base_url>" in str(e.value)


# -- spread, limits, health --------------------------------------------------------------------


def test_work_is_spread_and_each_server_holds_at_most_concurrency(tmp_path):
    with Server(delay=0.05) as a, Server(delay=0.05) as b, Server(delay=0.05) as c:
        reqs = requests_for(36)
        backend, gens = run_all(fleet_spec([a, b, c], concurrency="3"), reqs, tmp_path)
    assert_all_answered(reqs, gens)
    assert a.served + b.served + c.served == 36
    for s in (a, b, c):
        assert s.served >= 6  # fewest-in-flight first: nobody is left idle
        assert 1 <= s.max_current <= 3
    assert max(s.max_current for s in (a, b, c)) == 3  # the limit is reached, not exceeded
    assert [ep.served for ep in backend.endpoints] == [a.served, b.served, c.served]


def test_a_server_that_dies_mid_run_hands_its_work_to_the_others(tmp_path):
    with Server(delay=0.02, die_after=4) as a, Server(delay=0.02) as b, Server() as c:
        reqs = requests_for(40)
        backend, gens = run_all(fleet_spec([a, b, c], concurrency="2"), reqs, tmp_path)
    assert_all_answered(reqs, gens)
    assert a.dead and a.served == 4
    assert a.served + b.served + c.served == 40
    # Whether the dead server also reached drop_after failures before the others finished the
    # work depends on timing; the live ones are never dropped.
    assert [ep.dead for ep in backend.endpoints][1:] == [False, False]


def test_a_server_answering_5xx_is_dropped(tmp_path):
    with Server(status=503) as a, Server() as b:
        reqs = requests_for(12)
        backend, gens = run_all(fleet_spec([a, b], concurrency="2"), reqs, tmp_path)
    assert_all_answered(reqs, gens)
    assert b.served == 12 and a.received <= 3 + 2  # dropped after 3 in a row (+ in flight)
    assert backend.endpoints[0].dead


def test_every_server_dead_stops_the_run_in_one_line(tmp_path):
    with Server(die_after=2) as a, Server(die_after=3) as b:
        urls = (a.url, b.url)
        backend = OpenAIBackend(parse_spec(fleet_spec([a, b], concurrency="1")), cache_dir=tmp_path)
        got: list[tuple[int, Generation]] = []
        t0 = time.monotonic()
        try:
            with pytest.raises(HarnessError) as e:
                for item in backend.stream(requests_for(20)):
                    got.append(item)
        finally:
            backend.close()
    message = str(e.value)
    assert "\n" not in message
    assert all(u in message for u in urls) and "last error" in message
    assert time.monotonic() - t0 < 20
    # What the servers answered before they died is handed over; the server's own kill (its
    # listening socket shut from another thread) can, rarely, cut the last answer on the wire.
    assert 4 <= len(got) <= 5 and len(got) <= a.served + b.served
    assert all(g.error is None for _, g in got)


def test_one_server_down_at_the_start_is_dropped_none_up_is_one_line(tmp_path):
    down = f"http://127.0.0.1:{free_port()}/v1"
    with Server() as b:
        reqs = requests_for(5)
        spec = f"openai:m@{down}+{b.url}#backoff=0.05"
        backend, gens = run_all(spec, reqs, tmp_path)
        assert_all_answered(reqs, gens)
        assert b.served == 5 and backend.endpoints[0].dead
    other = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(HarnessError) as e:
        OpenAIBackend(parse_spec(f"openai:m@{down}+{other}"), cache_dir=tmp_path)
    assert "\n" not in str(e.value) and down in str(e.value) and other in str(e.value)


def test_one_server_keeps_its_behaviour_retries_then_a_recorded_error(tmp_path):
    """No health tracking for a single server: 5xx is retried, then recorded, never fatal."""
    with Server(status=500) as a:
        backend, gens = run_all(fleet_spec([a], retries="2"), requests_for(2), tmp_path)
    assert not backend.fleet and not backend.endpoints[0].dead
    assert all(g.finish_reason == "error" and "gave up after 3" in (g.error or "") for g in gens)
    assert a.received == 6


# -- the same results as one server ------------------------------------------------------------


def cache_rows(cache: Path) -> dict[str, dict]:
    with sqlite3.connect(cache / "generations.sqlite", timeout=10) as con:
        rows = con.execute("SELECT key, model, data FROM generations").fetchall()
    return {k: json.loads(d) for k, m, d in rows if m.startswith("openai:")}


def run_cli(tmp_path: Path, student: str, cache: Path, run_id: str) -> None:
    args = ["run", "--student", student, "--teacher", "reference", "--tasks", "chains"]
    args += ["--limit", "6", "--quiet", "--out", str(tmp_path / "runs"), "--cache-dir"]
    done = cli(*args, str(cache), "--run-id", run_id)
    assert done.returncode == 0, done.stderr


def stable(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "seconds"}


@pytest.mark.slow
def test_a_fleet_run_has_the_cache_keys_and_results_of_a_single_server_run(tmp_path):
    with Server() as a, Server(delay=0.02) as b:
        run_cli(tmp_path, f"openai:m@{a.url}", tmp_path / "one", "one")
        single = cache_rows(tmp_path / "one")
        run_cli(tmp_path, f"openai:m@{a.url}+{b.url}#concurrency=2", tmp_path / "two", "two")
        fleet = cache_rows(tmp_path / "two")
        assert b.served > 0  # the second server did take part
        assert single.keys() == fleet.keys() and len(single) == 6
        assert {k: stable(v) for k, v in single.items()} == {k: stable(v) for k, v in fleet.items()}
        # The fleet reuses the single server's cache: nothing is asked again.
        before = a.received + b.received
        run_cli(tmp_path, f"openai:m@{a.url}+{b.url}", tmp_path / "one", "three")
        assert a.received + b.received == before
