"""Synthetic records for the metrics tests and benchmark (records are all metrics read)."""

from __future__ import annotations

from typing import Any

from harness.types import Record


def make_record(
    pid: str,
    role: str = "student",
    correct: bool | None = True,
    sample: int = 0,
    *,
    answer: str | None = "",
    task: str = "t",
    **fields: Any,
) -> Record:
    """A graded record; answer defaults to "1" when right and "0" when wrong."""
    if answer == "":
        answer = None if correct is None else ("1" if correct else "0")
    base: dict[str, Any] = {
        "run_id": "r",
        "task": task,
        "problem_id": pid,
        "role": role,
        "sample": sample,
        "model": "m",
        "backend": "b",
        "question": "q",
        "gold": "1",
        "text": f"The answer is {answer}." if answer is not None else "",
        "reasoning": None,
        "answer": answer,
        "extractor": "final_answer" if answer is not None else None,
        "lenient": False,
        "correct": correct,
        "truncated": False,
        "finish_reason": "stop",
        "prompt_hash": "h",
        "cache_key": f"{task}/{pid}/{role}/{sample}",
        "prompt_tokens": 5,
        "completion_tokens": 10,
        "seconds": 0.1,
        "cached": False,
    }
    base.update(fields)
    return Record(**base)
