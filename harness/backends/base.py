"""The Backend contract: requests in, generations out, streamed as they finish."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path

from harness.models import ModelSpec
from harness.types import Generation, Problem, Request


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
