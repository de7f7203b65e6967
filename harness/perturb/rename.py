"""`rename`: people, countable objects, cities and counting units swapped for others of their
kind, consistently in the question and the worked solution, so the answer stays the same.

A name is a capitalised known first name (`lexicon`), replaced by an unused name of the same
gender (pronouns stay right; a unisex name by a unisex one). An object is swapped only inside
its narrow group (apple -> pear, duck -> goose), singular and plural together, and never where
its other sense is likely (a title, a place, a theorem, the answer itself, inside LaTeX).
Chains problems swap their family's filler (item, plant, name), the bus family's vehicle, or
the symbolic family's variable letters.
"""

from __future__ import annotations

import random
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from harness.perturb import lexicon as lx
from harness.perturb.base import Context, Perturbation, Skip, derive
from harness.tasks.chains import FAMILIES
from harness.types import Problem

MATH_TASKS = ("math", "math500", "aime", "aime24", "aime25")
"""Tasks whose text is LaTeX: `$...$` is mathematics there (in GSM8K it is money)."""

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD_BEFORE = r"(?<![\w\\])"
_WORD_AFTER = r"(?!\w)"
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n])[\s\"'“‘(\[]*$")
_AFTER_STOP = re.compile(r"[.!?:;\n][\s\"'“‘(\[]*$")
_VERBS_AFTER = frozenset(
    lx.split_words(
        """
        has had is was wants wanted buys bought makes made goes went gets got takes took gives
        gave runs ran sees saw finds found eats ate can could will would needs needed sells
        sold earns earned spends spent decides decided works worked walks walked reads read
        plants planted bakes baked pays paid uses used and likes liked owns owned collects
        collected saves saved drives drove lives lived starts started
        """
    )
)
_PLACE_PREPOSITIONS = re.compile(
    r"\b(?:in|to|from|at|near|visit|visits|visited|visiting|of|toward|towards|across|around)"
    r"\s+$",
    re.I,
)
_VERB_BEFORE = re.compile(
    r"\b(?:he|she|it|they|who|i|we|you|to|will|can|could|would|must|not|also)\s+$", re.I
)
"""An object word right after one of these is a verb (she ducks, to box): never renamed."""
_FORMULA_AFTER = re.compile(
    r"^['’]s\s+(?:theorem|formula|law|triangle|identity|inequality|lemma|conjecture|"
    r"principle|constant|algorithm|paradox)\b"
    r"|^\s+(?:numbers?|sequence|primes?|theorem|formula|polynomials?|series|triangle)\b",
    re.I,
)


def protected_spans(text: str, math: bool) -> list[tuple[int, int]]:
    """Where words are not prose: LaTeX math (`$..$`, `$$..$$`, `\\(..\\)`, `\\[..\\]`,
    environments) and Asymptote diagrams. Empty unless the task writes LaTeX."""
    if not math:
        return []
    spans: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("[asy]", i):
            j = text.find("[/asy]", i)
            end = n if j < 0 else j + 6
        elif text.startswith("\\begin{", i):
            m = re.match(r"\\begin\{([^}]*)\}", text[i:])
            name = m.group(1) if m else ""
            j = text.find(f"\\end{{{name}}}", i)
            end = n if j < 0 else j + len(name) + 6
        elif text.startswith("\\$", i):
            i += 2
            continue
        elif text.startswith("$$", i):
            j = text.find("$$", i + 2)
            end = n if j < 0 else j + 2
        elif text[i] == "$":
            j = i + 1
            while j < n and (text[j] != "$" or text[j - 1] == "\\"):
                j += 1
            end = min(j + 1, n)
        elif text.startswith("\\(", i) or text.startswith("\\[", i):
            close = "\\)" if text[i + 1] == "(" else "\\]"
            j = text.find(close, i + 2)
            end = n if j < 0 else j + 2
        else:
            i += 1
            continue
        spans.append((i, end))
        i = end
    return spans


def in_spans(pos: int, spans: Sequence[tuple[int, int]]) -> bool:
    """Whether `pos` falls in one of the sorted, disjoint `spans`."""
    k = bisect_right(spans, (pos, len(spans) + 10**9)) - 1
    return k >= 0 and spans[k][0] <= pos < spans[k][1]


