"""A GSM8K solution as a computation over its question's numbers, so new numbers give a new,
exactly recomputed answer.

GSM8K solutions mark each calculation with a calculator annotation (`<<48/2=24>>`); some also
write one out without it (`99 + 5 = $104`). Each number in a calculation is read as a number
stated in the question (an input), the result of an earlier calculation, or a fixed constant (a
number word of the text such as "twice" or "dozen", a unit constant such as 60 or 7 when the
text speaks of hours or weeks). A graph is only accepted when it reproduces every stated result
and the gold exactly (`Fraction` arithmetic); whatever cannot be read safely is a `Skip`.

Nothing is guessed. A number with several readings (an earlier result that is also a question
number) takes the reading that leaves no stated number and no result unused when that reading
is the only such one; otherwise new values must make all its readings agree. A question number
a calculation could also use as a constant, or that is a number of another kind (a year, a
time of day, an ordinal, part of a written fraction, a 1), is kept as written: the variant
changes fewer numbers but stays consistent. A number a calculation uses that nothing explains
was worked out in the head: it is kept, and so is every question number that could have led
to it (the numbers on the lines up to its use, those one operation away from it), and every
result those lines state. Equal numbers in the question are one quantity, so a count stated
twice changes in both places.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache
from itertools import product
from typing import Any

from harness.perturb.base import Skip
from harness.types import Problem

_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_NUMBER = re.compile(rf"(?<![\d.,])(?:{_NUM})(?!\d)")
_OPS = "-+*/×÷−–"
_OP_WORDS = r"plus|minus|times|divided by|multiplied by"
_OP = rf"(?:[{_OPS}]|x(?![A-Za-z])|\b(?:{_OP_WORDS})\b)"
_OP_AS = {
    "x": "*", "×": "*", "÷": "/", "−": "-", "–": "-", "plus": "+", "minus": "-", "times": "*",
    "divided by": "/", "multiplied by": "*",
}  # fmt: skip
_OP_WORD = re.compile(rf"\b(?:{_OP_WORDS})\b", re.I)
_EQUALS = r"(?:=|\bequals\b|\bis equal to\b)"
_UNIT_WORD = rf"(?!(?:x|{_OP_WORDS}|equals|is)(?![A-Za-z]))[A-Za-z][\w'’]*(?:/[A-Za-z]+)?"
_EXPR_TOKEN = re.compile(rf"\s*(?:\$\s?)?({_NUM})%?|\s*({_OP}|[()])|\s*({_UNIT_WORD})")
_ANNOTATION = re.compile(r"<<([^<>]*)>>")
_SOLVED = re.compile(r"(?<![A-Za-z])[A-Za-z]\s*=\s*\$?\s*$|\bwe get\s*\$?\s*$", re.I)
# A calculation written out in the solution's text: `99 + 5 = $104`, `12/20 x 100% = 60%`,
# `12 customers - 5 customers = 7 customers` (up to three unit words after a number).
_TERM = rf"\(?\$?(?:{_NUM})%?(?:(?:\s+|(?<=\d)){_UNIT_WORD}){{0,3}}\)?"
_JOIN = rf"(?:\s*{_OP}\s*|(?=\()|(?<=\))\s*(?=\$?\.?\d))"  # an operator, or `2(16)`, `(1/2) 278`
_EXPRESSION = rf"(?<![\w.$,])(?:{_TERM}{_JOIN})+{_TERM}"
# A calculation as the text shows it: an annotation with the expression written before it
# and the result after it, or a written one.
_CALCULATION = re.compile(
    rf"(?:{_EXPRESSION}\s*=\s*\$?\s*)?<<[^<>]*>>\$?[\d,.]*|{_EXPRESSION}\s*=\s*\$?[\d,.]+"
)
_WRITTEN = re.compile(rf"(?P<expr>{_EXPRESSION})\s*{_EQUALS}\s*\$?(?P<result>{_NUM})(?![\d<])")
# The expression written just before an annotation that only states its result (`3 + 2 = <<5=5>>`).
_LEAD_IN = re.compile(rf"{_EXPRESSION}(?=\s*{_EQUALS}\s*\$?\s*$)")
_PERCENT_AFTER = re.compile(r"\s?(?:%|percent\b|per cent\b)", re.I)
_IN_CENTS = re.compile(r"\bin cents\b", re.I)
_CENTS_AFTER = re.compile(r"\s?(?:cents?\b|¢)", re.I)
_ORDINAL_AFTER = re.compile(r"(?:st|nd|rd|th)\b", re.I)
_CLOCK_AFTER = re.compile(r"\s?(?:a\.?m\b\.?|p\.?m\b\.?|o'clock|:\d)", re.I)
_FRACTION_AFTER = re.compile(r"\s?/\s?\d")
_FRACTION_BEFORE = re.compile(r"\d\s?/\s?$|:$")
_WRITTEN_FRACTION = re.compile(r"(?<![\d.])(\d+)\s?/\s?(\d+)(?![\d.])")
_GLUED_BEFORE = re.compile(r"[A-Za-z_#]$")
_FOLLOWING_WORD = re.compile(r"\s*(?:%\s*)?([A-Za-z]{2,})")
_YEAR = re.compile(r"(?:1[89]|20)\d\d")

# Number words and what a calculation may use them as.
_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 10**6,
}  # fmt: skip
_PARTS = {
    "half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4,
    "fourth": 4, "fourths": 4, "fifth": 5, "fifths": 5, "sixth": 6, "sixths": 6,
    "seventh": 7, "sevenths": 7, "eighth": 8, "eighths": 8, "ninth": 9, "ninths": 9,
    "tenth": 10, "tenths": 10,
}  # fmt: skip
_MULTIPLES = {
    "twice": 2, "double": 2, "doubled": 2, "doubles": 2, "pair": 2, "pairs": 2, "couple": 2,
    "both": 2, "twins": 2, "triple": 3, "tripled": 3, "triples": 3, "thrice": 3,
    "triplets": 3, "quadruple": 4, "quadrupled": 4, "dozen": 12, "dozens": 12, "second": 2,
}  # fmt: skip
# Unit constants: the ratio of two units a problem speaks of both of ("hour" and "minute": 60),
# or what one word implies alone ("weekdays": 5, "legs": 2 or 4).
_UNIT_GROUPS: dict[str, str] = {
    w: group
    for group, words in {
        "sec": "second seconds sec secs",
        "min": "minute minutes min mins",
        "hour": "hour hours hourly hr hrs",
        "day": "day days daily",
        "week": "week weeks weekly",
        "month": "month months monthly",
        "year": "year years yearly annual annually",
        "decade": "decade decades",
        "century": "century centuries",
        "cent": "cent cents penny pennies",
        "dollar": "dollar dollars $",
        "inch": "inch inches",
        "foot": "foot feet ft",
        "yard": "yard yards",
        "mile": "mile miles",
        "mm": "millimeter millimeters millimetre millimetres mm",
        "cm": "centimeter centimeters centimetre centimetres cm",
        "m": "meter meters metre metres",
        "km": "kilometer kilometers kilometre kilometres km",
        "g": "gram grams",
        "kg": "kilogram kilograms kilo kilos kg",
        "ml": "milliliter milliliters millilitre millilitres ml",
        "l": "liter liters litre litres",
        "oz": "ounce ounces oz",
        "lb": "pound pounds lb lbs",
        "ton": "ton tons",
        "cup": "cup cups",
        "pint": "pint pints",
        "quart": "quart quarts",
        "gallon": "gallon gallons",
        "watt": "watt watts",
        "kw": "kilowatt kilowatts",
    }.items()
    for w in words.split()
}
_UNIT_RATIOS: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("sec", "min", (60,)), ("min", "hour", (60,)), ("sec", "hour", (3600,)),
    ("hour", "day", (24,)), ("day", "week", (7,)), ("week", "year", (52,)),
    ("day", "year", (365,)), ("month", "year", (12,)), ("day", "month", (30, 31, 28)),
    ("week", "month", (4,)), ("year", "decade", (10,)), ("year", "century", (100,)),
    ("cent", "dollar", (100,)), ("inch", "foot", (12,)), ("foot", "yard", (3,)),
    ("inch", "yard", (36,)), ("foot", "mile", (5280,)), ("mm", "cm", (10,)),
    ("cm", "m", (100,)), ("m", "km", (1000,)), ("mm", "m", (1000,)), ("g", "kg", (1000,)),
    ("ml", "l", (1000,)), ("oz", "lb", (16,)), ("lb", "ton", (2000,)), ("cup", "pint", (2,)),
    ("pint", "quart", (2,)), ("quart", "gallon", (4,)), ("cup", "gallon", (16,)),
    ("oz", "cup", (8,)), ("watt", "kw", (1000,)),
)  # fmt: skip
_UNIT_WORDS: dict[str, set[Fraction]] = {}
for _words, _values in (
    ("weekday weekdays", (5,)),
    ("weekend weekends", (2,)),
    ("% percent percents percentage percentages", (100, Fraction(1, 100))),
    ("nickel nickels", (5,)),
    ("dime dimes", (10,)),
    ("quarter quarters", (25,)),
    ("january march may july august october december", (31,)),
    ("april june september november", (30,)),
    ("february", (28, 29)),
    ("leg legs", (2, 4, 6, 8)),
    ("wheel wheels bicycle bicycles bike bikes tricycle tricycles", (2, 3, 4)),
    ("alphabet", (26,)),
    ("finger fingers toe toes", (10,)),
    ("return", (2,)),
    ("square squares", (4,)),
    ("triangle triangles", (3,)),
    ("rectangle rectangles rectangular", (2, 4)),
    ("hexagon hexagons", (6,)),
    ("spider spiders octagon octagons octopus", (8,)),
    ("deck decks", (52,)),
):
    for _w in _words.split():
        _UNIT_WORDS.setdefault(_w, set()).update(Fraction(v) for v in _values)
_UNIT_PHRASES = (
    "per cent", "round trip", "round-trip", "there and back", "both ways", "each way",
    "back and forth",
)  # fmt: skip
_PHRASE_VALUES = {"per cent": {Fraction(100), Fraction(1, 100)}}
_WORD = re.compile(r"[a-z]+")
_UNIT_TOKEN = re.compile(r"[a-z]+|[%$]")
_AND_A_HALF = re.compile(r"\b(a|an|one|\d+|[a-z]+)(?:\s+[a-z]+)?\s+and\s+a\s+half\b", re.I)
_MIXED = re.compile(r"(?<![\d.])(\d+)\s+(\d+)/(\d+)(?![\d.])")
_SCALES = frozenset({"hundred", "thousand", "million"})
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_ONES = "two|three|four|five|six|seven|eight|nine"
_TEENS = "ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen"
_CARDINAL = re.compile(
    rf"\b(?:(?:{_TENS})(?:[- ](?:one|{_ONES})\b)?|{_ONES}|{_TEENS})\b(?!-(?:{_ONES}|one)\b)", re.I
)
_SCALE_OR_PART_AFTER = re.compile(
    r"[- ](?:hundred|thousand|million|" + "|".join(_PARTS) + r")\b", re.I
)

_ALWAYS = frozenset({Fraction(0), Fraction(1)})
"""Constants a calculation may use without the text naming them (n + 1, 1 - 0.2, + 0)."""

MAX_TRIES = 200
"""Draws of new numbers per variant before a problem is taken to have no plausible one."""
GRID_TRIES = 150
"""Values of one input tried in turn, after the draws, before giving up on it."""


@dataclass(frozen=True)
class Mention:
    """One number written in the question."""

    start: int
    end: int
    text: str
    value: Fraction
    percent: bool
    money: bool
    fixed: bool
    """Kept as written: a year, a time, an ordinal, part of a fraction, a 1 (not money)."""
    word: bool = False
    """Written as a word ("three")."""
    cents: bool = False
    """Followed by "cents"."""
    ordinal: bool = False
    """An ordinal ("5th"): kept; a constant a calculation may use only where no changing
    number of the question has its value."""


@dataclass(frozen=True)
class Quantity:
    """The question's mentions of one value (a count stated twice is one quantity)."""

    name: str
    value: Fraction
    mentions: tuple[int, ...]
    percent: bool
    money: bool
    places: int
    """Decimal places of the value as written (0: a whole number)."""
    cents: bool = False


