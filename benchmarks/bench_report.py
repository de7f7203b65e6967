"""The HTML report of a 10k-record run: how big is the file, how fast does it open?

    python benchmarks/bench_report.py [--records 10000] [--no-browser] [--keep DIR]

Builds a synthetic but realistically shaped run: 3 tasks, `--records` / 2 problems each
answered by a teacher and a student (R1-style chains: a few thousand characters each,
lognormal; 5% of the student's run to an 8k-token budget; a fifth of the problems are
perturbed variants), with its metrics (chain similarity included), failure labels and step
alignment. The embedder is a stand-in (a fixed random vector per distinct step), so no model
is loaded: the payload has the shape a real embedder gives, alignments included. Then opens
the report from disk in headless Chromium (the system's, HARNESS_CHROMIUM or
/usr/bin/chromium) and times it to the page's own ready mark (`<html data-ready>`), then a
filter change. Printed: build seconds, file size (goal < 20 MB), load seconds (goal < 3 s).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from harness.classify import classify_records  # noqa: E402
from harness.metrics import MetricOptions, compute_metrics  # noqa: E402
from harness.metrics.accuracy import str_equal  # noqa: E402
from harness.report import build_report  # noqa: E402
from harness.store import RunDir  # noqa: E402
from harness.types import Record  # noqa: E402

SIZE_GOAL_MB, LOAD_GOAL_S = 20.0, 3.0
TASKS = ("gsm8k", "math", "chains")
VOCABULARY = (
    "so the total is then we need to find how many each one gives left over first second "
    "next multiply divide add subtract means that because since therefore check again wait "
    "hmm let me recount carefully the number of apples boxes students pages dollars hours "
    "per week remaining equal groups share costs price twice half more fewer than original "
    "value answer result compute verify assume suppose consider case both sides equation"
)
WORDS = tuple(VOCABULARY.split())
HESITATIONS = (
    "Wait, let me double-check that.",
    "Hmm, that does not look right.",
    "Alternatively, we could count the other way.",
    "Let me verify this step again.",
)


class StandInEmbedder:
    """A fixed random unit vector per distinct step (by its text): equal steps match, other
    steps do not, as with a real model's cosine threshold."""

    dim = 32
    model_id = "stand-in"
    computed = cached = 0
    seconds = 0.0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        raw = b"".join(hashlib.shake_256(t.encode("utf-8")).digest(self.dim) for t in texts)
        v = np.frombuffer(raw, dtype=np.uint8).reshape(len(texts), self.dim).astype(np.float32)
        v -= 127.5
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def close(self) -> None:
        pass


def sentence(rng: np.random.Generator) -> str:
    words = [str(w) for w in rng.choice(WORDS, size=int(rng.integers(6, 16)))]
    a, b = int(rng.integers(2, 500)), int(rng.integers(2, 60))
    op, value = [("+", a + b), ("-", a - b), ("*", a * b)][int(rng.integers(0, 3))]
    return f"{' '.join(words).capitalize()}: {a} {op} {b} = {value}."


def chain(rng: np.random.Generator, chars: int, base: list[str] | None = None) -> list[str]:
    """Steps until about `chars` characters; with `base`, mostly the base's steps in order
    (a student that follows its teacher), with its own steps and hesitations in between."""
    steps: list[str] = []
    size = 0
    at = 0
    while size < chars:
        if base is not None and at < len(base) and rng.random() < 0.6:
            step = base[at]
            at += 1
        elif rng.random() < 0.08:
            step = str(rng.choice(HESITATIONS))
        else:
            step = sentence(rng)
        steps.append(step)
        size += len(step) + 1
    return steps


def synthetic_records(n: int, seed: int = 0) -> list[Record]:
    rng = np.random.default_rng(seed)
    problems = n // 2
    records: list[Record] = []
    for i in range(problems):
        task = TASKS[i % len(TASKS)]
        depth = int(rng.integers(1, 9))
        variant = rng.random() < 0.2 and i >= len(TASKS)
        parent = f"{task}-{i - len(TASKS)}" if variant else None
        pid = f"{parent}~surface-0" if variant else f"{task}-{i}"
        gold = str(int(rng.integers(1, 10_000)))
        question = " ".join(sentence(rng) for _ in range(int(rng.integers(2, 6)))) + " How many?"
        t_steps = chain(rng, int(rng.lognormal(np.log(2500), 0.6)))
        truncated = rng.random() < 0.05
        s_chars = 30_000 if truncated else int(rng.lognormal(np.log(3000), 0.7))
        s_steps = chain(rng, s_chars, base=t_steps)
        p_right = max(0.05, 0.95 - 0.1 * depth - (0.15 if variant else 0.0))
        s_right = not truncated and rng.random() < p_right
        t_right = rng.random() < 0.95
        for role, steps, right, cut in (
            ("teacher", t_steps, t_right, False),
            ("student", s_steps, s_right, truncated),
        ):
            answer = None if cut else (gold if right else str(int(gold) + int(rng.integers(1, 9))))
            text = "" if cut else f"The answer is \\boxed{{{answer}}}."
            records.append(
                Record(
                    run_id="bench",
                    task=task,
                    problem_id=pid,
                    role=role,  # type: ignore[arg-type]
                    sample=0,
                    model="R1-Distill-Qwen-7B" if role == "student" else "R1",
                    backend="vllm" if role == "student" else "openai",
                    question=question,
                    gold=gold,
                    text=text,
                    reasoning="\n".join(steps),
                    answer=answer,
                    extractor=None if cut else "boxed",
                    lenient=False,
                    correct=bool(right) and not cut,
                    truncated=cut,
                    finish_reason="length" if cut else "stop",
                    prompt_hash=f"{i:016x}",
                    cache_key=hashlib.sha256(f"{role}{pid}".encode()).hexdigest(),
                    prompt_tokens=len(question) // 4,
                    completion_tokens=8192 if cut else sum(len(s) for s in steps) // 4,
                    seconds=0.0,
                    cached=True,
                    steps=depth,
                    parent_id=parent,
                    perturbation="surface" if variant else None,
                    perturb_seed=0 if variant else None,
                )
            )
    return records


