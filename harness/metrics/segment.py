"""Reasoning chains as steps: lines (paragraphs, equations on their own line), then sentences.

Chains are far longer than a sentence encoder's window, and a step is the unit both chain
similarity (which steps of the teacher does the student take, in which order) and the loop
detector (which steps come back) reason about.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\\$(\[])")
_HAS_WORD = re.compile(r"\w")
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")


def segment_steps(text: str) -> list[str]:
    """Non-empty steps in order: each line, split into sentences; bullets and markers dropped.

    A sentence ends at . ! or ? followed by space and a capital, digit, `$`, `\\`, `(` or `[`,
    so decimals (3.5) and inline math stay whole; a step without a letter or digit is dropped.
    """
    steps: list[str] = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip()
        if not line:
            continue
        for part in _SENTENCE_END.split(line):
            part = part.strip()
            if part and _HAS_WORD.search(part):
                steps.append(part)
    return steps
