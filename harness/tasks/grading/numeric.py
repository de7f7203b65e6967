"""Numeric answer grading: the number a model wrote, however it dressed it, against the gold."""

from __future__ import annotations

import math
import re
from fractions import Fraction

_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(-?[\d.]+)\s*\}\s*\{\s*(-?[\d.]+)\s*\}")
_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{[^{}]*\}")
_LEADING_WORDS = re.compile(r"^[^\d\-.]*?(?=-?\$?\.?\d)")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?")
# Thousands separators only in real groups of three: "1,234" is a number, "1,-2" and "1,2" are
# lists of numbers.
_NUM = re.compile(
    r"(-?)\s*((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
    r"(?:\s*/\s*((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?))?"
)
# What may follow a number that is the whole answer. Glued to it: %, a closing bracket, a
# period, a degree sign; after a space: words (a unit). A digit, a list separator, a power, a
# LaTeX command, an operator or a letter glued to it (5x, 2i, 3\\sqrt{2}) means the answer is
# not one plain number.
_GLUED_OK = re.compile(r"[%)\].!?:\u00b0]|,(?!\s*[-+]?\.?\d)")
_SPACED_BAD = re.compile(r"(?:\d|\\|\^|[-+*/×=]|[,;]\s*[-+]?\.?\d|(?:and|or)\s+[-+]?\.?\d)")


def parse_number(text: str | None) -> Fraction | None:
    """A number from an answer string, or None when it is not one.

    Handles thousands separators, `$`, `%`, degrees, units and words around the number, LaTeX
    `\\frac`/`\\dfrac`, `\\text{...}` units, `x = 5`, a trailing period, and plain fractions
    `3/4`. A percentage is kept as written (50% -> 50), as GSM8K golds are. Lists (`1, 2`),
    powers (`2^{10}`), surds (`3\\sqrt{2}`) and products (`5x`) are not numbers.
    """
    if text is None:
        return None
    s = text.strip()
    if not s:
        return None
    s = s.replace("\\!", "").replace("\\,", "").replace("{,}", ",").replace("\\%", "%")
    s = s.replace("\\$", "$").replace("$", "")
    s = s.replace("\\left", "").replace("\\right", "")
    s = _TEXT.sub("", s)
    s = _DEGREES.sub("", s)
    s = _FRAC.sub(lambda m: f"{m.group(1)}/{m.group(2)}", s)
    if "=" in s:
        s = s.rsplit("=", 1)[1]
    s = s.strip().rstrip(".").strip()
    s = _LEADING_WORDS.sub("", s, count=1)
    m = _NUM.match(s)
    if not m:
        return None
    sign, num, den = m.groups()
    rest = s[m.end() :]
    if rest and not rest[0].isspace():
        if not _GLUED_OK.match(rest):
            return None
    elif _SPACED_BAD.match(rest.strip()):
        return None
    try:
        value = Fraction(num.replace(",", ""))
        if den is not None:
            d = Fraction(den.replace(",", ""))
            if d == 0:
                return None
            value /= d
    except (ValueError, ZeroDivisionError):
        return None
    return -value if sign else value


def numbers_equal(answer: str | None, gold: str | None, rel_tol: float = 1e-6) -> bool:
    """True when both parse as numbers and agree: exactly when both are whole numbers (so
    1450001 is not 1450000, however close), else within a relative tolerance (a long decimal
    of 1/3 is 1/3)."""
    a, g = parse_number(answer), parse_number(gold)
    if a is None or g is None:
        return False
    if a == g:
        return True
    if a.denominator == 1 and g.denominator == 1:
        return False
    return math.isclose(float(a), float(g), rel_tol=rel_tol, abs_tol=1e-9)