@dataclass(frozen=True)
class Term:
    """An expression over inputs (`in`), earlier results (`ref`) and constants (`const`)."""

    op: str
    args: tuple[Term, ...] = ()
    name: str = ""
    index: int = -1
    value: Fraction = Fraction(0)


@dataclass(frozen=True)
class Literal:
    """A number written in a calculation (offsets in `Calc.text`), with what it stands for."""

    start: int
    end: int
    text: str
    term: Term


@dataclass(frozen=True)
class Calc:
    """One calculation of the solution: an annotation `<<expr=result>>`, or one written out in
    the text (`written`), at `span` of the solution."""

    span: tuple[int, int]
    text: str
    """The expression (an annotation's part before `=`; a written one's whole text)."""
    literals: tuple[Literal, ...]
    tree: Term
    stated: Fraction
    written: bool = False
    result: tuple[int, int] = (0, 0)
    """A written calculation's result number, as offsets in `text`."""
    expr_end: int = -1
    """Where a written calculation's expression ends in `text` (before its `=`)."""


@dataclass(frozen=True)
class Graph:
    """A GSM8K problem's solution as a computation over its question's numbers."""

    question: str
    solution: str
    mentions: tuple[Mention, ...]
    inputs: tuple[Quantity, ...]
    """The question's quantities that feed the answer and may change."""
    calcs: tuple[Calc, ...]
    ties: tuple[tuple[Term, Term], ...]
    """Readings of an ambiguous number that must keep agreeing."""
    answer: int
    """The calculation whose result is the gold."""
    scale: Fraction = Fraction(1)
    """The gold is that result times this (100: computed in dollars, asked in cents)."""
    mental: tuple[Fraction, ...] = ()
    """Numbers a calculation uses that no reading explains (worked out in the head): kept as
    constants, with the numbers written on the lines that lead to them."""

    @property
    def original(self) -> dict[str, Fraction]:
        return {q.name: q.value for q in self.inputs}

    @property
    def stated(self) -> list[Fraction]:
        return [c.stated for c in self.calcs]

    def quantity(self, name: str) -> Quantity:
        for q in self.inputs:
            if q.name == name:
                return q
        raise KeyError(name)

    def evaluate(self, values: Mapping[str, Fraction]) -> list[Fraction]:
        """Every calculation's result for these input values (ZeroDivisionError passes)."""
        results: list[Fraction] = []
        for calc in self.calcs:
            results.append(_eval(calc.tree, values, results))
        return results

    def gold(self, values: Mapping[str, Fraction]) -> Fraction:
        return self.evaluate(values)[self.answer] * self.scale

    def check(self, values: Mapping[str, Fraction]) -> str | None:
        """Why these values make an implausible problem, or None: inputs keep their sign and
        decimals and stay within a quarter to four times their old size (percentages at most
        100); every number of the computation keeps its sign, stays whole where it was whole
        (else at most 2 decimals or as many as it had) and within a hundredfold of its old
        size; ambiguous numbers keep agreeing."""
        for q in self.inputs:
            v = values[q.name]
            if (v > 0) != (q.value > 0) or v == 0 or (q.percent and q.value <= 100 and v > 100):
                return "an input is out of range"
            p = places(v)
            if p is None or p > q.places:
                return "an input has more decimals than it had"
            if not abs(q.value) / 4 <= abs(v) <= max(4 * abs(q.value), abs(q.value) + 20):
                return "an input is far from its old size"
            if not (q.money or q.percent) and (
                abs(v) == 1 or (q.places == 0 and abs(q.value) >= 2 > abs(v))
            ):
                return "a count would become 1 (or less)"  # "1 miles", "per 1 minutes"
        try:
            results = self.evaluate(values)
            stated = self.stated
            for calc, new in zip(self.calcs, results, strict=True):
                if not _plausible(calc.stated, new):
                    return "an intermediate result is implausible"
                for lit in calc.literals:
                    if lit.term.op not in ("const", "ref", "in") and not _plausible(
                        _eval(lit.term, self.original, stated), _eval(lit.term, values, results)
                    ):
                        return "a derived number is implausible"
            for a, b in self.ties:
                if _eval(a, values, results) != _eval(b, values, results):
                    return "an ambiguous number would take two values"
        except ZeroDivisionError:
            return "division by zero"
        return None

    def render_question(
        self, values: Mapping[str, Fraction], texts: Mapping[str, str] | None = None
    ) -> str:
        """The question with each changed quantity written in its original style, or as
        `texts[name]` where given (a symbol standing for another problem's answer)."""
        texts = texts or {}
        owner = {i: q for q in self.inputs for i in q.mentions}
        out, pos = [], 0
        for i, m in enumerate(self.mentions):
            q = owner.get(i)
            if q is None or (q.name not in texts and values[q.name] == q.value):
                continue
            out.append(self.question[pos : m.start])
            out.append(texts[q.name] if q.name in texts else _written(m, values[q.name]))
            pos = m.end
        out.append(self.question[pos:])
        return "".join(out)

    def render_solution(self, values: Mapping[str, Fraction], annotations: bool = True) -> str:
        """The worked solution recomputed for these values, ending `#### <answer>`; without
        annotations it is the task's reference form (it strips them the same way)."""
        results = self.evaluate(values)
        body = self.solution.rpartition("####")[0]
        out: list[str] = []
        pos = 0
        for i in range(len(self.calcs) + 1):
            end = self.calcs[i].span[0] if i < len(self.calcs) else len(body)
            out.append(self._render_gap(body[pos:end], i, values, results))
            if i == len(self.calcs):
                break
            calc = self.calcs[i]
            if calc.written:
                out.append(_render_written(calc, results[i], values, results))
            elif annotations:
                out.append(f"<<{_render_expr(calc, values, results)}={plain(results[i])}>>")
            pos = calc.span[1]
        return f"{''.join(out).strip()}\n#### {plain(results[self.answer] * self.scale)}"

    def _render_gap(
        self, gap: str, i: int, values: Mapping[str, Fraction], results: Sequence[Fraction]
    ) -> str:
        """The prose between calculations i-1 and i, its numbers recomputed: the one right after
        an annotation is its result, those of the expression written just before an annotation
        are its operands, the others are matched by value (an earlier result, else an input)."""
        tokens = list(_numbers(gap))
        new: dict[int, Fraction] = {}
        before = self.calcs[i - 1] if i > 0 else None
        if (
            before
            and not before.written
            and tokens
            and tokens[0][0] == 0
            and _value(tokens[0][2]) == before.stated
        ):
            new[0] = results[i - 1]
        if i < len(self.calcs) and not self.calcs[i].written and re.search(r"=\s*\$?\s*$", gap):
            lits = self.calcs[i].literals
            first = len(tokens) - len(lits)
            stated = self.stated
            if first >= 0 and all(
                _value(tokens[first + k][2]) == _eval(lit.term, self.original, stated)
                for k, lit in enumerate(lits)
            ):
                for k, lit in enumerate(lits):
                    new[first + k] = _eval(lit.term, values, results)
        out, pos = [], 0
        for k, (start, end, text) in enumerate(tokens):
            value = new.get(k)
            if value is None:
                value = self._by_value(_value(text), i, values, results, _next_word(gap, end))
            if value is None:
                continue
            out.append(gap[pos:start])
            out.append(like(text, value, gap[:start].rstrip().endswith("$")))
            pos = end
        out.append(gap[pos:])
        return self._render_words("".join(out), values)

    def _render_words(self, text: str, values: Mapping[str, Fraction]) -> str:
        """Number words of the prose that name a changed quantity the question wrote as a
        word ("the five remaining"), rewritten."""
        worded = {
            q.value: values[q.name]
            for q in self.inputs
            if values[q.name] != q.value and any(self.mentions[i].word for i in q.mentions)
        }
        if not worded:
            return text

        def sub(m: re.Match[str]) -> str:
            new = worded.get(Fraction(word_value(m.group())))
            return m.group() if new is None else _as_word(m.group(), new)

        return _CARDINAL.sub(sub, text)

    def _by_value(
        self,
        old: Fraction,
        i: int,
        values: Mapping[str, Fraction],
        results: Sequence[Fraction],
        word: str = "",
    ) -> Fraction | None:
        """A prose number's new value: a question number followed by the same word as in
        the question ("2 tubs"), else the latest earlier result of that value, else a question
        number of that value, else the next calculation's result ("She needs 12 bags because
        16 x .75 = 12"); None when nothing has its value."""
        inputs = [q for q in self.inputs if q.value == old]
        for q in inputs:
            if word and any(
                _next_word(self.question, self.mentions[k].end) == word for k in q.mentions
            ):
                return values[q.name]
        for j in range(i - 1, -1, -1):
            if self.calcs[j].stated == old:
                return results[j]
        if inputs:
            return values[inputs[0].name]
        if i < len(self.calcs) and self.calcs[i].stated == old:  # "12 bags because 16 x .75"
            return results[i]
        return None


