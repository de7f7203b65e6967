"""`options`: a multiple-choice problem with its options shuffled and relabelled (letters,
numbers or roman numerals), the gold moved with its option.

The variant keeps `choices` as the option texts in the new order and `answer` as the letter of
the gold's new position, so grading is unchanged; `meta["labels"]` and `meta["label_style"]`
say how the options are shown (the choice extractor reads an answer in those labels and maps
it back to the position letter), and the reference states the answer in the shown label. BBH
lists its options inside the input text, so there the `Options:` block is rewritten.

A problem is skipped when its options cannot be moved without changing their meaning (an
option that points at others: "all of the above", "both (A) and (B)"; a question that names an
option by its letter), when its gold names no option, or when it has fewer than two options.
"""

from __future__ import annotations

import random
import re
from typing import Any

from harness.perturb.base import Context, Perturbation, Skip, derive
from harness.tasks.grading.choice import norm_text
from harness.tasks.grading.extract import LETTERS
from harness.types import Problem

STYLES = ("letter", "number", "roman")
"""The label styles a variant is drawn from (the names `Task.instruction` knows)."""

_ROMAN = (
    (1000, "M"),
    (900, "CM"),
    (500, "D"),
    (400, "CD"),
    (100, "C"),
    (90, "XC"),
    (50, "L"),
    (40, "XL"),
    (10, "X"),
    (9, "IX"),
    (5, "V"),
    (4, "IV"),
    (1, "I"),
)

_ABOVE = re.compile(
    r"\b(?:all|none|both|neither|either|any|each)\s+of\s+(?:the\s+)?"
    r"(?:above|below|preceding|previous|foregoing|following|others|other\s+(?:options|choices|"
    r"answers))\b(?!\s+[a-z])"
    r"|\b(?:above|preceding|previous|other)\s+(?:options|choices|answers)\b",
    re.IGNORECASE,
)
"""An option that points at the others by place ("all of the above")."""
_LETTER_PAIR = re.compile(r"\(([A-Z])\)\s*(?:,|and|or|&|to|-)\s*\(([A-Z])\)")
_LETTER_WORD = re.compile(r"\b(?:[Oo]ptions?|[Cc]hoices?|[Aa]nswers?)\s+\(?([A-Z])\)?(?![\w'])")


def names_options(text: str, n: int) -> bool:
    """Whether a text names one of `n` options by its letter (`option C`, `(A) and (B)`):
    such a text means something else once the options are moved. A lone `(C)` is not taken
    for one (it is as often carbon or a label of the question's own)."""
    letters = LETTERS[:n]
    if any(a in letters and b in letters for a, b in _LETTER_PAIR.findall(text)):
        return True
    return any(x in letters for x in _LETTER_WORD.findall(text))


def roman(n: int) -> str:
    """`n` as an upper-case roman numeral (n >= 1)."""
    out = []
    for value, numeral in _ROMAN:
        count, n = divmod(n, value)
        out.append(numeral * count)
    return "".join(out)


def labels_for(style: str, n: int) -> tuple[str, ...]:
    """The labels of `n` options in a style: A, B, ... / 1, 2, ... / I, II, ..."""
    if style == "letter":
        return tuple(LETTERS[:n])
    if style == "number":
        return tuple(str(i) for i in range(1, n + 1))
    if style == "roman":
        return tuple(roman(i) for i in range(1, n + 1))
    raise ValueError(f"unknown label style {style}")


_ROMAN_WORD = re.compile(r"(?<![\w'])(?:I{2,3}|IV|VI{0,3}|IX|XI{0,3})(?![\w'])")


def styles_for(choices: tuple[str, ...]) -> tuple[str, ...]:
    """The styles whose labels no option could be taken for: options `1`, `2`, ... are not
    labelled with numbers (`\\boxed{2}` would name an option both ways), options that cite
    roman-numbered statements (`I and II only`) not with numerals. Letters always serve."""
    texts = {norm_text(c).upper() for c in choices}
    allowed = ["letter"]
    if not texts & set(labels_for("number", len(choices))):
        allowed.append("number")
    romans = {x.upper() for x in labels_for("roman", len(choices))}
    if not texts & romans and not any(_ROMAN_WORD.search(c) for c in choices):
        allowed.append("roman")
    return tuple(allowed)


def draw_permutation(n: int, rng: random.Random) -> list[int]:
    """A uniformly drawn permutation of range(n) other than the identity (n >= 2): entry i is
    the original position of the option shown at position i."""
    order = list(range(n))
    identity = list(order)
    while order == identity:
        rng.shuffle(order)
    return order


def _bbh_choice(problem: Problem) -> str | None:
    """Why a BBH problem is not one this kind can move (None: it is multiple-choice)."""
    from harness.tasks.bbh import CHOICE

    kind = problem.meta.get("answer_type")
    if kind != CHOICE:
        return f"not a multiple-choice subtask (answer type {kind})"
    return None


class Options(Perturbation):
    name = "options"
    description = (
        "multiple-choice options shuffled and relabelled (letters, numbers or roman numerals), "
        "gold moved with its option"
    )
    tasks = ("arc-challenge", "logiqa", "bbh")
    preserves_answer = False

    def apply(self, problem: Problem, rng: random.Random, ctx: Context) -> Problem | Skip:
        in_text = ctx.task == "bbh"  # BBH shows its options inside the input
        if in_text:
            why = _bbh_choice(problem)
            if why:
                return Skip(why)
        choices, n = problem.choices, len(problem.choices)
        if n < 2:
            return Skip("fewer than two options")
        if len(problem.answer) != 1 or problem.answer not in LETTERS[:n]:
            return Skip("gold names no option (given as text)")
        if any(_ABOVE.search(c) or names_options(c, n) for c in choices):
            return Skip("an option refers to other options")
        asked = problem.question.partition("Options:")[0] if in_text else problem.question
        if names_options(asked, n):
            return Skip("the question names an option by its letter")

        order = draw_permutation(n, rng)
        style = rng.choice(styles_for(choices))
        labels = labels_for(style, n)
        new_choices = tuple(choices[i] for i in order)
        gold = LETTERS[order.index(LETTERS.index(problem.answer))]
        shown = labels[LETTERS.index(gold)]
        question = problem.question
        meta: dict[str, Any] = {"labels": labels, "label_style": style}
        if in_text:
            from harness.tasks.bbh import relabel_options

            rewritten = relabel_options(problem.question, new_choices, labels)
            if rewritten is None:
                return Skip("no options block to rewrite in the input")
            question = rewritten
            meta["target"] = f"({shown})"
        params = {"permutation": order, "label_style": style, "labels": list(labels)}
        return derive(
            problem,
            self.name,
            params,
            question=question,
            answer=gold,
            reference=f"The answer is \\boxed{{{shown}}}.",
            choices=new_choices,
            meta=meta,
        )


__all__ = ["STYLES", "Options", "draw_permutation", "labels_for", "roman", "styles_for"]
