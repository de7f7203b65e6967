"""AIME 2024 and 2025 (I and II papers, 15 problems each): integer answers 0-999.

Answers are compared as numbers, so `025`, `25`, `\\boxed{025}` and AoPS's `\\textbf{(025)}`
agree. `aime` is both years (or one, with `aime:year=2024`); problem ids name the paper and the
problem (`aime-2024-I-7`), so the same problem has the same id in `aime` and `aime24`.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.errors import HarnessError
from harness.tasks.base import DataSource, Loaded, load_hub, read_jsonl
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


def load_year(task: str, year: int, source: DataSource) -> tuple[list[Problem], str]:
    folder, repo, rev, split = SOURCES[year]
    path: Path | None = source.local(folder, "test.jsonl")
    if path is not None:
        rows = [(f"{path}:{n}", r) for n, r in read_jsonl(path)]
        where = f"local file {path}"
    elif source.hub:
        hub = load_hub(task, repo, None, split, rev, local=f"{folder}/test.jsonl")
        rows = [(f"{repo} row {i}", r) for i, r in enumerate(hub)]
        where = f"hub {repo}@{rev[:12]}"
    else:
        raise HarnessError(f"{task}: no {folder}/test.jsonl in the data dir and the hub is off")
    problems = [_problem(task, year, i, row, loc) for i, (loc, row) in enumerate(rows)]
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise HarnessError(f"{where}: AIME {year} problem ids repeat; expected 15 per paper")
    return problems, where


class AIME(MathTask):
    name = "aime"
    description = "AIME 2024 + 2025 (option year=2024|2025): integer answers 0-999"
    positional = "year"
    default_run = False
    years: tuple[int, ...] = (2024, 2025)

    def allowed_options(self) -> tuple[str, ...]:
        return ("year",)

    def __init__(self, options: dict[str, str] | None = None) -> None:
        super().__init__(options)
        year = self.options.get("year")
        if year is not None:
            if not year.isdigit() or int(year) not in SOURCES:
                raise HarnessError(
                    f"aime: year '{year}' is not one of {', '.join(map(str, SOURCES))} "
                    "(write aime:year=2024)"
                )
            self.years = (int(year),)

    def available(self, source: DataSource) -> bool:
        return all(source.local(SOURCES[y][0], "test.jsonl") for y in self.years)

    def size(self, source: DataSource) -> int | None:
        return 30 * len(self.years)

    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        problems: list[Problem] = []
        wheres = []
        for year in self.years:
            got, where = load_year(self.name, year, source)
            problems += got
            wheres.append(where)
        return Loaded(problems[:limit] if limit is not None else problems, "; ".join(wheres))


class AIME24(AIME):
    name = "aime24"
    description = "AIME 2024 I + II (30 problems): integer answers 0-999"
    positional = None
    default_run = True
    years = (2024,)

    def allowed_options(self) -> tuple[str, ...]:
        return ()


class AIME25(AIME24):
    name = "aime25"
    description = "AIME 2025 I + II (30 problems): integer answers 0-999"
    years = (2025,)
