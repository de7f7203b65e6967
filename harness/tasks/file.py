"""`file:PATH[#key=value,...]`: a task made of a user's own JSON Lines (or JSON list) file, so a
problem set, or the variants `harness perturb` wrote, is evaluated without writing a module.

Graders (`grader=`), all of them the shared ones the built-in tasks use:
- `task`: each row names its task (`task` field, e.g. `gsm8k` or `bbh:navigate`, as `harness
  perturb` writes it) and is prompted, extracted and graded exactly as that task does; rows
  carry the whole problem (meta, lineage), so a variant file scores as it would in a run;
- `number`: a numeric answer (GSM8K's extractor and numeric equality);
- `math`: a LaTeX answer graded by mathematical equivalence (MATH's grader);
- `choice`: options in a list field, the gold a letter (or an option's text);
- `code`: `answer` is a canonical Python solution, `tests` a list of assert lines (MBPP's
  form, optional `setup` code run before them), run in the sandbox;
- `auto` (default): `task` when every row names one, else `choice` when rows have options,
  `number` when every gold is a number, `math` otherwise (code is never guessed).
Field names are options too (`question=prompt,answer=target,id=uid,parent=source_id`), and a
row with a parent id and a `perturbation` is a variant: headline figures count the rows
without a perturbation and the ood section compares the others with their parents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.options import option
from harness.tasks.base import DataSource, Loaded, Task, Verdict
from harness.tasks.code import CodeTask, count_statements
from harness.tasks.grading.extract import LETTERS, Extraction, extract_final_answer
from harness.tasks.grading.numeric import is_number, numbers_equal
from harness.tasks.multiple_choice import ChoiceTask, letter_reference
from harness.types import Generation, Message, Problem, Score

if TYPE_CHECKING:
    from harness.tasks.grading.sandbox import Job

GRADERS = ("auto", "task", "number", "math", "choice", "code")


@dataclass(frozen=True)
class FileOptions:
    path: str = option("", "the JSON Lines (or .json list) file of problems")
    grader: str = option("auto", "how answers are graded", choices=GRADERS)
    question: str = option("question", "field holding the question")
    answer: str = option("answer", "field holding the gold answer (code: the solution)")
    id: str = option("id", "field holding a problem's id (default: the row number)")
    parent: str = option("parent_id", "field holding the parent problem's id (variants)")
    choices: str = option("choices", "field holding the options (choice grader)")
    reference: str = option("reference", "field holding a worked solution (optional)")
    tests: str = option("tests", "field holding the assert lines (code grader)")


class _Unloadable(Task):
    """A grader borrowed by the file task: it never loads problems itself."""

    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        raise HarnessError(f"{self.name}: graders of the file task load nothing")


class _Number(_Unloadable):
    name = "file-number"
    kind = "math"

    def extract(self, text: str) -> Extraction | None:
        return extract_final_answer(text, kind="number", accept=is_number)

    def grade(self, answer: str, problem: Problem) -> bool:
        return numbers_equal(answer, problem.answer)

    def same_answer(self, a: str, b: str) -> bool:
        return numbers_equal(a, b)


class _Choice(ChoiceTask, _Unloadable):
    name = "file-choice"


class _Code(CodeTask, _Unloadable):
    name = "file-code"

    def render(self, problem: Problem) -> str:
        tests = "\n".join(problem.meta["tests"])
        return f"{problem.question}\nYour code should pass these tests:\n\n{tests}"

    def job(self, answer: str, problem: Problem, sample: int, timeout: float) -> Job:
        from harness.tasks.grading.sandbox import mbpp_job

        row = {
            "task_id": problem.id,
            "test_list": problem.meta["tests"],
            "test_setup_code": problem.meta.get("setup", ""),
        }
        return mbpp_job(row, answer, sample=sample, timeout=timeout)

    def steps(self, problem: Problem) -> int | None:
        return count_statements(problem.answer)


def _grader(name: str) -> Task:
    if name == "number":
        return _Number()
    if name == "choice":
        return _Choice()
    if name == "code":
        return _Code()
    from harness.tasks.math import MATH500

    return MATH500()


class FileTask(Task):
    name = "file"
    description = "your own problems from a JSON Lines file (file:PATH#grader=...,question=...)"
    positional = "path"
    default_run = False
    options_type = FileOptions
    opts: FileOptions

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        self.path = Path(self.opts.path).expanduser() if self.opts.path else None
        self._delegates: dict[str, Task] = {}
        """Grader (or task spec, for `grader=task`) -> the task that prompts and grades."""
        self._of: dict[str, str] = {}
        """Problem id -> its delegate's key."""

    def origin(self, source: DataSource) -> str:
        return "your file"

    def available(self, source: DataSource) -> bool:
        return self.path is not None and self.path.is_file()

    def size(self, source: DataSource) -> int | None:
        return None

    # -- data -----------------------------------------------------------------------------
    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        if self.path is None:
            raise HarnessError("task file: name the file, e.g. --tasks file:problems.jsonl")
        if not self.path.is_file():
            raise HarnessError(
                f"task file: {self.path} does not exist; write one JSON object per line "
                f"with at least '{self.opts.question}' and '{self.opts.answer}'"
            )
        rows = self.read_local(self.path)
        if not rows:
            raise HarnessError(f"task file: {self.path} has no problems")
        grader = self.opts.grader
        if grader == "auto":
            grader = self._guess([row for _, row in rows])
        problems: list[Problem] = []
        seen: set[str] = set()
        for n, (where, row) in enumerate(rows):
            if not isinstance(row, dict):
                raise HarnessError(f"{where}: expected a JSON object, got {type(row).__name__}")
            problem, key = self._problem(n, where, row, grader)
            if problem.id in seen:
                raise HarnessError(f"{where}: problem id '{problem.id}' appears twice")
            seen.add(problem.id)
            self._of[problem.id] = key
            problems.append(problem)
        return Loaded(problems[:limit] if limit is not None else problems, f"file {self.path}")

    def _guess(self, rows: Sequence[Any]) -> str:
        dicts = [r for r in rows if isinstance(r, dict)]
        if dicts and all(isinstance(r.get("task"), str) for r in dicts):
            return "task"
        if any(r.get(self.opts.choices) for r in dicts):
            return "choice"
        if all(is_number(str(r.get(self.opts.answer, ""))) for r in dicts):
            return "number"
        return "math"

    def _field(self, row: dict[str, Any], name: str, where: str) -> Any:
        if name not in row:
            raise HarnessError(
                f"{where}: no '{name}' field (fields: {', '.join(sorted(row))}); name the "
                f"right one in the spec, e.g. file:{self.opts.path}#question=...,answer=..."
            )
        return row[name]

    def _problem(self, n: int, where: str, row: dict[str, Any], grader: str) -> tuple[Problem, str]:
        o = self.opts
        if grader == "task":
            spec = self._field(row, "task", where)
            delegate = self._delegate(str(spec), where)
            data = dict(row)
            data.setdefault("id", row.get(o.id, f"{n}"))
            data["task"] = delegate.name
            data.setdefault("question", row.get(o.question, ""))
            data.setdefault("answer", row.get(o.answer, ""))
            try:
                return Problem.from_dict(data), str(spec)
            except TypeError as e:
                raise HarnessError(f"{where}: not a problem row ({e})") from e
        pid = str(row.get(o.id, n))
        question = str(self._field(row, o.question, where))
        answer = self._field(row, o.answer, where)
        meta: dict[str, Any] = dict(row.get("meta") or {})
        choices: tuple[str, ...] = ()
        if grader == "choice":
            options = self._field(row, o.choices, where)
            if not isinstance(options, list) or len(options) < 2:
                raise HarnessError(f"{where}: '{o.choices}' must be a list of 2 or more options")
            choices = tuple(str(c) for c in options)
            answer = _gold_letter(str(answer), choices, where)
        if grader == "code":
            tests = self._field(row, o.tests, where)
            if not isinstance(tests, list) or not tests:
                raise HarnessError(f"{where}: '{o.tests}' must be a list of assert lines")
            meta["tests"] = [str(t) for t in tests]
            meta["setup"] = str(row.get("setup") or "")
        reference = row.get(o.reference)
        if reference is None and grader == "choice":
            reference = letter_reference(str(answer))
        if reference is None and grader == "code":
            from harness.tasks.code import fenced

            reference = fenced(str(answer))
        parent = row.get(o.parent)
        self._delegate(grader, where)
        return (
            Problem(
                id=pid,
                task=self.name,
                question=question,
                answer=str(answer),
                reference=None if reference is None else str(reference),
                choices=choices,
                subset=row.get("subset"),
                meta=meta,
                parent_id=None if parent is None else str(parent),
                perturbation=row.get("perturbation") if parent is not None else None,
                perturb_seed=row.get("perturb_seed"),
            ),
            grader,
        )

    def _delegate(self, key: str, where: str) -> Task:
        found = self._delegates.get(key)
        if found is None:
            if key in GRADERS:
                found = _grader(key)
            else:
                from harness.tasks import get_task

                try:
                    found = get_task(key)
                except HarnessError as e:
                    raise HarnessError(f"{where}: {e}") from e
                if isinstance(found, FileTask):
                    raise HarnessError(f"{where}: a file row cannot name the file task")
            self._delegates[key] = found
        return found

    def _for(self, problem: Problem) -> Task:
        key = self._of.get(problem.id)
        if key is None:
            raise HarnessError(f"task file: problem '{problem.id}' was not loaded from the file")
        return self._delegates[key]

    # -- the delegate does the work --------------------------------------------------------
    def prompt(self, problem: Problem, style: str = "r1") -> list[Message]:
        return self._for(problem).prompt(problem, style)

    def extract(self, text: str) -> Extraction | None:
        only = list(self._delegates.values())
        return only[0].extract(text) if len(only) == 1 else None

    def extract_answer(self, text: str, problem: Problem) -> Extraction | None:
        return self._for(problem).extract_answer(text, problem)

    def grade(self, answer: str, problem: Problem) -> bool | Verdict:
        return self._for(problem).grade(answer, problem)

    def score_many(self, items: Sequence[tuple[Generation, Problem]]) -> list[Score]:
        groups: dict[int, list[int]] = {}
        for i, (_, problem) in enumerate(items):
            groups.setdefault(id(self._for(problem)), []).append(i)
        out: list[Score | None] = [None] * len(items)
        for at in groups.values():
            delegate = self._for(items[at[0]][1])
            for i, s in zip(at, delegate.score_many([items[i] for i in at]), strict=True):
                out[i] = s
        return [s for s in out if s is not None]

    def steps(self, problem: Problem) -> int | None:
        return self._for(problem).steps(problem)

    def same_answer(self, a: str, b: str) -> bool:
        kinds = list(self._delegates.values())
        return kinds[0].same_answer(a, b) if len(kinds) == 1 else super().same_answer(a, b)


def _gold_letter(answer: str, choices: tuple[str, ...], where: str) -> str:
    """The gold as a position letter: a letter in range, or the text of one option."""
    a = answer.strip()
    if len(a) == 1 and a.upper() in LETTERS[: len(choices)]:
        return a.upper()
    for i, c in enumerate(choices):
        if c.strip() == a:
            return LETTERS[i]
    raise HarnessError(
        f"{where}: gold '{answer[:60]}' is neither a letter A-{LETTERS[len(choices) - 1]} nor "
        "the text of one of the options"
    )


__all__ = ["FileTask"]