def _next_word(text: str, at: int) -> str:
    """The word right after position `at` (lower case, a plural's `s` dropped), or ''."""
    m = _FOLLOWING_WORD.match(text, at)
    return m.group(1).lower().removesuffix("s") if m else ""


def _eval(t: Term, values: Mapping[str, Fraction], results: Sequence[Fraction]) -> Fraction:
    if t.op == "const":
        return t.value
    if t.op == "in":
        return values[t.name]
    if t.op == "ref":
        return results[t.index]
    if t.op == "neg":
        return -_eval(t.args[0], values, results)
    a, b = (_eval(x, values, results) for x in t.args)
    if t.op == "+":
        return a + b
    if t.op == "-":
        return a - b
    if t.op == "*":
        return a * b
    return a / b


def places(v: Fraction) -> int | None:
    """Decimal places of an exact value, None when its decimals do not end."""
    d, twos, fives = v.denominator, 0, 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    return max(twos, fives) if d == 1 else None


def _plausible(old: Fraction, new: Fraction) -> bool:
    if (old > 0) != (new > 0) or (old < 0) != (new < 0):
        return False
    p_old, p_new = places(old), places(new)
    if p_new is None or p_old is None or p_new > (max(p_old, 2) if p_old else 0):
        return False
    return abs(new) <= 100 * abs(old) + 100


