"""Answer extraction shared by every task: one implementation of each rule, never a copy per task.

Each rule returns the answer as found in the text plus the rule's name, which the record keeps,
so a grading dispute can always be traced to the rule that produced the answer. Rules that
guess (the last number, the last math span, the last option letter anywhere, code that merely
compiles) are flagged `lenient`, so metrics can count answers that were found only by a
fallback.

Rules and their names: `boxed` (the last complete `\\boxed{}`, or the last run of boxes that
make one answer), `hash` (GSM8K `#### n`), `final_answer` ("the final answer is X", "so the
correct option is X", a "**Final Answer**" heading), `answer_line` ("Answer: X", "答案：X"),
`last_math` (lenient: the last `$...$` / `\\(...\\)` of a math answer), `last_number`
(lenient), `bare_option` (an answer that is only an option letter: `B.`, `**B**`, `(B) 15
apples`), `option_text` (an option's text instead of its letter), `last_option` (lenient: the
last "(C)" anywhere; for an `options` variant the option rules read its shown labels, `3`
or `III`, and give the position letter), `last_label` (lenient: the last True/False, Yes/No
...), `code_block` (the last complete fenced python block), `continuation` (HumanEval: the
text goes on from the prompt), `bare_code` (lenient: unfenced text that compiles).

Every rule runs in time linear in the text (no nested quantifiers over the same characters,
brace matching and code fences in one pass), so a hostile 100 KB output cannot stall a run.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.reasoning import (  # noqa: F401 - re-exported: the extractors' public names
    LEAKED_TURN,
    MINUS_SIGNS,
    SPLIT_VERSION,
    THINK_CLOSE,
    THINK_OPEN,
    cut_leaked_turn,
    extract_stated_confidence,
    split_reasoning,
)


@dataclass(frozen=True)
class Extraction:
    answer: str
    rule: str
    lenient: bool = False


# -- text clean-up before any rule reads it ---------------------------------------------------


def answer_text(text: str) -> tuple[str, bool]:
    """What the extractors read of an answer part: the text before a leaked chat turn, with
    stray think tags removed; and whether a turn leaked. (Code is left as written otherwise.)"""
    text, leaked = cut_leaked_turn(text)
    if THINK_OPEN in text or THINK_CLOSE in text:
        text = text.replace(THINK_OPEN, " ").replace(THINK_CLOSE, " ")
    return text, leaked


# -- boxed -------------------------------------------------------------------------------------

_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.S)


def brace_pairs(text: str) -> dict[int, int]:
    """The matching `}` of every `{` that has one, in one linear pass (escaped braces, `\\{`,
    do not count), so finding every box costs O(n) however many are left unclosed."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for m in _BRACE_TOKEN.finditer(text):
        c = m.group()
        if c == "{":
            stack.append(m.start())
        elif c == "}" and stack:
            pairs[stack.pop()] = m.start()
    return pairs


def _balanced(text: str, start: int) -> str | None:
    """The contents of the brace group opening at text[start] == '{', nested braces allowed.

    Escaped braces (`\\{`, `\\}`) do not count, so `\\boxed{\\{1, 2\\}}` is the set {1, 2}.
    """
    depth = 0
    for m in _BRACE_TOKEN.finditer(text, start):
        c = m.group()
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : m.start()]
    return None


_BOXED = re.compile(r"\\(?:boxed|fbox)\s*(\{)?")
_BARE_BOX = re.compile(r"[ \t]*([^\s$]+)")


@dataclass(frozen=True)
class Box:
    start: int
    end: int
    content: str


