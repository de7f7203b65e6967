"""The equivalence table: answers a model writes against golds, equal and not equal, each through
the task's real extraction and grading (`Task.score`), math through math-verify's worker.

Rows come from the cases a grader must survive: numbers dressed with commas, units, `$`, `%`,
degrees; `\\dfrac`; tuples, intervals, sets, matrices (lm-eval #4030: identical tuples and
intervals scored wrong); `x = 5`; AIME's leading zeros; option letters; every BBH answer type;
GSM8K golds that their own extractor misses (lm-eval #2212); R1-style outputs with think
blocks (lm-eval #3438); math-verify's own known misses (Math-Verify #14, base subscripts).
"""

from __future__ import annotations

import pytest

from harness.tasks import get_task
from harness.tasks.grading.extract import split_reasoning
from harness.types import Generation, Problem

ARC_OPTIONS = (
    "Planetary density will decrease.",
    "Planetary years will become longer.",
    "Planetary days will become shorter.",
    "Planetary gravity will become stronger.",
)
MOVIE_OPTIONS = ("Monsters", "Inc", "Children of the Night", "The Incredible Shrinking Man")

# (task, model output, gold, equal?, why). A bare math answer is put in \boxed{} first.
TABLE: list[tuple[str, str, str, bool, str]] = [
    # -- GSM8K: numbers however dressed (lm-eval #2212: golds their regexes miss) -------------
    ("gsm8k", "#### 70000", "70000", True, "gold line as written"),
    ("gsm8k", "So he made a profit of $70,000.\n#### 70,000", "70000", True, "#### with comma"),
    ("gsm8k", "The answer is $1,234.50.", "1234.5", True, "$ and comma and cents"),
    ("gsm8k", "The final answer is 18.", "18", True, "trailing period"),
    ("gsm8k", "The answer is \\$18", "18", True, "escaped dollar"),
    ("gsm8k", "The answer is 18 dollars", "18", True, "unit word"),
    ("gsm8k", "\\boxed{18.00}", "18", True, "cents"),
    ("gsm8k", "The answer is 50%", "50", True, "percent kept as written"),
    ("gsm8k", "The answer is 72, in total, so he earns that.", "72", True, "comma after number"),
    ("gsm8k", "\\boxed{8{,}000}", "8000", True, "LaTeX thousands separator"),
    ("gsm8k", "\\boxed{x = 5}", "5", True, "x = 5"),
    ("gsm8k", "The answer is 19.", "18", False, "off by one"),
    ("gsm8k", "The answer is -18.", "18", False, "sign"),
    ("gsm8k", "\\boxed{5 and 6}", "5", False, "two numbers"),
    ("gsm8k", "\\boxed{2^{10}}", "2", False, "a power is not its base"),
    ("gsm8k", "\\boxed{1,-2}", "1", False, "a list is not its first number"),
    ("gsm8k", "Janet makes 16 - 3 - 4 = 9 eggs, 9 * 2 = 18", "18", True, "last number (lenient)"),
    # -- MATH: commas, units, $, %, degrees --------------------------------------------------
    ("math500", "1,000", "1000", True, "thousands comma"),
    ("math500", "1{,}000", "1000", True, "LaTeX thousands comma"),
    ("math500", "10 \\text{ cm}", "10", True, "unit in \\text"),
    ("math500", "864 \\mbox{ inches}^2", "864", True, "unit with power"),
    ("math500", "15\\mbox{ cm}^2", "16", False, "unit does not rescue a wrong value"),
    ("math500", "\\$18.90", "18.90", True, "dollar"),
    ("math500", "10\\%", "10", True, "percent"),
    ("math500", "25\\%", "20", False, "wrong percent"),
    ("math500", "90^\\circ", "90", True, "degrees"),
    ("math500", "90", "90^\\circ", True, "gold in degrees"),
    ("math500", "45^{\\circ}", "90^\\circ", False, "wrong angle"),
    # -- fractions --------------------------------------------------------------------------
    ("math500", "\\dfrac{14}{3}", "\\frac{14}{3}", True, "dfrac"),
    ("math500", "\\tfrac{1}{2}", "0.5", True, "tfrac vs decimal"),
    ("math500", "\\frac{2}{4}", "\\frac{1}{2}", True, "unreduced fraction"),
    ("math500", "\\frac{3}{56}", "\\frac{4}{56}", False, "numerator +1"),
    ("math500", "4.67", "\\frac{14}{3}", False, "rounded decimal"),
    ("math500", "0.333333", "\\frac{1}{3}", True, "six-place decimal"),
    ("math500", "0.33", "\\frac{1}{3}", False, "two-place decimal"),
    ("math500", "0.15", "\\frac{3}{20}", True, "terminating decimal"),
    # -- tuples and intervals (lm-eval #4030) -----------------------------------------------
    (
        "math500",
        "\\left( 3, \\frac{\\pi}{2} \\right)",
        "\\left( 3, \\frac{\\pi}{2} \\right)",
        True,
        "identical tuple",
    ),
    ("math500", "(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)", True, "left/right"),
    (
        "math500",
        "(3,\\dfrac{\\pi}{2})",
        "\\left( 3, \\frac{\\pi}{2} \\right)",
        True,
        "dfrac inside",
    ),
    ("math500", "(\\frac{\\pi}{2}, 3)", "(3, \\frac{\\pi}{2})", False, "order matters"),
    (
        "math500",
        "(3, \\frac{2\\pi}{3})",
        "\\left( 3, \\frac{\\pi}{2} \\right)",
        False,
        "wrong angle",
    ),
    ("math500", "(2,4)", "(2,4)", True, "#4030 tuple"),
    ("math500", "(1, 4.5)", "(1, \\frac{9}{2})", True, "tuple with decimal"),
    ("math500", "[2,5)", "[2,5)", True, "#4030 interval"),
    ("math500", "[-2,7]", "[-2, 7]", True, "closed interval"),
    ("math500", "(-2, 7)", "[-2, 7]", False, "open vs closed"),
    ("math500", "[2, 5]", "[2, 5)", False, "closed vs half-open"),
    (
        "math500",
        "(-\\infty,-2)\\cup(2,\\infty)",
        "(-\\infty, -2) \\cup (2, \\infty)",
        True,
        "union of intervals",
    ),
    (
        "math500",
        "(-\\infty,-3)\\cup(2,\\infty)",
        "(-\\infty, -2) \\cup (2, \\infty)",
        False,
        "wrong endpoint",
    ),
    # -- sets and lists -----------------------------------------------------------------------
    ("math500", "\\{2, 1\\}", "\\{1, 2\\}", True, "set order"),
    ("math500", "\\{1, 3\\}", "\\{1, 2\\}", False, "wrong element"),
    ("math500", "-2, 1", "1,-2", True, "list of solutions in any order"),
    ("math500", "7, 5, 3", "3, 5, 7", True, "three solutions"),
    ("math500", "3, 5", "3, 5, 7", False, "missing solution"),
    # -- matrices (#4030) ---------------------------------------------------------------------
    (
        "math500",
        "\\begin{pmatrix}1\\\\2\\end{pmatrix}",
        "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
        True,
        "#4030 vector",
    ),
    (
        "math500",
        "\\begin{pmatrix}1\\\\3\\end{pmatrix}",
        "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
        False,
        "wrong entry",
    ),
    (
        "math500",
        "\\begin{pmatrix} 2 & 0 \\\\ 0 & 2 \\end{pmatrix}",
        "\\begin{pmatrix}2&0\\\\0&2\\end{pmatrix}",
        True,
        "2x2 matrix",
    ),
    # -- equations, expressions, text -------------------------------------------------------
    ("math500", "x = 5", "5", True, "x = 5 vs 5"),
    ("math500", "5", "x=5", True, "5 vs gold x=5"),
    ("math500", "x = 6", "x=5", False, "wrong value"),
    ("math500", "-q + p", "p - q", True, "commuted"),
    ("math500", "2\\sqrt{2}", "\\sqrt{8}", True, "surd simplified"),
    ("math500", "11\\sqrt{2}", "11\\sqrt2", True, "\\sqrt2 without braces"),
    ("math500", "\\sqrt{52}", "\\sqrt{51}", False, "wrong surd"),
    ("math500", "x^5-x^4+x^3-x^2+x-1", "x^5 - x^4 + x^3 - x^2 + x - 1", True, "polynomial"),
    ("math500", "6-5i", "6 - 5i", True, "complex"),
    ("math500", "6+5i", "6 - 5i", False, "conjugate"),
    ("math500", "Evelyn", "\\text{Evelyn}", True, "text answer"),
    ("math500", "\\text{Bob}", "\\text{Evelyn}", False, "other name"),
    ("math500", "52_8", "52_8", True, "base subscript"),
    ("math500", "52", "52_8", True, "digits without the subscript"),
    ("math500", "52_9", "52_8", False, "other base (math-verify alone says equal)"),
    ("math500", "\\frac{1}{2006!}", "\\frac{1}{2004!}", False, "tiny numbers (Math-Verify #14)"),
    ("math500", "\\frac{1}{2^{98}}", "\\frac{1}{2^{99}}", False, "tiny numbers (Math-Verify #14)"),
    ("math500", "1+\\frac{1}{e}", "1 - \\frac{1}{e}", False, "sign (Math-Verify #14)"),
    ("math500", "2021", "\\pm 2021", False, "one of two signs"),
    # -- AIME: integers 0-999, leading zeros, AoPS formatting ------------------------------
    ("aime24", "25", "025", True, "leading zero in gold"),
    ("aime24", "025", "025", True, "same"),
    ("aime24", "\\textbf{(113) }", "113", True, "AoPS bold in parentheses"),
    ("aime24", "104.", "104", True, "trailing period inside the box"),
    ("aime24", "\\mathbf{127}", "127", True, "mathbf"),
    ("aime24", "336^\\circ", "336", True, "degrees (Skywork's copy of 2025 II-5)"),
    ("aime24", "26", "025", False, "off by one"),
    ("aime24", "250", "025", False, "digits shifted"),
    # -- option letters (ARC) ---------------------------------------------------------------
    ("arc", "\\boxed{C}", "C", True, "boxed letter"),
    ("arc", "\\boxed{\\text{(C)}}", "C", True, "text-wrapped letter"),
    ("arc", "So the answer is (C).", "C", True, "BBH-style phrase"),
    ("arc", "Answer: c", "C", True, "lowercase answer line"),
    ("arc", "**Answer:** (C) Planetary days will become shorter.", "C", True, "letter and text"),
    ("arc", "\\boxed{Planetary days will become shorter}", "C", True, "option text only"),
    ("arc", "\\boxed{B}", "C", False, "other letter"),
    ("arc", "The answer is (A) and (C).", "C", False, "two letters"),
    ("arc", "\\boxed{E}", "C", False, "no such option"),
    ("arc", "It is not (A); (C) fits best", "C", True, "last (C) (lenient)"),
    ("arc", "The rotation rate grows.\n\nOption C:", "C", True, "last option C (lenient)"),
    # -- BBH answer types -------------------------------------------------------------------
    ("bbh:boolean_expressions", "So the answer is True.", "True", True, "bool phrase"),
    ("bbh:boolean_expressions", "\\boxed{\\text{False}}", "False", True, "bool boxed"),
    ("bbh:boolean_expressions", "\\boxed{True}", "False", False, "bool wrong"),
    ("bbh:navigate", "So the answer is Yes.", "Yes", True, "yes/no"),
    ("bbh:sports_understanding", "\\boxed{yes}", "yes", True, "lowercase gold"),
    ("bbh:web_of_lies", "The answer is no, Lorine lies.", "No", True, "label then reason"),
    ("bbh:causal_judgement", "\\boxed{Yes}", "No", False, "yes vs no"),
    ("bbh:formal_fallacies", "So the answer is invalid.", "invalid", True, "validity"),
    ("bbh:formal_fallacies", "The answer is: not valid", "invalid", True, "not valid"),
    ("bbh:formal_fallacies", "\\boxed{\\text{valid}}", "invalid", False, "valid vs invalid"),
    ("bbh:multistep_arithmetic_two", "So the answer is -11520.", "-11520", True, "number"),
    ("bbh:object_counting", "\\boxed{8}", "8", True, "count"),
    ("bbh:object_counting", "\\boxed{9}", "8", False, "wrong count"),
    (
        "bbh:word_sorting",
        "So the answer is arson aspect census.",
        "arson aspect census",
        True,
        "words",
    ),
    (
        "bbh:word_sorting",
        "\\boxed{arson, aspect, census}",
        "arson aspect census",
        True,
        "words with commas",
    ),
    ("bbh:word_sorting", "\\boxed{aspect arson census}", "arson aspect census", False, "unsorted"),
    ("bbh:dyck_languages", "So the answer is ] ) ).", "] ) )", True, "closing sequence"),
    ("bbh:dyck_languages", "\\boxed{]))}", "] ) )", True, "without spaces"),
    ("bbh:dyck_languages", "\\boxed{\\} ] >}", "} ] >", True, "escaped brace in box"),
    ("bbh:dyck_languages", "So the answer is ] ).", "] ) )", False, "one missing"),
    ("bbh:date_understanding", "\\boxed{(B)}", "(B)", True, "option in BBH"),
    (
        "bbh:movie_recommendation",
        "So the answer is Monsters, Inc.",
        "Monsters, Inc",
        True,
        "text gold (dataset split the option)",
    ),
    ("bbh:movie_recommendation", "\\boxed{A}", "Monsters, Inc", False, "a half of the title"),
    # -- R1-style outputs (lm-eval #3438): the answer is after </think> ---------------------
    (
        "gsm8k",
        "<think>\nhmm, maybe the answer is 7\n</think>\n\nThe answer is \\boxed{18}.",
        "18",
        True,
        "think block then boxed",
    ),
    (
        "gsm8k",
        "Okay, 16-3-4=9, 9*2=18.\n</think>\n**Final Answer**\n\\[\n\\boxed{18}\n\\]",
        "18",
        True,
        "prefilled <think>, Final Answer heading",
    ),
    (
        "gsm8k",
        "<think>\n16-3-4=9, so \\boxed{18} and then",
        "18",
        False,
        "never closed: truncated, not correct",
    ),
    (
        "math500",
        "<think>x</think>\n\nThe final answer is $\\boxed{\\dfrac{14}{3}}$.",
        "\\frac{14}{3}",
        True,
        "math after think",
    ),
    (
        "arc",
        "<think>\n(A) seems right... no.\n</think>\n\n\\boxed{C}",
        "C",
        True,
        "letter after think",
    ),
]


