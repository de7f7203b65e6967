"""Synthetic multi-step arithmetic word problems with controlled depth and surface form.

The probe that separates capacity from mismatch: one hidden chain of operations (depth 1-12)
is told in several surface families. Failing at depth d in every family points at capacity;
failing at depth d in one family while solving it in others points at the form.

The operation chain depends only on (seed, depth, index); the family changes only the telling,
so the same chain in two families is a paired comparison. Answers are computed, never typed.
Options (`ChainsOptions`): depth=1-12 (or one number), family=shop+bank (any of FAMILIES),
n=<per depth and family>, seed=<int>.

`HELD_OUT` families are a second set of tellings kept apart from `FAMILIES`: the `surface`
perturbation retells a chain in one of them, and the failure classifier reads a chain solved in
`FAMILIES` but failed in `HELD_OUT` (at the same depth) as a mismatch of form. They are never in
the default family list, so no default run, few-shot or tuning set sees them; a user may still
name one explicitly (`chains:family=factory`) to run it as a task of its own, which gives the
same text as the `surface` variant of that chain (same per-family surface seed).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.options import option
from harness.registry import suggest
from harness.tasks.base import DataSource, Loaded, Task
from harness.tasks.grading.extract import Extraction, extract_final_answer
from harness.tasks.grading.numeric import is_number, numbers_equal
from harness.types import Problem

MIN_DEPTH, MAX_DEPTH = 1, 12
MAX_VALUE = 9999


@dataclass(frozen=True)
class Op:
    kind: str  # add | sub | mul | div
    k: int

    def apply(self, v: int) -> int:
        if self.kind == "add":
            return v + self.k
        if self.kind == "sub":
            return v - self.k
        if self.kind == "mul":
            return v * self.k
        return v // self.k

    @property
    def symbol(self) -> str:
        return {"add": "+", "sub": "-", "mul": "*", "div": "/"}[self.kind]


@dataclass(frozen=True)
class Family:
    """One way of telling a chain: an opening, a sentence per operation, a question."""

    name: str
    intro: str
    add: str
    sub: str
    mul: str
    div: str
    question: str
    fillers: dict[str, tuple[str, ...]]


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "shop",
            "A shop has {v} {item} in stock.",
            "A delivery brings {k} more {item}.",
            "Customers buy {k} {item}.",
            "The owner orders enough to make the stock {k} times as large.",
            "The {item} are shared equally among {k} branches, and the shop keeps one share.",
            "How many {item} does the shop have now?",
            {"item": ("apples", "pencils", "cans of soup", "notebooks", "light bulbs")},
        ),
        Family(
            "bank",
            "{name} has ${v} in a savings account.",
            "{name} deposits ${k}.",
            "{name} withdraws ${k}.",
            "A bonus makes the balance {k} times what it was.",
            "{name} splits the balance equally over {k} accounts and keeps only one of them.",
            "How many dollars does {name} have in the account now?",
            {"name": ("Maria", "Tom", "Aisha", "Kenji", "Lena")},
        ),
        Family(
            "bus",
            "A bus leaves the depot with {v} passengers.",
            "At the next stop, {k} passengers get on.",
            "At the next stop, {k} passengers get off.",
            "At a busy station the number of passengers becomes {k} times what it was.",
            "The passengers split into {k} equal groups and only one group stays on the bus.",
            "How many passengers are on the bus now?",
            {},
        ),
        Family(
            "garden",
            "A gardener plants {v} {plant}.",
            "She plants {k} more {plant}.",
            "Rabbits eat {k} of the {plant}.",
            "By spring there are {k} times as many {plant} as before.",
            "She divides the {plant} equally into {k} beds and gives away all but one bed.",
            "How many {plant} does the gardener have now?",
            {"plant": ("tulips", "tomato plants", "roses", "sunflowers", "herbs")},
        ),
        Family(
            "symbolic",
            "Let {var0} = {v}.",
            "Let {var} = {prev} + {k}.",
            "Let {var} = {prev} - {k}.",
            "Let {var} = {prev} * {k}.",
            "Let {var} = {prev} / {k}.",
            "What is the value of {last}?",
            {},
        ),
    )
}


HELD_OUT: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "factory",
            "A warehouse holds {v} {goods}.",
            "A truck unloads {k} more {goods} at the warehouse.",
            "A forklift ships {k} of the {goods} out of the warehouse.",
            "A night shift keeps producing until the warehouse holds {k} times as many {goods} as "
            "before.",
            "The {goods} are split evenly over {k} loading bays, and only one bay's share stays "
            "in the warehouse.",
            "How many {goods} are in the warehouse now?",
            {
                "goods": (
                    "crates of bolts",
                    "boxes of tiles",
                    "pallets of bricks",
                    "rolls of cable",
                    "drums of paint",
                )
            },
        ),
        Family(
            "library",
            "A library owns {v} {books}.",
            "A donor gives the library {k} more {books}.",
            "The library sells {k} of its {books} at a book fair.",
            "After a large purchase, the library owns {k} times as many {books} as before.",
            "The {books} are divided equally among {k} branch libraries, and this library keeps "
            "one share.",
            "How many {books} does the library own now?",
            {"books": ("novels", "atlases", "cookbooks", "poetry books", "comic books")},
        ),
        Family(
            "bakery",
            "{baker} bakes {v} {pastry} in the morning.",
            "{baker} takes {k} more {pastry} out of the oven.",
            "{baker} sells {k} of the {pastry} to a coffee shop.",
            "A large order arrives, and {baker} bakes until there are {k} times as many {pastry} "
            "as before.",
            "{baker} packs the {pastry} equally into {k} boxes and keeps only one box.",
            "How many {pastry} does {baker} have now?",
            {
                "baker": ("Priya", "Omar", "Sofia", "Dmitri", "Grace"),
                "pastry": ("muffins", "bagels", "croissants", "scones", "cinnamon rolls"),
            },
        ),
        Family(
            "parking",
            "A parking garage has {v} cars parked in it.",
            "During the next hour, {k} more cars drive in and park.",
            "During the next hour, the number of parked cars goes down by {k}.",
            "As a concert begins nearby, the number of parked cars grows to {k} times what it was.",
            "The parked cars are split into {k} equal groups, and every group but one drives away.",
            "How many cars are parked in the garage now?",
            {},
        ),
        Family(
            "game",
            "{player} starts a board game with {v} points.",
            "{player} lands on a bonus square and wins {k} points.",
            "{player} pays a penalty, and {player}'s score goes down by {k}.",
            "A lucky card multiplies {player}'s score by {k}.",
            "An unlucky card divides {player}'s score by {k}.",
            "How many points does {player} have now?",
            {"player": ("Noor", "Felix", "Yuki", "Mateo", "Hannah")},
        ),
    )
}
"""Tellings held out from every default run (see the module docstring): the `surface`
perturbation's families. Never merge them into FAMILIES or use them as in-family examples."""


