"""What multiple-choice tasks share (ARC-Challenge, LogiQA): options shown as `(A) text`, the
answer read as a letter (or as an option's text), graded by letter.

An `options` variant shows its options with other labels (`(1)`, `(III)`): its gold stays the
letter of the gold's position, and the answer, read in the shown labels, is mapped back to
that letter, so grading is the same for every variant."""

from __future__ import annotations

from harness.errors import HarnessError
from harness.tasks.base import Task
from harness.tasks.grading.choice import choice_equal, norm_text
from harness.tasks.grading.extract import LETTERS, Extraction, extract_choice
from harness.types import Problem


def letter_reference(letter: str) -> str:
    """The gold as a model following the r1 prompt would state it."""
    return f"The answer is \\boxed{{{letter}}}."


def shown_labels(problem: Problem) -> tuple[str, ...] | None:
    """The labels an `options` variant shows in place of letters (`meta["labels"]`, read only
    with a `meta["label_style"]`: an original's `labels` are its data set's own); None for the
    letters."""
    if problem.meta.get("label_style") is None:
        return None
    labels = tuple(str(x) for x in problem.meta.get("labels") or ())
    if len(labels) != len(problem.choices):
        raise HarnessError(
            f"{problem.id}: {len(labels)} option labels for {len(problem.choices)} options"
        )
    return labels


def labels_to_letters(labels: list[str], key: str, where: str) -> tuple[str, str]:
    """(letters, gold letter) for a row's option labels and answer key. Labels that are not
    A, B, C... (ARC's `1`-`4` for some questions) become letters by position."""
    letters = LETTERS[: len(labels)]
    if key not in labels:
        raise HarnessError(f"{where}: answer key '{key}' is not one of the labels {labels}")
    return letters, letters[labels.index(key)]


class ChoiceTask(Task):
    kind = "choice"

    def extract(self, text: str) -> Extraction | None:
        return extract_choice(text, ())

    def extract_answer(self, text: str, problem: Problem) -> Extraction | None:
        return extract_choice(text, problem.choices, labels=shown_labels(problem))

    def grade(self, answer: str, problem: Problem) -> bool:
        return choice_equal(answer, problem.answer)

    def same_answer(self, a: str, b: str) -> bool:
        if len(a.strip()) == 1 and len(b.strip()) == 1:
            return a.strip().upper() == b.strip().upper()
        return norm_text(a) == norm_text(b)