def plain(v: Fraction) -> str:
    """An exact terminating value as GSM8K's annotations write it: `24`, `2.5`, `-3`."""
    p = places(v)
    if p is None:
        raise ValueError(f"{v} has no finite decimal form")
    if p == 0:
        return str(v.numerator // v.denominator)
    scaled = abs(v) * 10**p
    digits = str(scaled.numerator // scaled.denominator).rjust(p + 1, "0")
    return f"{'-' if v < 0 else ''}{digits[:-p]}.{digits[-p:]}"


def like(text: str, v: Fraction, money: bool = False) -> str:
    """`v` written like the number `text` was: grouped with commas if it was, with two decimal
    places if it had two and was money or ended in 0 (1.50 -> 2.00, but 0.25 -> 0.5), with a
    bare point if it had one (.5)."""
    shown = plain(v)
    whole, dot, frac = shown.partition(".")
    decimals = text.partition(".")[2]
    if len(decimals) == 2 and (money or decimals.endswith("0")):
        dot, frac = ".", frac.ljust(2, "0")
    if "," in text:
        sign = "-" if whole.startswith("-") else ""
        whole = f"{sign}{int(whole.lstrip('-')):,}"
    if text.startswith(".") and whole == "0" and dot:
        whole = ""
    return f"{whole}{dot}{frac}"


def _written(m: Mention, v: Fraction) -> str:
    return _as_word(m.text, v) if m.word else like(m.text, v, m.money)


def _as_word(text: str, v: Fraction) -> str:
    """`v` as a number word styled like `text` (capitalised if it was), digits if none fits."""
    if v.denominator != 1 or not 2 <= v < 100:
        return plain(v)
    word = number_words(int(v))
    return word[0].upper() + word[1:] if text[:1].isupper() else word


def _value(text: str) -> Fraction:
    return Fraction(text.replace(",", ""))


def _numbers(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _NUMBER.finditer(text):
        yield m.start(), m.end(), m.group()


def find_mentions(question: str) -> tuple[Mention, ...]:
    """The numbers written in a question (in digits, or as words from "two" to "ninety-nine"),
    and which of them must stay as written."""
    out = []
    for start, end, text in _numbers(question):
        before, after = question[:start], question[end:]
        value = _value(text)
        percent = _PERCENT_AFTER.match(after) is not None
        money = before.rstrip().endswith("$")
        fixed = bool(
            (value == 1 and not money and not percent)  # "1 hour": "3 hour" would read wrong
            or _ORDINAL_AFTER.match(after)
            or _CLOCK_AFTER.match(after)
            or _FRACTION_AFTER.match(after)
            or _FRACTION_BEFORE.search(before)
            or _GLUED_BEFORE.search(before)
            or (_YEAR.fullmatch(text) and not money and not percent)
        )
        if re.search(r"(?:^|[\s(])-$", before):  # "-48 degrees"
            start, text, value = start - 1, f"-{text}", -value
        cents = _CENTS_AFTER.match(after) is not None
        ordinal = _ORDINAL_AFTER.match(after) is not None
        out.append(
            Mention(start, end, text, value, percent, money, fixed, cents=cents, ordinal=ordinal)
        )
    for m in _CARDINAL.finditer(question):
        after = question[m.end() :]
        value = Fraction(word_value(m.group()))
        percent = _PERCENT_AFTER.match(after) is not None
        fixed = (
            _SCALE_OR_PART_AFTER.match(after) is not None or question[m.end() : m.end() + 1] == "-"
        )
        out.append(Mention(m.start(), m.end(), m.group(), value, percent, False, fixed, word=True))
    return tuple(sorted(out, key=lambda m: m.start))


def word_value(text: str) -> int:
    """The value of a cardinal number word: `Twenty-five` is 25."""
    return sum(_UNITS[w] for w in re.split(r"[- ]", text.lower()))


def number_words(n: int) -> str:
    """`n` (2-99) in words, as a question would write it: 25 is `twenty-five`."""
    if not 0 <= n < 100:
        raise ValueError(f"{n} has no short number word")
    names = {v: w for w, v in _UNITS.items() if v < 100}
    if n in names:
        return names[n]
    return f"{names[n - n % 10]}-{names[n % 10]}"


def word_constants(text: str, spoken: bool = False) -> set[Fraction]:
    """Values a calculation may take from the words of a problem rather than its numbers:
    multiples and parts ("twice", "dozen", "half", "two-thirds"), scale words ("hundred") and
    unit constants ("hour": 60); with `spoken`, only the multiples and parts (what a solution
    must use). Cardinals ("three") are mentions, not constants."""
    consts: set[Fraction] = set()
    words = _WORD.findall(text.lower())
    for k, w in enumerate(words):
        prev = words[k - 1] if k else ""
        if w in _SCALES and not spoken:
            consts.add(Fraction(_UNITS[w]))
        if w in _MULTIPLES:
            consts.add(Fraction(_MULTIPLES[w]))
        if w in _PARTS:
            n = _PARTS[w]
            nxt = words[k + 1] if k + 1 < len(words) else ""
            # "the third round" is an ordinal; "a third", "two thirds", "third of" are parts.
            if (
                w in ("half", "halves", "quarter", "quarters")
                or w.endswith("s")
                or (prev in ("a", "an", "one") or prev in _UNITS or nxt == "of")
            ):
                consts |= {Fraction(n), Fraction(1, n)}
                if 0 < _UNITS.get(prev, 0) < n:
                    consts |= {Fraction(_UNITS[prev], n), Fraction(n - _UNITS[prev], n)}
    for m in _AND_A_HALF.finditer(text):  # "a minute and a half", "2 and a half"
        whole = m.group(1).lower()
        n = 1 if whole in ("a", "an", "one") else _UNITS.get(whole, 0)
        if whole.isdigit():
            n = int(whole)
        if n:
            consts.add(Fraction(2 * n + 1, 2))
    for a, b, c in _MIXED.findall(text):  # "1 1/2 dozen"
        if int(c):
            consts.add(int(a) + Fraction(int(b), int(c)))
    if not spoken:
        tokens = set(_UNIT_TOKEN.findall(text.lower()))
        groups = {_UNIT_GROUPS[w] for w in tokens if w in _UNIT_GROUPS}
        for w in tokens:
            consts |= _UNIT_WORDS.get(w, set())
        for a, b, values in _UNIT_RATIOS:
            if a in groups and b in groups:
                consts |= {Fraction(v) for v in values}
        low = text.lower()
        for phrase in _UNIT_PHRASES:
            if phrase in low:
                consts |= _PHRASE_VALUES.get(phrase, {Fraction(2)})
    return consts


def _percent_forms(q: Quantity) -> list[tuple[Fraction, Term]]:
    """How a calculation may write a percentage p: p, p/100, 1-p/100, 100-p, 1+p/100,
    100+p."""
    t = Term("in", name=q.name)
    hundred, one = Term("const", value=Fraction(100)), Term("const", value=Fraction(1))
    part = Term("/", (t, hundred))
    p = q.value
    return [
        (p, t),
        (p / 100, part),
        (1 - p / 100, Term("-", (one, part))),
        (100 - p, Term("-", (hundred, t))),
        (1 + p / 100, Term("+", (one, part))),
        (100 + p, Term("+", (hundred, t))),
    ]


def _forms(q: Quantity) -> list[tuple[Fraction, Term]]:
    """How a calculation may write a quantity, the usual forms first (see `_readings`)."""
    if q.percent:
        return _percent_forms(q)
    t = Term("in", name=q.name)
    if q.cents:  # "45 cents" is $0.45
        return [(q.value, t), (q.value / 100, Term("/", (t, Term("const", value=Fraction(100)))))]
    return [(q.value, t)]


class _Parser:
    """Recursive descent over a calculation's expression; leaves are literal indexes."""

    def __init__(self, expr: str) -> None:
        self.tokens: list[tuple[str, str, int, int]] = []
        pos = 0
        while expr[pos:].strip():
            m = _EXPR_TOKEN.match(expr, pos)
            if not m:
                raise ValueError(f"not arithmetic: {expr!r}")
            if m.group(1):
                self.tokens.append(("num", m.group(1), m.start(1), m.end(1)))
            elif m.group(2):
                op = m.group(2)
                self.tokens.append(("op", _OP_AS.get(op, op), m.start(2), m.end(2)))
            pos = m.end()  # a unit word (`12 customers - 5 customers`) is passed over
        self.k = 0
        self.literals: list[tuple[int, int, str]] = []

    def parse(self) -> Term:
        t = self.sum()
        if self.k != len(self.tokens):
            raise ValueError("trailing tokens")
        return t

    def peek(self) -> str | None:
        return self.tokens[self.k][1] if self.k < len(self.tokens) else None

    def sum(self) -> Term:
        t = self.product()
        while self.peek() in ("+", "-"):
            op = self.tokens[self.k][1]
            self.k += 1
            t = Term(op, (t, self.product()))
        return t

    def product(self) -> Term:
        t = self.unary()
        while self.peek() in ("*", "/", "(") or (
            self.k < len(self.tokens)
            and self.tokens[self.k][0] == "num"
            and self.tokens[self.k - 1][1] == ")"
        ):
            op = self.tokens[self.k][1]
            if op == "(" or self.tokens[self.k][0] == "num":  # `27(1/3)`, `(1/2) 278`
                t = Term("*", (t, self.unary()))
                continue
            self.k += 1
            t = Term(op, (t, self.unary()))
        return t

    def unary(self) -> Term:
        tok = self.peek()
        nxt = self.tokens[self.k + 1] if self.k + 1 < len(self.tokens) else None
        if tok == "-" and nxt is not None and nxt[0] == "num":  # `-48`: one negative number
            start = self.tokens[self.k][2]
            self.k += 2
            self.literals.append((start, nxt[3], f"-{nxt[1]}"))
            return Term("lit", index=len(self.literals) - 1)
        if tok in ("-", "+"):
            self.k += 1
            inner = self.unary()
            return Term("neg", (inner,)) if tok == "-" else inner
        if tok == "(":
            self.k += 1
            t = self.sum()
            if self.peek() != ")":
                raise ValueError("unbalanced parentheses")
            self.k += 1
            return t
        if self.k < len(self.tokens) and self.tokens[self.k][0] == "num":
            _, text, start, end = self.tokens[self.k]
            self.k += 1
            self.literals.append((start, end, text))
            return Term("lit", index=len(self.literals) - 1)
        raise ValueError("operand expected")


@dataclass(frozen=True)
class _Site:
    """A calculation as found, before its numbers are read."""

    span: tuple[int, int]
    text: str
    tree: Term
    literals: list[tuple[int, int, str]]
    stated: Fraction
    written: bool
    result: tuple[int, int] = (0, 0)
    expr_end: int = -1
    solved: bool = False
    """An annotation that only states the value of a variable (`x = <<40=40>>`): solved for
    outside any calculation, so it cannot be recomputed."""


def _sites(body: str) -> list[_Site] | Skip:
    """The annotations of a solution body and the exact calculations written between them."""
    sites: list[_Site] = []
    pos = 0
    for m in [*_ANNOTATION.finditer(body), None]:
        end = m.start() if m else len(body)
        sites += _written_sites(body, pos, end)
        if m is None:
            break
        expr, eq_sign, result = m.group(1).rpartition("=")
        try:
            if not eq_sign:
                raise ValueError("no =")
            p = _Parser(expr)
            tree = p.parse()
            stated = _value(result.strip())
        except (ValueError, ZeroDivisionError):
            return Skip("gsm8k: an annotation is not plain arithmetic")
        if tree.op == "lit":  # `3 + 2 = <<5=5>>`: the computation is the text's
            lead = _LEAD_IN.search(body, pos, m.start())
            if lead:
                try:
                    q = _Parser(lead.group())
                    lead_tree = q.parse()
                    if (
                        _eval(_substitute(lead_tree, [_const(t) for *_, t in q.literals]), {}, [])
                        == stated
                    ):
                        expr, tree, p = lead.group(), lead_tree, q
                except (ValueError, ZeroDivisionError):
                    pass
        solved = tree.op == "lit" and _SOLVED.search(body, pos, m.start()) is not None
        sites.append(_Site(m.span(), expr, tree, p.literals, stated, False, solved=solved))
        pos = m.end()
    return sites


def _written_sites(body: str, pos: int, end: int) -> list[_Site]:
    """The exact calculations written out in `body[pos:end]`; a chain `a * b = c / d = e`
    is read link by link (a result may start the next calculation)."""
    out: list[_Site] = []
    while True:
        w = _WRITTEN.search(body, pos, end)
        if w is None:
            return out
        text = w.group()
        eq = w.end("expr") - w.start()
        exact: Fraction | None = None
        try:
            p = _Parser(text[:eq])
            tree = p.parse()
            stated = _value(w.group("result"))
            exact = _eval(_substitute(tree, [_const(t) for _, _, t in p.literals]), {}, [])
        except (ValueError, ZeroDivisionError):
            pass
        if exact is not None and exact == stated and p.literals:
            rs, re_ = w.span("result")
            out.append(
                _Site(
                    w.span(),
                    text,
                    tree,
                    p.literals,
                    stated,
                    True,
                    (rs - w.start(), re_ - w.start()),
                    expr_end=eq,
                )  # fmt: skip
            )
            pos = w.end()
        else:
            pos = w.start("result")


def _const(text: str) -> Term:
    return Term("const", value=_value(text))


def _substitute(t: Term, leaves: Sequence[Term]) -> Term:
    if t.op == "lit":
        return leaves[t.index]
    if not t.args:
        return t
    return Term(t.op, tuple(_substitute(a, leaves) for a in t.args))


def _reads(t: Term) -> set[str]:
    if t.op == "in":
        return {t.name}
    out: set[str] = set()
    for a in t.args:
        out |= _reads(a)
    return out


def _freeze(t: Term, fixed: Mapping[str, Fraction]) -> Term:
    """`t` with the quantities in `fixed` replaced by their values, folded where constant."""
    if t.op == "in":
        return Term("const", value=fixed[t.name]) if t.name in fixed else t
    if not t.args:
        return t
    args = tuple(_freeze(a, fixed) for a in t.args)
    if all(a.op == "const" for a in args):
        return Term("const", value=_eval(Term(t.op, args), {}, []))
    return Term(t.op, args)


def _freeze_calc(c: Calc, fixed: Mapping[str, Fraction]) -> Calc:
    return replace(
        c,
        tree=_freeze(c.tree, fixed),
        literals=tuple(replace(lit, term=_freeze(lit.term, fixed)) for lit in c.literals),
    )


def extract_graph(question: str, solution: str) -> Graph | Skip:
    """The computation graph of one GSM8K problem (its question and its raw, annotated
    solution ending `#### <gold>`), or why it has none that can be trusted."""
    return _extract(question, solution)


def graph_of(problem: Problem) -> Graph | Skip:
    """`extract_graph` for a loaded GSM8K Problem (its `meta["solution"]`)."""
    solution = problem.meta.get("solution")
    if not isinstance(solution, str):
        return Skip("gsm8k: the problem has no annotated solution (meta['solution'])")
    return _extract(problem.question, solution)


def _quantities(mentions: Sequence[Mention]) -> dict[tuple[Fraction, bool], Quantity]:
    groups: dict[tuple[Fraction, bool], list[int]] = {}
    for i, m in enumerate(mentions):
        if not m.fixed:
            groups.setdefault((m.value, m.percent), []).append(i)
    out: dict[tuple[Fraction, bool], Quantity] = {}
    for n, ((value, percent), idx) in enumerate(groups.items()):
        out[(value, percent)] = Quantity(
            name=f"q{n}",
            value=value,
            mentions=tuple(idx),
            percent=percent,
            money=any(mentions[i].money for i in idx),
            places=min(len(mentions[i].text.partition(".")[2]) for i in idx),
            cents=all(mentions[i].cents for i in idx),
        )
    return out


@lru_cache(maxsize=4096)
def _extract(question: str, solution: str) -> Graph | Skip:
    body, sep, gold_text = solution.rpartition("####")
    if not sep:
        return Skip("gsm8k: the solution has no '#### <answer>' line")
    try:
        gold = _value(gold_text.strip())
    except (ValueError, ZeroDivisionError):
        return Skip("gsm8k: the gold is not a plain number")
    sites = _sites(body)
    if isinstance(sites, Skip):
        return sites

    mentions = find_mentions(question)
    consts = word_constants(question + "\n" + body)
    fractions = {(a, b) for a, b in _WRITTEN_FRACTION.findall(question) if int(b)}
    consts |= {Fraction(int(a), int(b)) for a, b in fractions}
    consts |= _ALWAYS
    quantities = _quantities(mentions)
    # A kept number is a constant a calculation may use; an ordinal ("her 10th birthday") only
    # where no changing number of the question has its value.
    changing = {q.value for q in quantities.values()}
    consts |= {m.value for m in mentions if m.fixed and not (m.ordinal and m.value in changing)}

    readings: list[list[list[Term]]] = []
    kept: list[_Site] = []
    unknown: list[tuple[int, Fraction]] = []
    for site in sites:
        got = _readings(site, kept, consts, quantities, fractions)
        if isinstance(got, Skip):
            return got
        row, missing = got
        if missing and site.written:  # text that merely looks like a calculation
            continue
        unknown += [(site.span[0], v) for v in missing]
        kept.append(site)
        readings.append(row)
    sites = kept
    if not sites:
        return Skip("gsm8k: the solution has no calculations")
    read = {n for row in readings for found in row for t in found for n in _reads(t)}
    # A number used but never computed was worked out in the head: it stays as it is, and so
    # does every number written on the lines that lead to its first use.
    keep: set[Fraction] = set()
    for at, v in unknown:
        for start, line in _lines(body):
            if start > at:
                break
            if start + len(line) >= at:  # the line that uses it: its prose, not its sums
                keep |= _line_values(_CALCULATION.sub(" ", line))
            elif v in _line_values(line):
                keep |= _line_values(line)
        # ... and any question number it is one step away from (`4` from "two days": 2 + 2)
        # with a constant or another number the solution uses (one it never uses stays).
        used = [q for q in quantities.values() if q.name in read]
        others = {q.value for q in used} | consts
        for q in used:
            if any(v in _one_step(q.value, x) for x in others):
                keep.add(q.value)
    stated = frozenset(
        {m.value for m in mentions if m.fixed and not m.ordinal}
        | word_constants(question, spoken=True)
    )
    names = [q.name for q in quantities.values()]
    chosen, ties = _choose(readings, [site.tree for site in sites], names, stated)

    calcs: list[Calc] = []
    for site, leaves in zip(sites, chosen, strict=True):
        calcs.append(
            Calc(
                span=site.span,
                text=site.text,
                literals=tuple(
                    Literal(s, e, t, leaf)
                    for (s, e, t), leaf in zip(site.literals, leaves, strict=True)
                ),
                tree=_substitute(site.tree, leaves),
                stated=site.stated,
                written=site.written,
                result=site.result,
                expr_end=site.expr_end,
            )
        )

    # A number the question states but the solution derives ("the remaining 24 liters") stays
    # what it was: the result equal to it keeps its value.
    unread = {q.value for q in quantities.values() if q.name not in read}
    ties += [
        (Term("ref", index=j), Term("const", value=site.stated))
        for j, site in enumerate(sites)
        if site.stated in unread
    ]
    if keep:
        ties += [
            (Term("ref", index=j), Term("const", value=site.stated))
            for j, site in enumerate(sites)
            if site.stated in keep and site.span[0] < max(at for at, _ in unknown)
        ]
    # A quantity that must agree with a constant cannot change: it is kept as written; so are
    # shares that make up a whole ("40% boys and 60% girls", ".75 because 1/4 are absent").
    frozen = {n for a, b in ties if "const" in (a.op, b.op) for n in _reads(a) | _reads(b)}
    wholes, sums = _wholes(quantities, fractions)
    frozen |= wholes
    ties += sums
    frozen |= {q.name for q in quantities.values() if any(fv in keep for fv, _ in _forms(q)[:2])}
    fixed = {q.name: q.value for q in quantities.values() if q.name in frozen}
    calcs = [_freeze_calc(c, fixed) for c in calcs]
    ties = [(_freeze(a, fixed), _freeze(b, fixed)) for a, b in ties]
    ties = [(a, b) for a, b in ties if not (a.op == b.op == "const")]
    # A share no calculation reads still changes with the ones it adds up with.
    shared = {n for a, b in sums for n in _reads(a) | _reads(b)}
    inputs = tuple(q for q in quantities.values() if q.name in (read | shared) - frozen)

    original = {q.name: q.value for q in inputs}
    results: list[Fraction] = []
    for calc in calcs:
        try:
            value = _eval(calc.tree, original, results)
        except ZeroDivisionError:
            return Skip("gsm8k: a calculation divides by zero")
        if value != calc.stated:
            return Skip("gsm8k: an annotation's stated result is not its exact value")
        results.append(value)
    answers = [i for i, r in enumerate(results) if r == gold]
    scale = Fraction(1)
    if not answers and _IN_CENTS.search(question):  # dollars computed, the answer in cents
        answers, scale = [i for i, r in enumerate(results) if r * 100 == gold], Fraction(100)
    if not answers:
        return Skip("gsm8k: the gold is no calculation's result")
    if not inputs:
        return Skip("gsm8k: no question number can change (all are constants or kept)")
    return Graph(
        question=question,
        solution=solution,
        mentions=mentions,
        inputs=inputs,
        calcs=tuple(calcs),
        ties=tuple(ties),
        answer=answers[-1],
        scale=scale,
        mental=tuple(v for _, v in unknown),
    )


def _readings(
    site: _Site,
    before: Sequence[_Site],
    consts: set[Fraction],
    quantities: Mapping[tuple[Fraction, bool], Quantity],
    fractions: set[tuple[str, str]],
) -> tuple[list[list[Term]], list[Fraction]] | Skip:
    """Every reading of every number of one calculation: the results of earlier ones (latest
    first), a constant, a question quantity (a percentage also as p/100; as 100-p or 1+p/100
    only when nothing simpler reads it); and the numbers with no reading, read as constants."""
    row: list[list[Term]] = []
    missing: list[Fraction] = []
    # `a/b` written where the question writes the fraction a/b is that fraction's numbers.
    parts: set[int] = set()
    for k in range(len(site.literals) - 1):
        (_, end, a), (start, _, b) = site.literals[k], site.literals[k + 1]
        if site.text[end:start].strip() == "/" and (a, b) in fractions:
            parts |= {k, k + 1}
    for k, (_, _, text) in enumerate(site.literals):
        v = _value(text)
        if k in parts:
            row.append([Term("const", value=v)])
            continue
        refs = [
            Term("ref", index=j) for j in range(len(before) - 1, -1, -1) if before[j].stated == v
        ]
        if site.tree.op == "lit":  # `<<125=125>>`: restating an earlier result or a given
            if refs:
                row.append(refs)
                continue
            if site.solved:
                return Skip("gsm8k: an annotation states a number it does not compute")
        found = refs + ([Term("const", value=v)] if v in consts else [])
        for q in quantities.values():
            found += [t for fv, t in _forms(q)[:2] if fv == v]
        if not found:
            found = [t for q in quantities.values() for fv, t in _forms(q)[2:] if fv == v]
        if not found:
            missing.append(v)
            found = [Term("const", value=v)]
        row.append(found)
    return row, missing


def _wholes(
    quantities: Mapping[tuple[Fraction, bool], Quantity], fractions: set[tuple[str, str]]
) -> tuple[set[str], list[tuple[Term, Term]]]:
    """Shares of one whole among the question's numbers: a share that is what a written
    fraction leaves of 1 (kept), and two or three percentages adding up to 100 (the last one
    tied to 100 minus the others, so they still add up)."""
    shares = {Fraction(int(a), int(b)) for a, b in fractions}
    kept = {
        q.name
        for q in quantities.values()
        if not q.percent and 0 < q.value < 1 and any(q.value + f == 1 for f in shares)
    }
    sums: list[tuple[Term, Term]] = []
    hundred = Term("const", value=Fraction(100))
    pct = [q for q in quantities.values() if q.percent]
    for k, a in enumerate(pct):
        ta = Term("in", name=a.name)
        for m, b in enumerate(pct[k + 1 :], k + 1):
            tb = Term("in", name=b.name)
            if a.value + b.value == 100:
                sums.append((tb, Term("-", (hundred, ta))))
            for c in pct[m + 1 :]:
                if a.value + b.value + c.value == 100:
                    rest = Term("-", (Term("-", (hundred, ta)), tb))
                    sums.append((Term("in", name=c.name), rest))
    return kept, sums


def _one_step(a: Fraction, b: Fraction) -> set[Fraction]:
    """What one operation on a and b gives, either way round."""
    out = {a + b, a - b, b - a, a * b}
    if b:
        out.add(a / b)
    if a:
        out.add(b / a)
    return out


def _lines(text: str) -> Iterator[tuple[int, str]]:
    start = 0
    for line in text.split("\n"):
        yield start, line
        start += len(line) + 1


def _line_values(line: str) -> set[Fraction]:
    """The numbers written on one line of a solution, in digits or as words."""
    values = {_value(t) for _, _, t in _numbers(line)}
    return values | {Fraction(word_value(m.group())) for m in _CARDINAL.finditer(line)}


MAX_READINGS = 4096
"""Combinations of readings of ambiguous numbers weighed before falling back to ties."""


def _choose(
    readings: Sequence[Sequence[Sequence[Term]]],
    trees: Sequence[Term],
    names: Sequence[str],
    stated: frozenset[Fraction],
) -> tuple[list[list[Term]], list[tuple[Term, Term]]]:
    """One reading per number, and the ties that make the choice safe.

    A solution uses every number its question states (`names`, and the constants of `stated`:
    "twice", the 4 of "1/4") and every result it computes; among the readings of the
    ambiguous numbers, the combinations that leave the fewest of these unused are the best.
    When the best ones compute the same (checked on random inputs: `2*2` read either way),
    or agree on a number, that reading is taken. Elsewhere the first reading is taken and the
    others are kept as ties: a variant must make them agree, so it is right under any
    reading."""
    chosen = [[found[0] for found in row] for row in readings]
    spots = [(i, k) for i, row in enumerate(readings) for k, f in enumerate(row) if len(f) > 1]
    if not spots:
        return chosen, []
    size = 1
    for i, k in spots:
        size *= len(readings[i][k])
    decided: dict[tuple[int, int], Term] = {}
    if size <= MAX_READINGS:
        base: set[object] = set()
        for row in readings:
            for found in row:
                if len(found) == 1:
                    base |= _uses(found[0], stated)
        best, best_combos = -1, []
        for combo in product(*(readings[i][k] for i, k in spots)):
            used = set(base)
            for t in combo:
                used |= _uses(t, stated)
            if len(used) > best:
                best, best_combos = len(used), [combo]
            elif len(used) == best:
                best_combos.append(combo)
        if _same_function(best_combos, spots, chosen, trees, names):
            decided = dict(zip(spots, best_combos[0], strict=True))
        else:
            for n, spot in enumerate(spots):
                if len({c[n] for c in best_combos}) == 1:
                    decided[spot] = best_combos[0][n]
    ties: list[tuple[Term, Term]] = []
    for i, k in spots:
        if (i, k) in decided:
            chosen[i][k] = decided[(i, k)]
        else:
            ties += [(readings[i][k][0], other) for other in readings[i][k][1:]]
    return chosen, ties


def _uses(t: Term, stated: frozenset[Fraction]) -> set[object]:
    """What a reading uses up: quantities, earlier results, constants the text states."""
    if t.op == "in":
        return {t.name}
    if t.op == "ref":
        return {t.index}
    if t.op == "const":
        return {("const", t.value)} if t.value in stated else set()
    out: set[object] = set()
    for a in t.args:
        out |= _uses(a, stated)
    return out


def _same_function(
    combos: Sequence[Sequence[Term]],
    spots: Sequence[tuple[int, int]],
    chosen: Sequence[Sequence[Term]],
    trees: Sequence[Term],
    names: Sequence[str],
) -> bool:
    """Whether every combination computes the same results on a few random inputs."""
    if len(combos) == 1:
        return True
    if len(combos) > 64:
        return False
    probe = random.Random(len(combos))
    samples = [
        {n: Fraction(probe.randint(2, 97), probe.randint(1, 7)) for n in names} for _ in range(3)
    ]
    seen: set[tuple[Fraction, ...]] = set()
    for combo in combos:
        leaves = [list(row) for row in chosen]
        for (i, k), t in zip(spots, combo, strict=True):
            leaves[i][k] = t
        got: list[Fraction] = []
        try:
            for values in samples:
                results: list[Fraction] = []
                for tree, row in zip(trees, leaves, strict=True):
                    results.append(_eval(_substitute(tree, row), values, results))
                got += results
        except ZeroDivisionError:
            return False
        seen.add(tuple(got))
        if len(seen) > 1:
            return False
    return True


def _refs(t: Term) -> set[int]:
    if t.op == "ref":
        return {t.index}
    out: set[int] = set()
    for a in t.args:
        out |= _refs(a)
    return out


def _render_expr(calc: Calc, values: Mapping[str, Fraction], results: Sequence[Fraction]) -> str:
    """An annotation's expression for new values, in the calculator's plain notation."""
    out, pos = [], 0
    for lit in calc.literals:
        out.append(_bare(calc.text[pos : lit.start]))
        out.append(plain(_eval(lit.term, values, results)))
        pos = lit.end
    out.append(_bare(calc.text[pos:]))
    return "".join(out)


def _bare(piece: str) -> str:
    """What lies between the numbers of an expression, as plain operators: units, `$` and `%`
    dropped, `x` and `÷` as `*` and `/`."""
    piece = _OP_WORD.sub(lambda m: f" {_OP_AS[m.group().lower()]} ", piece)
    piece = re.sub(_UNIT_WORD, "", piece).replace("$", "").replace("%", "")
    return "".join(_OP_AS.get(c, c) for c in re.sub(r"\s+", " ", piece))


def _render_written(
    calc: Calc, result: Fraction, values: Mapping[str, Fraction], results: Sequence[Fraction]
) -> str:
    spans = [(lit.start, lit.end, _eval(lit.term, values, results)) for lit in calc.literals]
    spans.append((*calc.result, result))
    out, pos = [], 0
    for start, end, v in spans:
        out.append(calc.text[pos:start])
        out.append(like(calc.text[start:end], v, calc.text[:start].rstrip().endswith("$")))
        pos = end
    out.append(calc.text[pos:])
    return "".join(out)


def draw(q: Quantity, rng: random.Random) -> Fraction:
    """A new value for one quantity, near the old one (half to twice it, at least 2 for a
    count) and as round as it was: a whole number for a whole number, a multiple of 5, 10, 25,
    50 or 100 where it was one, the same decimal grid for money, at most 100 for a
    percentage."""
    if q.value < 0:
        return -draw(replace(q, value=-q.value), rng)
    lo, hi, step, scale = _grid(q)
    return Fraction(rng.randint(lo, hi) * step, scale)


def _grid(q: Quantity) -> tuple[int, int, int, int]:
    """The values `draw` picks from for a positive quantity: (lo, hi, step, scale), meaning
    k * step / scale for k in lo..hi."""
    scale = 10**q.places
    w = int(q.value * scale)
    step = next((s for s in (100, 50, 25, 10, 5) if w % s == 0 and w >= 2 * s), 1)
    lo, hi = max(step, w // 2, 2 if q.places == 0 else 1), max(w * 2, w + 3 * step)
    if q.percent and q.value <= 100:
        hi = min(hi, 100 * scale)
    return lo // step, max(lo // step, hi // step), step, scale


def resample(
    graph: Graph, rng: random.Random, tries: int = MAX_TRIES
) -> dict[str, Fraction] | None:
    """New input values that pass `Graph.check` and change at least one number, or None.
    The first half of the tries redraws a shrinking share of the inputs, the second half one
    input at a time, so a tightly coupled problem (ties, exact divisions) still finds one."""
    inputs = graph.inputs
    for t in range(tries):
        values = dict(graph.original)
        if t < tries // 2:
            keep = min(0.9, 3 * t / tries)
            for q in inputs:
                if rng.random() >= keep:
                    values[q.name] = draw(q, rng)
        else:
            q = inputs[rng.randrange(len(inputs))]
            values[q.name] = draw(q, rng)
        values = _settle(graph, values)
        if values != graph.original and graph.check(values) is None:
            return values
    # Tightly coupled: every value of the grid, one input at a time, in an rng-chosen order.
    for q in rng.sample(inputs, len(inputs)):
        if q.value <= 0:
            continue
        lo, hi, step, scale = _grid(q)
        ks = list(range(lo, hi + 1))
        for k in rng.sample(ks, min(len(ks), GRID_TRIES)):
            values = _settle(graph, {**graph.original, q.name: Fraction(k * step, scale)})
            if values != graph.original and graph.check(values) is None:
                return values
    return None


def _settle(graph: Graph, values: dict[str, Fraction]) -> dict[str, Fraction]:
    """`values` with every question number that must agree with another reading (a tie
    between it and an earlier result) set to that reading's new value, so the two agree."""
    for _ in range(3):
        try:
            results = graph.evaluate(values)
        except ZeroDivisionError:
            return values
        moved = False
        for a, b in graph.ties:
            for fixed, free in ((a, b), (b, a)):
                if free.op == "in" and fixed.op != "const":
                    want = _eval(fixed, values, results)
                    if values[free.name] != want:
                        values[free.name] = want
                        moved = True
                    break
        if not moved:
            break
    return values


def sympy_gold(graph: Graph, values: Mapping[str, Fraction]) -> Fraction:
    """The gold for `values` computed a second way, sharing no evaluation code with
    `Graph.evaluate`: each calculation's own text, its numbers replaced by symbols (inputs,
    earlier results) or exact rationals, parsed by sympy; then the inputs substituted."""
    import sympy

    symbols = {q.name: sympy.Symbol(q.name, positive=True) for q in graph.inputs}
    exprs: list[Any] = []
    for k, calc in enumerate(graph.calcs):
        expr = calc.text[: calc.expr_end] if calc.written else calc.text
        text, pos = [], 0
        for lit in [*calc.literals, None]:
            text.append(_bare(expr[pos : lit.start if lit else len(expr)]))
            if lit is not None:
                text.append(f"({_sympy_text(lit.term)})")
                pos = lit.end
        source = re.sub(r"\)\s*\(", ")*(", "".join(text))  # `2(16)`, `(1/2) 278`: products
        local: dict[str, Any] = dict(symbols)
        local.update({f"r{j}": exprs[j] for j in range(k)})
        local["Rational"] = sympy.Rational
        exprs.append(sympy.parse_expr(source, local_dict=local))
    got = sympy.nsimplify(
        sympy.Rational(graph.scale.numerator, graph.scale.denominator)
        * exprs[graph.answer].subs(
            {symbols[n]: sympy.Rational(v.numerator, v.denominator) for n, v in values.items()}
        )
    )
    if not got.is_Rational:
        raise ValueError(f"sympy left {got}")
    return Fraction(int(got.p), int(got.q))


def _sympy_text(t: Term) -> str:
    if t.op == "const":
        return f"Rational({t.value.numerator}, {t.value.denominator})"
    if t.op == "in":
        return t.name
    if t.op == "ref":
        return f"r{t.index}"
    if t.op == "neg":
        return f"-({_sympy_text(t.args[0])})"
    return f"({_sympy_text(t.args[0])}) {t.op} ({_sympy_text(t.args[1])})"


__all__ = [
    "MAX_TRIES",
    "Calc",
    "Graph",
    "Literal",
    "Mention",
    "Quantity",
    "Term",
    "draw",
    "extract_graph",
    "find_mentions",
    "graph_of",
    "like",
    "places",
    "plain",
    "resample",
    "sympy_gold",
    "word_constants",
]
