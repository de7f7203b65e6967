"""`reorder`: the same premises in another order the dependencies allow; the answer is kept.

A model that has learned a problem's telling, not its content, is thrown by premises that come
in an order it has not seen. Two tasks:

- chains: consecutive additions and subtractions commute, so each run of them is reordered
  (every intermediate still a positive integer no larger than `chains.MAX_VALUE`) and the chain
  retold in its own family with its own filler choices; the reference is recomputed and the
  answer checked to be the parent's.
- gsm8k: the question is split into sentences (whitespace between them kept) and only
  sentences that are self-contained may move. The closing question stays last; every sentence
  that refers back (pronouns, "the rest", "then", comparatives, fractions, elliptical
  numbers...) stays put together with the sentence just before it; the first sentence stays
  first when a he or she later leans on it. He/she counts as referring back unless the text
  names exactly one person, in its first sentence, with no other person it could mean. The
  movable sentences between two fixed ones are shuffled under the order constraints of `plan`.
  GSM8K is mostly told as a sequence, so most problems are skipped: a skip is preferred to a
  reorder that could change the meaning.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError
from harness.perturb.base import Context, Perturbation, Skip, derive
from harness.perturb.surface import chain_of, surface_rng
from harness.tasks import chains
from harness.types import Problem

TRIES = 32
"""Random orders drawn before falling back to the first valid adjacent swap."""

# -- chains ---------------------------------------------------------------------------------


def commuting_runs(ops: Sequence[chains.Op]) -> list[range]:
    """Maximal runs of 2+ consecutive additions/subtractions (their order does not change the
    value at the run's end)."""
    runs: list[range] = []
    i = 0
    while i < len(ops):
        j = i
        while j < len(ops) and ops[j].kind in ("add", "sub"):
            j += 1
        if j - i >= 2:
            runs.append(range(i, j))
        i = max(j, i + 1)
    return runs


def _valid(start: int, ops: Sequence[chains.Op]) -> bool:
    v = start
    for op in ops:
        v = op.apply(v)
        if not 0 < v <= chains.MAX_VALUE:
            return False
    return True


def _shuffle_run(
    v: int, run: list[int], ops: Sequence[chains.Op], rng: random.Random
) -> list[int] | None:
    """A random order of one run's ops from value `v` that keeps every value in range, built
    one step at a time among the ops that may come next (None on a dead end)."""
    left, order = list(run), []
    while left:
        fits = [i for i in left if 0 < ops[i].apply(v) <= chains.MAX_VALUE]
        if not fits:
            return None
        pick = rng.choice(fits)
        order.append(pick)
        left.remove(pick)
        v = ops[pick].apply(v)
    return order


def _canonical(order: list[int], ops: Sequence[chains.Op]) -> list[int]:
    """The same op sequence with equal ops in their original relative order, so one reordered
    chain has one recorded permutation."""
    spare: dict[chains.Op, list[int]] = {}
    for i in sorted(order):
        spare.setdefault(ops[i], []).append(i)
    return [spare[ops[i]].pop(0) for i in order]


def reorder_chain(start: int, ops: Sequence[chains.Op], rng: random.Random) -> list[int] | Skip:
    """A permutation of the op indices that only reorders commuting runs, keeps every
    intermediate in range and changes the chain; or why there is none."""
    runs = commuting_runs(ops)
    if not runs:
        return Skip("chain has no run of two or more additions/subtractions to reorder")
    if all(len({ops[i] for i in run}) == 1 for run in runs):
        return Skip("every run of additions/subtractions repeats one operation")
    starts = {run.start: run for run in runs}
    identity = list(range(len(ops)))
    for _ in range(TRIES):
        order: list[int] = []
        v, i = start, 0
        while i < len(ops):
            run = starts.get(i)
            if run is None:
                order.append(i)
                v = ops[i].apply(v)
                i += 1
                continue
            got = _shuffle_run(v, list(run), ops, rng)
            if got is None:
                break
            order.extend(got)
            for j in got:
                v = ops[j].apply(v)
            i = run.stop
        if len(order) == len(ops) and [ops[j] for j in order] != list(ops):
            return _canonical(order, ops)
    # Fall back on the first adjacent swap of two different ops that keeps the values in range.
    for run in runs:
        for i in run[:-1]:
            if ops[i] != ops[i + 1]:
                order = [*identity[:i], i + 1, i, *identity[i + 2 :]]
                if _valid(start, [ops[j] for j in order]):
                    return order
    return Skip("no reorder of the additions/subtractions keeps every value a positive integer")


def _reorder_chains(problem: Problem, rng: random.Random, kind: str) -> Problem | Skip:
    chain = chain_of(problem)
    if isinstance(chain, Skip):
        return chain
    seed, depth, index, start, ops = chain
    answer, _ = chains.solve(start, ops)
    name = str(problem.meta.get("family", ""))
    if name not in chains.FAMILIES and name not in chains.HELD_OUT:
        return Skip(f"chains problem's family '{name}' is not a known family")
    order = reorder_chain(start, ops, rng)
    if isinstance(order, Skip):
        return order
    new_ops = [ops[i] for i in order]
    new_answer, reference = chains.solve(start, new_ops)
    if new_answer != answer:  # commuting steps cannot change the end value
        raise HarnessError(f"reorder: {problem.id} gave {new_answer}, not {answer}")
    question = chains.tell(
        chains.family_named(name), start, new_ops, surface_rng(seed, depth, index, name)
    )
    return derive(
        problem,
        kind,
        {"order": order},
        question=question,
        reference=reference,
        meta={"ops": [[op.kind, op.k] for op in new_ops]},
    )


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


# -- sentences ------------------------------------------------------------------------------

_ABBREVIATIONS = _wordset(
    "mr mrs ms dr prof st jr sr vs etc no nos approx ave rd blvd mt inc ltd co corp dept est "
    "fig vol gov sen rep capt lt col gen sgt oz lb lbs ft in yd mi km cm mm kg hr hrs min sec "
    "gal qt pt tbsp tsp sq jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri "
    "sat sun"
)
_BOUNDARY = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(\s+)(?=[\"'\u201c\u2018(\[]?[A-Z0-9$])")
_LAST_WORD = re.compile(r"(\S+)$")
_STARTS = re.compile(r"[\"'\u201c\u2018(\[]?[A-Z0-9$]")
"""How a sentence after the first begins (the lookahead of `_BOUNDARY`)."""


@dataclass(frozen=True)
class Sentences:
    """A text cut into sentences with the whitespace between them kept, so that a reorder
    changes nothing but the order."""

    head: str
    parts: tuple[str, ...]
    gaps: tuple[str, ...]
    """gaps[i] is the whitespace after parts[i] (len(parts) - 1 of them)."""
    tail: str

    def join(self, order: Sequence[int]) -> str:
        body = self.parts[order[0]]
        for gap, i in zip(self.gaps, order[1:], strict=True):
            body += gap + self.parts[i]
        return self.head + body + self.tail


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the period at `dot` ends an abbreviation or an initial rather than a sentence."""
    found = _LAST_WORD.search(text, 0, dot)
    word = (found.group(1) if found else "").lstrip("\"'(\u201c\u2018$").lower()
    if not word:
        return False
    if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
        return True
    pieces = word.split(".")
    return len(pieces) > 1 and all(len(p) <= 2 and p.isalpha() for p in pieces)  # a.m, e.g


def split_sentences(text: str) -> Sentences:
    """Sentences end at . ! ? (with closing quotes) before whitespace and a capital, digit,
    quote or `$`; not after an abbreviation or an initial ("Mr.", "a.m.", "J."), never
    inside a number ("$1.50"). When unsure it does not cut: a merged pair just moves as one."""
    body = text.strip()
    head = text[: len(text) - len(text.lstrip())]
    tail = text[len(text.rstrip()) :]
    parts: list[str] = []
    gaps: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(body):
        if body[m.start()] == "." and _is_abbreviation(body, m.start()):
            continue
        parts.append(body[start : m.start(1)])
        gaps.append(m.group(1))
        start = m.end(1)
    parts.append(body[start:])
    return Sentences(head, tuple(parts), tuple(gaps), tail)


# -- what a sentence refers back to ---------------------------------------------------------

_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
_REFERS_BACK = _wordset(
    """
    it its itself they them their theirs themselves this that these those such same other
    others another rest remaining remainder left leftover again also too then after afterward
    afterwards later before earlier next finally first second third fourth fifth last now still
    already yet instead meanwhile so thus hence therefore because since but however although
    though while whereas besides additionally moreover furthermore both either neither all
    total totals altogether combined together overall whole entire former latter respectively
    previous previously following above more less fewer extra additional than twice half halves
    double doubles doubled triple tripled quadruple percent quarter quarters thirds fourths
    fifths if when whenever until unless what which whose who whom where ratio average new
    initially originally eventually once thrice
    """
)
_REFERS_BACK_PHRASE = re.compile(
    r"%|\d\s*/\s*\d|\?|:|;|\bas (?:many|much|long|far|often|old|tall|big|fast)\b"
    r"|\b(?:one|each|some|none|any|most|many|few|several) of\b|\beach (?:one|has|have|had|is|"
    r"are|was|were|costs?|weighs?|contains?|holds?|takes?|gets?|can|will|would|needs?)\b"
    r"|\btimes (?:as|more|less|fewer|the|that|this|what|his|her|their|its|longer|shorter|"
    r"bigger|larger|smaller|faster|slower|higher|lower|older|younger|greater|heavier)\b"
    r"|\bin kind\b|\b(?:a|an|the|each|every|this|that)\s+(?:[a-z-]+\s+)?ones?\b"
    r"|\b[ap]\.m\b|\bthere\b(?! (?:is|are|was|were|will be)\b)",
    re.IGNORECASE,
)
_NUMBER_WORDS = (
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
    "hundred thousand million dozen"
)
_ELLIPTICAL_NUMBER = re.compile(
    rf"(?<![$\w.,])(?:\d[\d,]*(?:\.\d+)?|(?:{'|'.join(_NUMBER_WORDS.split())}))"
    r"(?=\s*(?:[.,!?;:]|$)|\s+(?:for|to|in|on|at|and|or|each|every|from|with|by|more|less|"
    r"into|away|back|out|off|up|than|a|an|the|per|is|are|was|were|this|that|his|her|their|its|"
    r"as|so|but|if|when|while|after|before|during|today|yesterday|tomorrow|now|then|left|over|"
    r"under|apiece|altogether|total)\b)",
    re.IGNORECASE,
)
_HE = _wordset("he him his himself")
_SHE = _wordset("she her hers herself")
_TAKES_AWAY = _wordset(
    """
    eat eats ate eaten lose loses lost spend spends spent sell sells sold use uses used remove
    removes removed break breaks broke broken drop drops dropped donate donates donated throw
    throws threw thrown drink drinks drank cut cuts burn burns burned burnt spill spills
    spilled die dies died withdraw withdraws withdrew waste wastes wasted subtract subtracts
    buy buys bought purchase purchases purchased
    """
)
"""Verbs that use something up: two of them commute, but not with what may have supplied it."""
_TRANSFERS = _wordset(
    """
    give gives gave given pay pays paid send sends sent lend lends lent share shares shared
    trade trades traded steal steals stole stolen return returns returned receive receives
    received borrow borrows borrowed exchange exchanges exchanged
    """
)
"""Verbs that move something between two owners, a loss for one and a gain for the other:
such a sentence keeps its place after everything before it."""
_FEMALE = _wordset(
    """
    woman girl lady mother mom mum mommy sister daughter wife aunt niece grandmother grandma
    granddaughter girlfriend queen princess actress waitress stepmother stepsister
    """
)
_MALE = _wordset(
    """
    man boy guy gentleman father dad daddy brother son husband uncle nephew grandfather grandpa
    grandson boyfriend king prince stepfather stepbrother
    """
)
_SOMEONE = _wordset(
    """
    person child kid baby toddler teen teenager adult parent sibling cousin friend partner
    neighbor neighbour classmate roommate coworker colleague boss manager employee worker owner
    customer client teacher student coach player farmer baker chef cook driver plumber
    electrician mechanic doctor nurse dentist lawyer waiter cashier clerk seller buyer vendor
    landlord tenant captain officer pilot artist author writer painter singer musician actor
    tutor trainer instructor principal professor guest visitor member fan shopkeeper salesperson
    babysitter grandparent stranger
    """
)
"""Singular nouns for a person a he or she could mean instead of the named one."""
_NOT_NAMES = _wordset(
    """
    a an the this that these those there it its he she his her him they them their we our us
    you your i my me if in on at for of to by from with and or but so as after before when
    while each every all some any no none many most few several both either neither one two
    three four five six seven eight nine ten how what which who whom whose why where
    mr mrs ms dr miss sir monday tuesday wednesday thursday friday saturday sunday january
    february march april may june july august september october november december
    """
)
_STATIVE = _wordset("has have had own owns owned hold holds held contain contains there")
"""A sentence that states how many there are: kept in order with any that speaks of the same
thing (\"buys 5 apples\" then \"has 10 apples\" is not \"has 10\" then \"buys 5\")."""
_DETERMINERS = _wordset("the his her my your our their its each every this that these those")
_OPENERS = _wordset(
    """
    another because finally later today yesterday tomorrow tonight calculate find normally
    feeling according since well together last first during every each some many most on in
    at for from with without over under by during about around between among across along
    given assuming assume suppose including excluding except however unfortunately luckily
    currently recently usually often sometimes always never one two three four five six seven
    eight nine ten twenty thirty forty fifty hundred there here how what which who when where
    why while unlike like including out up down to
    """
)
_STOP = _wordset(
    """
    a an the of to in on at for with by from and or is are was were be been being has have had
    does do did will would can could should must may might shall each every per than as that
    this it its he she his her him they them their we our us you your i my me not no yes
    buy buys bought cost costs get gets got make makes made take takes took need needs want
    wants go goes went like likes there then some any many much how what which who
    minute minutes hour hours day days week weeks month months year years time times dollar
    dollars cent cents inch inches foot feet yard yards mile miles meter meters kilometer
    kilometers centimeter centimeters pound pounds ounce ounces gram grams kilogram kilograms
    cup cups gallon gallons liter liters quart quarts calorie calories degree degrees second
    seconds
    """
)
_IRREGULAR = {
    "men": "man",
    "women": "woman",
    "children": "child",
    "people": "person",
    "feet": "foot",
    "teeth": "tooth",
    "mice": "mouse",
    "geese": "goose",
}


def _words(sentence: str) -> list[str]:
    return _WORD.findall(sentence.replace("\u2019", "'").replace("\u2018", "'"))


def _stem(word: str) -> str:
    w = word.lower()
    if w.endswith("'s"):
        w = w[:-2]
    w = w.rstrip("'")
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith("es") and w[-3] in "sxz" or w.endswith(("ches", "shes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    return w[:-2] + "y" if w.endswith("ie") else w  # cookie, cookies


def _content(sentence: str, names: set[str]) -> set[str]:
    """The sentence's content words as crude stems, names left out (what two sentences must
    not both speak of to be swapped)."""
    return {_stem(w) for w in _words(sentence) if w.lower() not in _STOP} - names - {""}


def _definite(sentence: str) -> set[str]:
    """Stems of the words just after a definite determiner ("the red chickens", "his car",
    "each box", "Tom's dog"): what the sentence speaks of as already known."""
    words = _words(sentence)
    found: set[str] = set()
    for n, w in enumerate(words):
        if w.lower() in _DETERMINERS or w.endswith("'s"):
            found.update(_stem(x) for x in words[n + 1 : n + 4])
    return found


def _name_stems(parts: Sequence[str]) -> set[str]:
    """Stems only ever written capitalised: names, which every sentence may mention."""
    upper: set[str] = set()
    lower: set[str] = set()
    for sentence in parts:
        for w in _words(sentence):
            (upper if w[0].isupper() else lower).add(_stem(w))
    return upper - lower


def _names(parts: Sequence[str]) -> set[str]:
    """Words that look like names: capitalised, not all capitals, never written in lower case,
    and, as a sentence's first word, not a common opener or an -ly adverb."""
    lower = {w.lower() for s in parts for w in _words(s) if w[:1].islower()}
    found: set[str] = set()
    for sentence in parts:
        for n, word in enumerate(_words(sentence)):
            base = word.split("'")[0]
            low = base.lower()
            if not base[:1].isupper() or base.isupper() or low in lower or low in _NOT_NAMES:
                continue
            if low.rstrip("s") in _NOT_NAMES:  # Mondays
                continue
            opener = low in _STOP or low in _REFERS_BACK or low in _OPENERS or low.endswith("ly")
            if n == 0 and "'" not in word and opener:
                continue
            found.add(base)
    return found


def _one_protagonist(parts: Sequence[str]) -> bool:
    """Whether he/she can only mean the one person the first sentence names: one name in the
    whole text, in the first sentence, one gender of pronoun, and no other person of that
    gender (a friend, a plumber, "his brother") for the pronoun to mean."""
    names = _names(parts)
    if len(names) != 1 or not names <= _names(parts[:1]):
        return False
    words = {w.lower() for s in parts for w in _words(s)}
    he, she = bool(words & _HE), bool(words & _SHE)
    if he and she:
        return False
    singular = {w.split("'")[0] for w in words}  # plural people are "they", never moved
    if singular & _SOMEONE or (he and singular & _MALE) or (she and singular & _FEMALE):
        return False
    return not any(w.endswith(("man", "men", "person")) and len(w) > 5 for w in words)


def refers_back(sentence: str, protagonist: bool) -> bool:
    """Whether a sentence may lean on what came before it (and so must not move)."""
    words = [w.lower() for w in _words(sentence)]
    if any(w in _REFERS_BACK for w in words) or _REFERS_BACK_PHRASE.search(sentence):
        return True
    if not protagonist and any(w in _HE or w in _SHE for w in words):
        return True
    return _ELLIPTICAL_NUMBER.search(sentence) is not None


@dataclass(frozen=True)
class Plan:
    """Which sentences may move: `blocks` of positions between fixed sentences, and for each
    movable position the earlier positions of its block it must stay after."""

    blocks: tuple[tuple[int, ...], ...]
    after: dict[int, frozenset[int]]


def plan(parts: Sequence[str]) -> Plan | Skip:
    """The movable blocks of a question's sentences, or why none can move.

    Within a block a sentence stays after an earlier one when it takes something away and the
    earlier one does not (it may be what makes the taking possible; two takings commute), when
    either states a count of something both speak of, when it names with a definite article
    something only the earlier one introduced (what came before the block is known to both),
    and after every earlier one when it names with a definite article something never met
    before ("the walls": of what came before)."""
    n = len(parts)
    asks = [i for i, s in enumerate(parts) if "?" in s]
    closing = asks[-1] if asks else n - 1
    if closing < 2:
        return Skip("fewer than two premise sentences before the question")
    protagonist = _one_protagonist(parts)
    fixed = set(range(closing, n))
    for i in range(closing):
        if refers_back(parts[i], protagonist):
            fixed.update((i, max(i - 1, 0)))
    gendered = any(
        w.lower() in _HE or w.lower() in _SHE for s in parts[:closing] for w in _words(s)
    )
    if gendered or not _STARTS.match(parts[0]):
        fixed.add(0)  # it names the one he or she means, or could not start a later sentence
    ask = parts[closing]
    if re.search(r"\b(?:it|this|that|these|those|them|one|ones)\b", ask, re.IGNORECASE) or (
        re.search(
            r"\bhow (?:many|much) (?:does|do|did|is|are|was|were|will|can|would|has|have)\b",
            ask,
            re.IGNORECASE,
        )
    ):
        fixed.add(closing - 1)  # the question leans on the sentence before it
    blocks: list[tuple[int, ...]] = []
    run: list[int] = []
    for i in range(n):
        if i in fixed:
            if len(run) >= 2:
                blocks.append(tuple(run))
            run = []
        else:
            run.append(i)
    if not blocks:
        return Skip("no two adjacent self-contained premise sentences to swap")
    names = _name_stems(parts)
    content = [_content(s, names) for s in parts]
    definite = [_definite(s) for s in parts]
    words = [{w.lower() for w in _words(s)} for s in parts]
    after: dict[int, frozenset[int]] = {}
    for block in blocks:
        known = set().union(*content[: block[0]])  # met before the block: a shared referent
        for k, i in enumerate(block):
            # "The walls" of something met earlier (a bridge, not a repeat) stays after all
            # before it; taking away stays after what may have made it possible.
            bridge = bool(content[i] & definite[i] - set().union(*content[:i]))
            takes_away = bool(words[i] & _TAKES_AWAY)
            bridge = bridge or bool(words[i] & _TRANSFERS)
            stative = bool(words[i] & _STATIVE)
            after[i] = frozenset(
                j
                for j in block[:k]
                if bridge
                or (takes_away and not words[j] & _TAKES_AWAY)
                or content[i] & content[j] & definite[i] - known
                or ((stative or words[j] & _STATIVE) and content[i] & content[j])
            )
    swappable = any(
        a not in after[b] and parts[a] != parts[b]
        for block in blocks
        for a, b in zip(block, block[1:], strict=False)
    )
    if not swappable:
        return Skip("the self-contained premise sentences speak of the same things")
    return Plan(tuple(blocks), after)


def reorder_sentences(parts: Sequence[str], p: Plan, rng: random.Random) -> list[int]:
    """A permutation of sentence positions that moves only within blocks, keeps every `after`
    constraint and changes the text (a random such order, else the first adjacent swap)."""
    identity = list(range(len(parts)))
    for _ in range(TRIES):
        order = list(identity)
        for block in p.blocks:
            left, placed = list(block), list[int]()
            while left:
                ready = [i for i in left if p.after[i] <= set(placed)]
                pick = rng.choice(ready)
                placed.append(pick)
                left.remove(pick)
            order[block[0] : block[-1] + 1] = placed
        if [parts[i] for i in order] != list(parts):
            return order
    for block in p.blocks:
        for a, b in zip(block, block[1:], strict=False):
            if a not in p.after[b] and parts[a] != parts[b]:
                order = list(identity)
                order[a], order[b] = b, a
                return order
    raise HarnessError("reorder: a plan with a valid swap gave none")  # plan() checked


def _reorder_text(problem: Problem, rng: random.Random, kind: str) -> Problem | Skip:
    text = split_sentences(problem.question)
    p = plan(text.parts)
    if isinstance(p, Skip):
        return p
    order = reorder_sentences(text.parts, p, rng)
    params: dict[str, Any] = {"order": order, "sentences": len(text.parts)}
    return derive(problem, kind, params, question=text.join(order))


class Reorder(Perturbation):
    name = "reorder"
    description = "premises reordered where their dependencies allow (gsm8k, chains)"
    tasks = ("gsm8k", "chains")
    preserves_answer = True

    def apply(self, problem: Problem, rng: random.Random, ctx: Context) -> Problem | Skip:
        if ctx.task == "chains":
            return _reorder_chains(problem, rng, self.name)
        return _reorder_text(problem, rng, self.name)


__all__ = ["Reorder", "Sentences", "commuting_runs", "plan", "reorder_chain", "split_sentences"]