def boxes(text: str) -> list[Box]:
    """Every complete `\\boxed{...}` (or `\\boxed 5`, `\\fbox{...}`) not inside another, in
    order."""
    if "\\boxed" not in text and "\\fbox" not in text:
        return []
    pairs = brace_pairs(text)
    found: list[Box] = []
    for m in _BOXED.finditer(text):
        if found and m.start() < found[-1].end:
            continue  # a box inside the previous box is part of its content
        if m.group(1):
            close = pairs.get(m.start(1))
            if close is not None:
                found.append(Box(m.start(), close + 1, text[m.start(1) + 1 : close].strip()))
        else:
            tail = _BARE_BOX.match(text, m.end())
            if tail:
                found.append(Box(m.start(), tail.end(), tail.group(1).strip()))
    return found


def last_boxed(text: str) -> str | None:
    """Contents of the last complete `\\boxed{...}` (or `\\boxed 5`, `\\fbox{...}`)."""
    found = boxes(text)
    return found[-1].content if found else None


_BOX_JOINER = re.compile(
    r"(?:\s|[,;&]|\$|\\[()\[\]]|\\q?quad\b|\\[,;:! ]|~"
    r"|\\(?:text|mbox|textrm)\s*\{\s*(?:and|or|,|;)?\s*\}|\b(?:and|or)\b"
    r"|[A-Za-z](?:_\{?\w{1,4}\}?)?\s*=)*"
)
"""What may stand between two boxes of one answer: spacing, commas, `and`/`or`, `\\quad`,
math delimiters and a short label (`y =`). A sentence, a period or "so the answer is" between
them makes the later box an answer of its own."""


_APPROX_JOINER = re.compile(r"[\s$]*(?:\\approx|≈|\\sim|approximately|or about|about)[\s$]*")


def final_boxed(text: str) -> str | None:
    """The boxed final answer: the last box, or the last run of boxes that together make one
    answer (`\\boxed{-2} and \\boxed{1}` is `-2, 1`), a box repeated in the run counted once."""
    found = boxes(text)
    if not found:
        return None
    if len(found) >= 2 and _APPROX_JOINER.fullmatch(text, found[-2].end, found[-1].start):
        found = found[:-1]  # `\\boxed{\\frac13} \\approx \\boxed{0.333}`: the exact value answers
    group = [found[-1]]
    for box in reversed(found[:-1]):
        if _BOX_JOINER.fullmatch(text, box.end, group[0].start) is None:
            break
        group.insert(0, box)
    contents: list[str] = []
    for box in group:
        if box.content and box.content not in contents:
            contents.append(box.content)
    return ", ".join(contents) if contents else None


# -- phrases -----------------------------------------------------------------------------------

_HASH = re.compile(r"####[ \t]*([^\n]+)")


def hash_answer(text: str) -> str | None:
    """GSM8K's `#### 42` convention (last occurrence)."""
    hits = [h.strip() for h in _HASH.findall(text) if h.strip()]
    return hits[-1] if hits else None


_FINAL = re.compile(
    r"(?:final\s+answer|(?:correct|right|best)\s+(?:answer|option|choice)|the\s+answer"
    r"|答案)[ \t*_]*(?:is|would\s+be|should\s+be|[:：=])[ \t]*[:：]?",
    re.IGNORECASE,
)
_FINAL_HEADING = re.compile(r"^[ \t#>*_]*final\s+answer[ \t*_:：]*$", re.IGNORECASE | re.MULTILINE)
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\n")
_NOT_ANSWERS = frozenset(
    [
        "reasonable",
        "correct",
        "right",
        "consistent",
        "plausible",
        "wrong",
        "incorrect",
        "clear",
        "likely",
        "confirmed",
        "verified",
        "indeed",
        "probably",
    ]
)
"""Words that follow "the answer is" when a model talks about its answer rather than giving it
("check the answer is reasonable")."""


def _math_span(s: str) -> str | None:
    """The first `$...$`, `\\(...\\)` or `\\[...\\]` at the start of s, unwrapped."""
    if not s.startswith(("$", "\\(", "\\[")):
        return None
    spans = math_spans(s)
    return spans[0][2].strip() if spans and spans[0][0] == 0 else None