def numbers_in(text: str) -> list[str]:
    """The digit strings of a text, in order (what a surface rewrite must leave alone)."""
    return _NUMBER.findall(text)


def words_in(text: str) -> frozenset[str]:
    """Lowercased words of a text (to keep new names and objects from colliding)."""
    return frozenset(w.lower() for w in re.findall(r"[A-Za-z]+", text))


def at_sentence_start(text: str, pos: int) -> bool:
    """Whether `pos` starts a sentence (the text's start, or after a stop and spaces)."""
    if pos <= 40:
        return _SENTENCE_START.search(text[:pos]) is not None
    return _AFTER_STOP.search(text[pos - 40 : pos]) is not None


_TOKEN = re.compile(r"(?<![\w\\])[A-Za-z]+")


@dataclass(frozen=True)
class Match:
    """A found form, read like a `re.Match`."""

    at: int
    to: int
    text: str

    def start(self) -> int:
        return self.at

    def end(self) -> int:
        return self.to

    def group(self) -> str:
        return self.text


class WordTable:
    """Whole-word lookup of many forms at once (one- or several-word, e.g. `guinea pigs`,
    `New York`), by tokens rather than one huge alternation: the longest form wins."""

    def __init__(self, forms: Sequence[str], ignore_case: bool = False) -> None:
        self.ignore_case = ignore_case
        self.single: set[str] = set()
        self.multi: dict[str, list[str]] = {}
        for form in forms:
            key = form.lower() if ignore_case else form
            head = re.match(r"[A-Za-z]+", key)
            if head is None:
                continue
            if head.group() == key:
                self.single.add(key)
            else:
                self.multi.setdefault(head.group(), []).append(key)
        for heads in self.multi.values():
            heads.sort(key=len, reverse=True)

    def finditer(self, text: str) -> list[Match]:
        out: list[Match] = []
        pos = 0
        for m in _TOKEN.finditer(text):
            start = m.start()
            if start < pos:
                continue
            word = m.group().lower() if self.ignore_case else m.group()
            for form in self.multi.get(word, ()):
                end = start + len(form)
                got = text[start:end]
                if (got.lower() if self.ignore_case else got) == form and not _is_word_char(
                    text, end
                ):
                    out.append(Match(start, end, got))
                    pos = end
                    break
            else:
                if word in self.single and not _is_word_char(text, m.end()):
                    out.append(Match(start, m.end(), m.group()))
        return out


def _is_word_char(text: str, i: int) -> bool:
    return i < len(text) and (text[i].isalnum() or text[i] == "_")


NAME_WORDS = WordTable(sorted(lx.GENDER))
_TITLE_BEFORE = re.compile(
    r"\b(?:" + "|".join(sorted(lx.TITLES)) + r")\.?\s+$",
)
_SUFFIX_AFTER = re.compile(r"^\s+(?:" + "|".join(sorted(lx.NAME_SUFFIXES)) + r")\b")
_SURNAME_TITLE_BEFORE = re.compile(r"\b(?:" + "|".join(sorted(lx.SURNAME_TITLES)) + r")\.?\s+$")
_SURNAME_RE = re.compile(
    r"\b(?:" + "|".join(sorted(lx.SURNAME_TITLES)) + r")\.?\s+([A-Z][a-z]+)(?![\w-])"
)
OBJECT_FORMS = lx.object_forms()
OBJECT_WORDS = WordTable(sorted(OBJECT_FORMS), ignore_case=True)
_CITY_GROUP = {c: g for g, cs in lx.CITIES.items() for c in cs}
CITY_WORDS = WordTable(sorted(_CITY_GROUP))


@lru_cache(maxsize=8192)
def whole_word(word: str, flags: int = 0) -> re.Pattern[str]:
    """`word` as a whole word (not inside another word or a LaTeX command)."""
    return re.compile(_WORD_BEFORE + re.escape(word) + _WORD_AFTER, flags)


_GUARD_RE = re.compile(
    _WORD_BEFORE + "(?:" + "|".join(re.escape(g) for g in lx.GUARD_PHRASES) + ")", re.I
)
_NEXT_WORD = re.compile(r"\s*([\w'’]+)")


