"""AIME 2024 and 2025 (I and II papers, 15 problems each): integer answers 0-999.

Answers are compared as numbers, so `025`, `25`, `\\boxed{025}` and AoPS's `\\textbf{(025)}`
agree. `aime` is both years (or one, with `aime:year=2024`); problem ids name the paper and the
problem (`aime-2024-I-7`), so the same problem has the same id in `aime` and `aime24`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.errors import HarnessError
from harness.options import NoOptions, option
from harness.tasks.base import DataSource, HubSplit, Loaded
from harness.tasks.math import MathTask, answer_reference, solution_steps
from harness.types import Problem

# (local file, hub repo, hub revision, hub split) per year.
# HuggingFaceH4/aime_2024: the commit pinned by several public evaluation manifests.
# math-ai/aime25: pinned likewise (two public manifests); its row order is I-1..I-15, II-1..II-15.
SOURCES: dict[int, tuple[str, str, str, str]] = {
    2024: (
        "aime24",
        "HuggingFaceH4/aime_2024",
        "2fe88a2f1091d5048c0f36abc874fb997b3dd99a",
        "train",
    ),
    2025: ("aime25", "math-ai/aime25", "563bb8404243c5f09de6ec262f2db674fe5bce9b", "test"),
}
_URL = re.compile(r"(\d{4})_AIME_(I{1,2})_Problems/Problem_(\d+)")
_ID = re.compile(r"^(I{1,2})-(\d+)$")


def _paper(year: int, index: int, row: dict) -> tuple[str, int]:
    """(paper, number) from the row's AoPS url or its `I-7` id; else from its position, the
    order every copy uses (the first 15 rows are paper I)."""
    m = _URL.search(str(row.get("url") or ""))
    if m and int(m.group(1)) == year:
        return m.group(2), int(m.group(3))
    m = _ID.match(str(row.get("id") or ""))
    if m:
        return m.group(1), int(m.group(2))
    return ("I", index + 1) if index < 15 else ("II", index - 14)


def _problem(task: str, year: int, index: int, row: dict, where: str) -> Problem:
    question = row.get("problem") or row.get("question")
    if not question or "answer" not in row:
        raise HarnessError(f"{where}: AIME row lacks problem/answer")
    answer = str(row["answer"]).strip()
    if not re.fullmatch(r"\d{1,3}", answer):
        raise HarnessError(f"{where}: AIME answer '{answer}' is not an integer 0-999")
    paper, number = _paper(year, index, row)
    solution = str(row.get("solution") or "")
    return Problem(
        id=f"aime-{year}-{paper}-{number}",
        task=task,
        question=question,
        answer=answer,
        reference=answer_reference(solution, answer),
        subset=f"{year}-{paper}",
        meta={"steps": solution_steps(solution), "source_id": row.get("id")},
    )


def _local_file(year: int) -> str:
    return f"{SOURCES[year][0]}/test.jsonl"


@dataclass(frozen=True)
class AIMEOptions:
    """`aime:2024` or `aime:year=2024`: one year instead of both."""

    year: int | None = option(
        None, f"one year: {' or '.join(map(str, SOURCES))} (both when left out)"
    )


class AIME(MathTask):
    name = "aime"
    description = "AIME 2024 + 2025 (option year=2024|2025): integer answers 0-999"
    positional: str | None = "year"
    default_run = False
    years: tuple[int, ...] = (2024, 2025)
    options_type: ClassVar[type[Any]] = AIMEOptions

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        year = self.opts.year if isinstance(self.opts, AIMEOptions) else None
        if year is not None:
            if year not in SOURCES:
                raise HarnessError(
                    f"aime: year '{self.options['year']}' is not one of "
                    f"{', '.join(map(str, SOURCES))} (write aime:year=2024)"
                )
            self.years = (year,)

    def available(self, source: DataSource) -> bool:
        return all(source.local(*_local_file(y).split("/")) for y in self.years)

    def size(self, source: DataSource) -> int | None:
        return 30 * len(self.years)

    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        problems: list[Problem] = []
        wheres = []
        for year in self.years:
            _, repo, rev, split = SOURCES[year]
            rows = self.read_rows(
                source, local_files=(_local_file(year),), hub_split=HubSplit(repo, None, rev, split)
            )
            got = [
                _problem(self.name, year, i, row, loc) for i, (loc, row) in enumerate(rows.items)
            ]
            if len({p.id for p in got}) != len(got):
                raise HarnessError(
                    f"{rows.source}: AIME {year} problem ids repeat; expected 15 per paper"
                )
            problems += got
            wheres.append(rows.source)
        return Loaded(problems[:limit] if limit is not None else problems, "; ".join(wheres))


class AIME24(AIME):
    name = "aime24"
    description = "AIME 2024 I + II (30 problems): integer answers 0-999"
    positional = None
    default_run = True
    years = (2024,)
    options_type = NoOptions


class AIME25(AIME24):
    name = "aime25"
    description = "AIME 2025 I + II (30 problems): integer answers 0-999"
    years = (2025,)
