"""`numeric`: the same problem with new numbers, its answer recomputed.

- gsm8k: the solution's calculations as a graph over the question's numbers
  (`gsm8k_graph`): new plausible values for the numbers that feed it, the question and the
  worked solution rewritten with them, the gold recomputed exactly.
- chains: the same operation kinds in the same family, with a new start value and new
  constants (every intermediate a positive integer, divisions exact, under chains.MAX_VALUE),
  retold with the original's filler words and solved by the task's own solver.
- math / math500 / aime: only a question that is itself an arithmetic expression over literal
  numbers ("Compute $\\dbinom{16}{5}$", "What is $3^4 - 5\\cdot 8$?"), parsed and evaluated
  exactly, with new literals that keep the result a number of the same kind and size.
  Anything else is skipped: a competition solution is no closed form over its numbers.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import comb, factorial
from typing import TYPE_CHECKING, Any, TypeVar, cast

from harness.perturb.base import Context, Perturbation, Skip, derive
from harness.perturb.gsm8k_graph import Graph, graph_of, plain, resample
from harness.tasks import chains
from harness.tasks.grading.numeric import parse_number
from harness.types import Problem

if TYPE_CHECKING:
    from _typeshed import SupportsLenAndGetItem

_T = TypeVar("_T")

MAX_TRIES = 200
"""Draws of new numbers (chains, closed forms) before a problem is taken to have none."""


class Numeric(Perturbation):
    name = "numeric"
    description = "new numbers in the problem, the answer recomputed from its solution"
    tasks = ("gsm8k", "chains", "math", "math500", "aime", "aime24", "aime25")

    def apply(self, problem: Problem, rng: random.Random, ctx: Context) -> Problem | Skip:
        if ctx.task == "gsm8k":
            return gsm8k_variant(problem, rng)
        if ctx.task == "chains":
            return chains_variant(problem, rng)
        return closed_form_variant(problem, rng, ctx.task)


# --- gsm8k ---------------------------------------------------------------------------------


def gsm8k_variant(problem: Problem, rng: random.Random) -> Problem | Skip:
    graph = graph_of(problem)
    if isinstance(graph, Skip):
        return graph
    values = resample(graph, rng)
    if values is None:
        return Skip("gsm8k: no plausible new numbers found")
    return gsm8k_problem(problem, graph, values, "numeric")


def gsm8k_problem(
    problem: Problem,
    graph: Graph,
    values: dict[str, Fraction],
    kind: str,
    params: dict[str, Any] | None = None,
) -> Problem:
    """`problem` rewritten for new input values of its graph: question, worked solution (its
    annotations recomputed, kept in meta["solution"]), reference and gold."""
    solution = graph.render_solution(values)
    changed = {
        q.name: {"from": plain(q.value), "to": plain(values[q.name])}
        for q in graph.inputs
        if values[q.name] != q.value
    }
    return derive(
        problem,
        kind,
        {"numbers": changed, **(params or {})},
        question=graph.render_question(values),
        answer=plain(graph.gold(values)),
        reference=graph.render_solution(values, annotations=False),
        meta={"solution": solution},
    )


# --- chains --------------------------------------------------------------------------------

_CHAIN_ID = re.compile(r"s(\d+)-d(\d+)-(\d+)")


@dataclass(frozen=True)
class Chain:
    """A chains problem as its meta records it."""

    family: chains.Family
    start: int
    ops: list[chains.Op]
    fill: random.Random
    """An rng that makes `chains.tell` choose the original's filler words."""


def read_chain(problem: Problem) -> Chain | Skip:
    """The chain of a chains problem (family, start, operations) and how to retell it with the
    same filler words, or why it cannot be read back."""
    meta = problem.meta
    try:
        start = int(meta["start"])
        ops = [chains.Op(str(kind), int(k)) for kind, k in meta["ops"]]
        name = str(meta["family"])
    except (KeyError, TypeError, ValueError):
        return Skip("chains: the problem's meta has no readable family, start and ops")
    family = chains.FAMILIES.get(name) or getattr(chains, "HELD_OUT", {}).get(name)
    if family is None:
        return Skip(f"chains: unknown family {name!r}")
    if any(op.kind not in ("add", "sub", "mul", "div") for op in ops):
        return Skip("chains: the problem's ops are not add/sub/mul/div")
    fill = _filler_rng(problem, family, start, ops)
    if fill is None:
        return Skip("chains: the question is not the chain told in its family")
    return Chain(family, start, ops, fill)


