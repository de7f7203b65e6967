"""Answer extraction shared by every task: one implementation of each rule, never a copy per task.

Each rule returns the answer as found in the text plus the rule's name, which the record keeps,
so a grading dispute can always be traced to the rule that produced the answer. Rules that
guess (the last number, the last option letter anywhere, code that merely compiles) are
flagged `lenient`, so metrics can count answers that were found only by a fallback.

Rules and their names: `boxed` (last complete `\\boxed{}`), `hash` (GSM8K `#### n`),
`final_answer` ("the final answer is X", "so the answer is X"), `answer_line` ("Answer: X"),
`last_number` (lenient), `option_text` (an option's text instead of its letter), `last_option`
(lenient: the last "(C)" anywhere), `last_label` (lenient: the last True/False, Yes/No ...),
`code_block` (the last complete fenced python block), `continuation` (HumanEval: the text goes
on from the prompt), `bare_code` (lenient: unfenced text that compiles).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@dataclass(frozen=True)
class Extraction:
    answer: str
    rule: str
    lenient: bool = False


def split_reasoning(text: str, think: bool) -> tuple[str | None, str, bool | None]:
    """(reasoning, answer part, closed) of a model's output.

    For a think-tag model, text before the last `</think>` is reasoning; with no `</think>` the
    answer was never given (closed=False) and the answer part is empty. For other models the
    whole text is the answer part and closed is None, unless the text carries think tags anyway.
    """
    if THINK_CLOSE in text:
        head, _, tail = text.rpartition(THINK_CLOSE)
        reasoning = head.split(THINK_OPEN, 1)[1] if THINK_OPEN in head else head
        return reasoning.strip(), tail.strip(), True
    if think:
        body = text.split(THINK_OPEN, 1)[1] if THINK_OPEN in text else text
        return body.strip(), "", False
    return None, text.strip(), None


# -- boxed -------------------------------------------------------------------------------------


def _balanced(text: str, start: int) -> str | None:
    """The contents of the brace group opening at text[start] == '{', nested braces allowed.

    Escaped braces (`\\{`, `\\}`) do not count, so `\\boxed{\\{1, 2\\}}` is the set {1, 2}.
    """
    depth = 0
    i = start
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
        i += 1
    return None


_BOXED = re.compile(r"\\(?:boxed|fbox)\s*(\{)?")


def last_boxed(text: str) -> str | None:
    """Contents of the last complete `\\boxed{...}` (or `\\boxed 5`, `\\fbox{...}`)."""
    found: str | None = None
    for m in _BOXED.finditer(text):
        if m.group(1):
            inner = _balanced(text, m.start(1))
            if inner is not None:
                found = inner
        else:
            tail = re.match(r"\s*([^\s$]+)", text[m.end() :])
            if tail:
                found = tail.group(1)
    return found.strip() if found is not None else None


# -- phrases -----------------------------------------------------------------------------------

_HASH = re.compile(r"####\s*([^\n]+)")


def hash_answer(text: str) -> str | None:
    """GSM8K's `#### 42` convention (last occurrence)."""
    hits = [h.strip() for h in _HASH.findall(text) if h.strip()]
    return hits[-1] if hits else None


