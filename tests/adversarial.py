"""Hostile model outputs for the extractors: long strings built to make a careless regex or a
nested loop take quadratic (or exponential) time.

Each is `size` characters (100 KB by default), made by repeating one unit: runs of whitespace,
a confidence phrase followed by 2000 newlines or 500 spaces, thousands of unclosed `\\boxed{`
and code fences, deeply nested braces, digits and commas, answer phrases over and over, think
tags, math delimiters that never close. The same strings on every run (no randomness but a
seeded `random.Random`).

    from tests.adversarial import adversarial_strings
    for name, text in adversarial_strings().items(): extract_final_answer(text)
"""

from __future__ import annotations

import random
import string

SIZE = 100_000

# name -> the unit repeated to the size (a string), or a function of the size.
_UNITS: dict[str, object] = {
    # whitespace
    "spaces": " ",
    "newlines": "\n",
    "mixed-whitespace": " \t\n\r\u3000\u00a0",
    "blank-lines-with-spaces": "   \n",
    # stated confidence with nothing after it
    "confidence-then-2000-newlines": "Confidence:" + "\n" * 2000,
    "confidence-then-500-spaces": "confidence" + " " * 500,
    "confidence-words": "confidence level is of = ",
    "confidence-digits": lambda n: "Confidence: " + "9" * (n - 12),
    "confidence-percent-lines": "Confidence: 80%\n",
    # boxes
    "unclosed-boxed": "\\boxed{",
    "unclosed-boxed-numbers": "\\boxed{12, ",
    "boxed-without-brace": "\\boxed ",
    "closed-boxed": "\\boxed{1} ",
    "boxed-in-boxed": lambda n: "\\boxed{" * (n // 8) + "1" + "}" * (n // 8),
    "fbox-unclosed": "\\fbox{",
    # braces
    "nested-braces": lambda n: "{" * (n // 2) + "}" * (n // 2),
    "open-braces": "{",
    "close-braces": "}",
    "escaped-braces": "\\{",
    "backslashes": "\\",
    "unclosed-text": "\\text{",
    "unclosed-frac": "\\frac{1}{",
    "nested-frac": lambda n: "\\frac{" * (n // 11) + "1}{2}" * (n // 11),
    # code fences
    "unclosed-fences": "```\n",
    "unclosed-python-fences": "```python\nx = 1\n",
    "inline-backticks": "`",
    "fence-no-newline": "```",
    # numbers
    "digits": "1234567890",
    "digits-and-commas": "1,234,",
    "commas": ",",
    "comma-digit": "1,",
    "dots-and-digits": "1.2.",
    "slashes-and-digits": "1/2/",
    "minus-signs": "-",
    "unicode-minus-digits": "\u22121",
    "dollar-digits": "$1",
    "percent-signs": "5%",
    "degrees": "30^\\circ ",
    "thousands-thin-space": "1\\,000\\,",
    # answer phrases
    "the-answer-is": "The answer is ",
    "final-answer-is": "The final answer is: ",
    "answer-colon-lines": "Answer: \n",
    "bold-answer": "**Answer:** **",
    "final-answer-headings": "**Final Answer**\n",
    "hash-marks": "#",
    "hash-answers": "#### ",
    "so-the-answer": "so the answer is so the answer is ",
    # math delimiters
    "dollars": "$",
    "double-dollars": "$$",
    "open-parens-math": "\\(",
    "open-bracket-math": "\\[",
    "escaped-dollars": "\\$",
    # options
    "option-letters": "(A) ",
    "option-words": "Option ",
    "letter-dots": "B. ",
    "bare-letters": "A",
    # think tags and chat leftovers
    "think-opens": "<think>",
    "think-closes": "</think>",
    "think-pairs": "<think></think>",
    "chat-tokens": "<|im_start|>",
    "angle-brackets": "<",
    # misc
    "equals": "= ",
    "assignments": "x = ",
    "stars": "*",
    "carets": "^{",
    "one-long-word": "a",
    "unicode-text": "\u00e9\u4e2d\U0001f600",
}


def _fill(unit: str, n: int) -> str:
    return (unit * (n // len(unit) + 1))[:n]


def _random_text(n: int) -> str:
    rng = random.Random(1729)
    alphabet = string.printable + "{}\\$"
    return "".join(rng.choice(alphabet) for _ in range(n))


def adversarial_strings(size: int = SIZE) -> dict[str, str]:
    """name -> a hostile string of `size` characters (some a few characters short of it)."""
    out: dict[str, str] = {}
    for name, unit in _UNITS.items():
        out[name] = unit(size) if callable(unit) else _fill(unit, size)
    out["random-printable"] = _random_text(size)
    # An answer at the very end after a hostile body: the extractor must still get there.
    out["digits-then-boxed"] = _fill("1,", size - 12) + " \\boxed{18}"
    out["unclosed-boxes-then-answer"] = _fill("\\boxed{", size - 16) + " The answer is 18."
    out["think-then-answer"] = "<think>\n" + _fill("hmm, ", size - 30) + "\n</think>\n\\boxed{18}"
    return out
