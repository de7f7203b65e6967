"""What an invocation spent: generations made now vs taken from the cache."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.types import Record


def cost_summary(records: Iterable[Record], role: str) -> dict[str, Any]:
    """Generations made now vs taken from the cache, and the tokens and seconds of those made
    now (a cached generation cost nothing this time)."""
    rs = [r for r in records if r.role == role and r.finish_reason not in ("missing",)]
    made = [r for r in rs if not r.cached and r.error is None]
    return {
        "generated": len(made),
        "cached": sum(r.cached for r in rs),
        "tokens": sum(r.completion_tokens or 0 for r in made),
        "seconds": round(sum(r.seconds for r in made), 3),
    }
