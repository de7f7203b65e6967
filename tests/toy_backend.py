"""A backend from outside the package, as a plug-in would write one: a real `Backend` subclass
with options of its own, answering deterministically and instantly. The plug-in tests register
it with one line and run it through `harness run`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from harness.backends.base import Backend
from harness.options import option
from harness.types import Generation, Request


@dataclass(frozen=True)
class ToyOptions:
    """What the toy says, and one option that only changes how it runs."""

    reply: str = option("42", "the answer it gives to every problem")
    n_words: int = option(3, "words of the problem it repeats as its reasoning", low=1)
    shout: bool = option(False, "upper-case the reasoning")
    workers: int = option(
        1, "pretend parallelism: changes nothing that comes back", identity=False, low=1
    )


class ToyBackend(Backend):
    name = "toy"
    default_batch_size = 4
    options_class = ToyOptions
    options: ToyOptions
    target = "<anything>"

    def stream(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        for i, req in enumerate(requests):
            words = req.messages[-1].content.split()
            chain = " ".join(words[: self.options.n_words])
            yield (
                i,
                Generation(
                    text=f"The answer is \\boxed{{{self.options.reply}}}.",
                    reasoning=chain.upper() if self.options.shout else chain,
                    reasoning_closed=True,
                    prompt_tokens=len(words),
                    completion_tokens=self.options.n_words + 4,
                ),
            )
