"""Where the math grader deliberately differs from math-verify's own verdict.

"math-verify's own verdict" is what a user of math-verify gets from the whole model output:
`verify(parse(f"${gold}$"), parse(output))`. The harness grades the same output differently on
purpose in the cases listed in `DELIBERATE_DIFFERENCES`: it splits off the reasoning first,
never grades a truncated chain, reads several boxes as one answer, and decides some pairs
exactly where math-verify's normalization loses information. Every other disagreement between
the two is unexplained: a bug in one of them, to be fixed or added here with its reason.

`classify_difference(text, gold, ours, theirs)` names the entry that explains one disagreement,
from features of the case itself (where the text has a think block, what the answer part
holds, what the gold looks like), or None. Entries are tried in table order: truncation, then
the answer's own features (they make math-verify disagree even when it reads the answer part
alone), then the think block, then the lenient fallback. Each entry also says which way it
goes (ours True and math-verify False, or the reverse): a disagreement the other way is not
explained by it. The comparison that uses this is benchmarks/bench_mathverify_diff.py.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.tasks.grading.extract import THINK_CLOSE, THINK_OPEN, boxes, split_reasoning

if TYPE_CHECKING:
    from harness.tasks.base import Task


@dataclass(frozen=True)
class Difference:
    name: str
    reason: str
    """Why the harness's verdict is the intended one."""
    example: str
    """A case: output, gold, and the two verdicts."""
    ours: bool | None = None
    """The harness's verdict when this difference is at work (None: either way)."""


DELIBERATE_DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        "truncated",
        "A think block that never reached `</think>` gave no answer (the token limit cut it): "
        "the record is marked truncated and scored not correct, whatever the unfinished chain "
        "holds. math-verify, reading the whole output, grades the answer the chain was still "
        "checking.",
        "`<think>\\nso x is \\boxed{5}. Let me double-check` with gold 5: harness False, "
        "math-verify True",
        ours=False,
    ),
    Difference(
        "several-boxes",
        "Several `\\boxed{}` in the answer part are one answer: 'the solutions are "
        "\\boxed{-2} and \\boxed{1}' answers '-2, 1'. math-verify joins boxes only in a chain "
        "of `$...$` joined by 'and', 'or' or commas, and otherwise reads one box.",
        "`So $x = \\boxed{3}$, $\\boxed{5}$, or $\\boxed{7}$.` with gold `3, 5, 7`: harness "
        "True, math-verify False",
    ),
    Difference(
        "base-subscript",
        "A number with a base subscript is its digits in that base: `52_9` is not `52_8`. "
        "math-verify drops the subscript and compares the digits alone.",
        "`\\boxed{52_9}` with gold `52_8`: harness False, math-verify True",
        ours=False,
    ),
    Difference(
        "tiny-exact",
        "Two exact numbers are compared exactly: `1/2004!` is not `1/2006!`. math-verify "
        "compares numbers after `evalf(chop=True)`, where both are 0 (Math-Verify #14).",
        "`\\boxed{\\frac{1}{2006!}}` with gold `\\frac{1}{2004!}`: harness False, math-verify True",
        ours=False,
    ),
    Difference(
        "spaced-thousands",
        "A LaTeX thin space between digit groups (`1\\,000`, `12\\,345`) is a thousands "
        "separator, as in `1{,}000`. math-verify reads `1\\,000` as the product 1*000.",
        "`\\boxed{1\\,000}` with gold 1000: harness True, math-verify False",
        ours=True,
    ),
    Difference(
        "percent-as-written",
        "A percentage is its number as written: `12.5\\%` answers a gold of 12.5 (MATH and "
        "GSM8K golds leave the sign out). math-verify reads `12.5\\%` as 0.125.",
        "`\\boxed{12.5\\%}` with gold 12.5: harness True, math-verify False",
        ours=True,
    ),
    Difference(
        "degree-sign",
        "A degree sign is the unit of the number before it: `30°` answers 30, as `30^\\circ` "
        "does. math-verify reads the Unicode `°` as no number.",
        "`The angle is \\(30°\\).` with gold 30: harness True, math-verify False",
        ours=True,
    ),
    Difference(
        "trailing-period",
        "A period that ends the sentence inside the box (`\\boxed{104.}`) is punctuation, not "
        "part of the answer. math-verify reads `104.` as no number.",
        "`\\boxed{104.}` with gold 104: harness True, math-verify False",
        ours=True,
    ),
    Difference(
        "remark-after-answer",
        "An answer part without a box or phrase states its answer after 'is' or '=' and may go "
        "on with a remark that holds more math ('the sum is $204$, which checks out for the "
        "case $n = 2$'; 'the maximum is $\\frac12$, attained at $x = 1$'). The harness takes "
        "the value after 'is' (lenient); math-verify takes the last math span, the remark's.",
        "`So the sum is $204$, which also checks out for the case $n = 2$.` with gold 204: "
        "harness True, math-verify False",
    ),
    Difference(
        "think-block",
        "Text inside `<think>...</think>` is never searched for the answer: it is scratch work "
        "where the model tries answers and drops them. math-verify ranks a `\\boxed{}` or a "
        "'final answer is' phrase above a plain `$...$` answer and searches the whole output, "
        "so a boxed decoy in the chain wins over the answer written after `</think>`.",
        "`<think>\\nmaybe \\boxed{7}? no.\\n</think>\\n\\nSo the total is $18$.` with gold 18: "
        "harness True, math-verify False (it reads the 7)",
    ),
    Difference(
        "lenient-last-number",
        "With no stated answer, a number closing the answer part ('So she has 18 apples "
        "left.') is taken as the answer, flagged lenient in the record so metrics can count "
        "such answers; math-verify's anchors refuse some of them.",
        "`So the total is (18)` with gold 18: harness True (lenient), math-verify False (it "
        "reads a number only after a space or `=`)",
        ours=True,
    ),
)