def family_named(name: str) -> Family:
    """A default or held-out family by name (a held-out one only when asked for by name)."""
    found = FAMILIES.get(name) or HELD_OUT.get(name)
    if found is None:
        raise HarnessError(f"chains: unknown family {name}; known: {', '.join(FAMILIES)}")
    return found


def make_chain(rng: random.Random, depth: int) -> tuple[int, list[Op]]:
    """A start value and `depth` operations whose every intermediate is a positive integer."""
    start = rng.randint(5, 60)
    v, ops = start, []
    for _ in range(depth):
        choices: list[Op] = [Op("add", rng.randint(2, 40))]
        if v > 2:
            choices.append(Op("sub", rng.randint(1, min(v - 1, 40))))
        k = rng.randint(2, 4)
        if v * k <= MAX_VALUE:
            choices.append(Op("mul", k))
        divisors = [d for d in range(2, 10) if v % d == 0]
        if divisors:
            choices.append(Op("div", rng.choice(divisors)))
        op = rng.choice(choices)
        if op.kind == "add" and v + op.k > MAX_VALUE:
            op = Op("sub", rng.randint(1, min(v - 1, 40)))
        ops.append(op)
        v = op.apply(v)
    return start, ops


def _var(i: int) -> str:
    return "abcdefghijklmnopqrstuvwxyz"[i]


def tell(family: Family, start: int, ops: list[Op], rng: random.Random) -> str:
    """The word problem for a chain in one family's surface form."""
    fill = {key: rng.choice(vals) for key, vals in family.fillers.items()}
    parts = [family.intro.format(v=start, var0=_var(0), **fill)]
    for i, op in enumerate(ops, 1):
        template = getattr(family, op.kind)
        parts.append(template.format(k=op.k, var=_var(i), prev=_var(i - 1), **fill))
    parts.append(family.question.format(last=_var(len(ops)), **fill))
    return " ".join(parts)


def solve(start: int, ops: list[Op]) -> tuple[int, str]:
    """The answer and a reference chain, one line per operation, ending in a boxed answer."""
    v = start
    lines = [f"We start with {start}."]
    for i, op in enumerate(ops, 1):
        nv = op.apply(v)
        lines.append(f"Step {i}: {v} {op.symbol} {op.k} = {nv}.")
        v = nv
    lines.append(f"The answer is \\boxed{{{v}}}.")
    return v, "\n".join(lines)


