"""What multiple-choice tasks share (ARC-Challenge, LogiQA): options shown as `(A) text`, the
answer read as a letter (or as an option's text), graded by letter."""

from __future__ import annotations

from harness.tasks.base import Task
from harness.tasks.grading.choice import choice_equal, norm_text
from harness.tasks.grading.extract import LETTERS, Extraction, extract_choice
from harness.types import Problem


def letter_reference(letter: str) -> str:
    """The gold as a model following the r1 prompt would state it."""
    return f"The answer is \\boxed{{{letter}}}."


def labels_to_letters(labels: list[str], key: str, where: str) -> tuple[str, str]:
    """(letters, gold letter) for a row's option labels and answer key. Labels that are not
    A, B, C... (ARC's `1`-`4` for some questions) become letters by position."""
    from harness.errors import HarnessError

    letters = LETTERS[: len(labels)]
    if key not in labels:
        raise HarnessError(f"{where}: answer key '{key}' is not one of the labels {labels}")
    return letters, letters[labels.index(key)]


class ChoiceTask(Task):
    kind = "choice"

    def extract(self, text: str) -> Extraction | None:
        return extract_choice(text, ())

    def extract_answer(self, text: str, problem: Problem) -> Extraction | None:
        return extract_choice(text, problem.choices)

    def grade(self, answer: str, problem: Problem) -> bool:
        return choice_equal(answer, problem.answer)

    def same_answer(self, a: str, b: str) -> bool:
        if len(a.strip()) == 1 and len(b.strip()) == 1:
            return a.strip().upper() == b.strip().upper()
        return norm_text(a) == norm_text(b)