def _filler_rng(
    problem: Problem, family: chains.Family, start: int, ops: list[chains.Op]
) -> random.Random | None:
    """The task's own surface rng when the chain id names it; otherwise one that replays the
    filler words found by retelling the chain with each choice. None if none gives the
    question."""
    found = _CHAIN_ID.fullmatch(str(problem.meta.get("chain_id", "")))
    if found:
        seed, depth, index = found.groups()
        key = f"chains/{seed}/{depth}/{index}/{family.name}"
        if chains.tell(family, start, ops, random.Random(key)) == problem.question:
            return random.Random(key)
    keys = list(family.fillers)
    for choice in _product([family.fillers[k] for k in keys]):
        if chains.tell(family, start, ops, _Replay(choice)) == problem.question:
            return _Replay(choice)
    return None


def _product(pools: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [()]
    for pool in pools:
        out = [(*done, item) for done in out for item in pool]
    return out


class _Replay(random.Random):
    """An rng whose `choice` returns given values in turn (the filler words of a telling)."""

    def __init__(self, picks: tuple[str, ...]) -> None:
        super().__init__(0)
        self.picks = picks
        self.at = 0

    def choice(self, seq: SupportsLenAndGetItem[_T]) -> _T:
        pick = self.picks[self.at % len(self.picks)]
        self.at += 1
        return cast(_T, pick)

    def fresh(self) -> _Replay:
        return _Replay(self.picks)


def filler(chain: Chain) -> random.Random:
    """A fresh copy of the chain's filler rng (each telling consumes one)."""
    if isinstance(chain.fill, _Replay):
        return chain.fill.fresh()
    fresh = random.Random()
    fresh.setstate(chain.fill.getstate())
    return fresh


def chain_valid(start: int, ops: Sequence[chains.Op]) -> bool:
    """Every intermediate a positive integer under chains.MAX_VALUE, every division exact."""
    v = start
    if not 0 < v <= chains.MAX_VALUE:
        return False
    for op in ops:
        if op.kind == "div" and (op.k < 2 or v % op.k):
            return False
        v = op.apply(v)
        if not 0 < v <= chains.MAX_VALUE:
            return False
    return True


def draw_chain(kinds: Sequence[str], rng: random.Random) -> tuple[int, list[chains.Op]] | None:
    """A new start and constants for these operation kinds, drawn as the task draws them (start
    5-60, add 2-40, sub 1-40 leaving a positive value, mul 2-4, div by a divisor 2-9)."""
    for _ in range(MAX_TRIES):
        start = rng.randint(5, 60)
        v, ops = start, []
        for kind in kinds:
            op = _draw_op(kind, v, rng)
            if op is None:
                break
            ops.append(op)
            v = op.apply(v)
        if len(ops) == len(kinds) and chain_valid(start, ops):
            return start, ops
    return None


def _draw_op(kind: str, v: int, rng: random.Random) -> chains.Op | None:
    if kind == "add":
        return chains.Op("add", rng.randint(2, 40)) if v + 2 <= chains.MAX_VALUE else None
    if kind == "sub":
        return chains.Op("sub", rng.randint(1, min(v - 1, 40))) if v > 1 else None
    if kind == "mul":
        ks = [k for k in (2, 3, 4) if v * k <= chains.MAX_VALUE]
        return chains.Op("mul", rng.choice(ks)) if ks else None
    divisors = [d for d in range(2, 10) if v % d == 0]
    return chains.Op("div", rng.choice(divisors)) if divisors else None


def chains_variant(problem: Problem, rng: random.Random) -> Problem | Skip:
    chain = read_chain(problem)
    if isinstance(chain, Skip):
        return chain
    drawn = draw_chain([op.kind for op in chain.ops], rng)
    if drawn is None:
        return Skip("chains: no new constants keep every step a positive whole number")
    start, ops = drawn
    answer, reference = chains.solve(start, ops)
    return derive(
        problem,
        "numeric",
        {
            "start": {"from": chain.start, "to": start},
            "constants": {"from": [op.k for op in chain.ops], "to": [op.k for op in ops]},
        },
        question=chains.tell(chain.family, start, ops, filler(chain)),
        answer=str(answer),
        reference=reference,
        meta={"start": start, "ops": [[op.kind, op.k] for op in ops]},
    )


# --- math / aime: closed-form arithmetic questions -----------------------------------------

_ASK = re.compile(
    r"^\s*(?:compute|evaluate|calculate|simplify|find|determine|what\s+is|what's)"
    r"(?:\s+the\s+(?:value|exact\s+value)\s+of)?(?:\s+the\s+following)?\s*:?\s*$",
    re.I,
)
_AFTER = re.compile(
    r"^\s*[.?!]?\s*(?:in\s+your\s+head[.?!]?|without\s+a\s+calculator[.?!]?)?\s*"
    r"(?:\((?:do\s+not|don't)\s+use\s+a\s+calculator!?\)\.?)?\s*"
    r"(?:express\s+your\s+answer\s+as\s+an?\s+(?:common\s+fraction|integer|whole\s+number|"
    r"fraction(?:\s+in\s+simplest\s+form)?)\.?)?\s*$",
    re.I,
)
_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\[(.+?)\\\]|\\\((.+?)\\\)", re.S)
_LATEX_TOKEN = re.compile(r"\s+|(\d+(?:\.\d+)?|\.\d+)|(\\[A-Za-z]+|\\[,;:! ])|([-+*/^(){}\[\]!])")
_SKIP_COMMANDS = {"\\left", "\\right", "\\,", "\\;", "\\:", "\\!", "\\ ", "\\big", "\\Big"}
_TIMES = {"\\cdot", "\\times"}
_FRACS = {"\\frac", "\\dfrac", "\\tfrac"}
_BINOMS = {"\\binom", "\\dbinom", "\\tbinom"}
MAX_DIGITS = 40
"""Largest numerator or denominator (in digits) a closed form may reach."""


class NotClosed(ValueError):
    """The text is not an arithmetic expression this evaluator reads exactly."""


@dataclass(frozen=True)
class Number:
    """A number literal of a closed form: its span in the expression and whether it sits
    where changing it changes the expression's shape (an exponent, a factorial)."""

    start: int
    end: int
    text: str
    shape: bool


class _Latex:
    """A recursive-descent reader of LaTeX arithmetic: + - \\cdot \\times \\div / ^, \\frac,
    \\binom, \\lceil\\rceil, \\lfloor\\rfloor, !, parentheses; exact (Fraction) values."""

    def __init__(self, text: str, values: dict[int, Fraction] | None = None) -> None:
        self.toks: list[tuple[str, str, int, int]] = []
        pos = 0
        while pos < len(text):
            m = _LATEX_TOKEN.match(text, pos)
            if not m:
                raise NotClosed(text[pos:])
            pos = m.end()
            if m.group(1):
                self.toks.append(("num", m.group(1), m.start(1), m.end(1)))
            elif m.group(2):
                if m.group(2) not in _SKIP_COMMANDS:
                    self.toks.append(("cmd", m.group(2), m.start(2), m.end(2)))
            elif m.group(3):
                self.toks.append(("op", m.group(3), m.start(3), m.end(3)))
        self.k = 0
        self.values = values or {}
        self.numbers: list[Number] = []
        self.shape_depth = 0

    def peek(self) -> str | None:
        return self.toks[self.k][1] if self.k < len(self.toks) else None

    def take(self, want: str | None = None) -> tuple[str, str, int, int]:
        if self.k >= len(self.toks) or (want is not None and self.toks[self.k][1] != want):
            raise NotClosed(f"expected {want}")
        tok = self.toks[self.k]
        self.k += 1
        return tok

    def parse(self) -> Fraction:
        v = self.sum()
        if self.k != len(self.toks):
            raise NotClosed("trailing text")
        return v

    def sum(self) -> Fraction:
        v = self.product()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            rhs = self.product()
            v = v + rhs if op == "+" else v - rhs
        return v

    def product(self) -> Fraction:
        v = self.unary()
        while True:
            tok = self.peek()
            if tok in ("*", "/", "\\div") or tok in _TIMES:
                self.take()
                rhs = self.unary()
                if tok in ("/", "\\div"):
                    if rhs == 0:
                        raise NotClosed("division by zero")
                    v = v / rhs
                else:
                    v = v * rhs
            elif tok in ("(", "\\frac", "\\dfrac", "\\tfrac", "\\binom", "\\dbinom", "\\lceil"):
                v = v * self.unary()  # `2(3+4)`, `3\frac{1}{2}` is not read as a mixed number
            else:
                return v

    def unary(self) -> Fraction:
        if self.peek() == "-":
            self.take()
            return -self.unary()
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> Fraction:
        base = self.postfix()
        if self.peek() != "^":
            return base
        self.take()
        self.shape_depth += 1
        try:
            if self.peek() == "{":
                exp = self.group()
            else:
                tok = self.take()
                if tok[0] != "num" or len(tok[1]) != 1:
                    raise NotClosed("an exponent of more than one character needs braces")
                exp = self.literal(tok)
        finally:
            self.shape_depth -= 1
        if exp.denominator != 1 or abs(exp) > 64:
            raise NotClosed("exponent")
        if base == 0 and exp < 0:
            raise NotClosed("zero to a negative power")
        out = base ** int(exp)
        _bound(out)
        return out

    def postfix(self) -> Fraction:
        v = self.atom()
        while self.peek() == "!":
            self.take()
            if v.denominator != 1 or not 0 <= v <= 30:
                raise NotClosed("factorial")
            v = Fraction(factorial(int(v)))
        return v

    def group(self) -> Fraction:
        self.take("{")
        v = self.sum()
        self.take("}")
        return v

    def literal(self, tok: tuple[str, str, int, int]) -> Fraction:
        index = len(self.numbers)
        self.numbers.append(Number(tok[2], tok[3], tok[1], self.shape_depth > 0))
        return self.values.get(index, Fraction(tok[1]))

    def atom(self) -> Fraction:
        tok = self.peek()
        if tok is None:
            raise NotClosed("operand expected")
        kind = self.toks[self.k][0]
        if kind == "num":
            return self.literal(self.take())
        if tok in ("(", "["):
            self.take()
            v = self.sum()
            self.take(")" if tok == "(" else "]")
            return v
        if tok == "{":
            return self.group()
        if tok in _FRACS:
            self.take()
            num, den = self.argument(), self.argument()
            if den == 0:
                raise NotClosed("division by zero")
            return num / den
        if tok in _BINOMS:
            self.take()
            n, r = self.argument(), self.argument()
            if n.denominator != 1 or r.denominator != 1 or not 0 <= r <= n <= 200:
                raise NotClosed("binomial")
            return Fraction(comb(int(n), int(r)))
        if tok in ("\\lceil", "\\lfloor"):
            self.take()
            v = self.sum()
            self.take("\\rceil" if tok == "\\lceil" else "\\rfloor")
            whole = v.numerator // v.denominator
            return Fraction(whole + (1 if tok == "\\lceil" and v.denominator != 1 else 0))
        raise NotClosed(f"not arithmetic: {tok}")

    def argument(self) -> Fraction:
        """A \\frac or \\binom argument: a braced group, or one digit (`\\frac59`)."""
        if self.peek() == "{":
            return self.group()
        tok = self.take()
        if tok[0] != "num":
            raise NotClosed("argument")
        if len(tok[1]) > 1:  # `\frac59`: the first digit, then the rest
            head = (tok[0], tok[1][0], tok[2], tok[2] + 1)
            self.toks[self.k - 1 : self.k] = [head, (tok[0], tok[1][1:], tok[2] + 1, tok[3])]
            self.k -= 1
            return self.literal(self.take())
        return self.literal(tok)


def _bound(v: Fraction) -> None:
    if len(str(abs(v.numerator))) > MAX_DIGITS or len(str(v.denominator)) > MAX_DIGITS:
        raise NotClosed("too large")


def evaluate_latex(expr: str, values: dict[int, Fraction] | None = None) -> Fraction:
    """The exact value of a LaTeX arithmetic expression (literal k replaced by values[k])."""
    reader = _Latex(expr, values)
    v = reader.parse()
    _bound(v)
    return v


def latex_numbers(expr: str) -> list[Number]:
    reader = _Latex(expr)
    reader.parse()
    return reader.numbers


@dataclass(frozen=True)
class ClosedForm:
    """A question that is one arithmetic expression: where it is, its numbers, its value."""

    question: str
    span: tuple[int, int]
    expr: str
    numbers: list[Number]
    value: Fraction


def closed_form(problem: Problem) -> ClosedForm | Skip:
    """The question as one exact arithmetic expression whose value is the gold, or why not."""
    question = problem.question
    found = list(_MATH.finditer(question))
    if len(found) != 1:
        return Skip(f"{problem.task}: no closed form over the question's numbers")
    m = found[0]
    group = next(g for g in range(1, 5) if m.group(g) is not None)
    if not _ASK.match(question[: m.start()]) or not _AFTER.match(question[m.end() :]):
        return Skip(f"{problem.task}: no closed form over the question's numbers")
    expr = m.group(group)
    try:
        numbers = latex_numbers(expr)
        value = evaluate_latex(expr)
    except NotClosed:
        return Skip(f"{problem.task}: no closed form over the question's numbers")
    gold = parse_number(problem.answer)
    if gold is None or gold != value:
        return Skip(f"{problem.task}: the question's expression does not give its gold")
    if not any(not n.shape for n in numbers):
        return Skip(f"{problem.task}: the closed form has no number that can change")
    return ClosedForm(question, m.span(group), expr, numbers, value)


def _draw_literal(n: Number, rng: random.Random) -> Fraction:
    places = len(n.text.partition(".")[2])
    scale = 10**places
    w = int(Fraction(n.text) * scale)
    if w <= 1:
        return Fraction(w, scale)
    lo, hi = (2, 12) if w <= 12 else (max(2, w * 2 // 3), w * 3 // 2)
    return Fraction(rng.randint(lo, hi), scale)


def _like_literal(text: str, v: Fraction) -> str:
    places = len(text.partition(".")[2])
    shown = plain(v)
    if places and "." not in shown:
        shown = f"{shown}.{'0' * places}"
    return shown[1:] if text.startswith(".") and shown.startswith("0.") else shown


def _answer_text(v: Fraction, like: str) -> str:
    """A gold in the dataset's style: an integer, a decimal where the old gold was one, else
    a fraction `\\frac{p}{q}`."""
    if v.denominator == 1:
        return str(v.numerator)
    if re.fullmatch(r"-?\d*\.\d+", like.strip()):
        try:
            return plain(v)
        except ValueError:
            pass
    sign = "-" if v < 0 else ""
    return f"{sign}\\frac{{{abs(v.numerator)}}}{{{v.denominator}}}"


def _plausible_value(old: Fraction, new: Fraction, task: str) -> bool:
    if (old.denominator == 1) != (new.denominator == 1) or new.denominator > 1000:
        return False
    if task.startswith("aime") and not 0 <= new <= 999:
        return False
    if old != 0 and (new == 0 or not abs(old) / 10 <= abs(new) <= abs(old) * 10 + 10):
        return False
    return (old > 0) == (new > 0) or old == 0


def closed_form_variant(problem: Problem, rng: random.Random, task: str) -> Problem | Skip:
    form = closed_form(problem)
    if isinstance(form, Skip):
        return form
    # Equal numbers stay equal (`99^2+99+1`, `(3.6)^2 ... 3.6`): one draw per written number.
    texts = sorted({n.text for n in form.numbers if not n.shape}, key=form.expr.index)
    shapes = {n.text for n in form.numbers if n.shape}
    for _ in range(MAX_TRIES):
        drawn = {
            t: _draw_literal(Number(0, 0, t, False), rng)
            for t in texts
            if t not in shapes and rng.random() < 0.7
        }
        values = {k: drawn[n.text] for k, n in enumerate(form.numbers) if n.text in drawn}
        if not any(values[k] != Fraction(form.numbers[k].text) for k in values):
            continue
        try:
            new = evaluate_latex(form.expr, values)
        except NotClosed:
            continue
        if _plausible_value(form.value, new, task):
            break
    else:
        return Skip(f"{task}: no new numbers keep the closed form's value plausible")
    out, pos = [], 0
    for k, n in enumerate(form.numbers):
        out.append(form.expr[pos : n.start])
        out.append(_like_literal(n.text, values[k]) if k in values else n.text)
        pos = n.end
    expr = "".join(out) + form.expr[pos:]
    start, end = form.span
    question = form.question[:start] + expr + form.question[end:]
    answer = _answer_text(new, problem.answer)
    reference = (
        f"Evaluating exactly, ${expr} = {answer}$.\nThe final answer is $\\boxed{{{answer}}}$."
    )
    changed = {
        str(k): {"from": form.numbers[k].text, "to": _like_literal(form.numbers[k].text, v)}
        for k, v in values.items()
        if v != Fraction(form.numbers[k].text)
    }
    return derive(
        problem,
        "numeric",
        {"numbers": changed, "expression": expr},
        question=question,
        answer=answer,
        reference=reference,
    )


__all__ = [
    "Chain",
    "ClosedForm",
    "NotClosed",
    "Numeric",
    "chain_valid",
    "chains_variant",
    "closed_form",
    "closed_form_variant",
    "draw_chain",
    "evaluate_latex",
    "filler",
    "gsm8k_problem",
    "gsm8k_variant",
    "latex_numbers",
    "read_chain",
]