def _problem(task_spec: str, gold: str) -> tuple[object, Problem]:
    name = {"arc": "arc-challenge"}.get(task_spec, task_spec)
    task = get_task(name)
    meta: dict = {}
    choices: tuple[str, ...] = ()
    answer = gold
    if name == "arc-challenge":
        choices = ARC_OPTIONS
    if name.startswith("bbh:"):
        from harness.tasks.bbh import ANSWER_TYPES, gold_of

        subtask = name.split(":", 1)[1]
        kind = ANSWER_TYPES[subtask]
        if subtask == "movie_recommendation":
            choices = MOVIE_OPTIONS
        elif kind == "choice":
            choices = ("a", "b", "c", "d")
        meta = {"answer_type": kind, "target": gold}
        answer = gold_of(kind, gold, choices, "table")
    return task, Problem(id="t", task=name, question="q", answer=answer, choices=choices, meta=meta)


def _output(task_spec: str, output: str) -> str:
    plain = not any(k in output for k in ("\\boxed", "answer", "####", "</think>", "<think>"))
    if task_spec in ("math500", "aime24") and plain:
        return f"\\boxed{{{output}}}"
    return output


@pytest.mark.parametrize(
    "task_spec, output, gold, expected, why", TABLE, ids=[f"{r[0]}|{r[4]}" for r in TABLE]
)
def test_equivalence_table(task_spec, output, gold, expected, why):
    task, problem = _problem(task_spec, gold)
    text = _output(task_spec, output)
    reasoning, answer_part, closed = split_reasoning(text, "<think>" in text or "</think>" in text)
    score = task.score(
        Generation(text=answer_part, reasoning=reasoning, reasoning_closed=closed), problem
    )
    assert score.correct is expected, (why, score)


def test_table_is_big_and_two_sided():
    assert len(TABLE) >= 80
    assert sum(r[3] for r in TABLE) >= 30 and sum(not r[3] for r in TABLE) >= 30
    assert {r[0].split(":")[0] for r in TABLE} >= {"gsm8k", "math500", "aime24", "arc", "bbh"}
