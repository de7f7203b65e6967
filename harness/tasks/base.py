"""The Task contract and what every task shares: data location, scoring around extract/grade.

A task module supplies `load`, `prompt`, `extract`, `grade` and `steps`; `score` here turns a
generation into a Score the same way for every task (truncation, extraction rule, leniency).
"""

from __future__ import annotations

import gzip
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import HarnessError
from harness.hub import hub_unreachable
from harness.options import NoOptions, parse_options
from harness.prompts import (
    ANSWER_FORMATS,
    CHOICE_INSTRUCTION,
    CODE_INSTRUCTION,
    PROMPT_STYLES,
    R1_MATH_INSTRUCTION,
    STATED_CONFIDENCE_INSTRUCTION,
    choice_instruction,
)
from harness.tasks.grading.extract import (
    LETTERS,
    Extraction,
    answer_text,
)
from harness.types import Generation, Message, Problem, Score

__all__ = ["CHOICE_INSTRUCTION", "CODE_INSTRUCTION", "PROMPT_STYLES"]


@dataclass(frozen=True)
class Verdict:
    """A grade with its reason, for graders that have more to say than yes or no (a sandbox
    timeout, a math-verify timeout). correct=None: the answer could not be graded at all."""

    correct: bool | None
    detail: str = ""


def format_choices(
    choices: tuple[str, ...] | list[str], labels: Sequence[str] | None = None
) -> str:
    """Options as `(A) text` lines, the form the extractors read back; `labels` replaces the
    letters (an `options` variant's `1`, `2`, ... or `I`, `II`, ...)."""
    shown = list(labels) if labels else list(LETTERS[: len(choices)])
    return "\n".join(f"({shown[i]}) {text}" for i, text in enumerate(choices))


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


@dataclass(frozen=True)
class HubSplit:
    """The pinned hub copy a task loads when the data dir has no file for it."""

    repo: str
    config: str | None
    revision: str
    split: str = "test"


@dataclass(frozen=True)
class Rows:
    """A data file's rows, each with its location for error messages, and where they came from."""

    items: list[tuple[str, dict[str, Any]]]
    source: str
    from_hub: bool


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a JSONL data file (gzipped when it ends in .gz); a malformed line
    is bad input, named by number."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise HarnessError(f"{path}:{lineno}: not valid JSON ({e.msg})") from e
            yield lineno, row


def read_json(path: Path) -> Any:
    """A whole JSON data file; broken JSON is bad input, named with its position."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise HarnessError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from e


def load_hub(
    task: str,
    path: str,
    name: str | None,
    split: str,
    revision: str,
    *,
    local: str | None = None,
) -> list[dict]:
    """A pinned split from the hub via `datasets`; one clear line when the hub is unreachable.

    `local` names the file of the data-dir layout that would replace this download (default:
    the task's folder)."""
    wanted = local or f"{task}/"
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - datasets is a core dependency
        raise HarnessError(f"{task}: the hub needs the `datasets` package") from e
    down = hub_unreachable()
    if down:
        raise HarnessError(
            f"{task}: no local data and the hub is unreachable ({down}); pass --data-dir (or "
            f"set HARNESS_DATA_DIR) to a folder with {wanted} in the layout described in the "
            "README, or set HF_HUB_OFFLINE=1 to use a copy already in the Hugging Face cache"
        )
    try:
        ds = datasets.load_dataset(path, name, split=split, revision=revision)
    except Exception as e:  # noqa: BLE001 - any failure here means "no hub"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HarnessError(
            f"{task}: no local data and the hub copy {path}@{revision[:12]} could not be loaded "
            f"({first[:160]}); pass --data-dir (or set HARNESS_DATA_DIR) to a folder with "
            f"{wanted} in the layout described in the README"
        ) from e
    return [dict(r) for r in ds]


def _first_local(source: DataSource, files: Sequence[str]) -> Path | None:
    for rel in files:
        path = source.local(*rel.split("/"))
        if path is not None:
            return path
    return None


