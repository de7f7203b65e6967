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


# -- R1-style endings, scored as written (never put in a box first) --------------------------
# (task, answer part as the model wrote it, gold, equal?, why). Written from the answer styles
# of DeepSeek-R1 and its distills: units and decoration inside boxes, no box at all, prose
# phrases, option letters in every dress, stray think tags, leaked chat turns, several boxes,
# intervals, relations, matrices, words, digit grouping.
ENDINGS: list[tuple[str, str, str, bool, str]] = [
    # -- numbers with units or LaTeX decoration inside \boxed{} --------------------------------
    ("gsm8k", "The ladder reaches \\boxed{34\\ \\text{feet}}.", "34", True, "unit after \\ "),
    ("gsm8k", "\\boxed{35\\ \\text{feet}}", "34", False, "unit does not rescue a wrong value"),
    ("gsm8k", "\\boxed{180,\\!000\\ \\text{meters}}", "180000", True, "\\! in grouping, unit"),
    ("gsm8k", "\\boxed{18,\\!000\\ \\text{meters}}", "180000", False, "a group short"),
    ("gsm8k", "She pays \\boxed{77\\,€}", "77", True, "euro after thin space"),
    ("gsm8k", "\\boxed{49\\degree}", "49", True, "\\degree"),
    ("gsm8k", "\\boxed{49^\\circ}", "49", True, "^\\circ"),
    ("gsm8k", "\\boxed{48^\\circ}", "49", False, "wrong angle"),
    ("gsm8k", "\\boxed{\\text{18}}", "18", True, "number inside \\text is kept"),
    ("gsm8k", "\\boxed{\\text{19}}", "18", False, "wrong number inside \\text"),
    ("gsm8k", "\\boxed{\\textbf{18}}", "18", True, "\\textbf"),
    ("gsm8k", "\\boxed{\\mathbf{18}}", "18", True, "\\mathbf"),
    ("gsm8k", "\\boxed{18 \\text{ eggs}}", "18", True, "unit in \\text after space"),
    ("gsm8k", "\\boxed{5km}", "5", True, "glued unit"),
    ("gsm8k", "\\boxed{5x}", "5", False, "glued variable: a product"),
    ("gsm8k", "\\boxed{5k}", "5000", True, "k is thousands"),
    ("gsm8k", "\\boxed{5k}", "5", False, "5k is not 5"),
    ("gsm8k", "\\boxed{2.5 \\text{ million}}", "2500000", True, "scale word"),
    ("gsm8k", "\\boxed{\\$18.00}", "18", True, "escaped dollar, cents"),
    ("gsm8k", "\\boxed{18\\%}", "18", True, "percent"),
    ("gsm8k", "\\boxed{\\$19.00}", "18", False, "wrong amount"),
    # -- false positives ------------------------------------------------------------------------
    ("gsm8k", "\\boxed{\u22125}", "5", False, "Unicode minus is a sign"),
    ("gsm8k", "\\boxed{\u22125}", "-5", True, "Unicode minus reads as -"),
    ("gsm8k", "\\boxed{\\frac34}", "34", False, "brace-less fraction is not 34"),
    ("gsm8k", "\\boxed{\\frac34}", "0.75", True, "brace-less fraction is 3/4"),
    ("gsm8k", "\\boxed{10_2}", "10", False, "a base subscript is not decoration"),
    ("gsm8k", "\\boxed{18 = 3\\times6}", "18", True, "number = its expression"),
    ("gsm8k", "\\boxed{3 \\times 6 = 18}", "18", True, "expression = number"),
    ("gsm8k", "\\boxed{18 = 3\\times 5}", "18", False, "sides disagree: no answer"),
    ("gsm8k", "\\boxed{18 = 3\\times6}", "3", False, "never a factor"),
    ("math500", "\\boxed{\\frac34}", "\\frac{3}{4}", True, "brace-less fraction (math)"),
    ("math500", "\\boxed{\\frac34}", "34", False, "brace-less fraction is not 34 (math)"),
    ("math500", "\\boxed{\u22125}", "5", False, "Unicode minus (math)"),
    # -- math answers without \boxed{} ----------------------------------------------------------
    ("math500", "Therefore, the distance is \\(3\\sqrt{13}\\).", "3\\sqrt{13}", True, "last math"),
    (
        "math500",
        "Therefore, the distance is \\(3\\sqrt{13}\\).",
        "13",
        False,
        "never the last number",
    ),
    ("math500", "The side length is $2\\sqrt{5}$.", "2\\sqrt{5}", True, "surd in $"),
    ("math500", "The side length is $2\\sqrt{5}$.", "5", False, "surd is not its radicand"),
    ("math500", "**Final Answer**: $\\frac{1}{2}$", "\\frac12", True, "bold Final Answer:"),
    ("math500", "**Final Answer**: $\\frac{1}{3}$", "\\frac12", False, "bold Final Answer: wrong"),
    (
        "math500",
        "**Final Answer**\nThe probability is $\\dfrac{5}{12}$.",
        "\\frac{5}{12}",
        True,
        "Final Answer heading, then a sentence",
    ),
    ("math500", "Thus, we have \\[ x = 7 \\]", "7", True, "display math"),
    ("math500", "Thus, we have \\[ x = 8 \\]", "7", False, "display math, wrong"),
    # -- phrases --------------------------------------------------------------------------------
    ("gsm8k", "Let me check the answer is reasonable. Total: 18", "18", True, "not 'reasonable'"),
    ("gsm8k", "Let me check the answer is reasonable. Total: 17", "18", False, "wrong total"),
    ("gsm8k", "The answer is: after 3 days she has 18 eggs", "18", True, "number ending sentence"),
    ("gsm8k", "The answer is: after 3 days she has 18 eggs", "3", False, "not the first number"),
    ("gsm8k", "She has 18 eggs left.\n\nConfidence: 90%", "18", True, "confidence line ignored"),
    ("gsm8k", "She has 18 eggs left.\n\nConfidence: 90%", "90", False, "confidence never answers"),
    ("gsm8k", "**Final Answer**\nJanet makes \\$18 every day.", "18", True, "heading, sentence"),
    ("gsm8k", "The total is 2,74 $", "2.74", True, "decimal comma"),
    ("gsm8k", "The total is 2,74 $", "274", False, "decimal comma is not grouping"),
    # -- multiple choice ------------------------------------------------------------------------
    ("arc", "The correct answer is **C**.", "C", True, "correct answer is, bold"),
    ("arc", "The correct answer is **B**.", "C", False, "correct answer is, other letter"),
    ("arc", "C", "C", True, "bare letter"),
    ("arc", "C.", "C", True, "bare letter with period"),
    ("arc", "**C**", "C", True, "bold letter"),
    ("arc", "B.", "C", False, "bare other letter"),
    ("arc", "So the correct option is C.", "C", True, "correct option is"),
    ("arc", "The answer is C, because faster spin means shorter days.", "C", True, "letter, why"),
    ("arc", "(C) Planetary days will become shorter.", "C", True, "option with its text"),
    ("arc", "\u7b54\u6848\uff1aC", "C", True, "Chinese answer line"),
    ("arc", "\u7b54\u6848\uff1aB", "C", False, "Chinese answer line, other letter"),
    ("arc", "The answer is **C**, not (A).", "C", True, "a ruled-out option after the answer"),
    ("arc", "The answer is C, not (A).", "A", False, "the ruled-out option is not the answer"),
    ("arc", "The answer is \\boxed{A} or \\boxed{C}", "C", False, "two options"),
    # -- think tags -----------------------------------------------------------------------------
    (
        "gsm8k",
        "<think>\n9*2=17?\n</think>\n\nShe makes \\boxed{18}.\n</think>",
        "18",
        True,
        "stray </think> after the answer",
    ),
    (
        "gsm8k",
        "<think>\n9*2=18\n</think>\nThe answer is 17.\n</think>\n",
        "18",
        False,
        "stray tag: the answer is the last non-empty segment",
    ),
    (
        "math500",
        "<think>\nmaybe \\boxed{3}\n</think>\n\nThe answer is $\\boxed{4}$",
        "3",
        False,
        "a box inside the think block is never read",
    ),
    # -- leaked chat turns ----------------------------------------------------------------------
    (
        "math500",
        "The final answer is $\\frac{2}{3}$. I hope it is correct.<|im_start|>user\n"
        "What is 1+1? \\boxed{2}",
        "\\frac23",
        True,
        "graded before the leaked turn",
    ),
    (
        "math500",
        "The final answer is $\\frac{2}{3}$. I hope it is correct.<|im_start|>user\n"
        "What is 1+1? \\boxed{2}",
        "2",
        False,
        "the leaked turn's box is not the answer",
    ),
    (
        "gsm8k",
        "The answer is 18.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nThe answer is 5",
        "5",
        False,
        "Llama-style leaked turn",
    ),
    # -- several boxes make one answer ----------------------------------------------------------
    ("math500", "The integers are \\boxed{-2} and \\boxed{1}.", "-2, 1", True, "two boxes"),
    (
        "math500",
        "The integers are \\boxed{-2} and \\boxed{1}.",
        "-2, 3",
        False,
        "two boxes, one off",
    ),
    (
        "math500",
        "\\boxed{(2, 2)} \\quad \\text{and} \\quad \\boxed{(6, 2)}",
        "(2, 2), (6, 2)",
        True,
        "boxed pairs",
    ),
    (
        "math500",
        "\\boxed{(6, 2)} \\quad \\text{and} \\quad \\boxed{(2, 2)}",
        "(2, 2), (6, 2)",
        True,
        "boxed pairs in any order",
    ),
    ("math500", "So \\boxed{(2, 2)}.", "(2, 2), (6, 2)", False, "one of two solutions"),
    ("math500", "\\boxed{1},\\boxed{2},\\boxed{3}", "1, 2, 3", True, "three boxes"),
    (
        "math500",
        "\\boxed{k = 45} \\quad\\text{and}\\quad \\boxed{n = 2}",
        "k = 45, n = 2",
        True,
        "labelled boxes",
    ),
    (
        "math500",
        "\\boxed{k = 45} \\quad\\text{and}\\quad \\boxed{n = 3}",
        "k = 45, n = 2",
        False,
        "labelled boxes, one wrong",
    ),
    ("math500", "\\boxed{2, 19}", "a_3 = 2, a_{37} = 19", True, "gold list with labels"),
    ("math500", "\\boxed{2, 18}", "a_3 = 2, a_{37} = 19", False, "gold list with labels, wrong"),
    ("math500", "\\boxed{-2, 1}", "\\boxed{-2}, \\boxed{1}", True, "gold as several boxes"),
    (
        "math500",
        "From the first equation \\boxed{3}. So the answer is \\boxed{5}.",
        "5",
        True,
        "a sentence between boxes: the last one answers",
    ),
    # -- intervals keep their brackets ----------------------------------------------------------
    ("math500", "The solution set is $[0,1)$.", "[0,1)", True, "interval in prose"),
    ("math500", "The solution set is $(0,1)$.", "[0,1)", False, "open vs half-open, in prose"),
    ("math500", "\\boxed{(0,9)}", "[0,9)", False, "bracket matters"),
    ("math500", "\\boxed{\\left[0,9\\right)}", "[0,9)", True, "left/right brackets"),
    ("math500", "\\boxed{\\left(0,9\\right)}", "[0,9)", False, "left/right open"),
    (
        "math500",
        "\\boxed{[-3/2,-1] \\cup [1,3/2]}",
        "[-\\frac32,-1]\\cup[1,\\frac32]",
        True,
        "union of closed intervals",
    ),
    (
        "math500",
        "\\boxed{(-3/2,-1] \\cup [1,3/2]}",
        "[-\\frac32,-1]\\cup[1,\\frac32]",
        False,
        "union, one bracket off",
    ),
    ("math500", "\\boxed{(1, \\infty)}", "(1, +\\infty)", True, "+infinity"),
    ("math500", "\\boxed{[1, \\infty)}", "(1, +\\infty)", False, "closed at 1"),
    # -- relations and equations ----------------------------------------------------------------
    ("math500", "\\boxed{x >= 5}", "x \\geq 5", True, ">= vs \\geq"),
    ("math500", "\\boxed{x > 5}", "x \\geq 5", False, "strict vs not"),
    ("math500", "\\boxed{5 \\leq x}", "x \\leq 5", False, "reversed relation"),
    ("math500", "\\boxed{5 \\geq x}", "x \\leq 5", True, "same relation, sides swapped"),
    ("math500", "\\boxed{x \\neq 3}", "x \\neq 3", True, "not equal"),
    ("math500", "\\boxed{-x > -1}", "x < 1", True, "multiplied by -1"),
    ("math500", "\\boxed{-x > 1}", "x < 1", False, "multiplied by -1, wrong"),
    (
        "math500",
        "\\boxed{y = -\\frac{1}{2}x + \\frac{3}{4}}",
        "2x + 4y - 3 = 0",
        True,
        "same line, other form",
    ),
    (
        "math500",
        "\\boxed{y = -\\frac{1}{2}x + \\frac{1}{4}}",
        "2x + 4y - 3 = 0",
        False,
        "other line",
    ),
    (
        "math500",
        "\\boxed{\\frac{1}{\\sqrt6}}",
        "\\frac{NO}{BO} = \\frac{1}{\\sqrt6}",
        True,
        "label",
    ),
    (
        "math500",
        "\\boxed{\\frac{1}{\\sqrt5}}",
        "\\frac{NO}{BO} = \\frac{1}{\\sqrt6}",
        False,
        "label",
    ),
    ("math500", "\\boxed{11:21}", "V_1 : V_2 = 11 : 21", True, "ratio with a label"),
    ("math500", "\\boxed{21:11}", "V_1 : V_2 = 11 : 21", False, "ratio reversed"),
    ("math500", "\\boxed{x = 1/3 \\approx 0.33}", "\\frac13", True, "value before \\approx"),
    (
        "math500",
        "\\boxed{x = 1/4 \\approx 0.25}",
        "\\frac13",
        False,
        "value before \\approx, wrong",
    ),
    # -- matrices -------------------------------------------------------------------------------
    (
        "math500",
        "\\boxed{\\left[\\begin{array}{cc}1&2\\\\3&4\\end{array}\\right]}",
        "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
        True,
        "array in brackets vs pmatrix",
    ),
    (
        "math500",
        "\\boxed{\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}}",
        "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
        True,
        "bmatrix vs pmatrix",
    ),
    (
        "math500",
        "\\boxed{\\begin{bmatrix}1&2\\\\4&3\\end{bmatrix}}",
        "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
        False,
        "entries swapped",
    ),
    (
        "math500",
        "The matrix is $\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$.",
        "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
        True,
        "unboxed matrix",
    ),
    # -- words and letters ----------------------------------------------------------------------
    ("math500", "The answer is $E$.", "\\text{E}", True, "letter in math mode"),
    ("math500", "The answer is $D$.", "\\text{E}", False, "other letter"),
    ("math500", "The function is $odd$.", "\\text{odd}", True, "word in math mode"),
    ("math500", "The function is $even$.", "\\text{odd}", False, "other word"),
    ("math500", "\\boxed{Even}", "\\text{even}", True, "case of a word"),
    (
        "math500",
        "\\boxed{\\text{The set of all odd numbers}}",
        "\\text{the set of all odd numbers}",
        True,
        "a sentence as text",
    ),
    # -- numbers --------------------------------------------------------------------------------
    ("math500", "\\boxed{1 000}", "1000", True, "space grouping"),
    ("math500", "\\boxed{1\\,000}", "1000", True, "thin-space grouping"),
    ("math500", "\\boxed{1\\,001}", "1000", False, "thin-space grouping, wrong"),
    ("math500", "The code is AZYUK2A", "2", False, "a number glued inside a word"),
    ("math500", "\\boxed{1,22}", "1.22", True, "decimal comma"),
    ("math500", "\\boxed{1,22}", "1.23", False, "decimal comma, wrong"),
    # -- approximations and conditions after the answer -----------------------------------------
    (
        "math500",
        "\\boxed{\\frac{1}{3}} \\approx \\boxed{0.333}",
        "\\frac13",
        True,
        "a boxed approximation after the exact box",
    ),
    ("math500", "\\boxed{\\frac{1}{4}} \\approx \\boxed{0.25}", "\\frac13", False, "approx, wrong"),
    (
        "math500",
        "The maximum is $\\frac12$, attained at $x=1$.",
        "\\frac12",
        True,
        "a condition after the answer is not the answer",
    ),
    ("math500", "The maximum is $\\frac12$, attained at $x=1$.", "1", False, "never the condition"),
    ("gsm8k", "\\boxed{5\\frac{1}{2}}", "5.5", True, "mixed number"),
    ("gsm8k", "\\boxed{5\\frac{1}{2}}", "25.5", False, "a mixed number is not 51/2"),
    ("gsm8k", "Thus, the total is $\\$18$.", "18", True, "escaped dollar inside math"),
    ("gsm8k", "**Answer:** Janet makes **$18** per day.", "18", True, "bold amount in a sentence"),
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


@pytest.mark.parametrize(
    "task_spec, output, gold, expected, why", ENDINGS, ids=[f"{r[0]}|{r[4]}" for r in ENDINGS]
)
def test_r1_endings(task_spec, output, gold, expected, why):
    task, problem = _problem(task_spec, gold)
    reasoning, answer_part, closed = split_reasoning(output, "</think>" in output)
    score = task.score(
        Generation(text=answer_part, reasoning=reasoning, reasoning_closed=closed), problem
    )
    assert score.correct is expected, (why, score)


def test_endings_are_many_and_two_sided():
    assert len(ENDINGS) >= 60
    assert sum(r[3] for r in ENDINGS) >= 30 and sum(not r[3] for r in ENDINGS) >= 30


def test_table_is_big_and_two_sided():
    assert len(TABLE) >= 80
    assert sum(r[3] for r in TABLE) >= 30 and sum(not r[3] for r in TABLE) >= 30
    assert {r[0].split(":")[0] for r in TABLE} >= {"gsm8k", "math500", "aime24", "arc", "bbh"}
