"""Numeric answer grading: the number a model wrote, however it dressed it, against the gold."""

from __future__ import annotations

import math
import re
from fractions import Fraction

_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(-?[\d.]+)\s*\}\s*\{\s*(-?[\d.]+)\s*\}")
_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{[^{}]*\}")
_LEADING_WORDS = re.compile(r"^[^\d\-.]*?(?=-?\$?\.?\d)")


def parse_number(text: str | None) -> Fraction | None:
    """A number from an answer string, or None when it is not one.

    Handles thousands separators, `$`, `%`, units and words around the number, LaTeX
    `\\frac`/`\\dfrac`, `\\text{...}` units, `x = 5`, a trailing period, and plain fractions
    `3/4`. A percentage is kept as written (50% -> 50), as GSM8K golds are.
    """
    if text is None:
        return None
    s = text.strip()
    if not s:
        return None
    s = s.replace("\\!", "").replace("\\,", "").replace("{,}", ",").replace("\\%", "%")
    s = s.replace("\\$", "$").replace("$", "")
    s = _TEXT.sub("", s)
    s = _FRAC.sub(lambda m: f"{m.group(1)}/{m.group(2)}", s)
    if "=" in s:
        s = s.rsplit("=", 1)[1]
    s = s.strip().rstrip(".").strip()
    s = _LEADING_WORDS.sub("", s, count=1)
    m = re.match(r"(-?)\s*(\d[\d,]*(?:\.\d+)?|\.\d+)(?:\s*/\s*(\d[\d,]*(?:\.\d+)?))?", s)
    if not m:
        return None
    sign, num, den = m.groups()
    rest = s[m.end() :].strip()
    # "3 4" or "5 and 6": two numbers are not one answer.
    if re.match(r"^[\d]", rest):
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
    """True when both parse as numbers and agree exactly or within a relative tolerance."""
    a, g = parse_number(answer), parse_number(gold)
    if a is None or g is None:
        return False
    if a == g:
        return True
    return math.isclose(float(a), float(g), rel_tol=rel_tol, abs_tol=1e-9)
