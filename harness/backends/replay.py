"""Recorded generations from a JSONL file, scored as if a model had just produced them.

Rows are matched to problems by id when a row's id is the problem's id, else by the problem
text with whitespace normalized (exactly, then as a substring of a longer recorded prompt).
Several rows for one problem are its samples, in file order. A problem without a row is
reported by count and id and scored as missing, never as wrong; a malformed line is named by
its line number and skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.backends.base import Backend
from harness.console import warn
from harness.errors import HarnessError
from harness.options import option
from harness.reasoning import THINK_CLOSE, split_reasoning
from harness.spec import ModelSpec, SpecParts
from harness.types import Generation, Problem, Request, Sampling

QUESTION_FIELDS = ("question", "problem", "prompt")
RESPONSE_FIELDS = ("response", "full_response", "completion", "output", "text")
ID_FIELDS = ("problem_id", "id", "task_id")
REASONING_FIELDS = ("reasoning_content", "reasoning")


@dataclass(frozen=True)
class ReplayOptions:
    """Which fields of a row hold what, when they are not the usual names."""

    question: str | None = option(
        None, "field with the problem text (default: question/problem/prompt)"
    )
    response: str | None = option(
        None, "field with the output (default: response/full_response/completion/output/text)"
    )
    id: str | None = option(None, "field with the problem id (default: problem_id/id/task_id)")
    reasoning: str | None = option(
        None,
        "think: the outputs use <think> tags; none: they do not "
        "(default: think when any row has </think>)",
        choices=("think", "none"),
    )


def _norm(text: str) -> str:
    return " ".join(text.split())


def _text(value: object) -> str | None:
    """A field as text; chat-style lists of messages give their last content."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        content = value[-1].get("content")
        return content if isinstance(content, str) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


@dataclass(frozen=True)
class ReplayRow:
    line: int
    response: str
    question: str | None
    id: str | None
    reasoning: str | None


@dataclass
class ReplayFile:
    path: Path
    rows: list[ReplayRow]
    malformed: list[tuple[int, str]]
    think: bool
    by_id: dict[str, list[ReplayRow]]
    by_text: dict[str, list[ReplayRow]]


def _pick(row: dict, override: str | None, defaults: tuple[str, ...]) -> tuple[str | None, bool]:
    """(value, field present) for the overridden field, else the first default present."""
    names = (override,) if override else defaults
    for name in names:
        if name in row:
            return _text(row[name]), True
    return None, False


@lru_cache(maxsize=8)
def _read(path_str: str, mtime: float, opts: ReplayOptions) -> ReplayFile:
    path = Path(path_str)
    rows: list[ReplayRow] = []
    malformed: list[tuple[int, str]] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                malformed.append((lineno, f"not valid JSON ({e.msg})"))
                continue
            if not isinstance(obj, dict):
                malformed.append((lineno, "not a JSON object"))
                continue
            response, has_response = _pick(obj, opts.response, RESPONSE_FIELDS)
            if response is None:
                wanted = opts.response or "/".join(RESPONSE_FIELDS)
                why = "is not text" if has_response else "is missing"
                malformed.append((lineno, f"response field ({wanted}) {why}"))
                continue
            question, _ = _pick(obj, opts.question, QUESTION_FIELDS)
            rid, _ = _pick(obj, opts.id, ID_FIELDS)
            reasoning, _ = _pick(obj, None, REASONING_FIELDS)
            if question is None and rid is None:
                malformed.append((lineno, "neither a problem id nor a problem text to match on"))
                continue
            rows.append(ReplayRow(lineno, response, question, rid, reasoning))
    mode = opts.reasoning
    think = mode == "think" if mode else any(THINK_CLOSE in r.response for r in rows)
    by_id: dict[str, list[ReplayRow]] = defaultdict(list)
    by_text: dict[str, list[ReplayRow]] = defaultdict(list)
    for r in rows:
        if r.id is not None:
            by_id[r.id].append(r)
        if r.question is not None:
            by_text[_norm(r.question)].append(r)
    return ReplayFile(path, rows, malformed, think, dict(by_id), dict(by_text))


def _file_of(spec: ModelSpec) -> ReplayFile:
    path = Path(spec.model).expanduser()
    if not path.is_file():
        raise HarnessError(f"replay file {path} does not exist: pass replay:<path to .jsonl>")
    return _read(str(path.resolve()), path.stat().st_mtime, ReplayBackend.options_of(spec))


class ReplayBackend(Backend):
    name = "replay"
    generates = False
    default_batch_size = 1024
    options_class = ReplayOptions
    target = "<file.jsonl>"

    @classmethod
    def spec_from(cls, parts: SpecParts) -> ModelSpec:
        """The file is the model; its options stay as written (they name its fields)."""
        return ModelSpec(
            backend=cls.name,
            model=parts.target,
            name=parts.raw,
            options=parts.options,
            sampling=Sampling(temperature=0.0, max_new_tokens=0),
        )

    def __init__(self, spec: ModelSpec, **kw: Any) -> None:
        super().__init__(spec, **kw)
        self.file = _file_of(spec)
        for lineno, why in self.file.malformed:
            warn(f"{self.file.path}:{lineno}: skipped: {why}")
        if not self.file.rows:
            raise HarnessError(f"replay file {self.file.path} has no usable rows")
        self._containment: dict[str, list[ReplayRow]] | None = None

    @classmethod
    def fingerprint(cls, spec: ModelSpec, problem: Problem) -> str:
        f = _file_of(spec)
        return _digest_file(str(f.path), f.path.stat().st_mtime)

    def rows_for(self, problem: Problem) -> list[ReplayRow]:
        rows = self.file.by_id.get(problem.id)
        if rows:
            return rows
        key = _norm(problem.question)
        rows = self.file.by_text.get(key)
        if rows:
            return rows
        # A recorded prompt that wraps the problem text (instructions, chat markup).
        return [r for r in self.file.rows if r.question is not None and key in _norm(r.question)]

    def stream(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        for i, req in enumerate(requests):
            rows = self.rows_for(req.problem)
            if req.sample >= len(rows):
                have = f"only {len(rows)} recorded" if rows else "none recorded"
                yield (
                    i,
                    Generation(
                        text="",
                        finish_reason="missing",
                        error=f"no recorded generation for sample {req.sample} ({have})",
                    ),
                )
                continue
            row = rows[req.sample]
            reasoning: str | None
            closed: bool | None
            if row.reasoning is not None:
                reasoning, text, closed = row.reasoning, row.response.strip(), True
            else:
                reasoning, text, closed = split_reasoning(row.response, self.file.think)
            yield i, Generation(text=text, reasoning=reasoning, reasoning_closed=closed)


@lru_cache(maxsize=8)
def _digest_file(path: str, mtime: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]
