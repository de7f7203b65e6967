"""Answer extraction shared by every task: one implementation of each rule, never a copy per task.

Each rule returns the answer as found in the text plus the rule's name, which the record keeps,
so a grading dispute can always be traced to the rule that produced the answer.
"""

from __future__ import annotations

import re
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


def _balanced(text: str, start: int) -> str | None:
    """The contents of the brace group opening at text[start] == '{', nested braces allowed."""
    depth = 0
    for i in range(start, len(text)):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in "{}":
            continue
        if c == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif c == "}" and (i == 0 or text[i - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
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


_HASH = re.compile(r"####\s*([^\n]+)")


def hash_answer(text: str) -> str | None:
    """GSM8K's `#### 42` convention (last occurrence)."""
    hits = _HASH.findall(text)
    return hits[-1].strip() if hits else None


_FINAL = re.compile(
    r"(?:final answer|the answer)\s*(?:is|:|=)\s*[:\s]*(.+?)(?:\n|$)",
    re.IGNORECASE,
)


def final_answer_phrase(text: str) -> str | None:
    """`The final answer is X` / `the answer is: X` (last occurrence), trailing period removed."""
    hits = _FINAL.findall(text)
    if not hits:
        return None
    ans = hits[-1].strip()
    boxed = last_boxed(ans)
    if boxed is not None:
        return boxed
    ans = re.sub(r"^\$+|\$+$", "", ans.rstrip(".").strip()).strip()
    return ans.rstrip(".").strip() or None


NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def last_number(text: str) -> str | None:
    """The last number in the text: a lenient fallback, flagged as such by callers."""
    hits = NUMBER.findall(text)
    return hits[-1] if hits else None


def extract_final_answer(text: str, *, lenient: bool = True) -> Extraction | None:
    """Boxed, then `####`, then a final-answer phrase, then (lenient) the last number."""
    boxed = last_boxed(text)
    if boxed is not None:
        return Extraction(boxed, "boxed")
    hashed = hash_answer(text)
    if hashed is not None:
        return Extraction(hashed, "hash")
    phrase = final_answer_phrase(text)
    if phrase is not None:
        return Extraction(phrase, "final_answer")
    if lenient:
        num = last_number(text)
        if num is not None:
            return Extraction(num, "last_number", lenient=True)
    return None