BY_NAME = {d.name: d for d in DELIBERATE_DIFFERENCES}

# -- features ----------------------------------------------------------------------------------

_LATEX_SPAN = re.compile(
    r"\$\$.+?\$\$|(?<![\\\d])\$[^\n$]+?\$|\\\(.+?\\\)|\\\[.+?\\\]|\\frac\{-?[\d.,]+\}\{-?[\d.,]+\}",
    re.S,
)
_NUMBER = re.compile(r"(?:^|[\s=])(?:\*\*)?[$]?-?\.?\d")
# What math-verify reads after an "answer" anchor: a math span, a bare `\frac{3}{4}`, or a
# number that follows a space or `=` (it does not read the 0 in `\{0\}`).
_READABLE = r"(?:\$|\\\(|\\\[|-?\\frac\{-?\d|(?:^|[\s=])(?:\*\*)?[$]?-?\.?\d)"


def mathverify_anchor(text: str) -> int | None:
    """The best (lowest) priority at which math-verify's default extraction finds a candidate
    in `text`, following its extraction regexes: 0 "final answer is X. I hope", 50 "final
    answer ... is X" or a `\\boxed{}`, 100 "answer: X", 200 "answer ... X", 300 any `$...$`,
    `\\(...\\)`, `\\[...\\]` or number; None when it finds nothing to read. Within the best
    priority it takes the rightmost candidate that parses."""
    low = text.lower()
    if re.search(r"final answer is:?\s*\S.*?i hope", low, re.S):
        return 0
    if "\\boxed{" in text or re.search(r"final answer.{0,100}?\s+is:?\s*\S", low, re.S):
        return 50
    if re.search(rf"answer:.{{0,50}}?{_READABLE}", low, re.S):
        return 100
    if re.search(rf"answer.{{0,50}}?{_READABLE}", low, re.S):
        return 200
    if _LATEX_SPAN.search(text) or _NUMBER.search(text):
        return 300
    return None


def _boxes(text: str) -> list[str]:
    """Contents of every complete `\\boxed{...}` in order."""
    return [b.content for b in boxes(text)]


_BASE = re.compile(r"(?<![\w\\])[0-9A-Fa-f]*\d[0-9A-Fa-f]*_\{?\d+\}?")
_TINY = re.compile(r"\d\s*!|\^\s*\{?\s*-?\d{2,}")
_SPACED = re.compile(r"\d(?:\\[,:;! ]|~|\\thinspace\s*)\d{3}(?!\d)")
_PERCENT = re.compile(r"\\?%|\bpercent\b")


