"""Prompt wording shared by tasks, model specs and the config: one home for the styles and the
closing instructions, importable from anywhere (it imports nothing of harness)."""

from __future__ import annotations

PROMPT_STYLES = ("r1", "cot-fewshot", "plain", "r1-confidence")
"""r1: zero-shot, no system prompt, a boxed answer (DeepSeek's protocol); cot-fewshot: the
task's worked examples; plain: the problem alone; r1-confidence: r1 plus a stated confidence."""

R1_MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
CHOICE_INSTRUCTION = (
    "Please reason step by step, and put the letter of the correct option within \\boxed{}."
)
CODE_INSTRUCTION = (
    "Please reason step by step, then write your complete solution in one fenced "
    "```python code block."
)
ANSWER_FORMATS = {
    "boxed": R1_MATH_INSTRUCTION,
    "hash": (
        "Please reason step by step, and end with a line `#### <answer>` giving the final answer."
    ),
    "answer": "Please reason step by step, and end with a line `Answer: <answer>`.",
}
"""The closing instructions a `format` variant swaps between (the r1 style's is `boxed`); every
extractor reads all three forms, so only the wording the model sees changes."""
LABEL_WORDS = {"letter": "letter", "number": "number", "roman": "roman numeral"}
"""What an option label is called in the choice instruction, by label style."""


def choice_instruction(label: str = "letter", answer_format: str = "boxed") -> str:
    """The choice tasks' closing instruction for an option label style and answer form."""
    word = LABEL_WORDS.get(label, label)
    if answer_format == "hash":
        return (
            f"Please reason step by step, and end with a line `#### <{word}>` giving the {word} "
            "of the correct option."
        )
    if answer_format == "answer":
        return (
            "Please reason step by step, and end with a line "
            f"`Answer: <{word} of the correct option>`."
        )
    return (
        f"Please reason step by step, and put the {word} of the correct option within \\boxed{{}}."
    )


STATED_CONFIDENCE_INSTRUCTION = (
    "When you have finished reasoning, write how confident you are that your answer is correct "
    "as `Confidence: <0-100>%` on its own line, then give the final answer."
)
"""Asked by the r1-confidence prompt style; the confidence comes before the final answer so a
lenient last-number fallback never mistakes it for the answer."""
