"""The Task contract and what every task shares: data location, scoring around extract/grade.

A task module supplies `load`, `prompt`, `extract`, `grade` and `steps`; `score` here turns a
generation into a Score the same way for every task (truncation, extraction rule, leniency).
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.hub import hub_unreachable
from harness.models import R1_MATH_INSTRUCTION
from harness.tasks.grading.extract import Extraction
from harness.types import Generation, Message, Problem, Score

PROMPT_STYLES = ("r1", "cot-fewshot", "plain")


@dataclass(frozen=True)
class DataSource:
    """Where a task may read its data: a local folder with the shared layout, or the hub."""

    data_dir: Path | None = None
    hub: bool = True

    @classmethod
    def resolve(cls, data_dir: str | Path | None, hub: bool = True) -> DataSource:
        """--data-dir, else HARNESS_DATA_DIR, else none (hub only)."""
        raw = str(data_dir) if data_dir else os.environ.get("HARNESS_DATA_DIR")
        if not raw:
            return cls(None, hub)
        path = Path(raw).expanduser()
        origin = "--data-dir" if data_dir else "HARNESS_DATA_DIR"
        if not path.is_dir():
            raise HarnessError(
                f"data dir {path} (from {origin}) does not exist: pass a folder laid out as "
                "<dir>/gsm8k/test.jsonl, <dir>/math500/test.jsonl, ... (see README, 'Data')"
            )
        return cls(path, hub)

    def local(self, *parts: str) -> Path | None:
        if self.data_dir is None:
            return None
        p = self.data_dir.joinpath(*parts)
        return p if p.exists() else None


@dataclass(frozen=True)
class Loaded:
    problems: list[Problem]
    source: str


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a JSONL data file; a malformed line is bad input, named by number."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise HarnessError(f"{path}:{lineno}: not valid JSON ({e.msg})") from e
            yield lineno, row


def load_hub(task: str, path: str, name: str | None, split: str, revision: str) -> list[dict]:
    """A pinned split from the hub via `datasets`; one clear line when the hub is unreachable."""
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - datasets is a core dependency
        raise HarnessError(f"{task}: the hub needs the `datasets` package") from e
    down = hub_unreachable()
    if down:
        raise HarnessError(
            f"{task}: no local data and the hub is unreachable ({down}); pass --data-dir (or "
            f"set HARNESS_DATA_DIR) to a folder with {task}/ in the layout described in the "
            "README, or set HF_HUB_OFFLINE=1 to use a copy already in the Hugging Face cache"
        )
    try:
        ds = datasets.load_dataset(path, name, split=split, revision=revision)
    except Exception as e:  # noqa: BLE001 - any failure here means "no hub"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HarnessError(
            f"{task}: no local data and the hub copy {path}@{revision[:12]} could not be loaded "
            f"({first[:160]}); pass --data-dir (or set HARNESS_DATA_DIR) to a folder with "
            f"{task}/ in the layout described in the README"
        ) from e
    return [dict(r) for r in ds]


class Task(ABC):
    """A benchmark family. One module per task, one line in the registry."""

    name: str = ""
    description: str = ""
    kind: str = "math"
    """math | choice | code | text: decides prompt wording and grading helpers."""

    def __init__(self, options: dict[str, str] | None = None) -> None:
        self.options = dict(options or {})
        if self.options:
            allowed = self.allowed_options()
            bad = sorted(set(self.options) - set(allowed))
            if bad:
                raise HarnessError(
                    f"task {self.name}: unknown option(s) {', '.join(bad)}"
                    + (f"; known: {', '.join(allowed)}" if allowed else "; it takes none")
                )

    def allowed_options(self) -> tuple[str, ...]:
        return ()

    @property
    def spec(self) -> str:
        if not self.options:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.options.items())

    # -- data ---------------------------------------------------------------------------
    @abstractmethod
    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        """The problems in the set's own order; `limit` takes the first N."""

    def available(self, source: DataSource) -> bool:
        """Whether load() can run without the hub (for the offline default)."""
        return False

    def size(self, source: DataSource) -> int | None:
        """Number of problems where cheaply known (for `harness tasks`)."""
        return None

    # -- prompting ------------------------------------------------------------------------
    def prompt(self, problem: Problem, style: str = "r1") -> list[Message]:
        if style not in PROMPT_STYLES:
            raise HarnessError(
                f"unknown prompt style '{style}'; use one of {', '.join(PROMPT_STYLES)}"
            )
        if style == "plain":
            return [Message("user", problem.question)]
        if style == "cot-fewshot":
            raise HarnessError(
                f"task {self.name} has no cot-fewshot prompt; use --style r1 or plain"
            )
        return [Message("user", f"{problem.question}\n{R1_MATH_INSTRUCTION}")]

    # -- grading --------------------------------------------------------------------------
    @abstractmethod
    def extract(self, text: str) -> Extraction | None:
        """The final answer in the answer part of an output, with the rule that found it."""

    @abstractmethod
    def grade(self, answer: str, problem: Problem) -> bool:
        """Whether an extracted answer is the gold answer."""

    def same_answer(self, a: str, b: str) -> bool:
        """Whether two extracted answers agree (teacher-student agreement)."""
        return " ".join(a.split()).lower() == " ".join(b.split()).lower()

    def steps(self, problem: Problem) -> int | None:
        """Reasoning depth from the gold solution, where it allows one."""
        return None

    def score(self, generation: Generation, problem: Problem) -> Score:
        """Grade one generation: shared truncation and extraction bookkeeping for all tasks."""
        if not generation.ok:
            return Score(correct=None, detail=generation.error or "")
        cut = generation.finish_reason == "length"
        if generation.reasoning_closed is False:
            return Score(
                correct=False, truncated=True, detail="reasoning never closed: no answer given"
            )
        found = self.extract(generation.text)
        if found is None:
            return Score(correct=False, truncated=cut, detail="no answer found")
        return Score(
            correct=self.grade(found.answer, problem),
            answer=found.answer,
            extractor=found.rule,
            lenient=found.lenient,
            truncated=cut,
        )
