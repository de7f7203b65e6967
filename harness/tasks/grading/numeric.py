"""Numeric answer grading: the number a model wrote, however it dressed it, against the gold.

Decisions (each has rows in the grading table, both ways):
- A number followed by a unit is that number: `34\\ \\text{feet}`, `5km`, `77\\,€`, `49^\\circ`,
  `\\$18.00`, `18\\%`. A number *inside* `\\text{}`/`\\textbf{}`/`\\mathbf{}` is kept.
- Scale words multiply (`2.5 million`, `5k`); a glued `M`/`B` is ambiguous and not a number.
- `−5` (Unicode minus) is -5; `\\frac34` is 3/4; `10_2` (a base subscript) is not 10.
- `18 = 3\\times6`: an equation between the number and an arithmetic expression of it reads as
  the number; `x = 5` reads as 5; two sides that disagree are no answer.
- Digit grouping: `1,234`, `1\\,234`, `1 234` are 1234 (groups of exactly three digits); a
  comma followed by one or two digits is a decimal comma (`2,74` is 2.74); `1,2345` and lists
  (`1, 2`, `1,-2`) are not one number.
"""

from __future__ import annotations

import ast
import math
import re
from fractions import Fraction

_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(-?[\d.]+)\s*\}\s*\{\s*(-?[\d.]+)\s*\}")
_BARE_FRAC = re.compile(
    r"\\[dt]?frac\s*(?:(\d)|\{\s*(-?[\d.]+)\s*\})\s*(?:(\d)|\{\s*(-?[\d.]+)\s*\})"
)
_WRAPPER = re.compile(
    r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|operatorname)\s*\{([^{}]*)\}"
)
_LEADING_WORDS = re.compile(r"^[^\d\-.]*?(?=-?\$?\.?\d)")
_COMMAND_BEFORE = re.compile(r"\\[A-Za-z]+\s*\{?\s*$|[_^]\s*\{?\s*$")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree|°")
_CURRENCY = re.compile(r"\\(?:euro|pounds|yen|textdollar|textsterling|texteuro)\b|[€£¥₹]|\\\$")
_MIXED = re.compile(r"(?<![\d.])(\d+)\s*\\[dt]?frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}")
_SPACING = re.compile(r"\\[,;:!> ]|\\q?quad\b|~|\{,\}")
_SPACE_FOR = {"{,}": ",", "\\!": ""}
# Thousands separators only in real groups of three: "1,234" is a number, "1,-2" is a list.
_NUM = re.compile(
    r"(-?)\s*((?:\d{1,3}(?:,\d{3})+|\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)"
    r"(?:\s*/\s*((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?))?"
)
_DECIMAL_COMMA = re.compile(r"(-?)\s*(\d+),(\d{1,2})(?![\d,])")
# What may follow a number that is the whole answer. Glued to it: %, a closing bracket, a
# period, a unit word of two letters or more; after a space: words (a unit). A digit, a list
# separator, a power, a subscript, a LaTeX command, an operator or a single letter glued to it
# (5x, 2i, 3\\sqrt{2}) means the answer is not one plain number.
_GLUED_OK = re.compile(r"[%)\].!?:]|,(?!\s*[-+]?\.?\d)|[A-Za-z]{2,}(?![A-Za-z\d_^{])|$")
_SPACED_BAD = re.compile(r"(?:\d|\\|\^|_|[-+*/×=]|[,;]\s*[-+]?\.?\d|(?:and|or)\s+[-+]?\.?\d)")
_SCALE = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12, "k": 10**3}
_SCALE_WORD = re.compile(r"\s*(thousand|million|billion|trillion)\b|(k|K)\b", re.IGNORECASE)
_AMBIGUOUS_GLUED = re.compile(r"[MB]\b|bn\b|mn\b")
_ARITH = re.compile(r"[\d\s.+\-*/()]+")
_MAX_ARITH = 200