def write_run(root: Path, records: list[Record]) -> Path:
    run = RunDir(root / "bench")
    run.create()
    same = {t: str_equal for t in TASKS}
    embedder = StandInEmbedder()
    metrics = compute_metrics(
        records, same, MetricOptions(chains=True, chain_model="stand-in"), embedder=embedder
    )
    metrics["run"] = {
        "run_id": "bench",
        "student": "R1-Distill-Qwen-7B",
        "teacher": "R1",
        "samples": 1,
        "seconds": 0.0,
        "harness_version": "bench",
    }
    failures, section = classify_records(records, same, embedder=None)
    metrics["failures"] = section
    run.write_records(records)
    run.write_metrics(metrics)
    run.write_config({"student": "R1-Distill-Qwen-7B", "teacher": "R1", "seed": 0, "samples": 1})
    lines = (json.dumps(f.to_dict()) for f in failures)
    (run.path / "failures.jsonl").write_text("".join(x + "\n" for x in lines))
    return run.path


def load_in_browser(path: Path, repeat: int) -> list[tuple[float, float, float]]:
    """Per load, in a fresh page: (seconds to the ready mark from navigation, the page's own
    clock at ready, seconds for a filter change and an item to draw)."""
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        out = [_load_once(browser, path) for _ in range(repeat)]
        browser.close()
    return out


def _load_once(browser: Any, path: Path) -> tuple[float, float, float]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        t0 = time.perf_counter()
        page.goto(path.resolve().as_uri(), wait_until="commit")
        page.wait_for_selector("html[data-ready]", timeout=120_000)
        wall = time.perf_counter() - t0
        if page.get_attribute("html", "data-ready") != "true" or errors:
            why = errors or page.inner_text("#report-status")
            raise SystemExit(f"the report did not draw: {why}")
        own = float(page.get_attribute("html", "data-ready-ms") or "nan") / 1000
        before = page.get_attribute("#item-count", "data-count")
        t1 = time.perf_counter()
        page.select_option("#filter-outcome", "neither")
        page.wait_for_function(
            "(n) => document.getElementById('item-count').dataset.count !== n", arg=before
        )
        page.locator(".item-row").first.click()
        page.wait_for_selector("#item-detail table.aligned")
        return wall, own, time.perf_counter() - t1
    finally:
        page.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="page loads to time (the median)")
    ap.add_argument("--keep", type=Path, default=None, help="write the run here and keep it")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        t0 = time.perf_counter()
        records = synthetic_records(args.records)
        run = write_run(root, records)
        made = time.perf_counter() - t0
        chars = sum(len(r.reasoning or "") + len(r.text) for r in records)
        print(
            f"run: {len(records)} records, {chars / 1e6:.1f} M characters of output ({made:.1f} s)"
        )
        t1 = time.perf_counter()
        path = build_report(run, embedder=StandInEmbedder())
        built = time.perf_counter() - t1
        size = path.stat().st_size / 1e6
        print(f"{'':24}{'measured':>12}{'goal':>12}")
        print(f"{'build report (s)':24}{built:12.1f}{'-':>12}")
        print(f"{'file size (MB)':24}{size:12.1f}{'< ' + format(SIZE_GOAL_MB, 'g'):>12}")
        if args.no_browser:
            return
        loads = load_in_browser(path, args.repeat)
        wall, own, filtered = (statistics.median(x) for x in zip(*loads, strict=True))
        fastest = min(x[0] for x in loads)
        goal = "< " + format(LOAD_GOAL_S, "g")
        print(f"{'load to ready (s)':24}{wall:12.2f}{goal:>12}   median of {len(loads)}")
        print(f"{'  fastest load':24}{fastest:12.2f}")
        print(f"{'  page clock at ready':24}{own:12.2f}")
        print(f"{'filter + open item (s)':24}{filtered:12.2f}{'-':>12}")
        ok = size < SIZE_GOAL_MB and wall < LOAD_GOAL_S
        print("goals met" if ok else "goal missed")


if __name__ == "__main__":
    main()
