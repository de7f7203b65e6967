"""A corpus of R1-style final-answer endings for MATH-style problems, with verdicts by construction.

Each case is an `Ending(text, gold, expected, kind)`: the whole model output (what a grader
receives), the dataset's gold answer, what a careful human grader says, and a tag
`<answer kind>/<dressing>`. Answer kinds are the shapes MATH answers take (integers, fractions,
surds, intervals, matrices, several answers in several boxes, ...); dressings are how R1-style
models write the final answer (boxed, a `**Final Answer**` heading, plain prose, prose with a
remark after the answer, "The final answer is $X$", `Answer:`, a bare number at the end of a
sentence), with a `<think>` block in front that holds a *different* decoy answer, with the
newer template's prefilled `<think>` (only `</think>` in the output), or truncated (the think
block never closed: no answer was given, so never correct).

Verdicts come from how each case is built (an equal form of the gold, or a perturbed one: a
changed value, a swapped bracket, a missing element, an off-by-one), never from running a
grader. The corpus is the same on every run: the only randomness is a `random.Random(SEED)`.

    from tests.math_endings import corpus
    for text, gold, expected, kind in corpus(): ...
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import NamedTuple

SEED = 20250114


class Ending(NamedTuple):
    text: str
    gold: str
    expected: bool
    kind: str
    """`<answer kind>/<dressing>`, e.g. `fraction/think-decoy`."""

    @property
    def answer_kind(self) -> str:
        return self.kind.split("/", 1)[0]

    @property
    def dressing(self) -> str:
        return self.kind.split("/", 1)[1]

    @property
    def task(self) -> str:
        """The task that grades it: AIME answers are AIME's, everything else MATH-500's."""
        return "aime24" if self.answer_kind == "aime" else "math500"


@dataclass(frozen=True)
class _Item:
    kind: str
    gold: str
    noun: str
    """What the answer is, for prose: "the distance", "the set of solutions"."""
    equal: tuple[str, ...]
    unequal: tuple[str, ...]
    decoy: str
    """A wrong value the reasoning considers and drops (never equal to the gold)."""


def _i(kind, gold, noun, equal, unequal, decoy) -> _Item:
    return _Item(kind, gold, noun, tuple(equal), tuple(unequal), decoy)


PMAT = "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"
PVEC = "\\begin{pmatrix} 3 \\\\ -1 \\end{pmatrix}"

ITEMS: tuple[_Item, ...] = (
    # -- integers ---------------------------------------------------------------------------
    _i("integer", "42", "number of ways", ["42", "42.", "{42}"], ["43", "41", "24"], "36"),
    _i("integer", "204", "sum of the digits", ["204", "204.0"], ["205", "203", "2040"], "196"),
    _i("integer", "7", "smallest such $n$", ["7", "n = 7"], ["8", "6", "-7"], "5"),
    _i("integer", "1440", "number of arrangements", ["1440"], ["1441", "144", "720"], "720"),
    # -- negative numbers -------------------------------------------------------------------
    _i("negative", "-3", "value of $k$", ["-3", "k=-3", "-3.0"], ["3", "-4", "-2"], "3"),
    _i(
        "negative",
        "-\\frac{1}{2}",
        "slope",
        ["-\\frac{1}{2}", "-\\frac12", "-0.5", "\\frac{-1}{2}"],
        ["\\frac{1}{2}", "-2", "-\\frac{1}{3}"],
        "\\frac{1}{2}",
    ),
    _i("negative", "-18", "minimum value", ["-18"], ["18", "-17", "-19"], "-16"),
    # -- decimals ---------------------------------------------------------------------------
    _i("decimal", "2.5", "expected value", ["2.5", "2.50", "\\frac{5}{2}"], ["2.05", "25"], "3.5"),
    _i("decimal", "0.75", "probability", ["0.75", ".75", "\\frac{3}{4}"], ["0.57", "0.7"], "0.25"),
    _i("decimal", "4.2", "average", ["4.2", "\\frac{21}{5}"], ["4.3", "42", "4.02"], "4.5"),
    _i(
        "decimal",
        "18.90",
        "total cost in dollars",
        ["\\$18.90", "18.9", "\\$18.90."],
        ["\\$18.09", "\\$19.80", "1890"],
        "\\$17.90",
    ),
    # -- fractions --------------------------------------------------------------------------
    _i(
        "fraction",
        "\\frac{14}{3}",
        "length of $AB$",
        ["\\frac{14}{3}", "\\dfrac{14}{3}", "14/3", "\\frac{28}{6}", "4\\frac{2}{3}"],
        ["\\frac{3}{14}", "\\frac{14}{5}", "4.67", "\\frac{15}{3}"],
        "\\frac{13}{3}",
    ),
    _i(
        "fraction",
        "\\frac{3}{8}",
        "probability",
        ["\\frac{3}{8}", "\\dfrac{3}{8}", "3/8", "0.375", "\\tfrac{3}{8}"],
        ["\\frac{3}{7}", "\\frac{5}{8}", "\\frac{8}{3}"],
        "\\frac{1}{4}",
    ),
    _i(
        "fraction",
        "\\frac{1}{36}",
        "probability that both dice show six",
        ["\\frac{1}{36}", "\\dfrac{1}{36}", "1/36"],
        ["\\frac{1}{6}", "\\frac{1}{35}", "\\frac{2}{36}"],
        "\\frac{1}{12}",
    ),
    # -- surds ------------------------------------------------------------------------------
    _i(
        "surd",
        "3\\sqrt{13}",
        "distance",
        ["3\\sqrt{13}", "\\sqrt{117}", "3 \\sqrt{13}"],
        ["3\\sqrt{12}", "13\\sqrt{3}", "\\sqrt{39}"],
        "2\\sqrt{13}",
    ),
    _i(
        "surd",
        "\\frac{\\sqrt{3}}{2}",
        "value of $\\sin 60^\\circ$",
        [
            "\\frac{\\sqrt{3}}{2}",
            "\\frac{\\sqrt3}{2}",
            "\\frac{1}{2}\\sqrt{3}",
            "\\dfrac{\\sqrt{3}}{2}",
        ],
        ["\\frac{\\sqrt{2}}{2}", "\\frac{\\sqrt{3}}{3}", "\\sqrt{3}"],
        "\\frac{1}{2}",
    ),
    _i(
        "surd",
        "2\\sqrt{2}",
        "side length",
        ["2\\sqrt{2}", "\\sqrt{8}", "2\\sqrt2"],
        ["2\\sqrt{3}", "4\\sqrt{2}", "\\sqrt{2}"],
        "\\sqrt{6}",
    ),
    # -- pi expressions ---------------------------------------------------------------------
    _i(
        "pi",
        "6\\pi",
        "area",
        ["6\\pi", "6 \\pi", "\\pi \\cdot 6", "6\\pi \\text{ square units}"],
        ["3\\pi", "6", "12\\pi"],
        "9\\pi",
    ),
    _i(
        "pi",
        "\\frac{\\pi}{3}",
        "angle in radians",
        ["\\frac{\\pi}{3}", "\\dfrac{\\pi}{3}", "\\frac{1}{3}\\pi"],
        ["\\frac{\\pi}{6}", "\\frac{2\\pi}{3}", "\\frac{\\pi}{4}"],
        "\\frac{\\pi}{2}",
    ),
    _i(
        "pi",
        "4 - \\pi",
        "shaded area",
        ["4 - \\pi", "-\\pi + 4", "4-\\pi"],
        ["\\pi - 4", "4 + \\pi"],
        "2\\pi",
    ),
    # -- intervals --------------------------------------------------------------------------
    _i(
        "interval",
        "[2, 5)",
        "domain",
        ["[2, 5)", "[2,5)", "\\left[2, 5\\right)", "x \\in [2, 5)"],
        ["(2, 5)", "[2, 5]", "[2, 6)", "(2, 5]"],
        "[2, 5]",
    ),
    _i(
        "interval",
        "(-\\infty, 3]",
        "range",
        ["(-\\infty, 3]", "(-\\infty,3]", "\\left(-\\infty, 3\\right]"],
        ["(-\\infty, 3)", "[3, \\infty)", "(-\\infty, -3]"],
        "(-\\infty, 2]",
    ),
    _i(
        "interval",
        "(0, \\infty)",
        "set of values of $a$",
        ["(0, \\infty)", "(0,\\infty)"],
        ["[0, \\infty)", "(1, \\infty)", "(-\\infty, 0)"],
        "(1, \\infty)",
    ),
    # -- unions -----------------------------------------------------------------------------
    _i(
        "union",
        "(-\\infty, -2) \\cup (2, \\infty)",
        "solution set",
        [
            "(-\\infty, -2) \\cup (2, \\infty)",
            "(-\\infty,-2)\\cup(2,\\infty)",
            "\\left(-\\infty, -2\\right) \\cup \\left(2, \\infty\\right)",
        ],
        [
            "(-\\infty, -2] \\cup [2, \\infty)",
            "(-\\infty, -2) \\cup (3, \\infty)",
            "(2, \\infty)",
            "(-2, 2)",
        ],
        "(-2, 2)",
    ),
    _i(
        "union",
        "[-3, 0) \\cup (0, 3]",
        "domain",
        ["[-3, 0) \\cup (0, 3]", "[-3,0)\\cup(0,3]"],
        ["[-3, 3]", "(-3, 0) \\cup (0, 3)", "[-3, 0] \\cup [0, 3]"],
        "[-3, 3]",
    ),
    # -- sets -------------------------------------------------------------------------------
    _i(
        "set",
        "\\{1, 2, 3\\}",
        "set of possible values",
        ["\\{1, 2, 3\\}", "\\{3, 2, 1\\}", "\\{1,2,3\\}"],
        ["\\{1, 2\\}", "\\{1, 2, 4\\}", "\\{0, 1, 2, 3\\}"],
        "\\{1, 3\\}",
    ),
    _i(
        "set",
        "\\{-1, 1\\}",
        "set of roots",
        ["\\{-1, 1\\}", "\\{1, -1\\}"],
        ["\\{1\\}", "\\{-1, 0, 1\\}", "\\{-2, 2\\}"],
        "\\{0\\}",
    ),
    # -- tuples / points --------------------------------------------------------------------
    _i(
        "tuple",
        "(2, -3)",
        "intersection point",
        ["(2, -3)", "(2,-3)", "\\left(2, -3\\right)"],
        ["(-3, 2)", "(2, 3)", "(3, -2)"],
        "(1, -1)",
    ),
    _i(
        "tuple",
        "\\left( 3, \\frac{\\pi}{2} \\right)",
        "point in polar coordinates",
        ["\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\frac{\\pi}{2})", "(3,\\dfrac{\\pi}{2})"],
        ["(3, \\pi)", "(\\frac{\\pi}{2}, 3)", "(3, \\frac{3\\pi}{2})"],
        "(3, 0)",
    ),
    _i(
        "tuple",
        "(1, 2, 3)",
        "ordered triple $(a, b, c)$",
        ["(1, 2, 3)", "(1,2,3)"],
        ["(1, 2)", "(3, 2, 1)", "(1, 2, 4)"],
        "(2, 2, 2)",
    ),
    # -- matrices ---------------------------------------------------------------------------
    _i(
        "matrix",
        PMAT,
        "matrix $\\mathbf{M}$",
        [
            PMAT,
            "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
            "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}",
        ],
        [
            "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}",
            "\\begin{pmatrix} 1 & 2 \\\\ 3 & 5 \\end{pmatrix}",
            "\\begin{bmatrix} 4 & 3 \\\\ 2 & 1 \\end{bmatrix}",
        ],
        "\\begin{pmatrix} 2 & 1 \\\\ 4 & 3 \\end{pmatrix}",
    ),
    _i(
        "matrix",
        PVEC,
        "vector $\\mathbf{v}$",
        [
            PVEC,
            "\\begin{pmatrix}3\\\\-1\\end{pmatrix}",
            "\\begin{bmatrix} 3 \\\\ -1 \\end{bmatrix}",
        ],
        ["\\begin{pmatrix} -1 \\\\ 3 \\end{pmatrix}", "\\begin{pmatrix} 3 \\\\ 1 \\end{pmatrix}"],
        "\\begin{pmatrix} 1 \\\\ 3 \\end{pmatrix}",
    ),
    # -- relations --------------------------------------------------------------------------
    _i(
        "relation",
        "x \\geq 5",
        "solution",
        ["x \\geq 5", "x \\ge 5", "x\\geq5"],
        ["x > 5", "x \\le 5", "x \\geq 6"],
        "x \\geq 4",
    ),
    _i(
        "relation",
        "x \\le 3",
        "condition on $x$",
        ["x \\le 3", "x \\leq 3"],
        ["x < 3", "x \\ge 3", "x \\le -3"],
        "x \\le 2",
    ),
    # -- equations with a label -------------------------------------------------------------
    _i("equation", "5", "value of $x$", ["x = 5", "x=5"], ["x = 6", "x = -5"], "x = 4"),
    _i(
        "equation",
        "y = 2x + 3",
        "equation of the line",
        ["y = 2x + 3", "y=2x+3", "y = 3 + 2x"],
        ["y = 2x - 3", "y = 3x + 2", "y = -2x + 3"],
        "y = 2x + 1",
    ),
    _i(
        "equation",
        "x^2 + y^2 = 25",
        "equation of the circle",
        ["x^2 + y^2 = 25", "y^2 + x^2 = 25"],
        ["x^2 + y^2 = 5", "x^2 - y^2 = 25"],
        "x^2 + y^2 = 16",
    ),
    # -- words in \text{} -------------------------------------------------------------------
    _i(
        "text",
        "\\text{Evelyn}",
        "winner",
        ["\\text{Evelyn}", "\\text{ Evelyn }", "\\textbf{Evelyn}"],
        ["\\text{Bob}", "\\text{Evan}"],
        "\\text{Carla}",
    ),
    _i(
        "text",
        "\\text{(C)}",
        "correct option",
        ["\\text{(C)}", "(C)", "\\text{C}"],
        ["\\text{(D)}", "\\text{(B)}"],
        "\\text{(A)}",
    ),
    _i(
        "text",
        "\\text{odd}",
        "parity of $f$",
        ["\\text{odd}", "\\text{Odd}"],
        ["\\text{even}", "\\text{neither}"],
        "\\text{even}",
    ),
    # -- numbers with units -----------------------------------------------------------------
    _i(
        "units",
        "34",
        "length of the fence",
        ["34\\ \\text{feet}", "34 \\text{ feet}", "34\\text{ ft}", "34"],
        ["43\\ \\text{feet}", "35 \\text{ feet}", "3.4\\text{ feet}"],
        "36 \\text{ feet}",
    ),
    _i(
        "units",
        "864",
        "surface area",
        ["864 \\text{ inches}^2", "864\\mbox{ in}^2", "864"],
        ["846 \\text{ inches}^2", "865\\mbox{ in}^2"],
        "432",
    ),
    # -- degrees ----------------------------------------------------------------------------
    _i(
        "degrees",
        "30",
        "measure of angle $ABC$",
        ["30^\\circ", "30^{\\circ}", "30", "30\u00b0"],
        ["60^\\circ", "31^\\circ", "150^{\\circ}"],
        "45^\\circ",
    ),
    _i("degrees", "120^\\circ", "largest angle", ["120^\\circ", "120"], ["60^\\circ", "121"], "90"),
    # -- percents ---------------------------------------------------------------------------
    _i("percent", "25", "percent increase", ["25\\%", "25"], ["2.5\\%", "26\\%", "52\\%"], "20\\%"),
    _i("percent", "12.5", "percentage", ["12.5\\%", "12.5"], ["12\\%", "125\\%"], "15\\%"),
    # -- thousands separators ---------------------------------------------------------------
    _i(
        "thousands",
        "1000",
        "number of integers",
        ["1{,}000", "1\\,000", "1,000", "1000"],
        ["10{,}000", "1{,}001", "100"],
        "999",
    ),
    _i(
        "thousands",
        "12345",
        "total",
        ["12{,}345", "12,345", "12\\,345"],
        ["12{,}354", "12{,}435", "12{,}346"],
        "12{,}000",
    ),
    # -- AIME: integers 0-999, leading zeros ------------------------------------------------
    _i("aime", "025", "answer", ["25", "025"], ["26", "250", "24"], "52"),
    _i("aime", "113", "remainder", ["113", "\\textbf{(113)}"], ["114", "311"], "131"),
    _i("aime", "704", "value of $m+n$", ["704"], ["705", "407", "703"], "740"),
)

# Several answers (solutions of an equation): several boxes that together are one answer, a
# list in prose, and the same with an element wrong or missing: (text, gold, expected).
SEVERAL: tuple[tuple[str, str, bool], ...] = (
    ("So the solutions are $\\boxed{-2}$ and $\\boxed{1}$.", "-2, 1", True),
    ("The solutions are \\boxed{-2} and \\boxed{1}.", "-2, 1", True),
    ("Therefore $x = \\boxed{1}$ or $x = \\boxed{-2}$.", "-2, 1", True),
    ("The roots are\n\\[\n\\boxed{-2}\n\\]\nand\n\\[\n\\boxed{1}\n\\]", "-2, 1", True),
    ("**Final Answer**\nThe solutions are \\(\\boxed{-2}\\) and \\(\\boxed{1}\\).", "-2, 1", True),
    ("So $x = \\boxed{3}$, $\\boxed{5}$, or $\\boxed{7}$.", "3, 5, 7", True),
    ("The values are $\\boxed{7}$, $\\boxed{5}$ and $\\boxed{3}$.", "3, 5, 7", True),
    ("The two answers are $\\boxed{\\frac{1}{2}}$ and $\\boxed{-3}$.", "-3, \\frac{1}{2}", True),
    ("The solutions are $x = -2$ and $x = 1$.", "-2, 1", True),
    ("\\boxed{x = -2 \\text{ or } x = 1}", "-2, 1", True),
    ("So the solutions are $\\boxed{-2}$ and $\\boxed{2}$.", "-2, 1", False),
    ("The solutions are $x = -2$ and $x = 2$.", "-2, 1", False),
    ("\\boxed{x = -2 \\text{ or } x = -1}", "-2, 1", False),
    ("The only solution is $\\boxed{-2}$.", "-2, 1", False),
    ("Therefore $x = \\boxed{1}$.", "-2, 1", False),
    ("The solutions are \\boxed{-1} and \\boxed{2}.", "-2, 1", False),
    ("So $x = \\boxed{3}$ or $\\boxed{5}$.", "3, 5, 7", False),
    ("The values are $\\boxed{3}$, $\\boxed{5}$ and $\\boxed{8}$.", "3, 5, 7", False),
    ("The two answers are $\\boxed{\\frac{1}{2}}$ and $\\boxed{3}$.", "-3, \\frac{1}{2}", False),
    ("The answer is $\\boxed{-3}$.", "-3, \\frac{1}{2}", False),
)

NUMERIC_KINDS = ("integer", "negative", "decimal", "thousands", "aime", "units", "degrees")
ANSWER_KINDS = tuple(dict.fromkeys(item.kind for item in ITEMS)) + ("several",)
FINAL_DRESSINGS = (
    "boxed",
    "final-heading",
    "prose",
    "prose-remark",
    "final-phrase",
    "answer-line",
    "bare",
)
DRESSINGS = FINAL_DRESSINGS + ("think-decoy", "think-prefill", "truncated")
DRESSING_WEIGHTS = {
    "boxed": 6,
    "final-heading": 4,
    "prose": 1,
    "prose-remark": 1,
    "final-phrase": 1,
    "answer-line": 1,
    "bare": 1,
}
"""R1 and its distills box their answer (the r1 prompt asks for it), most often under a
"**Final Answer**" heading; the other styles are the minority they are in real outputs, each
still present for every answer kind."""


def _weighted(dressings: list[str]) -> list[str]:
    """The dressings repeated by weight, interleaved (a deterministic rotation)."""
    out: list[str] = []
    for round_ in range(max(DRESSING_WEIGHTS.values())):
        out += [d for d in dressings if DRESSING_WEIGHTS[d] > round_]
    return out


_LEADS = (
    "Putting everything together, we have checked every case.",
    "Let me verify once more: substituting back gives a consistent result.",
    "This matches the constraint from the problem statement.",
    "Both conditions are satisfied, so we are done.",
)


def _plain_form(form: str) -> str | None:
    """How a form reads in plain words (a bare number with its unit), or None when it is
    LaTeX that cannot be written without math delimiters."""
    s = form.replace("\\ \\text{feet}", " feet").replace(" \\text{ feet}", " feet")
    s = (
        s.replace("\\text{ ft}", " ft")
        .replace("^\\circ", " degrees")
        .replace("^{\\circ}", " degrees")
    )
    s = s.replace("\\%", "%").replace("{,}", ",").replace(" \\text{ inches}^2", " square inches")
    if re.fullmatch(r"-?[\d.,]*\d(?: [a-z ]+|%)?", s):
        return s
    return None


def _final(dressing: str, x: str, item: _Item, rng: random.Random) -> str:
    """The closing part of an output: the answer x written in one dressing."""
    noun = item.noun
    lead = rng.choice(_LEADS)
    if dressing == "boxed":
        return rng.choice(
            (
                f"{lead}\n\nSo the {noun} is $\\boxed{{{x}}}$.",
                f"{lead} Hence the answer is \\(\\boxed{{{x}}}\\).",
                f"{lead}\n\n\\[\n\\boxed{{{x}}}\n\\]",
                f"\\boxed{{{x}}}",
            )
        )
    if dressing == "final-heading":
        return rng.choice(
            (
                f"{lead}\n\n**Final Answer**\n\\[\n\\boxed{{{x}}}\n\\]",
                f"{lead}\n\n**Final Answer**\nThe {noun} is \\(\\boxed{{{x}}}\\).",
                f"### Final Answer\n$\\boxed{{{x}}}$",
            )
        )
    if dressing == "prose":
        return rng.choice(
            (
                f"{lead} Therefore, the {noun} is \\({x}\\).",
                f"{lead}\n\nSo the {noun} is ${x}$.",
                f"Thus, the {noun} equals \\[ {x} \\]",
            )
        )
    if dressing == "final-phrase":
        return rng.choice(
            (
                f"{lead}\nThe final answer is ${x}$. I hope it is correct.",
                f"{lead} So the answer is ${x}$.",
                f"The final answer is \\({x}\\).",
            )
        )
    if dressing == "prose-remark":  # the answer, then a remark with more math after it
        return rng.choice(
            (
                f"{lead} Therefore, the {noun} is \\({x}\\), as required.",
                f"So the {noun} is ${x}$, which also checks out for the case $n = 2$.",
                f"{lead}\n\n**Answer:** ${x}$ (this agrees with the check in step $3$).",
                f"Hence the answer is $\\boxed{{{x}}}$, and one can verify it for $k = 1$ too.",
            )
        )
    if dressing == "answer-line":
        return rng.choice((f"{lead}\n\nAnswer: ${x}$", f"{lead}\n\n**Answer:** \\({x}\\)"))
    if dressing == "bare":
        plain = _plain_form(x)
        assert plain is not None, x
        return rng.choice(
            (
                f"{lead} So the {noun} is {plain}.",
                f"Adding it all up, the {noun} comes to {plain}.",
                f"{lead} That gives {plain}.",
            )
        )
    raise ValueError(dressing)


def _decoy_thought(decoy: str, rng: random.Random) -> str:
    return rng.choice(
        (
            f"Okay, let me set this up. A first pass gives $\\boxed{{{decoy}}}$... wait, no, I "
            "dropped a factor there. Let me redo the computation carefully.",
            f"Hmm. So the answer would be {decoy}? No, that ignores the second condition. Let me "
            "recount the cases one by one.",
            f"Let me try: this gives ${decoy}$. But wait, I made a sign error in the second step, "
            "so that is wrong. Redo it.",
            f"Alright, so the final answer is ${decoy}$. Hmm, hold on, let me double-check with "
            "another method. Actually no, that first attempt was wrong.",
        )
    )


def _think(dressing: str, body: str, decoy: str, rng: random.Random) -> str:
    thought = _decoy_thought(decoy, rng)
    if dressing == "think-decoy":
        return f"<think>\n{thought}\n</think>\n\n{body}"
    return f"{thought}\n</think>\n\n{body}"  # the prefilled `<think>\n` is not in the output


def _truncated(x: str, item: _Item, rng: random.Random) -> str:
    """A chain cut off by the token limit: it has reached the right answer, never closed."""
    thought = rng.choice(
        (
            f"So the {item.noun} is $\\boxed{{{x}}}$. Let me double-check this by plugging it back "
            "into the original equation: the left side becomes",
            f"That gives ${x}$ for the {item.noun}. Hmm, but let me verify with another approach. "
            "Suppose instead we",
            f"Therefore, the final answer is \\({x}\\). Wait, I should check the edge case where",
        )
    )
    return f"<think>\nOkay, let's see. {thought}"


def corpus() -> list[Ending]:
    """Every case, in a fixed order (the same list on every run)."""
    rng = random.Random(SEED)
    out: list[Ending] = []
    n = 0
    for item in ITEMS:
        forms = [(f, True) for f in item.equal] + [(f, False) for f in item.unequal]
        for form, equal in forms:
            dressings = [d for d in FINAL_DRESSINGS if d != "bare" or _plain_form(form)]
            if item.kind not in NUMERIC_KINDS:
                dressings = [d for d in dressings if d != "bare"]
            rotation = _weighted(dressings)
            primary = rotation[n % len(rotation)]
            n += 1
            body = _final(primary, form, item, rng)
            out.append(Ending(body, item.gold, equal, f"{item.kind}/{primary}"))
            # The same answer after a think block that considered something else first: a wrong
            # decoy before a right answer, the right answer as the decoy before a wrong one.
            think = "think-decoy" if n % 2 else "think-prefill"
            after = _final(rng.choice(_weighted(dressings)), form, item, rng)
            decoy = item.decoy if equal else item.gold
            out.append(
                Ending(_think(think, after, decoy, rng), item.gold, equal, f"{item.kind}/{think}")
            )
            if equal and n % 3 != 1:
                out.append(
                    Ending(_truncated(form, item, rng), item.gold, False, f"{item.kind}/truncated")
                )
    for i, (text, gold, equal) in enumerate(SEVERAL):
        dressing = (
            "final-heading" if "Final Answer" in text else "boxed" if "\\boxed" in text else "prose"
        )
        out.append(Ending(text, gold, equal, f"several/{dressing}"))
        decoy = "0" if equal else gold.split(",")[0].strip()
        think = "think-decoy" if i % 2 else "think-prefill"
        out.append(Ending(_think(think, text, decoy, rng), gold, equal, f"several/{think}"))
        if equal and i % 2 == 0:
            cut = f"<think>\nOkay. Solving the quadratic, {text[0].lower()}{text[1:]} Let me check"
            out.append(Ending(cut, gold, False, "several/truncated"))
    return out


def r1_output(answer: str, gold: str, rng: random.Random, *, decoy: str) -> str:
    """One R1-style output for any answer (benchmarks dress MATH-500 golds with it): a think
    block, prefilled or not, that drops `decoy`, then `answer` in a random dressing."""
    item = _Item("any", gold, "answer", (answer,), (), decoy)
    dressings = [d for d in FINAL_DRESSINGS if d != "bare" or _plain_form(answer)]
    body = _final(rng.choice(dressings), answer, item, rng)
    return _think(rng.choice(("think-decoy", "think-prefill")), body, decoy, rng)


# -- the cases a comparison runs: the grading table's math rows, then this corpus -------------


class Case(NamedTuple):
    source: str
    """`table` (tests/test_grading_table.py) or `corpus` (this module)."""
    task: str
    text: str
    """The whole output, as a grader receives it."""
    gold: str
    expected: bool
    kind: str


MATH_TASKS = ("math500", "aime24")


def cases(limit: int | None = None) -> list[Case]:
    """The grading table's math rows (each output as the table test grades it) and the
    corpus; `limit` keeps the first N of each."""
    from tests.test_grading_table import TABLE, _output

    table = [
        Case("table", task, _output(task, output), gold, expected, f"table/{why}")
        for task, output, gold, expected, why in TABLE
        if task in MATH_TASKS
    ]
    endings = [Case("corpus", e.task, e.text, e.gold, e.expected, e.kind) for e in corpus()]
    if limit is not None:
        table, endings = table[:limit], endings[:limit]
    return table + endings


def ours(case: Case) -> bool:
    """The project's verdict, by the path the grading table uses: `split_reasoning`, then
    `Task.score` on the answer part."""
    from harness.tasks.grading.extract import split_reasoning
    from harness.types import Generation
    from tests.test_grading_table import _problem

    task, problem = _problem(case.task, case.gold)
    think = "<think>" in case.text or "</think>" in case.text
    reasoning, answer_part, closed = split_reasoning(case.text, think)
    score = task.score(
        Generation(text=answer_part, reasoning=reasoning, reasoning_closed=closed), problem
    )
    return score.correct is True


def mathverify(case: Case, whole: bool = False) -> bool:
    """math-verify's own verdict, as its README shows it: `verify(parse(gold), parse(text))`,
    in this process (its timeouts need the main thread). `text` is the answer part (after
    `</think>`; empty for a chain that never closed), the reference behaviour the grader is
    held to; whole=True reads the whole output, as a user who never splits off the chain."""
    from math_verify import parse, verify

    from harness.tasks.grading.extract import THINK_CLOSE, THINK_OPEN, split_reasoning

    text = case.text
    if not whole:
        think = THINK_OPEN in text or THINK_CLOSE in text
        text = split_reasoning(text, think)[1]
    return bool(verify(parse(f"${case.gold}$"), parse(text)))


if __name__ == "__main__":  # a look at the corpus: python -m tests.math_endings
    cases = corpus()
    print(f"{len(cases)} cases, {sum(c.expected for c in cases)} equal")
    for c in cases[:: max(1, len(cases) // 12)]:
        print(f"--- {c.kind} gold={c.gold!r} expected={c.expected}\n{c.text}")