@dataclass(frozen=True)
class Texts:
    """The texts a rename reads and rewrites, with where their LaTeX is."""

    question: str
    reference: str
    answer: str
    math: bool

    @cached_property
    def each(self) -> tuple[tuple[str, list[tuple[int, int]]], ...]:
        return tuple((t, protected_spans(t, self.math)) for t in (self.question, self.reference))

    @cached_property
    def words(self) -> frozenset[str]:
        return words_in(f"{self.question}\n{self.reference}")


def find_names(texts: Texts) -> tuple[list[tuple[str, str]], list[str]]:
    """(name, gender) of the people in the question, in order of appearance, and the names
    found but left alone (a title, a place, a formula, LaTeX, the answer)."""
    seen = list(dict.fromkeys(m.group() for m in NAME_WORDS.finditer(texts.question)))
    ok = {n: whole_word(n).search(texts.answer) is None for n in seen}
    evidence = dict.fromkeys(seen, False)
    for text, spans in texts.each:
        for m in NAME_WORDS.finditer(text):
            name = m.group()
            if name not in ok:
                continue
            before = text[max(0, m.start() - 30) : m.start()]
            after = text[m.end() : m.end() + 40]
            if (
                in_spans(m.start(), spans)
                or _TITLE_BEFORE.search(before)
                or _SUFFIX_AFTER.match(after)
                or _FORMULA_AFTER.match(after)
                or (name in lx.PLACE_LIKE_NAMES and _PLACE_PREPOSITIONS.search(before))
            ):
                ok[name] = False
            nxt = _NEXT_WORD.match(after)
            if (
                not at_sentence_start(text, m.start())
                or after[:2] in ("'s", "’s")
                or (nxt is not None and nxt.group(1).lower() in _VERBS_AFTER)
            ):
                evidence[name] = True
    keep: list[tuple[str, str]] = []
    refused: list[str] = []
    for name in seen:
        if name in lx.COMMON_WORD_NAMES and not evidence[name]:
            continue  # an ordinary word that starts a sentence (Mark the date; Rose petals)
        if ok[name]:
            keep.append((name, lx.GENDER[name]))
        else:
            refused.append(name)
    return keep, refused


def find_surnames(texts: Texts) -> list[str]:
    """Words a title names a person by (Mr. Rogers, Miss Susan), where every use of the word
    has its title (so it is only ever that person's name)."""
    seen = list(dict.fromkeys(m.group(1) for m in _SURNAME_RE.finditer(texts.question)))
    keep = []
    for word in seen:
        pattern = whole_word(word)
        ok = pattern.search(texts.answer) is None
        for text, spans in texts.each:
            for m in pattern.finditer(text):
                before = text[max(0, m.start() - 30) : m.start()]
                if in_spans(m.start(), spans) or not _SURNAME_TITLE_BEFORE.search(before):
                    ok = False
        if ok:
            keep.append(word)
    return keep