@dataclass(frozen=True)
class _Case:
    text: str
    gold: str
    reasoning: str | None
    answer_part: str
    closed: bool | None
    answer: str | None
    """The answer the math task extracts from the answer part (None: none found)."""
    rule: str | None
    """The extraction rule that found it."""


@functools.lru_cache(maxsize=1)
def _math_task() -> Task:
    from harness.tasks import get_task  # the registry imports the tasks, which import grading

    return get_task("math500")


def _case(text: str, gold: str) -> _Case:
    think = THINK_OPEN in text or THINK_CLOSE in text
    reasoning, answer_part, closed = split_reasoning(text, think)
    found = _math_task().extract(answer_part) if answer_part else None
    return _Case(
        text,
        gold,
        reasoning,
        answer_part,
        closed,
        found.answer if found else None,
        found.rule if found else None,
    )


def _truncated(c: _Case) -> bool:
    return THINK_OPEN in c.text and THINK_CLOSE not in c.text


def _think_block(c: _Case) -> bool:
    # A closed think block whose content math-verify reads before the answer part: it has a
    # candidate at a better priority than anything after `</think>` (ties go to the rightmost,
    # which is after `</think>`).
    if not c.closed or not c.reasoning:
        return False
    inside = mathverify_anchor(c.reasoning)
    if inside is None:
        return False
    after = mathverify_anchor(c.answer_part)
    return after is None or inside < after


def _several_boxes(c: _Case) -> bool:
    boxes = _boxes(c.answer_part)
    return len(boxes) >= 2 and len(set(boxes)) >= 2


def _base_subscript(c: _Case) -> bool:
    return any(s and _BASE.search(s) for s in (c.gold, c.answer))


def _tiny_exact(c: _Case) -> bool:
    return bool(c.answer and _TINY.search(c.gold) and _TINY.search(c.answer))


def _spaced_thousands(c: _Case) -> bool:
    return bool(c.answer and _SPACED.search(c.answer))


def _percent(c: _Case) -> bool:
    return bool(c.answer) and bool(_PERCENT.search(c.answer or "")) != bool(_PERCENT.search(c.gold))


def _degree_sign(c: _Case) -> bool:
    return bool(c.answer and "\u00b0" in c.answer)


def _trailing_period(c: _Case) -> bool:
    boxes = _boxes(c.answer_part)
    spans = [m.group() for m in _LATEX_SPAN.finditer(c.answer_part)]
    last = boxes[-1] if boxes else _unwrap(spans[-1]) if spans else ""
    return last.rstrip().endswith(".")


def _unwrap(span: str) -> str:
    for open_, close in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if span.startswith(open_) and span.endswith(close):
            return span[len(open_) : len(span) - len(close)]
    return span


def _remark_after_answer(c: _Case) -> bool:
    if c.rule in ("boxed", None) or c.answer is None:
        return False
    from harness.tasks.grading.extract import math_spans

    spans = [s.strip().rstrip(".,;").strip() for _, _, s in math_spans(c.answer_part)]
    spans = [s for s in spans if s]
    return bool(spans) and spans[-1] != c.answer and not c.answer.endswith(spans[-1])


def _lenient(c: _Case) -> bool:
    return c.rule == "last_number"


_FEATURES: dict[str, Callable[[_Case], bool]] = {
    "truncated": _truncated,
    "remark-after-answer": _remark_after_answer,
    "think-block": _think_block,
    "several-boxes": _several_boxes,
    "base-subscript": _base_subscript,
    "tiny-exact": _tiny_exact,
    "spaced-thousands": _spaced_thousands,
    "percent-as-written": _percent,
    "degree-sign": _degree_sign,
    "trailing-period": _trailing_period,
    "lenient-last-number": _lenient,
}
assert set(_FEATURES) == set(BY_NAME), "every difference needs its feature test"


def classify_difference(text: str, gold: str, ours: bool, theirs: bool) -> str | None:
    """The name of the deliberate difference that explains why the harness's verdict `ours`
    and math-verify's `theirs` on the whole output `text` disagree, or None: unexplained (a bug
    to fix, or a difference to add to the table). None too when they agree."""
    if ours == theirs:
        return None
    case = _case(text, gold)
    for diff in DELIBERATE_DIFFERENCES:
        if diff.ours is not None and diff.ours != ours:
            continue
        if _FEATURES[diff.name](case):
            return diff.name
    return None