class Task(ABC):
    """A benchmark family. One module per task, one line in the registry."""

    name: str = ""
    description: str = ""
    kind: str = "math"
    """math | choice | code | text: decides prompt wording and grading helpers."""
    positional: str | None = None
    """The option a bare value after the colon sets (`bbh:navigate` is bbh with
    subtask=navigate); None: the task takes key=value options only."""
    default_run: bool = True
    """Part of the offline default task set when its data is local (False for aliases that
    repeat another task's problems, e.g. `aime` = aime24 + aime25)."""
    local_files: tuple[str, ...] = ()
    """Files of the data-dir layout this task reads, the first one present wins."""
    hub_split: HubSplit | None = None
    count: int | None = None
    """Number of problems in the standard set (for `harness tasks` and load checks)."""
    train_files: tuple[str, ...] = ()
    """The task's training split in the data-dir layout: what the failure classifier measures
    a problem's OOD distance against when no distillation data is given."""
    train_split: HubSplit | None = None
    """The same split's pinned hub copy."""

    options_type: ClassVar[type[Any]] = NoOptions
    """The task's options, a frozen dataclass of `option()` fields: declared once, so parsing,
    checking and `harness tasks --task NAME` all read the same place."""

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        self.options: dict[str, str] = dict(options or {})
        """The options as written (strings): they make `spec`, which names the task in
        records, run ids and cache keys, so they are kept verbatim."""
        self.opts: Any = parse_options(self.options_type, self.options, f"task {self.name}")
        """The same options parsed into `options_type` (defaults filled in)."""

    def origin(self, source: DataSource) -> str:
        """Where `harness tasks` says the problems come from."""
        return "local" if self.available(source) else "hub"

    @property
    def spec(self) -> str:
        if not self.options:
            return self.name
        opts = dict(self.options)
        parts = [opts.pop(self.positional)] if self.positional in opts else []
        parts += [f"{k}={v}" for k, v in opts.items()]
        return self.name + ":" + ",".join(parts)

    # -- data ---------------------------------------------------------------------------
    @abstractmethod
    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        """The problems in the set's own order; `limit` takes the first N."""

    def local_path(self, source: DataSource) -> Path | None:
        return _first_local(source, self.local_files)

    def available(self, source: DataSource) -> bool:
        """Whether load() can run without the hub (for the offline default)."""
        return self.local_path(source) is not None

    def size(self, source: DataSource) -> int | None:
        """Number of problems where cheaply known (for `harness tasks`)."""
        return self.count

    def read_local(self, path: Path) -> list[tuple[str, dict[str, Any]]]:
        """(location, row) of a local file: JSON Lines, or one JSON list when it ends in .json."""
        if path.suffix == ".json":
            data = read_json(path)
            if not isinstance(data, list):
                raise HarnessError(f"{path}: expected a JSON list of {self.name} problems")
            return [(f"{path} item {i}", row) for i, row in enumerate(data)]
        return [(f"{path}:{n}", row) for n, row in read_jsonl(path)]

    def read_rows(
        self,
        source: DataSource,
        limit: int | None = None,
        *,
        local_files: tuple[str, ...] | None = None,
        hub_split: HubSplit | None = None,
    ) -> Rows:
        """The set's rows from the data dir, else from the pinned hub copy; one line when
        neither can be had. Tasks made of several files (AIME years, BBH subtasks) pass each
        file's `local_files` and `hub_split` in place of the class's."""
        files = self.local_files if local_files is None else local_files
        hub_copy = self.hub_split if hub_split is None else hub_split
        path = self.local_path(source) if local_files is None else _first_local(source, files)
        if path is not None:
            items, where, hub = self.read_local(path), f"local file {path}", False
        elif source.hub and hub_copy is not None:
            h = hub_copy
            got = load_hub(
                self.name,
                h.repo,
                h.config,
                h.split,
                h.revision,
                local=" or ".join(files) or None,
            )
            items = [(f"{h.repo} row {i}", row) for i, row in enumerate(got)]
            where, hub = f"hub {h.repo}@{h.revision[:12]}", True
        else:
            wanted = " or ".join(files) or f"{self.name}/"
            raise HarnessError(f"{self.name}: no {wanted} in the data dir and the hub is off")
        return Rows(items[:limit] if limit is not None else items, where, hub)

    def train_questions(
        self, source: DataSource, limit: int | None = None
    ) -> tuple[list[str], str] | None:
        """Question texts of the task's training split and where they came from; None when the
        task has no such split or it cannot be had. The hub is asked only when the data dir
        has no file of the task's own (a run that read local data stays local)."""
        if not self.train_files and self.train_split is None:
            return None
        local_test = self.local_path(source) is not None
        hub = None if local_test else self.train_split
        if not _first_local(source, self.train_files) and hub is None:
            return None
        try:
            rows = self.read_rows(source, limit, local_files=self.train_files, hub_split=hub)
        except HarnessError:
            return None
        out = [
            q
            for _, row in rows.items
            if isinstance(q := row.get("question") or row.get("problem"), str) and q.strip()
        ]
        return (out, rows.source) if out else None

    # -- prompting ------------------------------------------------------------------------
    def render(self, problem: Problem) -> str:
        """The problem as the model reads it: the question, then its options if it has any."""
        if problem.choices:
            # Labels other than A, B, ... only where an `options` variant chose them.
            labels = problem.meta.get("labels") if problem.meta.get("label_style") else None
            return f"{problem.question}\n\n{format_choices(problem.choices, labels)}"
        return problem.question

    def instruction(self, problem: Problem) -> str:
        """The `r1` style's closing instruction for this kind of answer; a variant may ask for
        another answer form (`meta["answer_format"]`) or option labels (`meta["label_style"]`)."""
        form = problem.meta.get("answer_format", "boxed")
        if self.kind == "choice":
            label = problem.meta.get("label_style", "letter")
            if label == "letter" and form == "boxed":
                return CHOICE_INSTRUCTION
            return choice_instruction(label, form)
        if self.kind == "code":
            return CODE_INSTRUCTION
        return ANSWER_FORMATS.get(form, R1_MATH_INSTRUCTION)

    def prompt(self, problem: Problem, style: str = "r1") -> list[Message]:
        """r1: zero-shot, no system prompt, the kind's closing instruction; plain: the problem
        alone; cot-fewshot: the task's own worked examples (tasks that have them override)."""
        if style not in PROMPT_STYLES:
            raise HarnessError(
                f"unknown prompt style '{style}'; use one of {', '.join(PROMPT_STYLES)}"
            )
        if style == "r1-confidence":  # r1, plus a stated confidence for calibration
            *head, last = self.prompt(problem, "r1")
            return [*head, Message(last.role, f"{last.content}\n{STATED_CONFIDENCE_INSTRUCTION}")]
        if style == "plain":
            return [Message("user", self.render(problem))]
        if style == "cot-fewshot":
            raise HarnessError(
                f"task {self.name} has no cot-fewshot prompt; use --style r1 or plain"
            )
        return [Message("user", f"{self.render(problem)}\n{self.instruction(problem)}")]

    # -- grading --------------------------------------------------------------------------
    @abstractmethod
    def extract(self, text: str) -> Extraction | None:
        """The final answer in the answer part of an output, with the rule that found it."""

    def extract_answer(self, text: str, problem: Problem) -> Extraction | None:
        """The answer for one problem; tasks whose reading depends on the problem (option
        texts, the prompt a completion continues) override this, others use `extract`."""
        return self.extract(text)

    @abstractmethod
    def grade(self, answer: str, problem: Problem) -> bool | Verdict:
        """Whether an extracted answer is the gold answer (a Verdict when there is a reason
        to record, or when the answer could not be graded)."""

    def same_answer(self, a: str, b: str) -> bool:
        """Whether two extracted answers agree (teacher-student agreement)."""
        return " ".join(a.split()).lower() == " ".join(b.split()).lower()

    def steps(self, problem: Problem) -> int | None:
        """Reasoning depth from the gold solution, where it allows one."""
        return None

    def grade_many(self, pairs: Sequence[tuple[str, Problem]]) -> list[bool | Verdict]:
        """Grade many (answer, problem) pairs; tasks whose grading has a fixed cost per call
        (code run in a sandbox) override this to run them together."""
        return [self.grade(answer, problem) for answer, problem in pairs]

    def score(self, generation: Generation, problem: Problem) -> Score:
        """Grade one generation: shared truncation and extraction bookkeeping for all tasks."""
        return self.score_many([(generation, problem)])[0]

    def score_many(self, items: Sequence[tuple[Generation, Problem]]) -> list[Score]:
        """Grade generations the way `score` does, with one `grade_many` call for all of them
        (what a runner should call for a whole task: code tasks grade in parallel)."""
        if type(self).score is not Task.score:  # a task that scores in its own way
            return [self.score(generation, problem) for generation, problem in items]
        scores: list[Score | None] = []
        pending: list[tuple[int, Extraction, Problem, bool]] = []
        for generation, problem in items:
            if not generation.ok:
                scores.append(Score(correct=None, detail=generation.error or ""))
                continue
            cut = generation.finish_reason == "length"
            if generation.reasoning_closed is False:
                scores.append(
                    Score(
                        correct=False,
                        truncated=True,
                        detail="reasoning never closed: no answer given",
                    )
                )
                continue
            # A chat turn the model went on to write (`<|im_start|>user ...`) is not its answer.
            text, leaked = answer_text(generation.text)
            found = self.extract_answer(text, problem)
            if found is None:
                detail = "no answer found" + ("; leaked chat turn cut" if leaked else "")
                scores.append(Score(correct=False, truncated=cut, detail=detail))
                continue
            pending.append((len(scores), found, problem, cut))
            scores.append(None)
        graded = self.grade_many([(found.answer, problem) for _, found, problem, _ in pending])
        for (i, found, _, cut), grade in zip(pending, graded, strict=True):
            verdict = grade if isinstance(grade, Verdict) else Verdict(bool(grade))
            scores[i] = Score(
                correct=verdict.correct,
                answer=found.answer,
                extractor=found.rule,
                lenient=found.lenient,
                truncated=cut,
                detail=verdict.detail,
            )
        return [s for s in scores if s is not None]