def _clean_phrase(ans: str) -> str | None:
    ans = ans.strip().lstrip("*_").strip()
    first_line = ans.split("\n", 1)[0]
    boxed = final_boxed(first_line) if "\\boxed" in first_line else None
    if boxed is not None:
        return boxed
    math = _math_span(ans)
    if math is not None:
        return math.rstrip(".").strip() or None
    end = _SENTENCE_END.search(ans)
    if end:
        ans = ans[: end.start()]
    ans = ans.strip().strip("*_").strip()
    ans = re.sub(r"^\$+|\$+$", "", ans.rstrip(".").strip()).strip()
    ans = ans.rstrip(".").strip()
    if not ans or ans.lower().strip("*_ ") in _NOT_ANSWERS:
        return None
    return ans


_MAX_PHRASES = 16
_PHRASE_WINDOW = 1000
"""Only the last 16 phrases are read, each over at most 1000 characters: a final answer is
near the end and short, and a text of nothing but "the answer is" stays linear."""


def _phrase_hits(text: str) -> list[str]:
    """Answers stated by a final-answer phrase or under a "Final Answer" heading, last first."""
    hits: list[tuple[int, str]] = []
    for m in list(_FINAL.finditer(text))[-_MAX_PHRASES:]:
        cleaned = _clean_phrase(text[m.end() : m.end() + _PHRASE_WINDOW])
        if cleaned is not None:
            hits.append((m.start(), cleaned))
    for m in list(_FINAL_HEADING.finditer(text))[-_MAX_PHRASES:]:
        paragraph = text[m.end() : m.end() + _PHRASE_WINDOW].lstrip().split("\n\n", 1)[0]
        if not paragraph:
            continue
        found = final_boxed(paragraph) or last_math(paragraph) or _clean_phrase(paragraph)
        if found:
            hits.append((m.start(), found))
    hits.sort(key=lambda h: h[0])
    return [h for _, h in reversed(hits)]


def final_answer_phrase(text: str) -> str | None:
    """`The final answer is X` / `so the answer is: X` / `The correct option is X` / a
    "**Final Answer**" heading (the last occurrence), cleaned.

    The answer ends at the end of its sentence or line; a `$...$` or `\\boxed{}` right after the
    phrase is taken whole (Minerva's "The final answer is $5$. I hope it is correct.").
    "The answer is reasonable" is talk about the answer and is skipped.
    """
    hits = _phrase_hits(text)
    return hits[0] if hits else None


_ANSWER_LINE = re.compile(
    r"^[ \t>*#_]*(?:answer|答案)[ \t*_]*[:：][ \t]*(.+)$", re.IGNORECASE | re.MULTILINE
)


def answer_line(text: str) -> str | None:
    """`Answer: X` on a line of its own (the last one), as simple-evals style prompts ask."""
    hits = _ANSWER_LINE.findall(text)
    for hit in reversed(hits):
        cleaned = _clean_phrase(hit)
        if cleaned:
            return cleaned
    return None


_CONFIDENCE_LINE = re.compile(r"^[ \t>*#_]*(?:stated[ \t]+)?confidence\b[^\n]*$", re.I | re.M)


def drop_confidence_lines(text: str) -> str:
    """The text without its `Confidence: 90%` lines: a stated confidence is never the answer."""
    return _CONFIDENCE_LINE.sub("", text) if "onfidence" in text.lower() else text


NUMBER = re.compile(r"-?\$?\d(?:[\d,]*\d)?(?:\.\d+)?|-?\.\d+")
_GLUED_LEFT = re.compile(r"[A-Za-z_^\\]")
_CODE_TAIL = re.compile(r"[A-Za-z]*\d")


def numbers_in(text: str) -> list[str]:
    """Every number in the text that stands on its own: one glued inside a word (`AZYUK2A`,
    `x2`, `a_3`) is part of a name, not a number."""
    return [m.group() for m in standalone_numbers(text)]


