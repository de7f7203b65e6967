"""The gold worked solution as a generation: a teacher that costs nothing and works offline.

It doubles as the grader's self-test: with `reference` in both roles every task must score
1.000, or the extractor or grader is wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

from harness.backends.base import Backend
from harness.errors import HarnessError
from harness.spec import ModelSpec, SpecParts
from harness.types import Generation, Problem, Request


class ReferenceBackend(Backend):
    name = "reference"
    generates = False
    default_batch_size = 256
    target = ""

    @classmethod
    def spec_from(cls, parts: SpecParts) -> ModelSpec:
        """Nothing to point at: the gold comes with each problem."""
        raise HarnessError(
            f"{parts.where}: the reference backend takes no target; write `reference`"
        )

    @classmethod
    def fingerprint(cls, spec: ModelSpec, problem: Problem) -> str:
        ref = problem.reference if problem.reference is not None else problem.answer
        return hashlib.sha256(ref.encode("utf-8")).hexdigest()[:16]

    def stream(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        for i, req in enumerate(requests):
            yield i, self.solution(req.problem)

    @staticmethod
    def solution(problem: Problem) -> Generation:
        """The reference chain as reasoning, its last line (the stated answer) as the answer;
        a reference that ends in a fenced code block (code tasks) gives that whole block."""
        if problem.reference is None:
            return Generation(text=problem.answer, reasoning=None, reasoning_closed=None)
        ref = problem.reference.rstrip()
        if ref.endswith("```"):
            start = ref.rfind("```", 0, len(ref) - 3)
            if start >= 0:
                return Generation(
                    text=ref[start:], reasoning=ref[:start].strip() or None, reasoning_closed=True
                )
        lines = ref.splitlines()
        return Generation(
            text=lines[-1].strip(),
            reasoning="\n".join(lines[:-1]).strip() or None,
            reasoning_closed=True,
        )