def _arith_value(expr: str) -> Fraction | None:
    """The exact value of a small arithmetic expression (`3\\times6`, `\\frac{36}{2}`, `2+3`),
    or None when it has anything but numbers and + - * / ( )."""
    s = expr.replace("\\times", "*").replace("\\cdot", "*").replace("×", "*").replace("÷", "/")
    s = s.replace("\\div", "/").replace("\\left", "").replace("\\right", "")
    s = _BARE_FRAC.sub(lambda m: f"(({m.group(1) or m.group(2)})/({m.group(3) or m.group(4)}))", s)
    s = s.replace("{", "(").replace("}", ")").replace(",", "")
    if not s.strip() or len(s) > _MAX_ARITH or not _ARITH.fullmatch(s):
        return None
    try:
        tree = ast.parse(s.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None

    def ev(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return Fraction(str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and isinstance(
            node.op, ast.Add | ast.Sub | ast.Mult | ast.Div
        ):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            return a / b
        raise ValueError("not arithmetic")

    try:
        return ev(tree)
    except (ValueError, ZeroDivisionError, TypeError):
        return None


def _equation_side(s: str) -> str | None:
    """Which side of `A = B` is the answer: the value of `x = 5`; the number of `18 = 3\\times6`
    or `3 \\times 6 = 18` (when the expression equals it); None when the sides disagree."""
    sides = [p.strip() for p in s.split("=")]
    if len(sides) != 2 or not all(sides):
        return sides[-1] if sides and sides[-1] else None
    left, right = sides
    lv, rv = _arith_value(left), _arith_value(right)
    if lv is not None and rv is not None:
        if lv != rv:
            return None
        # Both sides are arithmetic: the plain number is the answer.
        return left if re.fullmatch(r"-?[\d.,]+", left.replace(" ", "")) else right
    return right


def _clean(text: str) -> str:
    s = text.strip().translate({0x2212: "-", 0xFE63: "-", 0xFF0D: "-"})
    s = s.replace("\\left", "").replace("\\right", "").replace("\\%", "%").replace("*", "")
    s = re.sub(r"\\[()\[\]]", " ", s)
    s = re.sub(r"\\text\s*\{\s*,\s*\}", ",", s)
    s = _SPACING.sub(lambda m: _SPACE_FOR.get(m.group(), " "), s)
    s = _CURRENCY.sub("", s).replace("$", "")
    for _ in range(4):
        unwrapped = _WRAPPER.sub(lambda m: f" {m.group(1)} ", s)
        if unwrapped == s:
            break
        s = unwrapped
    s = _DEGREES.sub("", s)
    # `5\frac{1}{2}`: a mixed number (grade-school answers write them so), not 5 x 1/2.
    s = _MIXED.sub(
        lambda m: f"{int(m[1]) * int(m[3]) + int(m[2])}/{m[3]}" if int(m[3]) else m[0], s
    )
    s = _BARE_FRAC.sub(lambda m: f"{m.group(1) or m.group(2)}/{m.group(3) or m.group(4)}", s)
    s = _FRAC.sub(lambda m: f"{m.group(1)}/{m.group(2)}", s)
    return s


def parse_number(text: str | None) -> Fraction | None:
    """A number from an answer string, or None when it is not one (see the module docstring
    for what counts). A percentage is kept as written (50% -> 50), as GSM8K golds are."""
    if text is None:
        return None
    s = text.strip()
    if not s:
        return None
    s = _clean(s)
    # `a\,000` spacing was turned into a space: "1 000" is read as a grouped number below.
    if "=" in s:
        side = _equation_side(s)
        if side is None:
            return None
        s = side
    s = s.strip().rstrip(".").strip()
    lead = _LEADING_WORDS.match(s)
    if lead and lead.group():
        if _COMMAND_BEFORE.search(lead.group()) or lead.group()[-1].isalpha():
            return None  # `\sqrt{5}`, `a_5`, `x2`: the number belongs to an expression or name
        s = s[lead.end() :]
    decimal = _DECIMAL_COMMA.match(s)
    if decimal and not re.match(r"\s*\d", s[decimal.end() :]):
        sign, whole, frac = decimal.groups()
        rest = s[decimal.end() :]
        value = Fraction(f"{whole}.{frac}")
        return _finish(-value if sign else value, rest)
    m = _NUM.match(s)
    if not m:
        return None
    sign, num, den = m.groups()
    try:
        value = Fraction(re.sub(r"[,\s\u00a0\u202f]", "", num))
        if den is not None:
            d = Fraction(den.replace(",", ""))
            if d == 0:
                return None
            value /= d
    except (ValueError, ZeroDivisionError):
        return None
    return _finish(-value if sign else value, s[m.end() :])


def _finish(value: Fraction, rest: str) -> Fraction | None:
    """The value, given what follows the number: a unit, a scale word, or something that makes
    the answer more than one number (None)."""
    scale = _SCALE_WORD.match(rest)
    if scale:
        word = (scale.group(1) or scale.group(2)).lower()
        if scale.group(2) and rest[:1].isspace():
            pass  # "5 K": a unit (kelvin) or a letter, not a scale
        else:
            return value * _SCALE[word]
    if rest and not rest[0].isspace():
        if _AMBIGUOUS_GLUED.match(rest) or not _GLUED_OK.match(rest):
            return None
    elif _SPACED_BAD.match(rest.strip()):
        return None
    return value


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


def is_number(answer: str) -> bool:
    """Whether an extracted answer reads as one number (what numeric tasks accept)."""
    return parse_number(answer) is not None
