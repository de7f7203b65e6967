"""`format`: the same problem asking for its answer in another form (`\\boxed{}`, a `####`
line, an `Answer:` line). A student that solves the problem in one form and not in another
has a format mismatch, not a reasoning gap. The gold is kept (only the instruction changes);
the reference restates it in the asked form, so the reference teacher still scores 1.000.

The form is asked for by the r1 prompt styles' closing instruction (`Task.instruction` reads
`meta["answer_format"]`); under `plain` or `cot-fewshot` there is no instruction to change,
so a run with those styles shows these variants as identical prompts.
"""

from __future__ import annotations

import random
from typing import ClassVar

from harness.perturb.base import Context, Perturbation, Skip, derive
from harness.prompts import ANSWER_FORMATS
from harness.types import Problem

FORMATS = tuple(ANSWER_FORMATS)
CHOICE_FORMATS = ("boxed", "answer")


def stated(form: str, answer: str) -> str:
    """The answer line a model following the `form` instruction would write."""
    if form == "hash":
        return f"#### {answer}"
    if form == "answer":
        return f"Answer: {answer}"
    return f"The answer is \\boxed{{{answer}}}."


class Format(Perturbation):
    name = "format"
    description = "the answer-format instruction changed (\\boxed{} vs `####` vs `Answer:`)"
    tasks: ClassVar[tuple[str, ...]] = (
        "gsm8k",
        "chains",
        "math",
        "math500",
        "aime",
        "aime24",
        "aime25",
        "arc-challenge",
        "logiqa",
    )
    preserves_answer = True

    def apply(self, problem: Problem, rng: random.Random, ctx: Context) -> Problem | Skip:
        current = problem.meta.get("answer_format", "boxed")
        # A `####` line is a numeric-answer convention; options are asked boxed or `Answer:`.
        forms = CHOICE_FORMATS if ctx.answer_kind == "choice" else FORMATS
        others = [f for f in forms if f != current]
        form = rng.choice(others)
        # The reference's answer line in the new form: choice tasks state the shown label
        # (the gold letter unless an options variant relabelled it).
        answer = problem.answer
        labels = problem.meta.get("labels")
        if ctx.answer_kind == "choice" and labels:
            answer = labels["ABCDEFGHIJKLMNOPQRSTUVWXYZ".index(problem.answer)]
        body = (problem.reference or "").rstrip().splitlines()[:-1]
        reference = "\n".join([*body, stated(form, answer)]).strip()
        return derive(
            problem,
            self.name,
            {"answer_format": form},
            reference=reference,
            meta={"answer_format": form},
        )


__all__ = ["FORMATS", "Format", "stated"]
