"""Grading of option letters and short labels (True/False, Yes/No, valid/invalid).

Extraction (`extract.extract_choice`) turns an answer into a letter where it can; grading
here compares letters, or texts when the gold is written as text (a few BBH items whose options
were split at commas by the dataset, e.g. "Monsters, Inc").
"""

from __future__ import annotations

import re

from harness.tasks.grading.extract import LETTERS, unwrap_latex

LABELS: dict[str, tuple[str, ...]] = {
    "bool": ("true", "false"),
    "yesno": ("yes", "no"),
    "validity": ("valid", "invalid"),
}


def norm_text(s: str) -> str:
    """Lowercase, LaTeX wrappers and surrounding punctuation removed, spaces collapsed."""
    s = unwrap_latex(s).lower()
    s = re.sub(r"\s+", " ", s)
    return s.strip().strip(".;:,!?\"'`*").strip()


def is_letter(s: str) -> bool:
    return len(s) == 1 and s in LETTERS


def choice_equal(answer: str, gold: str) -> bool:
    """Letters compare as letters; a text gold compares with the answer's text."""
    if is_letter(gold.upper()) and len(gold) == 1:
        return answer.strip().upper() == gold.upper()
    return norm_text(answer) == norm_text(gold)


def label_of(answer: str, kind: str) -> str | None:
    """The label an answer gives ("Yes, it does." -> "yes"), or None when it gives none or
    both (so "valid or invalid" is no answer)."""
    labels = LABELS[kind]
    text = norm_text(answer)
    if kind == "validity":
        text = re.sub(r"\bnot (?:deductively )?valid\b", "invalid", text)
    words = re.findall(r"[a-z]+", text)
    if not words:
        return None
    if words[0] in labels:
        return words[0]
    found = {w for w in words if w in labels}
    return found.pop() if len(found) == 1 else None


def last_label(text: str, kind: str) -> str | None:
    """The last label word anywhere in the text: a lenient fallback."""
    labels = LABELS[kind]
    hits = re.findall(r"\b(" + "|".join(labels) + r")\b", text, flags=re.IGNORECASE)
    return hits[-1].lower() if hits else None
