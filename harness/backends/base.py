"""The Backend contract: requests in, generations out, streamed as they finish."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path

from harness.models import ModelSpec
from harness.types import Generation, Message, Problem, Request

RAW_ROLE = "raw"
"""Role of a lone message that is a finished prompt (an lm-eval context), not a chat turn."""


def raw_prompt(messages: Sequence[Message]) -> str | None:
    """The prompt text when a request is a ready-made completion prompt, else None.

    Such a request is sent as is: no chat template, no system prompt (a model's system prompt is
    dropped), no prefill, so a task that builds its own prompt string (lm-eval's contexts) gets
    exactly the text it built.
    """
    rest = [m for m in messages if m.role != "system"]
    if len(rest) == 1 and rest[0].role == RAW_ROLE:
        return rest[0].content
    return None


def sample_seed(seed: int, sample: int) -> int:
    """One seed per (run seed, sample index): a sample draws the same way whatever its batch."""
    return (seed * 1_000_003 + sample) % 2**31


class Backend(ABC):
    """One module per backend, one line in the registry.

    `stream` yields (index into requests, generation) as each finishes, so the runner can commit
    every generation to the cache before the next one: an interrupted run loses only work in
    flight. `batch_size` tells the runner how many requests to hand over at once; the runner
    groups them the same way on every invocation, so a resumed run batches like a fresh one.
    """

    name: str = ""
    default_batch_size: int = 1
    generates: bool = True
    """False for backends that replay fixed text (reference, replay): sampling is moot."""

    def __init__(self, spec: ModelSpec, *, cache_dir: Path, batch_size: int | None = None) -> None:
        self.spec = spec
        self.cache_dir = cache_dir
        self.batch_size = self.batch_size_for(spec, batch_size)

    @classmethod
    def batch_size_for(cls, spec: ModelSpec, override: int | None = None) -> int:
        """--batch-size, else the spec's #batch_size=, else the backend's default."""
        opt = spec.option("batch_size")
        return max(1, override or (int(opt) if opt and opt.isdigit() else cls.default_batch_size))

    @classmethod
    def fingerprint(cls, spec: ModelSpec, problem: Problem) -> str:
        """What else, besides model, prompt and sampling, decides this backend's output."""
        return ""

    @abstractmethod
    def stream(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        """Generate for every request; yield each result with its index as soon as it exists."""

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        out: list[Generation | None] = [None] * len(requests)
        for i, g in self.stream(requests):
            out[i] = g
        missing = [i for i, g in enumerate(out) if g is None]
        if missing:
            raise RuntimeError(f"backend {self.name} returned nothing for requests {missing}")
        return out  # type: ignore[return-value]

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release the model (memory, GPU, servers)."""