def _parse_depths(text: str) -> list[int]:
    """`A-B` or `N` as the list of depths, or one line saying what depth= takes."""
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-", 1))
        else:
            lo = hi = int(text)
    except ValueError as e:
        raise HarnessError(f"chains: depth '{text}' is not N or A-B (e.g. depth=1-12)") from e
    if not MIN_DEPTH <= lo <= hi <= MAX_DEPTH:
        raise HarnessError(
            f"chains: depth '{text}' is outside {MIN_DEPTH}-{MAX_DEPTH} (write e.g. depth=2-6)"
        )
    return list(range(lo, hi + 1))


def _parse_families(text: str) -> list[Family]:
    """`shop+bank` as those families, or one line naming the unknown ones."""
    names = text.split("+")
    unknown = [n for n in names if n not in FAMILIES and n not in HELD_OUT]
    if unknown:
        hint = suggest(unknown[0], list(FAMILIES)) or suggest(unknown[0], list(HELD_OUT))
        raise HarnessError(
            f"chains: unknown family {', '.join(unknown)}{hint}; "
            f"known: {', '.join(FAMILIES)} (held out, by name only: {', '.join(HELD_OUT)})"
        )
    return [family_named(n) for n in names]


@dataclass(frozen=True)
class ChainsOptions:
    """What `chains:...` takes; depth and family are text checked by the task (a range and a
    `+` list do not fit one scalar)."""

    depth: str = option(
        f"{MIN_DEPTH}-{MAX_DEPTH}",
        f"chain depths: one number or a range A-B within {MIN_DEPTH}-{MAX_DEPTH}",
    )
    family: str = option(
        "+".join(FAMILIES),
        f"surface families joined by '+': any of {', '.join(FAMILIES)}, or a held-out one "
        f"named explicitly ({', '.join(HELD_OUT)}; never in the default)",
    )
    n: int = option(2, "problems per depth and family", low=1)
    seed: int = option(0, "generator seed: the same seed gives the same problems", low=0)


class Chains(Task):
    name = "chains"
    description = (
        "synthetic multi-step arithmetic, depth 1-12 x 5 surface families (capacity vs mismatch)"
    )
    kind = "math"
    options_type = ChainsOptions
    opts: ChainsOptions

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        self.depths = _parse_depths(self.opts.depth)
        self.families = _parse_families(self.opts.family)
        self.per_cell = self.opts.n
        self.seed = self.opts.seed

    def origin(self, source: DataSource) -> str:
        return "generated"

    def available(self, source: DataSource) -> bool:
        return True

    def size(self, source: DataSource) -> int | None:
        return len(self.depths) * len(self.families) * self.per_cell

    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        """Problems ordered so that any prefix mixes depths and families (for --limit)."""
        problems: list[Problem] = []
        n_d, n_f = len(self.depths), len(self.families)
        for index in range(self.per_cell):
            for j in range(n_d * n_f):
                depth = self.depths[j % n_d]
                family = self.families[(j // n_d + j % n_d) % n_f]
                problems.append(self.make(depth, family.name, index))
        return Loaded(problems[:limit], f"generated (seed {self.seed})")

    def make(self, depth: int, family: str, index: int) -> Problem:
        chain_rng = random.Random(f"chains/{self.seed}/{depth}/{index}")
        start, ops = make_chain(chain_rng, depth)
        surface_rng = random.Random(f"chains/{self.seed}/{depth}/{index}/{family}")
        answer, reference = solve(start, ops)
        return Problem(
            id=f"chains-s{self.seed}-d{depth}-{family}-{index}",
            task=self.name,
            question=tell(family_named(family), start, ops, surface_rng),
            answer=str(answer),
            reference=reference,
            subset=family,
            meta={
                "depth": depth,
                "family": family,
                "start": start,
                "ops": [[op.kind, op.k] for op in ops],
                "chain_id": f"s{self.seed}-d{depth}-{index}",
            },
        )

    def extract(self, text: str) -> Extraction | None:
        return extract_final_answer(text, kind="number", accept=is_number)

    def grade(self, answer: str, problem: Problem) -> bool:
        return numbers_equal(answer, problem.answer)

    def same_answer(self, a: str, b: str) -> bool:
        return numbers_equal(a, b)

    def steps(self, problem: Problem) -> int | None:
        return int(problem.meta["depth"])
