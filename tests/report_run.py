"""A real run whose student writes hostile text, for the report's tests.

The reference teacher against a replayed student on 4 chains problems: one chain opens with a
script tag and boxes an <img onerror> answer, one breaks out of a textarea and writes a
javascript: link (and is right), one is a 1 MB single line, one repeats the teacher's steps
(right, so its steps all match).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.tasks import DataSource, get_task
from tests.conftest import cli

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
TEXTAREA = "</textarea>"
LINK = "[x](javascript:alert(1))"
BIG_LINE = "<script>alert(2)</script>" + "y" * 1_000_000
PAYLOADS = (SCRIPT, IMG, TEXTAREA, LINK)
TASK = "chains:depth=2-4"


def responses() -> list[dict[str, str]]:
    problems = get_task(TASK).load(DataSource(None, hub=False), 4).problems
    rows = []
    for i, p in enumerate(problems):
        steps = "\n".join((p.reference or "").splitlines()[:-1])
        sure = f"Confidence: {(30, 80, 60, 90)[i]}%"  # stated: calibration and routing
        if i == 0:
            text = f"<think>\n{SCRIPT}\n{steps}\n</think>\n{sure}\nSo: \\boxed{{{IMG}}}"
        elif i == 1:
            chain = f"{TEXTAREA}<b>bold</b>\n{LINK}"
            text = f"<think>\n{chain}\n</think>\n{sure}\n\\boxed{{{p.answer}}} {TEXTAREA}"
        elif i == 2:
            text = f"<think>\n{BIG_LINE}\n</think>\n{sure}\n\\boxed{{-1}}"
        else:
            text = f"<think>\n{steps}\n</think>\n{sure}\nThe answer is \\boxed{{{p.answer}}}."
        rows.append({"question": p.question, "response": text})
    return rows


def hostile_run(root: Path, run_id: str = "hostile", seed: int = 0) -> Path:
    """Run it with `harness run` (which also writes failures.jsonl and report.html)."""
    replay = root / f"{run_id}.jsonl"
    replay.write_text("".join(json.dumps(r) + "\n" for r in responses()), encoding="utf-8")
    proc = cli(
        "run",
        "--student",
        f"replay:{replay}",
        "--tasks",
        TASK,
        "--limit",
        "4",
        "--seed",
        str(seed),
        "--out",
        str(root / "runs"),
        "--run-id",
        run_id,
        "--cache-dir",
        str(root / "cache"),
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    return root / "runs" / run_id


_SCRIPT_TAG = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)


def scripts(page: str) -> list[tuple[str, str]]:
    """(attributes, content) of every script element of the page."""
    return [(m.group(1), m.group(2)) for m in _SCRIPT_TAG.finditer(page)]


def outside_scripts(page: str) -> str:
    """The page with every script element's content removed (tags kept)."""
    return _SCRIPT_TAG.sub(lambda m: f"<script{m.group(1)}></script>", page)