def standalone_numbers(text: str) -> Iterator[re.Match[str]]:
    """The matches behind `numbers_in`."""
    for m in NUMBER.finditer(text):
        start = m.start() + len(m.group()) - len(m.group().lstrip("-$"))
        if start and _GLUED_LEFT.match(text, start - 1):
            continue
        if text[m.end() : m.end() + 1].isalpha() and _CODE_TAIL.match(text, m.end()):
            continue  # `2A7`: digits and letters mixed, a code
        yield m


def last_number(text: str) -> str | None:
    """The last number in the text: a lenient fallback, flagged as such by callers."""
    hits = numbers_in(text.translate(MINUS_SIGNS))
    return hits[-1] if hits else None


_MATH_TOKEN = re.compile(r"\\\$|\$\$|\$|\\\(|\\\)|\\\[|\\\]")
_MATH_CLOSE = {"\\(": "\\)", "\\[": "\\]", "$$": "$$", "$": "$"}


def math_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, contents) of every LaTeX math span (`$...$`, `$$...$$`, `\\(...\\)`,
    `\\[...\\]`), in order, in one linear pass: each opener pairs with the next closer of its
    kind (found by a pass from the right), and an opener that never closes is skipped."""
    tokens = [(m.start(), m.end(), m.group()) for m in _MATH_TOKEN.finditer(text)]
    tokens = [t for t in tokens if t[2] != "\\$"]
    following: dict[str, int | None] = {"\\)": None, "\\]": None, "$$": None, "$": None}
    closer_at: list[int | None] = [None] * len(tokens)
    for i in range(len(tokens) - 1, -1, -1):
        tok = tokens[i][2]
        if tok in _MATH_CLOSE:
            closer_at[i] = following[_MATH_CLOSE[tok]]
        if tok in following:
            following[tok] = i
    spans: list[tuple[int, int, str]] = []
    i = 0
    while i < len(tokens):
        j = closer_at[i]
        if j is not None:
            spans.append((tokens[i][0], tokens[j][1], text[tokens[i][1] : tokens[j][0]]))
            i = j + 1
        else:
            i += 1
    return spans


_CONDITION_BEFORE = re.compile(
    r"\b(?:at|when|where|for|if|with|given|since|because|whenever|unless|case|cases)[ \t]*$",
    re.I,
)
_COPULA_BEFORE = re.compile(
    r"(?:\b(?:is|are|was|be|equals?|gives?|get|obtain|yields?)|=|:)[ \t*]*$", re.I
)
_SPAN_JOINER = re.compile(r"[ \t]*(?:,|;|\band\b|\bor\b|,[ \t]*(?:and|or)\b)[ \t]*")
_LOOK_BACK = 24
_FALLBACK_TAIL = 4000
"""Characters at the end of an answer part that the lenient math fallback reads."""


@dataclass(frozen=True)
class _Candidate:
    start: int
    end: int
    answer: str
    math: bool


def _fallback_candidates(text: str) -> list[_Candidate]:
    """Math spans (a run joined by "and"/"or"/commas is one list answer: "$x = -2$ and
    $x = 1$") and the numbers written outside any span, in order."""
    found: list[_Candidate] = []
    for start, end, span in math_spans(text):
        inner = span.strip().rstrip(".,;").strip()
        if not inner:
            continue
        last = found[-1] if found else None
        if last is not None and last.math and _SPAN_JOINER.fullmatch(text, last.end, start):
            found[-1] = _Candidate(last.start, end, f"{last.answer}, {inner}", True)
        else:
            found.append(_Candidate(start, end, inner, True))
    spans = [(c.start, c.end) for c in found]
    numbers = []
    k = 0
    for m in standalone_numbers(text):
        while k < len(spans) and spans[k][1] <= m.start():
            k += 1
        if k < len(spans) and spans[k][0] <= m.start() < spans[k][1]:
            continue
        numbers.append(_Candidate(m.start(), m.end(), m.group(), False))
    return sorted(found + numbers, key=lambda c: c.start)


def math_fallback(text: str) -> Extraction | None:
    """The answer of a math output that states it without a box or phrase (lenient): the last
    math span or number that follows "is"/"="/"equals" ("the distance is \\(3\\sqrt{13}\\)",
    "the value of $k$ is -3"); else the last math span that is not a condition ("attained at
    $x = 1$", "for the case $n = 2$"); else the last number. The last bare number alone would
    turn `2\\sqrt{5}` into 5."""
    # The answer is near the end: the last 64 candidates are enough, and keep this linear.
    text = text[-_FALLBACK_TAIL:]
    candidates = _fallback_candidates(text)
    if not candidates:
        return None

    def before(c: _Candidate) -> tuple[int, int]:
        return max(0, c.start - _LOOK_BACK), c.start

    for c in reversed(candidates):
        if _COPULA_BEFORE.search(text, *before(c)) and not _CONDITION_BEFORE.search(
            text, *before(c)
        ):
            return Extraction(c.answer, "last_math" if c.math else "last_number", lenient=True)
    maths = [c for c in candidates if c.math]
    for c in reversed(maths):
        if not _CONDITION_BEFORE.search(text, *before(c)):
            return Extraction(c.answer, "last_math", lenient=True)
    if maths:
        return Extraction(maths[-1].answer, "last_math", lenient=True)
    return Extraction(candidates[-1].answer, "last_number", lenient=True)


def last_math(text: str) -> str | None:
    """The math answer `math_fallback` finds, as text."""
    found = math_fallback(text)
    return found.answer if found is not None else None


def _sentence_number(answer: str) -> str:
    """A prose answer to a numeric question ("after 3 days she has 18 eggs"): the number that
    ends the sentence, with its unit; an answer that starts with its number stays as written."""
    if not re.match(r"[^\W\d_]", answer):
        return answer
    nums = list(NUMBER.finditer(answer))
    return answer[nums[-1].start() :] if len(nums) >= 2 else answer


def extract_final_answer(
    text: str,
    *,
    lenient: bool = True,
    kind: str = "any",
    accept: Callable[[str], bool] | None = None,
) -> Extraction | None:
    """Boxed, then `####`, then a final-answer phrase, then `Answer:`, then (lenient) the last
    math span (kind="math") or the last number.

    `accept` says whether a candidate is an answer of the task's type: a phrase that states
    none ("the answer is reasonable") gives way to the next rule. kind="number": a prose answer
    gives the number that ends its sentence. kind="math": without a box or phrase, the last
    LaTeX math expression is the answer (so `2\\sqrt{5}` is never read as 5).
    """
    text = drop_confidence_lines(text.translate(MINUS_SIGNS))
    ok = accept or (lambda _a: True)
    boxed = final_boxed(text)
    if boxed and ok(boxed):
        return Extraction(boxed, "boxed")
    hashed = hash_answer(text)
    if hashed is not None and ok(hashed):
        return Extraction(hashed, "hash")
    for phrase in _phrase_hits(text):
        candidate = _sentence_number(phrase) if kind == "number" else phrase
        if ok(candidate):
            return Extraction(candidate, "final_answer")
    line = answer_line(text)
    if line is not None:
        candidate = _sentence_number(line) if kind == "number" else line
        if ok(candidate):
            return Extraction(candidate, "answer_line")
    if boxed:  # a box the task cannot read is still the answer it states
        return Extraction(boxed, "boxed")
    if lenient:
        if kind == "math":
            return math_fallback(text)
        num = last_number(text)
        if num is not None:
            return Extraction(num, "last_number", lenient=True)
    return None


def stated_answers(text: str) -> list[tuple[str, str]]:
    """Every explicit answer statement, best rule first: (answer, rule) for boxed, final-answer
    phrases (last first) and `Answer:` line. Tasks that must interpret the answer (an option
    letter, a label) try them in order and fall back to their own lenient rule."""
    text = drop_confidence_lines(text.translate(MINUS_SIGNS))
    found = []
    boxed = final_boxed(text)
    if boxed:
        found.append((boxed, "boxed"))
    found.extend((phrase, "final_answer") for phrase in _phrase_hits(text))
    line = answer_line(text)
    if line:
        found.append((line, "answer_line"))
    return found


# -- LaTeX wrappers ----------------------------------------------------------------------------

_WRAPPERS = re.compile(
    r"\\(?:text|textbf|textit|texttt|textrm|mathrm|mathbf|mathit|mathsf|mathtt|mbox|operatorname)"
    r"\s*\{"
)


def unwrap_latex(s: str) -> str:
    """Remove `\\text{..}`-style wrappers (keeping their contents), `$`, `\\(`/`\\)` delimiters."""
    out = s.strip()
    for _ in range(8):
        m = _WRAPPERS.search(out)
        if not m:
            break
        inner = _balanced(out, m.end() - 1)
        if inner is None:
            break
        out = out[: m.start()] + inner + out[m.end() + len(inner) + 1 :]
    out = out.replace("\\(", "").replace("\\)", "").replace("\\[", "").replace("\\]", "")
    out = out.replace("$", "")
    return out.strip()


# -- options -----------------------------------------------------------------------------------

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def option_letters(n: int) -> str:
    return LETTERS[:n]


def _norm_text(s: str) -> str:
    s = unwrap_latex(s).lower()
    s = re.sub(r"[\s\u3000]+", " ", s)
    return s.strip().strip(".;:,!?\"'`*").strip()


_RULED_OUT = re.compile(
    r"\b(?:not|rather than|instead of|isn't|is not|and not)\s+(?:option\s+)?"
    r"(?:\([A-Za-z]\)|\[[A-Za-z]\]|[A-Z]\b)",
    re.IGNORECASE,
)


def choice_letter(answer: str, letters: str) -> str | None:
    """The option letter an answer names: `C`, `(C)`, `C.`, `C) text`, `\\text{(C)}`,
    `Option C`, `**C**`; None when it names none of `letters` (or is ambiguous)."""
    s = unwrap_latex(answer).replace("**", "").strip().strip("*_").strip()
    s = re.sub(r"^(?:option|choice)\s*[:：]?\s*", "", s, flags=re.IGNORECASE).strip()
    s = s.strip("*_").strip()
    # "B, not (C)": an option ruled out after the answer is not a second answer.
    s = _RULED_OUT.sub("", s).strip().rstrip(",;").strip()
    both = letters + letters.lower()
    alone = re.fullmatch(rf"[\(\[]?([{both}])[\)\]]?\.?", s)
    if alone:
        return alone.group(1).upper()
    # "(C) text": a bracketed letter is explicit; "C. text", "C) text", "C: text" too.
    m = re.match(rf"[\(\[]([{both}])[\)\]]\s*(.*)$", s, re.S) or re.match(
        rf"([{letters}])[.):,]\s+(.*)$", s, re.S
    )
    if not m:
        return None
    # "(A) and (B)": two options named, not one.
    if re.search(rf"[\(\[][{both}][\)\]]", m.group(2)):
        return None
    return m.group(1).upper()


def match_option_text(answer: str, options: Sequence[str]) -> str | None:
    """The letter whose option text the answer repeats (case, spacing, final period ignored);
    None when no option, or more than one, matches."""
    a = _norm_text(answer)
    if not a:
        return None
    hits = [LETTERS[i] for i, o in enumerate(options) if _norm_text(o) == a]
    return hits[0] if len(hits) == 1 else None


_LAST_OPTION = r"\(([{L}])\)|\b(?:[Oo]ption|[Cc]hoice)\s+([{L}])\b"


def last_option(text: str, letters: str) -> str | None:
    """The last `(C)` or `option C` anywhere in the text: a lenient fallback."""
    hits = re.findall(_LAST_OPTION.format(L=letters), text)
    return next(filter(None, hits[-1])) if hits else None


@dataclass(frozen=True)
class _LabelPatterns:
    """The regexes that read one set of shown option labels, compiled once per set."""

    ruled_out: re.Pattern[str]
    alone: re.Pattern[str]
    bracketed: re.Pattern[str]
    dotted: re.Pattern[str]
    anywhere: re.Pattern[str]


@functools.lru_cache(maxsize=64)
def _label_patterns(labels: tuple[str, ...]) -> _LabelPatterns:
    # Longest first, so `IV` is never read as `I` nor `12` as `1`.
    alt = "|".join(re.escape(x) for x in sorted(set(labels), key=len, reverse=True))
    return _LabelPatterns(
        ruled_out=re.compile(
            rf"\b(?:not|rather than|instead of|isn't|is not|and not)\s+(?:option\s+)?"
            rf"(?:\((?:{alt})\)|\[(?:{alt})\]|(?:{alt})\b)",
            re.IGNORECASE,
        ),
        alone=re.compile(rf"[\(\[]?({alt})[\)\]]?\.?", re.I),
        bracketed=re.compile(rf"[\(\[]({alt})[\)\]]", re.I),
        dotted=re.compile(rf"({alt})[.):,]\s+"),
        anywhere=re.compile(rf"\(({alt})\)|\b(?:[Oo]ption|[Cc]hoice)\s+({alt})\b"),
    )


def choice_label(answer: str, labels: Sequence[str]) -> int | None:
    """The position of the shown label an answer names (`3`, `(III)`, `Option 2`, `iv`,
    `IV. text`), for options shown with labels other than letters; None when it names none of
    `labels`, or two. A bare or bracketed label matches in any case (`(iii)`), a label followed
    by text only as shown (`III. text`), as `choice_letter` does for letters."""
    pat = _label_patterns(tuple(labels))
    s = unwrap_latex(answer).replace("**", "").strip().strip("*_").strip()
    s = re.sub(r"^(?:option|choice)\s*(?:number\s*)?[:：#]?\s*", "", s, flags=re.I).strip()
    s = pat.ruled_out.sub("", s.strip("*_").strip()).strip().rstrip(",;").strip()
    upper = [x.upper() for x in labels]
    alone = pat.alone.fullmatch(s)
    if alone:
        return upper.index(alone.group(1).upper())
    m = pat.bracketed.match(s)
    if m is None:
        m = pat.dotted.match(s)
    if m is None or pat.bracketed.search(s, m.end()):  # "(1) and (2)": two options named
        return None
    return upper.index(m.group(1).upper())


def last_shown_label(text: str, labels: Sequence[str]) -> int | None:
    """The position of the last `(3)` or `option III` anywhere: the lenient fallback for
    options shown with labels other than letters (labels in their shown case only)."""
    hits = _label_patterns(tuple(labels)).anywhere.findall(text)
    return list(labels).index(next(filter(None, hits[-1]))) if hits else None


def _are_letters(labels: Sequence[str]) -> bool:
    return tuple(labels) == tuple(LETTERS[: len(labels)])


def _extract_labelled(
    text: str, options: Sequence[str], labels: Sequence[str], lenient: bool
) -> Extraction | None:
    """`extract_choice` for options shown with numbers or numerals: the label named is mapped
    back to its position letter. An option letter is not one of the shown labels, so it is no
    answer (never read as the option at that position); any other unmapped answer is returned
    as written, as for letters."""
    unmapped: Extraction | None = None
    for answer, rule in stated_answers(text):
        pos = choice_label(answer, labels)
        if pos is not None:
            return Extraction(LETTERS[pos], rule)
        if options:
            by_text = match_option_text(answer, options)
            if by_text is not None:
                return Extraction(by_text, "option_text")
        if unmapped is None and choice_letter(answer, LETTERS) is None:
            unmapped = Extraction(unwrap_latex(answer), rule)
    if unmapped is not None:
        return unmapped
    first = drop_confidence_lines(text).strip().split("\n", 1)[0]
    pos = choice_label(first, labels) if first else None
    if pos is not None:
        return Extraction(LETTERS[pos], "bare_option")
    if lenient:
        pos = last_shown_label(text, labels)
        if pos is not None:
            return Extraction(LETTERS[pos], "last_option", lenient=True)
    return None


def extract_choice(
    text: str,
    options: Sequence[str],
    *,
    lenient: bool = True,
    labels: Sequence[str] | None = None,
) -> Extraction | None:
    """An option letter from an answer: stated answers first (boxed, final-answer phrase,
    `Answer:`), read as a letter or as an option's text; then (lenient) the last `(C)`.

    A stated answer that names no option is returned as written, so a gold given as text (a
    few BBH items) can still be compared. `labels`: the labels the options were shown with (an
    `options` variant's `1`, `2`, ... or `I`, `II`, ...); the answer is read in those and
    returned as the letter of its position, the letter the gold is kept in.
    """
    if labels is not None and not _are_letters(labels):
        if options and len(labels) != len(options):
            raise HarnessError(f"{len(labels)} option labels for {len(options)} options")
        return _extract_labelled(text, options, labels, lenient)
    letters = option_letters(len(options)) if options else LETTERS
    unmapped: Extraction | None = None
    for answer, rule in stated_answers(text):
        letter = choice_letter(answer, letters)
        if letter is not None:
            return Extraction(letter, rule)
        if options:
            by_text = match_option_text(answer, options)
            if by_text is not None:
                return Extraction(by_text, "option_text")
        if unmapped is None:
            unmapped = Extraction(unwrap_latex(answer), rule)
    if unmapped is not None:
        return unmapped
    # An answer part that is only its option: `B`, `B.`, `**B**`, `(B) 15 apples`.
    first = drop_confidence_lines(text).strip().split("\n", 1)[0]
    letter = choice_letter(first, letters) if first else None
    if letter is not None:
        return Extraction(letter, "bare_option")
    if lenient:
        letter = last_option(text, letters)
        if letter is not None:
            return Extraction(letter, "last_option", lenient=True)
    return None


# -- code --------------------------------------------------------------------------------------

_OPEN_FENCE = re.compile(r"[ \t]*```[ \t]*([\w+.-]*)")
_CLOSE_FENCE = re.compile(r"[ \t]*```[ \t]*")
_PYTHON_TAGS = {"", "python", "py", "python3", "py3", "pycon", "ipython"}


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Complete fenced blocks as (language tag, code), in order: one pass over the lines, so
    thousands of unclosed fences cost no more than reading them. A fence line with a tag never
    closes a block; a block still open at the end (cut off) is not returned."""
    if "```" not in text:
        return []
    blocks: list[tuple[str, str]] = []
    tag: str | None = None
    body: list[str] = []
    for line in text.split("\n"):
        if tag is None:
            m = _OPEN_FENCE.match(line)
            if m:
                tag, body = m.group(1).lower(), []
        elif "```" in line and _CLOSE_FENCE.fullmatch(line):
            blocks.append((tag, "".join(f"{b}\n" for b in body)))
            tag = None
        else:
            body.append(line)
    return blocks


def _compiles(code: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(code, "<answer>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False  # deeply nested or huge text is not an answer either
    return True


def extract_code(text: str, *, continuation: bool = False) -> Extraction | None:
    """The last complete fenced python block; without one, the text itself: a `continuation`
    of the prompt where the task allows it (HumanEval), else `bare_code` (lenient) if it
    compiles. An unclosed block at the end (cut off by the token limit) is never taken."""
    blocks = [code for tag, code in code_blocks(text) if tag in _PYTHON_TAGS]
    if blocks:
        return Extraction(blocks[-1].rstrip() + "\n", "code_block")
    if "```" in text:
        return None
    if continuation and text.strip():
        return Extraction(text, "continuation")
    if text.strip() and _compiles(text):
        return Extraction(text.rstrip() + "\n", "bare_code", lenient=True)
    return None