def find_objects(texts: Texts) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(group, singular, plural) of the lexicon objects in the question, in order, and the
    ones found but left alone (another sense likely, LaTeX, the answer)."""
    found = list(
        dict.fromkeys(
            OBJECT_FORMS[m.group().lower()] for m in OBJECT_WORDS.finditer(texts.question)
        )
    )
    if not found:
        return [], []
    words = texts.words
    animals = any(g in lx.ANIMAL_GROUPS for g, _, _ in found)
    answer = texts.answer.lower()
    ok: dict[str, bool] = {}
    for _, sg, pl in found:
        conflicts = lx.CONFLICTS.get(sg, ())
        joined = {f.replace(" ", "") for f in (sg, pl) if " " in f}
        ok[sg] = not (
            any(c in words for c in conflicts)
            or bool(joined & words)  # "hot dogs" and "hotdog" in one text
            or ("animals" in conflicts and animals)
            or whole_word(sg).search(answer)
            or whole_word(pl).search(answer)
        )
    for text, spans in texts.each:
        guards = [(g.start(), g.end()) for g in _GUARD_RE.finditer(text)]
        for m in OBJECT_WORDS.finditer(text):
            word = m.group()
            _, sg, _ = OBJECT_FORMS[word.lower()]
            if sg not in ok:
                continue
            if word.lower() == sg and sg in lx.AMBIGUOUS_SINGULAR:
                ok[sg] = False
            cap_ok = word == word[0].upper() + word[1:].lower() and at_sentence_start(
                text, m.start()
            )
            if (
                (word != word.lower() and not cap_ok)  # a proper noun (Turkey, Apple)
                or _VERB_BEFORE.search(text[max(0, m.start() - 12) : m.start()])
                or (word[0].isupper() and word in lx.GENDER)
                or in_spans(m.start(), spans)
                or any(
                    gs <= m.start() and m.end() <= ge and ge - gs > m.end() - m.start()
                    for gs, ge in guards
                )
            ):
                ok[sg] = False
    keep = [e for e in found if ok[e[1]]]
    return keep, [pl for _, sg, pl in found if not ok[sg]]


def find_cities(texts: Texts) -> list[str]:
    """Cities of the question that can be swapped (not part of a longer proper noun)."""
    if any(c in texts.question.lower() for c in lx.CITY_CONFLICTS):
        return []
    seen = list(dict.fromkeys(m.group() for m in CITY_WORDS.finditer(texts.question)))
    keep = []
    for city in seen:
        ok = city not in texts.answer
        for text, spans in texts.each:
            for m in whole_word(city).finditer(text):
                before, after = text[max(0, m.start() - 30) : m.start()], text[m.end() :]
                cap = re.search(r"([A-Z][a-z]+)\s+$", before)
                if (
                    in_spans(m.start(), spans)
                    or (cap and not at_sentence_start(text, m.start() - len(before) + cap.start()))
                    or re.match(r"\s*(?:[A-Z]|,\s*[A-Z])", after)  # New York City; Boston, MA
                    or re.search(r"[A-Z][a-z]+,\s*$", before)  # Albany, New York
                ):
                    ok = False
        if ok:
            keep.append(city)
    return keep


def _article(word: str) -> str:
    w = word.lower()
    if w.startswith(("uni", "use", "usu", "eu", "one", "ewe", "yo")):
        return "a"
    if w.startswith(("hour", "honest", "honor", "honour", "heir")):
        return "an"
    return "an" if w[:1] in "aeiou" else "a"


def _cased(source: str, target: str) -> str:
    if source.islower():
        return target.lower()
    if source[:1].isupper() and source[1:2].islower():
        return target[:1].upper() + target[1:]
    return target


@lru_cache(maxsize=4096)
def _alternation(keys: tuple[str, ...], flags: int) -> re.Pattern[str]:
    alts = "|".join(re.escape(k) for k in sorted(keys, key=lambda k: (-len(k), k)))
    return re.compile(f"{_WORD_BEFORE}(?P<w>{alts}){_WORD_AFTER}(?P<apos>['’](?![A-Za-z]))?", flags)


def substitute(
    text: str, mapping: dict[str, str], spans: Sequence[tuple[int, int]], ignore_case: bool
) -> str:
    """Every whole-word occurrence of a key (outside `spans`) replaced by its value, in one
    pass (so a swap never feeds another), with case kept, a/an agreed and `James'` ->
    `Tom's`."""
    if not mapping:
        return text
    keys = {k.lower() if ignore_case else k: v for k, v in mapping.items()}
    pattern = _alternation(tuple(sorted(mapping)), re.I if ignore_case else 0)
    out: list[str] = []
    last = 0
    for m in pattern.finditer(text):
        word = m.group("w")
        if in_spans(m.start(), spans) or (ignore_case and not _case_ok(word)):
            continue
        new = keys.get(word.lower() if ignore_case else word)
        if new is None:
            continue
        new = _cased(word, new) if ignore_case else new
        head = text[last : m.start()]
        art = re.search(r"(?<![\w])([Aa]n?)(\s+)$", head)
        if art:
            want = _article(new)
            old = art.group(1)
            fixed = want if old.islower() else want.capitalize()
            head = head[: art.start(1)] + fixed + head[art.end(1) :]
        apos = m.group("apos") or ""
        if apos and word.endswith("s") and not new.endswith("s"):
            apos += "s"
        out.append(head + new + apos)
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def _case_ok(word: str) -> bool:
    return word.islower() or (word[:1].isupper() and word[1:] == word[1:].lower())


@lru_cache(maxsize=4096)
def _lower_words(text: str) -> frozenset[str]:
    return words_in(text)


def _pick(rng: random.Random, pool: Sequence[str], taken: set[str], words: frozenset[str]) -> str:
    free = [
        p
        for p in pool
        if p not in taken and not (_lower_words(p) & words) and p.lower() not in OBJECT_FORMS
    ]
    if not free:
        return ""
    return rng.choice(free)


@dataclass(frozen=True)
class Plan:
    """What one rename swaps: exact-case names and cities, case-folded object forms."""

    names: dict[str, str]
    objects: dict[str, str]
    places: dict[str, str]

    @property
    def empty(self) -> bool:
        return not (self.names or self.objects or self.places)

    def apply(self, text: str, math: bool) -> str:
        spans = protected_spans(text, math)
        text = substitute(text, self.names, spans, ignore_case=False)
        spans = protected_spans(text, math)
        text = substitute(text, self.places, spans, ignore_case=False)
        spans = protected_spans(text, math)
        return substitute(text, self.objects, spans, ignore_case=True)

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in (("names", self.names), ("objects", self.objects)):
            if value:
                out[key] = dict(value)
        if self.places:
            out["places"] = dict(self.places)
        return out


def plan_rename(texts: Texts, rng: random.Random) -> tuple[Plan, list[str]]:
    """A consistent swap for everything renameable in `texts`, and what was left alone."""
    words = texts.words
    surnames = find_surnames(texts)
    names, refused = find_names(texts)
    names = [(n, g) for n, g in names if n not in surnames]
    refused = [n for n in refused if n not in surnames]
    objects, refused_objects = find_objects(texts)
    cities = find_cities(texts)
    taken: set[str] = set()
    name_map: dict[str, str] = {}
    for word in surnames:
        new = _pick(rng, lx.SURNAMES, taken | set(lx.GENDER), words)
        if new:
            name_map[word] = new
            taken.add(new)
    for name, gender in names:
        new = _pick(rng, lx.new_name_pool(gender), taken, words)
        if new:
            name_map[name] = new
            taken.add(new)
    object_map: dict[str, str] = {}
    for group, sg, pl in objects:
        free = [
            (msg, mpl)
            for msg, mpl in lx.OBJECT_GROUPS[group]
            if (msg, mpl) != (sg, pl)
            and not (_lower_words(msg) | _lower_words(mpl)) & words
            and mpl not in taken
        ]
        if not free:
            continue
        new_sg, new_pl = rng.choice(free)
        taken.add(new_pl)
        object_map[sg] = new_sg
        object_map[pl] = new_pl
    place_map: dict[str, str] = {}
    for city in cities:
        new = _pick(rng, lx.CITIES[_CITY_GROUP[city]], taken | set(cities), words)
        if new:
            place_map[city] = new
            taken.add(new)
    return Plan(name_map, object_map, place_map), refused + refused_objects


# -- chains ------------------------------------------------------------------------------------

CHAIN_FILLERS: dict[str, tuple[str, ...]] = {
    "item": (
        "bars of soap",
        "jars of jam",
        "batteries",
        "umbrellas",
        "toothbrushes",
        "water bottles",
        "board games",
        "flashlights",
        "backpacks",
        "picture frames",
        "rolls of tape",
        "boxes of cereal",
    ),
    "plant": (
        "daisies",
        "marigolds",
        "pepper plants",
        "daffodils",
        "strawberry plants",
        "lavender bushes",
        "pumpkin plants",
        "lettuce plants",
        "petunias",
        "bean plants",
    ),
}
"""Values beyond each chains family's own fillers (plural count nouns that fit every
sentence of the family)."""

CHAIN_VEHICLES = ("tram", "train", "shuttle", "coach", "trolleybus")
_VARIABLE_LETTERS = "abcdefghjkmnpqrstuvwxyz"


def _rename_chain(problem: Problem, rng: random.Random) -> Problem | Skip | None:
    """A chains problem with its family's filler swapped; None for an unknown family (then
    the general rename applies)."""
    family = FAMILIES.get(str(problem.meta.get("family")))
    if family is None:
        return None
    q = problem.question
    if family.name == "symbolic":
        used = list(dict.fromkeys(re.findall(r"\bLet ([a-z]) =", q)))
        singles = set(re.findall(r"(?<![\w\\])[a-z](?!\w)", q))
        if not used or singles - set(used):
            return Skip("symbolic chain with letters that are not its variables")
        new = rng.sample([c for c in _VARIABLE_LETTERS if c not in used] + used, len(used))
        mapping = dict(zip(used, new, strict=True))
        if all(k == v for k, v in mapping.items()):
            mapping = dict(zip(used, new[1:] + new[:1], strict=True))

        def swap(m: re.Match[str]) -> str:
            letter = str(m.group(1))
            return mapping.get(letter, letter)

        text = re.sub(r"(?<![\w\\])([a-z])(?!\w)", swap, q)
        return derive(problem, "rename", {"variables": mapping}, question=text)
    params: dict[str, Any] = {}
    fill: dict[str, str] = {}
    for key, values in family.fillers.items():
        if key == "name":
            continue
        pool = tuple(dict.fromkeys(values + CHAIN_FILLERS.get(key, ())))
        current = next(
            (
                v
                for v in sorted(pool, key=len, reverse=True)
                if re.search(rf"\b{re.escape(v)}\b", q)
            ),
            None,
        )
        if current is None:
            continue
        fill[current] = rng.choice([v for v in pool if v != current and v not in q])
    if family.name == "bus" and re.search(r"\bbus\b", q):
        fill["bus"] = rng.choice(CHAIN_VEHICLES)
    if fill:
        params["filler"] = fill
    texts = Texts(q, problem.reference or "", problem.answer, math=False)
    plan, _ = plan_rename(texts, rng)
    plan = Plan(plan.names, {}, {})
    if plan.names:
        params["names"] = plan.names
    if not params:
        return Skip(f"chains family {family.name} has nothing to rename")
    text = substitute(q, fill, [], ignore_case=False)
    text = plan.apply(text, math=False)
    ref = plan.apply(substitute(problem.reference or "", fill, [], False), math=False)
    return derive(
        problem,
        "rename",
        params,
        question=text,
        reference=ref if problem.reference is not None else None,
    )


class Rename(Perturbation):
    name = "rename"
    description = (
        "people, objects, cities and counting units swapped for others of their kind "
        "(same gender, same group), consistently in question and solution; answer kept"
    )
    tasks = ("gsm8k", "chains", *MATH_TASKS)
    preserves_answer = True

    def apply(self, problem: Problem, rng: random.Random, ctx: Context) -> Problem | Skip:
        if ctx.task == "chains":
            got = _rename_chain(problem, rng)
            if got is not None:
                return got
        math = ctx.task in MATH_TASKS
        texts = Texts(problem.question, problem.reference or "", problem.answer, math)
        plan, refused = plan_rename(texts, rng)
        if plan.empty:
            if refused:
                return Skip(
                    "every name or object found is where renaming could change the problem "
                    "(a title, a place, a formula, LaTeX, the answer, or no unused substitute)"
                )
            return Skip("nothing to rename: no known first name, countable object or city")
        question = plan.apply(problem.question, math)
        reference = plan.apply(problem.reference, math) if problem.reference is not None else None
        if numbers_in(question) != numbers_in(problem.question) or (
            reference is not None and numbers_in(reference) != numbers_in(problem.reference or "")
        ):
            return Skip("renaming would change a number of the text")
        return derive(problem, self.name, plan.params(), question=question, reference=reference)


__all__ = [
    "CHAIN_FILLERS",
    "CITY_WORDS",
    "MATH_TASKS",
    "NAME_WORDS",
    "OBJECT_FORMS",
    "OBJECT_WORDS",
    "Plan",
    "Rename",
    "Texts",
    "WordTable",
    "at_sentence_start",
    "find_cities",
    "find_names",
    "find_objects",
    "find_surnames",
    "in_spans",
    "numbers_in",
    "plan_rename",
    "protected_spans",
    "substitute",
    "whole_word",
    "words_in",
]
