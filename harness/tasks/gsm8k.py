"""GSM8K test set (1319 grade-school word problems), gold after `#### `, graded numerically."""

from __future__ import annotations

import re

from harness.errors import HarnessError
from harness.tasks.base import DataSource, Loaded, Task, load_hub, read_jsonl
from harness.tasks.grading.extract import Extraction, extract_final_answer
from harness.tasks.grading.numeric import numbers_equal
from harness.types import Problem

HUB_PATH = "openai/gsm8k"
HUB_REVISION = "740312add88f781978c0658806c59bc2815b9866"
_CALC = re.compile(r"<<[^<>]*>>")


def _problem(index: int, row: dict, where: str) -> Problem:
    try:
        question, solution = row["question"], row["answer"]
    except KeyError as e:
        raise HarnessError(f"{where}: GSM8K row lacks field {e}; expected question, answer") from e
    if "####" not in solution:
        raise HarnessError(f"{where}: GSM8K answer has no '#### <number>' line")
    body, _, gold = solution.rpartition("####")
    return Problem(
        id=f"gsm8k-{index}",
        task="gsm8k",
        question=question,
        answer=gold.strip().replace(",", ""),
        # The worked solution without calculator annotations, in the `#### n` form it came in.
        reference=_CALC.sub("", body).strip() + f"\n#### {gold.strip()}",
        meta={
            "calculations": len(_CALC.findall(solution)),
            "lines": len(body.strip().splitlines()),
        },
    )


class GSM8K(Task):
    name = "gsm8k"
    description = "GSM8K test split: grade-school math word problems, numeric answer"
    kind = "math"

    def _local(self, source: DataSource):
        return source.local("gsm8k", "test.jsonl")

    def available(self, source: DataSource) -> bool:
        return self._local(source) is not None

    def size(self, source: DataSource) -> int | None:
        return 1319

    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        path = self._local(source)
        problems: list[Problem] = []
        if path is not None:
            for i, (lineno, row) in enumerate(read_jsonl(path)):
                if limit is not None and i >= limit:
                    break
                problems.append(_problem(i, row, f"{path}:{lineno}"))
            return Loaded(problems, f"local file {path}")
        if not source.hub:
            raise HarnessError("gsm8k: no gsm8k/test.jsonl in the data dir and the hub is off")
        rows = load_hub("gsm8k", HUB_PATH, "main", "test", HUB_REVISION)
        for i, row in enumerate(rows[:limit] if limit is not None else rows):
            problems.append(_problem(i, row, f"{HUB_PATH} row {i}"))
        return Loaded(problems, f"hub {HUB_PATH}@{HUB_REVISION[:12]}")

    def extract(self, text: str) -> Extraction | None:
        return extract_final_answer(text)

    def grade(self, answer: str, problem: Problem) -> bool:
        return numbers_equal(answer, problem.answer)

    def same_answer(self, a: str, b: str) -> bool:
        return numbers_equal(a, b)

    def steps(self, problem: Problem) -> int | None:
        """Calculator annotations in the gold solution, else its lines."""
        return problem.meta.get("calculations") or problem.meta.get("lines") or None
