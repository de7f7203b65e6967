"""The lm-eval bridge, both ways, and what the two directions share.

- `--tasks lmeval:<task>` (harness/tasks/lmeval.py): an lm-eval `generate_until` task run by
  harness: lm-eval builds the prompts and scores with its own filters and metrics; harness
  generates through its backends, cache and records.
- `lm_eval --model harness --model_args spec=...` (harness/lmeval/model.py): harness's
  backends and cache as an lm-eval model.

Both directions turn an lm-eval context into the same harness request (same messages, same
sampling, same cache key), so a generation made by one is reused by the other, and both cut the
text at the task's `until` strings the same way before lm-eval's filters see it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from harness.errors import HarnessError
from harness.types import RAW_ROLE, Message

CHAT_MARK = "\x00harness-chat\x00"
"""Start of a context that carries chat messages (JSON) instead of a rendered prompt string."""

FEWSHOT_SEED = 1234
"""lm-eval's default seed for drawing few-shot examples (simple_evaluate's fewshot_random_seed)."""


def require_lmeval() -> Any:
    """Import lm_eval, or say in one line how to install it."""
    try:
        import lm_eval
    except ImportError as e:
        raise HarnessError(
            "the lm-eval bridge needs the lm-eval package, which is not installed: "
            "pip install 'harness[lmeval]'"
        ) from e
    return lm_eval


def encode_chat(chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """A chat history as a context string: what lm-eval asks a chat template for."""
    return CHAT_MARK + json.dumps(
        {"messages": chat_history, "add_generation_prompt": add_generation_prompt},
        ensure_ascii=False,
    )


def context_messages(context: str) -> tuple[Message, ...]:
    """The harness messages for an lm-eval context: chat turns, or one raw prompt.

    A raw prompt goes to the model as is (no chat template). A model's system prompt is added
    where every request is built (`generate.make_request`), for both directions of the bridge.
    """
    if context.startswith(CHAT_MARK):
        data = json.loads(context[len(CHAT_MARK) :])
        turns = [Message(m["role"], m["content"]) for m in data["messages"]]
        if not data.get("add_generation_prompt", True) or (turns and turns[-1].role != "user"):
            raise HarnessError(
                "this lm-eval task starts the assistant's answer itself (gen_prefix), which a "
                "chat request cannot carry; run it without a chat template"
            )
        messages = turns
    else:
        messages = [Message(RAW_ROLE, context)]
    return tuple(messages)


def stop_strings(gen_kwargs: dict[str, Any] | None) -> list[str]:
    """lm-eval's `until` (a string or a list) as a list of non-empty strings."""
    until = (gen_kwargs or {}).get("until") or []
    if isinstance(until, str):
        until = [until]
    return [u for u in until if isinstance(u, str) and u]


def cut_at(text: str, until: Sequence[str]) -> tuple[str, bool]:
    """The text up to the first stop string, as lm-eval's own models return it."""
    cut = min((i for i in (text.find(u) for u in until) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


__all__ = [
    "CHAT_MARK",
    "FEWSHOT_SEED",
    "context_messages",
    "cut_at",
    "encode_chat",
    "require_lmeval",
    "stop_strings",
]
