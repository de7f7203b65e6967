"""`distractor`: one topical but irrelevant sentence with new numbers, inserted among the
premises (the "no-op" clause of GSM-IC and GSM-Symbolic); the answer is unchanged.

Topical: the sentence reuses the problem's own vocabulary (an object it counts, its money, a
unit it measures in, the kind of people it talks about) but is about a new person who lives
elsewhere, at another time, so it cannot bear on the asked quantity. Its numbers are none of
the problem's (digits or words, question or solution). It is never put where it could be
misread: not before a sentence that leans on the one before it (a pronoun, "the rest", "3 more",
an elliptic count), not with a person of a gender whose pronoun comes later, and not about a
thing a later sentence refers back to ("the apples"). Competition problems (MATH, AIME) get one
only when they are word problems: no diagram or table, mostly prose, and some person, object or
unit to be topical about.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from harness.perturb import lexicon as lx
from harness.perturb.base import Context, Perturbation, Skip, derive
from harness.perturb.rename import (
    CHAIN_FILLERS,
    MATH_TASKS,
    OBJECT_FORMS,
    OBJECT_WORDS,
    in_spans,
    protected_spans,
    words_in,
)
from harness.types import Problem

_ABBREVIATIONS = frozenset(
    lx.split_words(
        "Mr Mrs Ms Dr St Jr Sr Prof Mt Ft vs etc No Co Inc Ltd approx Ave Gov Gen Sgt Capt"
    )
)
_IMPERATIVE = re.compile(
    r"^(?:what|how|which|who|whom|whose|when|where|why|find|compute|calculate|determine|"
    r"evaluate|express|give|enter|simplify|solve|write|list|estimate|convert|identify)\b",
    re.I,
)
_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+")
_TOTAL = re.compile(
    r"\b(?:total|totally|altogether|in all|combined|together|overall|sum|all of|everyone|"
    r"everybody|each of|both)\b",
    re.I,
)
_OWNER_PRONOUN = re.compile(
    r"\b(?:he|she|his|her|him|they|their|them|i|you|we|my|your|our|us|me)\b", re.I
)
_OWNER_NAME = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]+")


def _has_owner(question: str) -> bool:
    """Whether the question says whose quantity it asks for (a pronoun or a name)."""
    return bool(_OWNER_PRONOUN.search(question) or _OWNER_NAME.search(question))


_FOLLOW = r"\s*(?:[.;:?!)]|$|\b(?:for|to|of|in|on|at|with|from|by|each|apiece)\b)"
_ELLIPTIC = re.compile(
    r"(?<![$\w.,:])(?:\d+(?:\.\d+)?|"
    + "|".join(
        w for w in lx.NUMBER_WORDS if w not in ("second", "score", "first", "pair", "couple")
    )
    + r")(?!\w|[.,:]\d)(?:"
    + _FOLLOW
    + r"|\s+(?:are|is|were|was|remain)\b)"
    + r"|\b(?:more|fewer|less|many|much|few|several|extra|others|rest)\b"
    + _FOLLOW,
    re.I,
)
"""A count without its noun ("three for breakfast", "2 more to the red house", "two were
red"): it would borrow the noun of a sentence put before it."""
_REFERS_BACK = re.compile(
    r"\b(?:above|below|following|preceding|previous|aforementioned|listed|mentioned|"
    r"these numbers|those numbers|the numbers|the given|the same|such)\b",
    re.I,
)
_LETTERS = "abcdefghjkmnpqrstuvwxyz"
_FIGURE = re.compile(
    r"\b(?:figure|diagram|shown|pictured|drawn|below|above|example|table|graph|chart)\b", re.I
)


@dataclass(frozen=True)
class Template:
    """One way to say an irrelevant thing about a dimension the problem uses."""

    key: str
    kind: str
    """object | money | time | distance | weight | volume | people | age | transport | garden
    | symbolic."""
    text: str
    low: int
    high: int
    units: tuple[str, ...] = ()
    """Plural units this template reads right with (time, distance, weight, volume)."""
    person: bool = True
    introduces: tuple[str, ...] = ()
    """Nouns the sentence brings in: no later sentence may point back at one of them."""
    second: tuple[int, int] | None = None
    """Range of a second number `{m}`, if the template has one."""
    things: str = "goods"
    """For object templates: which objects read right in it (`goods` or `animals`)."""
    captures: frozenset[str] = frozenset({"it", "they"})
    """Pronouns of the next sentence the new sentence could take over: `it` (it brings in a
    singular thing) and `they` (plural things or a group)."""


def _t(
    key: str,
    kind: str,
    text: str,
    low: int,
    high: int,
    *,
    units: str = "",
    person: bool = True,
    introduces: str = "",
    second: tuple[int, int] | None = None,
    captures: str = "it they",
    things: str = "goods",
) -> Template:
    return Template(
        key,
        kind,
        text,
        low,
        high,
        units=tuple(units.split()),
        person=person,
        introduces=tuple(introduces.split()),
        second=second,
        things=things,
        captures=frozenset(captures.split()),
    )


_UNIT_RANGES = {
    "seconds": (5, 55),
    "minutes": (4, 55),
    "hours": (2, 11),
    "days": (2, 25),
    "weeks": (2, 12),
    "months": (2, 11),
}
"""Plausible amounts of each unit of time (a template's own range applies otherwise)."""
_TIME = "minutes hours"
_LONG = "miles kilometers kilometres"
TEMPLATES: tuple[Template, ...] = (
    _t(
        "obj-bought",
        "object",
        "{name}, who lives {where}, bought {n} {things} {when}.",
        3,
        60,
        captures="they",
    ),
    _t(
        "obj-has",
        "object",
        "{name}, who lives {where}, has {n} {things}.",
        3,
        40,
        captures="they",
    ),
    _t(
        "obj-fair",
        "object",
        "{When}, {name} saw {n} {things} at a fair {where}.",
        4,
        90,
        introduces="fair",
    ),
    _t(
        "obj-counted",
        "object",
        "{name} once counted {n} {things} at a market {where}.",
        5,
        80,
        introduces="market",
    ),
    _t(
        "obj-gave",
        "object",
        "{When}, {name} gave away {n} {things} at a school fair {where}.",
        3,
        40,
        introduces="fair school",
    ),
    _t(
        "obj-paid",
        "object",
        "{When}, {name} paid {cur}{m} for {n} {things} at a shop {where}.",
        3,
        30,
        introduces="shop",
        second=(4, 95),
    ),
    _t(
        "obj-park",
        "object",
        "{When}, {name} saw {n} {things} at a wildlife park {where}.",
        3,
        40,
        introduces="park",
        things="animals",
    ),
    _t(
        "obj-photo",
        "object",
        "{name} once photographed {n} {things} on a trip {where}.",
        3,
        30,
        introduces="trip",
        things="animals",
        captures="they",
    ),
    _t(
        "weight-tea",
        "weight",
        "{When}, {name} bought {n} {unit} of tea leaves at a market {where}.",
        40,
        900,
        units="grams",
        introduces="tea market",
        captures="it",
    ),
    _t(
        "weight-cheese",
        "weight",
        "{name}, who lives {where}, bought {n} {unit} of cheese {when}.",
        3,
        40,
        units="ounces",
        introduces="cheese",
        captures="it",
    ),
    _t(
        "obj-shop",
        "object",
        "{When}, a shop {where} sold {n} {things} in a single day.",
        12,
        300,
        person=False,
        introduces="shop day",
    ),
    _t(
        "obj-market",
        "object",
        "A market {where} had {n} {things} for sale {when}.",
        10,
        200,
        person=False,
        introduces="market",
    ),
    _t(
        "money-earned",
        "money",
        "{name}, who lives {where}, earned {cur}{n} {when}.",
        12,
        95,
        captures="it",
    ),
    _t(
        "money-lamp",
        "money",
        "{name}, who lives {where}, spent {cur}{n} on a new lamp {when}.",
        12,
        95,
        introduces="lamp",
        captures="it",
    ),
    _t(
        "money-coat",
        "money",
        "{When}, {name} found {cur}{n} in the pocket of an old raincoat.",
        3,
        60,
        introduces="pocket raincoat",
        captures="it",
    ),
    _t(
        "money-lemonade",
        "money",
        "{name} earned {cur}{n} selling lemonade {where} {when}.",
        6,
        80,
        introduces="lemonade",
        captures="it",
    ),
    _t(
        "money-bicycle",
        "money",
        "{When}, {name} paid {cur}{n} for a bicycle and {cur}{m} for a helmet.",
        60,
        400,
        introduces="bicycle helmet",
        second=(15, 55),
        captures="it they",
    ),
    _t(
        "money-bakery",
        "money",
        "{When}, a bakery {where} earned {cur}{n} in a single morning.",
        90,
        900,
        person=False,
        introduces="bakery morning",
        captures="it",
    ),
    _t(
        "time-library",
        "time",
        "{When}, {name} spent {n} {unit} at a library {where}.",
        2,
        50,
        units=_TIME,
        introduces="library",
        captures="it",
    ),
    _t(
        "time-train",
        "time",
        "{name}, who lives {where}, waited {n} {unit} for a train {when}.",
        3,
        55,
        units="minutes hours",
        introduces="train",
        captures="it",
    ),
    _t(
        "time-relatives",
        "time",
        "{When}, {name} stayed {n} {unit} with relatives {where}.",
        2,
        20,
        units="days weeks months",
        introduces="relatives",
        captures="they",
    ),
    _t(
        "time-late",
        "time",
        "{When}, a train {where} arrived {n} {unit} late.",
        3,
        50,
        units="minutes hours",
        person=False,
        introduces="train",
        captures="it",
    ),
    _t(
        "distance-drove",
        "distance",
        "{When}, {name} drove {n} {unit} to visit a friend {where}.",
        12,
        400,
        units=_LONG,
        introduces="friend drive trip",
        captures="it",
    ),
    _t(
        "distance-walk",
        "distance",
        "{name}, who lives {where}, walked {n} {unit} in a charity walk {when}.",
        3,
        30,
        units=_LONG,
        introduces="walk",
        captures="it",
    ),
    _t(
        "distance-swam",
        "distance",
        "{name}, who lives {where}, swam {n} {unit} in a lake {when}.",
        60,
        900,
        units="meters metres yards feet",
        introduces="lake swim",
        captures="it",
    ),
    _t(
        "distance-tall",
        "distance",
        "{When}, {name} grew a sunflower {n} {unit} tall {where}.",
        20,
        90,
        units="inches centimeters",
        introduces="sunflower",
        captures="it",
    ),
    _t(
        "distance-road",
        "distance",
        "A road {where} is {n} {unit} long.",
        15,
        600,
        units=_LONG,
        person=False,
        introduces="road",
        captures="it",
    ),
    _t(
        "weight-flour",
        "weight",
        "{When}, {name} carried a sack of flour that weighed {n} {unit}.",
        5,
        50,
        units="pounds kilograms",
        introduces="sack flour",
        captures="it",
    ),
    _t(
        "weight-pumpkin",
        "weight",
        "{When}, a pumpkin at a fair {where} weighed {n} {unit}.",
        40,
        900,
        units="pounds kilograms",
        person=False,
        introduces="pumpkin fair",
        captures="it",
    ),
    _t(
        "volume-hike",
        "volume",
        "{When}, {name} drank {n} {unit} of water on a long hike {where}.",
        2,
        9,
        units="liters litres quarts",
        introduces="water hike",
        captures="it",
    ),
    _t(
        "volume-pool",
        "volume",
        "A swimming pool {where} holds {n} {unit} of water.",
        2000,
        90000,
        units="gallons liters litres",
        person=False,
        introduces="pool water",
        captures="it",
    ),
    _t(
        "people-concert",
        "people",
        "{When}, {n} other {people} attended a concert {where}.",
        40,
        900,
        person=False,
        introduces="concert",
    ),
    _t(
        "people-museum",
        "people",
        "{When}, a bus {where} took {n} other {people} to a museum.",
        12,
        60,
        person=False,
        introduces="bus museum",
    ),
    _t("age-turned", "age", "{name}, who lives {where}, turned {n} {when}.", 21, 89, captures=""),
    _t(
        "transport-taxi",
        "transport",
        "{name} waited {n} minutes for a taxi {where} {when}.",
        4,
        50,
        introduces="taxi",
        captures="it",
    ),
    _t(
        "transport-cars",
        "transport",
        "{When}, {name} counted {n} cars in a parking lot {where}.",
        15,
        200,
        introduces="cars parking",
    ),
    _t(
        "garden-pots",
        "garden",
        "{name}, who lives {where}, keeps {n} flower pots on a balcony.",
        4,
        40,
        introduces="pots balcony",
    ),
    _t(
        "garden-soil",
        "garden",
        "{When}, {name} bought a bag of soil for {cur}{n} {where}.",
        4,
        30,
        introduces="bag soil",
        captures="it",
    ),
    _t("symbolic-const", "symbolic", "Let {var} = {n}.", 3, 99, person=False, captures=""),
    _t("symbolic-prev", "symbolic", "Let {var} = {prev} + {n}.", 3, 99, person=False, captures=""),
    _t(
        "symbolic-product",
        "symbolic",
        "Let {var} = {n} * {m}.",
        2,
        19,
        person=False,
        second=(2, 19),
        captures="",
    ),
)
"""Written for this project (after the idea of GSM-IC's irrelevant context, not its text)."""

_CHAIN_KINDS: dict[str, tuple[str, ...]] = {
    "shop": ("object",),
    "bank": ("money",),
    "bus": ("transport",),
    "garden": ("garden", "object"),
    "symbolic": ("symbolic",),
}
"""Which kinds of sentence each chains family takes (its fillers give the objects)."""


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def split_sentences(text: str, spans: list[tuple[int, int]]) -> list[Span]:
    """Sentences as character spans: a stop (outside LaTeX, or closing a formula) followed by
    space and a capital, digit, formula or quote; titles and initials are not stops."""
    out: list[Span] = []
    start = len(text) - len(text.lstrip())
    n = len(text)
    for m in re.finditer(r"[.!?]", text):
        p = m.start()
        q = p + 1
        if in_spans(p, spans):
            span = next(s for s in spans if s[0] <= p < s[1])
            if text[q : span[1]] not in ("$", "$$", "\\)", "\\]"):
                continue
            q = span[1]
        while q < n and text[q] in "\"'”’)":
            q += 1
        if q >= n or not text[q].isspace():
            continue
        r = q
        while r < n and text[r].isspace():
            r += 1
        if r >= n:
            continue
        if not (text[r].isupper() or text[r].isdigit() or text[r] in "$\\\"'“‘("):
            continue
        if text[p] == ".":
            word = re.search(r"([A-Za-z]+)$", text[:p])
            if word and (
                word.group(1) in _ABBREVIATIONS
                or (len(word.group(1)) == 1 and word.group(1).isupper())
                or text[max(0, p - 3) : p + 1] in ("e.g.", "i.e.")
            ):
                continue
        if q > start:
            out.append(Span(start, q))
        start = r
    if start < n and text[start:].strip():
        out.append(Span(start, n - (len(text) - len(text.rstrip()))))
    return out


def _value(token: str) -> Fraction | None:
    try:
        return Fraction(token.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def taken_numbers(*texts: str) -> set[Fraction]:
    """Every number of the texts, written in digits or words: a distractor uses none of them."""
    out: set[Fraction] = set()
    for text in texts:
        for tok in _NUMBER.findall(text):
            v = _value(tok)
            if v is not None:
                out.add(v)
        for word in re.findall(r"[a-z]+", text.lower()):
            if word in lx.NUMBER_WORDS:
                out.add(Fraction(lx.NUMBER_WORDS[word]).limit_denominator(100))
    return out


def _question_index(text: str, sents: list[Span], math: bool) -> int | None:
    """The sentence that asks: the last one ending in '?', else (word problems) the last
    sentence, or (competition problems) the last one that starts like a question."""
    for i in range(len(sents) - 1, -1, -1):
        if "?" in text[sents[i].start : sents[i].end][-4:]:
            return i
    if not math:
        return len(sents) - 1
    for i in range(len(sents) - 1, -1, -1):
        if _IMPERATIVE.match(text[sents[i].start : sents[i].end]):
            return i
    return None


def _starts_leaning(sentence: str) -> bool:
    head = sentence.lstrip("\"'“‘( ")
    if not head[:1].isalpha() or head[:1].islower():
        return True  # "5 of them ...", "$x$ is ...", a lowercase continuation
    low = head.lower()
    return any(
        low.startswith(c) and not low[len(c) : len(c) + 1].isalpha() for c in lx.CONTINUATIONS
    )


def _leans_back(sentence: str) -> bool:
    """Whether a sentence needs the one before it: it starts by continuing it, has an
    elliptic count ("three for breakfast", "5 more"), "the rest", "the above"."""
    if _starts_leaning(sentence):
        return True
    return bool(_ELLIPTIC.search(sentence) or _REFERS_BACK.search(sentence))


_PRONOUN_CLASS = {
    "it": frozenset(lx.split_words("it its itself")),
    "they": frozenset(lx.split_words("they them their theirs themselves these those")),
}


def _pronouns(sentence: str) -> set[str]:
    """Which thing-pronoun classes (`it`, `they`) a sentence uses."""
    words = set(re.findall(r"[a-z]+", sentence.lower()))
    return {c for c, ps in _PRONOUN_CLASS.items() if ps & words}


def _in_quotes(text: str, pos: int) -> bool:
    """Whether `pos` is inside quoted speech (an odd number of straight quotes before it, or
    more opening than closing curly ones)."""
    head = text[:pos]
    return head.count('"') % 2 == 1 or head.count("“") > head.count("”")


_DETERMINED = re.compile(
    r"\b(?:the|these|those|this|that|remaining|other|each|every|all|both|such)\s+"
    r"((?:[\w-]+\s+){0,2}[\w-]+)",
    re.I,
)


def referred(text: str) -> frozenset[str]:
    """Words a text names with a determiner ('the apples', 'those 3 boxes'): things it
    points back at."""
    return frozenset(w.lower() for m in _DETERMINED.finditer(text) for w in m.group(1).split())


def _refers_to(points: frozenset[str], nouns: tuple[str, ...]) -> bool:
    return any(noun.split()[-1].lower() in points for noun in nouns)


@dataclass(frozen=True)
class Vocabulary:
    """What a problem talks about, for topical sentences."""

    objects: tuple[tuple[str, str, str], ...]
    money: bool
    units: dict[str, tuple[str, ...]]
    people: tuple[str, ...]
    persons: bool
    """A person is named, or ages come up: a new person's age is then on topic."""


def _prose(text: str, spans: list[tuple[int, int]]) -> str:
    out, last = [], 0
    for s, e in spans:
        out.append(text[last:s])
        out.append(" ")
        last = e
    out.append(text[last:])
    return "".join(out)


def vocabulary(text: str, math: bool) -> Vocabulary:
    """The objects, money, units and people the prose of a problem talks about."""
    spans = protected_spans(text, math)
    prose = _prose(text, spans)
    low = prose.lower()
    words = words_in(text)
    objects = tuple(
        entry
        for entry in dict.fromkeys(
            OBJECT_FORMS[m.group().lower()]
            for m in OBJECT_WORDS.finditer(prose)
            if m.group().islower()
        )
        if entry[0] not in lx.CONTAINER_GROUPS
        and not any(c in words for c in lx.CONFLICTS.get(entry[1], ()))
    )
    present = set(re.findall(r"[a-z]+", low))
    extra = tuple(
        (group, sg, pl)
        for group, pairs in lx.EXTRA_THINGS.items()
        for sg, pl in pairs
        if (sg in present or pl in present) and (sg, pl) not in {(e[1], e[2]) for e in objects}
    )
    objects += extra
    money = ("\\$" if math else "$") in text or bool(
        present & {"dollar", "dollars", "cents", "money"}
    )
    units: dict[str, tuple[str, ...]] = {}
    for dim, pairs in lx.UNITS.items():
        found = tuple(pl for sg, pl in pairs if sg in present or pl in present)
        if found:
            units[dim] = found
    people = tuple(p for p in lx.PEOPLE_NOUNS if p in present)
    persons = any(w in lx.GENDER for w in re.findall(r"\b[A-Z][a-z]+\b", prose)) or bool(
        present & {"age", "ages", "old", "older", "younger", "birthday"}
    )
    return Vocabulary(objects, money, units, people, persons)


def _asked(question: str) -> str | None:
    """The dimension the question sentence asks for, when it says so."""
    q = question.lower()
    if re.search(
        r"how much money|how many dollars|how much (?:did|does|do|will|would)\b.*\b"
        r"(?:cost|spend|earn|pay|make|save|charge)|\$",
        q,
    ):
        return "money"
    if re.search(r"how long|how many (?:minutes|hours|days|weeks|months|seconds)", q):
        return "time"
    if re.search(r"how far|how many (?:miles|kilometers|kilometres|meters|metres|feet|yards)", q):
        return "distance"
    if re.search(r"how old|\bage\b", q):
        return "age"
    if re.search(r"how many (?:" + "|".join(lx.PEOPLE_NOUNS) + r")\b", q):
        return "people"
    if re.search(r"how many (?:pounds|kilograms|grams|ounces|tons)", q):
        return "weight"
    if re.search(r"how many (?:liters|litres|gallons|quarts|milliliters)", q):
        return "volume"
    return None


@dataclass(frozen=True)
class Slot:
    """One way to fill a template: its noun (things/unit/people) and the words it adds."""

    template: Template
    fill: dict[str, str]
    nouns: tuple[str, ...]


def _slots(
    vocab: Vocabulary,
    kinds: tuple[str, ...],
    words: frozenset[str],
    q: str,
    chain_things: tuple[str, ...] = (),
) -> list[Slot]:
    """Every (template, noun) pairing the problem's vocabulary makes topical."""
    out: list[Slot] = []
    qlow = q.lower()
    owner = _has_owner(q)
    total = _TOTAL.search(q) is not None
    for t in TEMPLATES:
        if t.kind not in kinds:
            continue
        if t.kind == "object":
            things: list[str] = list(chain_things) if t.things != "animals" else []
            for group, sg, pl in vocab.objects:
                animal = group in lx.ANIMAL_GROUPS or group == "extra animals"
                if t.things != "any" and animal != (t.things == "animals"):
                    continue
                if not re.search(rf"\b(?:{sg}|{pl})\b", qlow) or (owner and not total):
                    things.append(pl)
                for msg, mpl in lx.OBJECT_GROUPS.get(group, ()):
                    if (msg, mpl) != (sg, pl) and not (words_in(f"{msg} {mpl}") & words):
                        things.append(mpl)
            for thing in dict.fromkeys(things):
                out.append(Slot(t, {"things": thing}, (thing, *t.introduces)))
        elif t.kind in lx.UNITS:
            for unit in vocab.units.get(t.kind, ()):
                if unit in t.units:
                    out.append(Slot(t, {"unit": unit}, t.introduces))
        elif t.kind == "people":
            for p in vocab.people:
                out.append(Slot(t, {"people": p}, (p, *t.introduces)))
        else:
            out.append(Slot(t, {}, t.introduces))
    return out


def _kinds(vocab: Vocabulary, asked: str | None, owner: bool) -> tuple[str, ...]:
    kinds: list[str] = []
    if vocab.objects:
        kinds.append("object")
    if vocab.money:
        kinds.append("money")
    kinds.extend(vocab.units)
    if vocab.people:
        kinds.append("people")
    if vocab.persons:
        kinds.append("age")
    if not owner and asked in kinds:
        kinds.remove(asked)
    return tuple(kinds)


def _number(rng: random.Random, low: int, high: int, taken: set[Fraction]) -> int | None:
    """A whole number in [low, high] that is none of `taken`."""
    for _ in range(64):
        v = rng.randint(low, high)
        if Fraction(v) not in taken:
            return v
    free = [v for v in range(low, high + 1) if Fraction(v) not in taken]
    return rng.choice(free) if free else None


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


class Distractor(Perturbation):
    name = "distractor"
    description = (
        "a topical but irrelevant sentence with new numbers inserted among the premises "
        "(GSM-IC / GSM-Symbolic no-op); answer kept"
    )
    tasks = ("gsm8k", "chains", *MATH_TASKS)
    preserves_answer = True

    def apply(self, problem: Problem, rng: random.Random, ctx: Context) -> Problem | Skip:
        math = ctx.task in MATH_TASKS
        text = problem.question
        spans = protected_spans(text, math)
        if math:
            if "[asy]" in text or "\\begin{" in text:
                return Skip("has a diagram, table or display environment")
            prose = _prose(text, spans)
            if len(re.sub(r"\s", "", prose)) < 0.6 * len(re.sub(r"\s", "", text)):
                return Skip("mostly LaTeX, not a word problem")
        sents = split_sentences(text, spans)
        if len(sents) < 2:
            return Skip("no premise sentence before the question")
        qi = _question_index(text, sents, math)
        if qi is None:
            return Skip("no question sentence found")
        if qi == 0:
            return Skip("no premise sentence before the question")
        if math and re.search(r"(?:^|[.?!]\s+)Let\b", text):
            return Skip("defines its own symbols ('Let ...'): not a word problem")
        if math and _FIGURE.search(text):
            return Skip("refers to a figure or an example")
        if math and re.search('["“”]', text):
            return Skip("has quoted speech")
        question = text[sents[qi].start : sents[qi].end]
        words = words_in(f"{text}\n{problem.reference or ''}")
        family = str(problem.meta.get("family")) if ctx.task == "chains" else ""
        vocab = vocabulary(text, math)
        owner = _has_owner(question)
        chain_things: tuple[str, ...] = ()
        if family in _CHAIN_KINDS:
            kinds = _CHAIN_KINDS[family]
            chain_things = tuple(
                v
                for v in CHAIN_FILLERS["item" if family == "shop" else "plant"]
                if v not in text and not (set(v.split()) & words)
            )
            vocab = Vocabulary((), True, {}, (), True)
        else:
            kinds = _kinds(vocab, _asked(question), owner)
        if not kinds:
            return Skip("no person, object or unit in the problem to make a topical sentence from")
        slots = _slots(vocab, kinds, words, question, chain_things)
        choices: list[tuple[int, Slot, str | None]] = []
        # Competition problems get the sentence just before the question, nowhere else.
        for b in range(qi if math else 1, qi + 1):
            if _in_quotes(text, sents[b].start):
                continue
            nxt = text[sents[b].start : sents[b].end]
            after = text[sents[b].start :]
            if family != "symbolic" and _leans_back(nxt):
                continue
            after_words = set(re.findall(r"[a-z]+", after.lower()))
            genders = [g for g, ps in lx.PRONOUNS.items() if not (ps & after_words)]
            pronouns = _pronouns(nxt)
            points = referred(after)
            for slot in slots:
                if pronouns & slot.template.captures or _refers_to(points, slot.nouns):
                    continue
                if slot.template.person:
                    choices.extend((b, slot, g) for g in genders)
                else:
                    choices.append((b, slot, None))
        if not choices:
            return Skip("no premise boundary where a new sentence cannot be misread")
        topical = [c for c in choices if c[1].template.kind != "age"]
        choices = topical or choices  # a new person's age only when nothing closer fits
        b, slot, gender = rng.choice(choices)
        taken = taken_numbers(text, problem.reference or "", problem.answer)
        t = slot.template
        low, high = _UNIT_RANGES.get(slot.fill.get("unit", ""), (t.low, t.high))
        n = _number(rng, low, high, taken)
        m = _number(rng, *t.second, taken | {Fraction(n)}) if t.second and n is not None else None
        if n is None or (t.second and m is None):
            return Skip("no new number left in the template's range")
        fill: dict[str, Any] = dict(slot.fill)
        fill.update(
            n=n,
            m=m,
            when=rng.choice(lx.TIMES),
            where=rng.choice(lx.ELSEWHERE),
            cur="\\$" if math else "$",
        )
        fill["When"] = _cap(fill["when"])
        if gender is not None:
            pool = [p for p in lx.new_name_pool(gender) if p.lower() not in words]
            if not pool:
                return Skip("no new name left for the sentence's person")
            fill["name"] = rng.choice(pool)
        if t.kind == "symbolic":
            defined = re.findall(r"\bLet ([a-z]) =", text[: sents[b].start])
            used = set(re.findall(r"(?<![\w\\])[a-z](?!\w)", text))
            free = [c for c in _LETTERS if c not in used]
            if not defined or not free:
                return Skip("symbolic chain without a free variable name")
            fill.update(var=rng.choice(free), prev=rng.choice(defined))
        sentence = _cap(t.text.format(**fill))
        sentence = re.sub(r"\s+", " ", sentence).replace(" .", ".")
        gap = text[sents[b - 1].end : sents[b].start] or " "
        start = sents[b].start
        new_text = text[:start] + sentence + gap + text[start:]
        numbers = [n] + ([m] if m is not None else [])
        params: dict[str, Any] = {
            "sentence": sentence,
            "position": b,  # how many of the problem's sentences come before it
            "template": t.key,
            "numbers": numbers,
        }
        return derive(problem, self.name, params, question=new_text)


__all__ = ["TEMPLATES", "Distractor", "Template", "split_sentences", "taken_numbers", "vocabulary"]