_FINAL = re.compile(r"(?:final answer|the answer)\s*(?:is|:|=)\s*:?", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\n")


def _math_span(s: str) -> str | None:
    """The first `$...$`, `\\(...\\)` or `\\[...\\]` at the start of s, unwrapped."""
    for open_, close in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(open_):
            end = s.find(close, len(open_))
            if end > len(open_):
                return s[len(open_) : end].strip()
    return None


def _clean_phrase(ans: str) -> str | None:
    ans = ans.strip().lstrip("*").strip()
    boxed = last_boxed(ans.split("\n", 1)[0]) if "\\boxed" in ans else None
    if boxed is not None:
        return boxed
    math = _math_span(ans)
    if math is not None:
        return math.rstrip(".").strip() or None
    end = _SENTENCE_END.search(ans)
    if end:
        ans = ans[: end.start()]
    ans = ans.strip().strip("*").strip()
    ans = re.sub(r"^\$+|\$+$", "", ans.rstrip(".").strip()).strip()
    return ans.rstrip(".").strip() or None


def final_answer_phrase(text: str) -> str | None:
    """`The final answer is X` / `so the answer is: X` (the last occurrence), cleaned.

    The answer ends at the end of its sentence or line; a `$...$` or `\\boxed{}` right after the
    phrase is taken whole (Minerva's "The final answer is $5$. I hope it is correct.").
    """
    last = None
    for m in _FINAL.finditer(text):
        last = m
    if last is None:
        return None
    return _clean_phrase(text[last.end() :])


_ANSWER_LINE = re.compile(
    r"^[ \t>*#_]*answer[ \t*_]*[:：][ \t]*(.+)$", re.IGNORECASE | re.MULTILINE
)


def answer_line(text: str) -> str | None:
    """`Answer: X` on a line of its own (the last one), as simple-evals style prompts ask."""
    hits = _ANSWER_LINE.findall(text)
    for hit in reversed(hits):
        cleaned = _clean_phrase(hit)
        if cleaned:
            return cleaned
    return None


NUMBER = re.compile(r"-?\$?\d(?:[\d,]*\d)?(?:\.\d+)?|-?\.\d+")


def last_number(text: str) -> str | None:
    """The last number in the text: a lenient fallback, flagged as such by callers."""
    hits = NUMBER.findall(text)
    return hits[-1] if hits else None


def extract_final_answer(text: str, *, lenient: bool = True) -> Extraction | None:
    """Boxed, then `####`, then a final-answer phrase, then `Answer:`, then (lenient) the last
    number."""
    boxed = last_boxed(text)
    if boxed:
        return Extraction(boxed, "boxed")
    hashed = hash_answer(text)
    if hashed is not None:
        return Extraction(hashed, "hash")
    phrase = final_answer_phrase(text)
    if phrase is not None:
        return Extraction(phrase, "final_answer")
    line = answer_line(text)
    if line is not None:
        return Extraction(line, "answer_line")
    if lenient:
        num = last_number(text)
        if num is not None:
            return Extraction(num, "last_number", lenient=True)
    return None


def stated_answers(text: str) -> list[tuple[str, str]]:
    """Every explicit answer statement, best rule first: (answer, rule) for boxed, final-answer
    phrase and `Answer:` line. Tasks that must interpret the answer (an option letter, a label)
    try them in order and fall back to their own lenient rule."""
    found = []
    boxed = last_boxed(text)
    if boxed:
        found.append((boxed, "boxed"))
    phrase = final_answer_phrase(text)
    if phrase:
        found.append((phrase, "final_answer"))
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


def choice_letter(answer: str, letters: str) -> str | None:
    """The option letter an answer names: `C`, `(C)`, `C.`, `C) text`, `\\text{(C)}`,
    `Option C`, `**C**`; None when it names none of `letters` (or is ambiguous)."""
    s = unwrap_latex(answer).strip().strip("*").strip()
    s = re.sub(r"^(?:option|choice)\s*[:：]?\s*", "", s, flags=re.IGNORECASE).strip()
    s = s.strip("*").strip()
    both = letters + letters.lower()
    alone = re.fullmatch(rf"[\(\[]?([{both}])[\)\]]?\.?", s)
    if alone:
        return alone.group(1).upper()
    # "(C) text": a bracketed letter is explicit; "C. text", "C) text", "C: text" too.
    m = re.match(rf"[\(\[]([{both}])[\)\]]\s*(.*)$", s, re.S) or re.match(
        rf"([{letters}])[.):]\s+(.*)$", s, re.S
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


def extract_choice(text: str, options: Sequence[str], *, lenient: bool = True) -> Extraction | None:
    """An option letter from an answer: stated answers first (boxed, final-answer phrase,
    `Answer:`), read as a letter or as an option's text; then (lenient) the last `(C)`.

    A stated answer that names no option is returned as written, so a gold given as text (a
    few BBH items) can still be compared.
    """
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
    if lenient:
        letter = last_option(text, letters)
        if letter is not None:
            return Extraction(letter, "last_option", lenient=True)
    return None


# -- code --------------------------------------------------------------------------------------

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.S | re.M)
_PYTHON_TAGS = {"", "python", "py", "python3", "py3", "pycon", "ipython"}


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Complete fenced blocks as (language tag, code), in order."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]


def _compiles(code: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(code, "<answer>", "exec")
    except (SyntaxError, ValueError):
        return False
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


# -- stated confidence (calibration) -------------------------------------------------------------

STATED_CONFIDENCE_INSTRUCTION = (
    "When you have finished reasoning, write how confident you are that your answer is correct "
    "as `Confidence: <0-100>%` on its own line, then give the final answer."
)
"""Asked by the r1-confidence prompt style; the confidence comes before the final answer so a
lenient last-number fallback never mistakes it for the answer."""

_CONFIDENCE = re.compile(
    r"confidence(?:\s+level)?\s*(?:is|of|:|=)?\s*[:=]?\s*\**\s*(\d{1,3}(?:\.\d+)?)\s*"
    r"(%|percent|/\s*100|/\s*10\b)?",
    re.IGNORECASE,
)


def extract_stated_confidence(text: str) -> float | None:
    """The last stated confidence (`Confidence: 80%`, `confidence 0.8`, `8/10`) as 0-1.

    A bare number above 1 is read as a percentage; anything above 100% is not a confidence.
    """
    hits = _CONFIDENCE.findall(text)
    if not hits:
        return None
    number, unit = hits[-1]
    value = float(number)
    unit = unit.replace(" ", "").lower()
    if unit == "/10":
        value /= 10.0
    elif unit or value > 1.0:
        value /= 100.0
    return value if 0.0 <= value <= 1.0 else None
