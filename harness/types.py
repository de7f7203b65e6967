"""The shared vocabulary: every module speaks in these frozen dataclasses and nothing else.

Records are what every downstream stage (metrics, failure classifier, reports, gate) reads, so
the perturbation lineage lives here from the start and later stages need no schema change.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["teacher", "student"]
ROLES: tuple[Role, ...] = ("teacher", "student")

FinishReason = Literal["stop", "length", "error", "missing"]
SANDBOX_ERROR = "sandbox_error"
"""How a grade's detail starts when the code sandbox itself failed (never the program)."""


@dataclass(frozen=True)
class Problem:
    """One item of a task, as loaded (or as derived by a perturbation)."""

    id: str
    task: str
    question: str
    answer: str
    reference: str | None = None
    """Gold worked solution (or a synthetic solver's chain) ending in an extractable answer."""
    choices: tuple[str, ...] = ()
    subset: str | None = None
    """Subtask or split inside the task (a BBH subtask, an AIME paper), for per-subset metrics."""
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    parent_id: str | None = None
    """Lineage: the problem this one was derived from by a perturbation (None: original)."""
    perturbation: str | None = None
    perturb_seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready row (what `harness perturb` writes and the `file` task reads back)."""
        d = dataclasses.asdict(self)
        d["choices"] = list(self.choices)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Problem:
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        d["choices"] = tuple(d.get("choices") or ())
        d["meta"] = dict(d.get("meta") or {})
        return cls(**d)


@dataclass(frozen=True)
class Sampling:
    """Decoding parameters; part of the cache key, so every field must change the output."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    stop: tuple[str, ...] = ()
    logprobs: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stop"] = list(self.stop)
        return d


RAW_ROLE = "raw"
"""Role of a lone message that is a finished prompt (an lm-eval context), not a chat turn."""


@dataclass(frozen=True)
class Message:
    role: str
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Request:
    """One generation to make: a problem's prompt, a sample index, decoding parameters."""

    key: str
    """Content-addressed cache key (see store.cache_key)."""
    problem: Problem
    messages: tuple[Message, ...]
    sample: int
    sampling: Sampling
    seed: int


@dataclass(frozen=True)
class Generation:
    """What a backend returns for one request.

    `text` is the answer part; `reasoning` is the chain (`<think>…</think>` or an API's
    `reasoning_content`), None for a model without a reasoning format.
    """

    text: str
    reasoning: str | None = None
    finish_reason: FinishReason = "stop"
    reasoning_closed: bool | None = None
    """For a think-tag model: whether `</think>` was reached. False means no answer was given."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    seconds: float = 0.0
    logprobs: tuple[float, ...] | None = None
    """Log-probabilities of the generated tokens, when asked for and the backend gives them."""
    error: str | None = None
    """Why there is no real generation (finish_reason error/missing); never cached."""
    token_limit: int | None = None
    """Set when the backend had to give fewer new tokens than asked (llama.cpp: the prompt
    plus `max_new_tokens` did not fit the context): the limit it really used."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.logprobs is not None:
            d["logprobs"] = list(self.logprobs)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Generation:
        d = dict(d)
        if d.get("logprobs") is not None:
            d["logprobs"] = tuple(d["logprobs"])
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Score:
    """How a task graded one generation."""

    correct: bool | None
    """None: nothing to grade (the generation is missing or failed)."""
    answer: str | None = None
    """The extracted answer, as found in the text."""
    extractor: str | None = None
    """The rule that extracted the answer (boxed, hash, final_answer, last_number, ...)."""
    lenient: bool = False
    """Extracted by a flagged fallback rule (e.g. the last number in the text)."""
    truncated: bool = False
    """The model never gave its answer: cut at the token limit or never closed its reasoning."""
    detail: str = ""


@dataclass(frozen=True)
class Record:
    """One row of records.jsonl (task x problem x role x sample); all later stages read these."""

    run_id: str
    task: str
    problem_id: str
    role: Role
    sample: int
    model: str
    backend: str
    question: str
    gold: str
    text: str
    reasoning: str | None
    answer: str | None
    extractor: str | None
    lenient: bool
    correct: bool | None
    truncated: bool
    finish_reason: str
    prompt_hash: str
    cache_key: str
    prompt_tokens: int | None
    completion_tokens: int | None
    seconds: float
    cached: bool
    subset: str | None = None
    steps: int | None = None
    parent_id: str | None = None
    perturbation: str | None = None
    perturb_seed: int | None = None
    error: str | None = None
    logprobs: tuple[float, ...] | None = None
    grade_error: str | None = None
    """Why a generation that exists could not be graded (correct is then None), e.g.
    `sandbox_error: ...` when the code sandbox itself failed: not the model's fault, so not
    counted wrong, and counted apart in the metrics (`sandbox_errors`)."""
    token_limit: int | None = None
    """The new-token limit the backend actually gave this generation when it was smaller than
    the one asked for (llama.cpp: prompt + max_new_tokens did not fit the context)."""

    @property
    def sandbox_error(self) -> bool:
        return (self.grade_error or "").startswith(SANDBOX_ERROR)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.logprobs is not None:
            d["logprobs"] = list(self.logprobs)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        d = dict(d)
        if d.get("logprobs") is not None:
            d["logprobs"] = tuple(d["logprobs"])
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
