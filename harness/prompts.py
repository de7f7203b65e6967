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
STATED_CONFIDENCE_INSTRUCTION = (
    "When you have finished reasoning, write how confident you are that your answer is correct "
    "as `Confidence: <0-100>%` on its own line, then give the final answer."
)
"""Asked by the r1-confidence prompt style; the confidence comes before the final answer so a
lenient last-number fallback never mistakes it for the answer."""
