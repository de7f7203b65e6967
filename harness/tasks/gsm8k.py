"""GSM8K test set (1319 grade-school word problems), gold after `#### `, graded numerically.

`cot-fewshot` is 8-shot chain of thought with the first 8 problems of GSM8K's *train* split as
worked examples (their solutions without calculator annotations, ending "The answer is N."),
read from `<data dir>/gsm8k/train.jsonl` or the pinned hub revision; offline without that file
the style stops with one line saying so. (Wei et al.'s hand-written 8 exemplars are the other
common choice; they are not a data file anywhere we can read, so they are not used.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from harness.errors import HarnessError
from harness.tasks.base import DataSource, HubSplit, Loaded, Task, load_hub, read_jsonl
from harness.tasks.grading.extract import Extraction, extract_final_answer
from harness.tasks.grading.numeric import is_number, numbers_equal
from harness.types import Message, Problem

HUB_PATH = "openai/gsm8k"
HUB_REVISION = "740312add88f781978c0658806c59bc2815b9866"
_CALC = re.compile(r"<<[^<>]*>>")
FEWSHOT = 8
_NEXT_QUESTION = re.compile(r"\n\s*(?:Q|Question)\s*:")


def worked_example(row: dict) -> str:
    """A train problem as a few-shot example: its solution, annotations removed, ending in
    "The answer is N." (the phrase the extractor reads)."""
    body, _, gold = str(row["answer"]).rpartition("####")
    return f"Q: {row['question']}\nA: {_CALC.sub('', body).strip()} The answer is {gold.strip()}."


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
            # The raw solution, calculator annotations kept: what `numeric`/`compose` recompute.
            "solution": solution,
        },
    )


class GSM8K(Task):
    name = "gsm8k"
    description = "GSM8K test split: grade-school math word problems, numeric answer"
    kind = "math"

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        self._source: DataSource | None = None
        self._shots: str | None = None

    local_files = ("gsm8k/test.jsonl",)
    hub_split = HubSplit(HUB_PATH, "main", HUB_REVISION)
    count = 1319
    train_files = ("gsm8k/train.jsonl",)
    train_split = HubSplit(HUB_PATH, "main", HUB_REVISION, "train")

    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        self._source = source
        rows = self.read_rows(source, limit)
        problems = [_problem(i, row, loc) for i, (loc, row) in enumerate(rows.items)]
        return Loaded(problems, rows.source)

    def fewshot(self) -> str:
        """The 8 worked examples of the cot-fewshot style, loaded once."""
        if self._shots is None:
            source = self._source or DataSource.resolve(None)
            path = source.local("gsm8k", "train.jsonl")
            if path is not None:
                rows = [row for _, row in read_jsonl(path)][:FEWSHOT]
            elif source.hub:
                rows = load_hub(
                    "gsm8k",
                    HUB_PATH,
                    "main",
                    "train",
                    HUB_REVISION,
                    local="gsm8k/train.jsonl (the cot-fewshot examples)",
                )[:FEWSHOT]
            else:
                raise HarnessError(
                    "gsm8k: the cot-fewshot style needs gsm8k/train.jsonl in the data dir or the "
                    "hub; use --style r1 or plain"
                )
            self._shots = "\n\n".join(worked_example(r) for r in rows)
        return self._shots

    def prompt(self, problem: Problem, style: str = "r1") -> list[Message]:
        if style == "cot-fewshot":
            return [Message("user", f"{self.fewshot()}\n\nQ: {problem.question}\nA:")]
        return super().prompt(problem, style)

    def extract(self, text: str) -> Extraction | None:
        # A few-shot completion that runs on into a new "Q:" has already answered.
        return extract_final_answer(
            _NEXT_QUESTION.split(text, 1)[0], kind="number", accept=is_number
        )

    def grade(self, answer: str, problem: Problem) -> bool:
        return numbers_equal(answer, problem.answer)

    def same_answer(self, a: str, b: str) -> bool:
        return numbers_equal(a, b)

    def steps(self, problem: Problem) -> int | None:
        """Calculator annotations in the gold solution, else its lines."""
        return problem.meta.get("calculations") or problem.meta.get("lines") or None
