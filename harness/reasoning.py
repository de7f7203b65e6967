"""How a reasoning model's output is laid out: think tags, chat-template leftovers and a stated
confidence. The neutral home that backends (which split an output into reasoning and answer),
tasks (which grade the answer part) and metrics (health, calibration) all read, so none of them
imports another."""

from __future__ import annotations

import re

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
SPLIT_VERSION = 2
"""Bumped whenever `split_reasoning` changes how it splits: it is part of every cache key, so a
cached raw output is never scored with a stale split."""


MINUS_SIGNS = str.maketrans({"\u2212": "-", "\ufe63": "-", "\uff0d": "-"})
"""Unicode minus signs read as `-`: `−5` is -5, never 5."""

LEAKED_TURN = re.compile(
    r"<\|im_start\|>|<\|im_end\|>|<\|user\|>|<\|assistant\|>|<\|system\|>|<\|eot_id\|>"
    r"|<\|start_header_id\|>|<\|end_header_id\|>|<\|endoftext\|>|<\|end_of_text\|>"
    r"|<\|end\|>|<\|eos\|>|<｜(?:User|Assistant|end▁of▁sentence)｜>|</s>|<end_of_turn>"
    r"|<start_of_turn>|\[INST\]"
)
"""Chat-template tokens a model writes when it keeps talking after its answer (a new user
turn, an end-of-text marker). Nothing after the first one is the model's answer."""


def cut_leaked_turn(text: str) -> tuple[str, bool]:
    """The text before the first leaked chat-template token, and whether there was one."""
    m = LEAKED_TURN.search(text)
    return (text[: m.start()], True) if m else (text, False)


def split_reasoning(text: str, think: bool) -> tuple[str | None, str, bool | None]:
    """(reasoning, answer part, closed) of a model's output.

    For a think-tag model, text before the `</think>` that precedes the answer is reasoning.
    With several `</think>` (an answer, then a stray tag) the answer part starts at the last
    non-empty segment; stray tags stay in the part they were in, where the health section
    sees them (and grading ignores them). With no `</think>` the answer was never given
    (closed=False) and the answer part is empty. For other models the whole text is the answer
    part and closed is None, unless the text carries think tags anyway.
    """
    if THINK_CLOSE in text:
        segments = text.split(THINK_CLOSE)
        last = len(segments) - 1
        while last > 1 and not segments[last].strip():
            last -= 1
        head = THINK_CLOSE.join(segments[:last])
        reasoning = head.split(THINK_OPEN, 1)[1] if THINK_OPEN in head else head
        return reasoning.strip(), THINK_CLOSE.join(segments[last:]).strip(), True
    if think:
        body = text.split(THINK_OPEN, 1)[1] if THINK_OPEN in text else text
        return body.strip(), "", False
    return None, text.strip(), None


# -- stated confidence (calibration) -------------------------------------------------------------

_CONFIDENCE_WORD = re.compile(r"confidence", re.IGNORECASE)
_CONFIDENCE_VALUE = re.compile(
    r"(?:[ \t]+level)?[ \t]*(?:is|of|:|=)?[ \t]*[:=]?[ \t]*\**[ \t]*(\d{1,3}(?:\.\d+)?)[ \t]*"
    r"(%|percent|/[ \t]*100|/[ \t]*10\b)?",
    re.IGNORECASE,
)
_CONFIDENCE_WINDOW = 48
"""Characters after the word a stated confidence may take: matching within a fixed window keeps
the rule linear however much whitespace follows the word."""


def extract_stated_confidence(text: str) -> float | None:
    """The last stated confidence (`Confidence: 80%`, `confidence 0.8`, `8/10`) as 0-1.

    A bare number above 1 is read as a percentage; anything above 100% is not a confidence.
    """
    hits = []
    for word in _CONFIDENCE_WORD.finditer(text):
        # Whitespace runs become one space, so the pattern's optional spaces cannot backtrack.
        window = " ".join(text[word.end() : word.end() + _CONFIDENCE_WINDOW].split())
        m = _CONFIDENCE_VALUE.match(" " + window)
        if m:
            hits.append(m.groups(default=""))
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
