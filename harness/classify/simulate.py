"""Planted-cause runs: simulated students over real `chains` problems whose every failure has a
known cause, to train and score the failure model.

A student has a **depth frontier** (its capacity draw succeeds with probability
sigmoid(slope * (frontier - depth) + the chain's own difficulty), whatever the form) and a set
of **weak forms** (surface families or perturbation kinds whose form draw fails with the form's
penalty, whatever the depth); a rare **slip** fails neither way. An answer is right when all
three draws pass. The planted cause of a failure:

- only the capacity draw failed: `capacity`; only the form draw failed: `mismatch`;
- both failed (fixing either one alone would still fail), or only a slip: no single cause, so
  `undetermined` in truth and left out of scoring;
- then a few percent of capacity/mismatch labels are flipped (label noise, for training;
  `noisy=False` gives the causes as planted, which benchmarks score against).

Problems are the chains task's default families at depths 1-12 plus its perturbation variants
(`surface` retellings in held-out families, `rename`, `format`, `compose`) made by
`harness.perturb`; the teacher (the reference) is right on all of them, so no failure is
`teacher_also_wrong`. Confidences are log-prob-like (token log-probs whose answer span gives a
draw that is higher when right), drawn the same way whatever the cause: confidence is not a
planted signal.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.classify.base import UNDETERMINED
from harness.errors import HarnessError
from harness.metrics.calibration import logprob_confidence
from harness.perturb import context_for, perturb_problems
from harness.tasks.chains import FAMILIES, HELD_OUT, Chains
from harness.types import Problem, Record

Key = tuple[str, str, int]
TASK = "chains"
WEAK_KINDS = ("surface", "rename", "format")
"""Perturbation kinds a student may be weak in (compose changes the depth, not the form)."""


@dataclass(frozen=True)
class Mixture:
    """The distribution simulated students are drawn from (each range is uniform)."""

    weights: tuple[float, float, float] = (0.35, 0.35, 0.3)
    """Chance of a capacity-only, a mismatch-only and a mixed student."""
    frontier: tuple[float, float] = (3.0, 10.0)
    """Frontier of a capacity-limited student (a mismatch-only one has 15-22)."""
    slope: tuple[float, float] = (0.7, 2.0)
    penalty: tuple[float, float] = (0.55, 0.9)
    """Chance that a weak form's draw fails."""
    weak: tuple[int, int] = (1, 2)
    """How many weak forms a mismatch-limited student has."""
    difficulty_sd: tuple[float, float] = (0.2, 0.7)
    """Spread of the chains' own difficulty (logit), shared by every telling of a chain."""
    slip: tuple[float, float] = (0.0, 0.02)
    noise: tuple[float, float] = (0.0, 0.04)
    """Share of planted labels flipped."""
    per_cell: tuple[int, int] = (2, 4)
    """Chains per depth and family."""
    samples: tuple[int, ...] = (1, 1, 1, 2, 3)
    variants: float = 0.85
    """Chance that a run has perturbation variants (else originals only)."""
    logprobs: float = 0.85
    """Chance that a run has token log-probs (else no confidence)."""


TRAIN = Mixture()
HELD_OUT_MIXTURE = Mixture(
    weights=(0.25, 0.3, 0.45),
    frontier=(2.0, 11.0),
    slope=(0.5, 2.6),
    penalty=(0.45, 0.95),
    weak=(1, 3),
    difficulty_sd=(0.1, 0.9),
    slip=(0.0, 0.03),
    noise=(0.01, 0.05),
    per_cell=(2, 5),
    samples=(1, 2, 4),
    variants=0.9,
    logprobs=0.7,
)
"""Parameter ranges and weights never seen in training (wider frontier, slope, penalty and
noise, more weak forms, more mixed students), for the held-out benchmark."""


@dataclass(frozen=True)
class Student:
    """One simulated student's planted parameters."""

    frontier: float
    slope: float
    weak: dict[str, float]
    """Weak form (family name or kind) to its failure chance."""
    difficulty_sd: float
    slip: float
    noise: float
    samples: int


@functools.lru_cache(maxsize=16)
def problems(seed: int, per_cell: int, variants: bool) -> tuple[Problem, ...]:
    """The chains problems (default families, depths 1-12) and their variants."""
    task = Chains({"n": str(per_cell), "seed": str(seed)})
    originals = task.load(None).problems  # type: ignore[arg-type]
    if not variants:
        return tuple(originals)
    out = perturb_problems(
        originals, context_for(task, originals), [*WEAK_KINDS, "compose"], seed=seed
    )
    return (*originals, *out.variants)


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def draw_student(rng: np.random.Generator, mixture: Mixture, variants: bool) -> Student:
    w = np.asarray(mixture.weights, dtype=float)
    if w.min() < 0 or w.sum() <= 0:
        raise HarnessError("simulate: mixture weights must be non-negative and not all zero")
    kind = int(rng.choice(3, p=w / w.sum()))
    capacity_limited = kind in (0, 2)
    frontier = _uniform(rng, mixture.frontier) if capacity_limited else _uniform(rng, (15, 22))
    weak: dict[str, float] = {}
    if kind in (1, 2):
        pool = [*FAMILIES, *HELD_OUT, *WEAK_KINDS] if variants else list(FAMILIES)
        # Held-out retellings are the commonest real mismatch: weigh them up.
        p = np.array([3.0 if f in HELD_OUT or f == "surface" else 1.0 for f in pool])
        count = int(rng.integers(mixture.weak[0], mixture.weak[1] + 1))
        count = min(count, len(pool) - 1)
        for f in rng.choice(pool, size=count, replace=False, p=p / p.sum()):
            weak[str(f)] = _uniform(rng, mixture.penalty)
    return Student(
        frontier=frontier,
        slope=_uniform(rng, mixture.slope),
        weak=weak,
        difficulty_sd=_uniform(rng, mixture.difficulty_sd),
        slip=_uniform(rng, mixture.slip),
        noise=_uniform(rng, mixture.noise),
        samples=int(rng.choice(mixture.samples)),
    )


def _chain_key(p: Problem) -> str:
    return str(p.meta.get("chain_id", p.id))


def _text(answer: str) -> str:
    return f"Working through the steps one at a time. The answer is \\boxed{{{answer}}}."


@functools.lru_cache(maxsize=4096)
def _span(text: str, answer: str, tokens: int) -> int:
    """How many tokens `logprob_confidence` reads as the answer's span for this output."""
    probe = _record("x", "student", 0, text, answer, "", True, None, (-1.0,) * tokens)
    got = logprob_confidence(probe)
    return max(1, round(-math.log(got))) if got else 1


def _record(
    pid: str,
    role: str,
    sample: int,
    text: str,
    answer: str,
    gold: str,
    correct: bool,
    problem: Problem | None,
    logprobs: tuple[float, ...] | None,
    steps: int | None = None,
) -> Record:
    return Record(
        run_id="planted",
        task=TASK,
        problem_id=pid,
        role="student" if role == "student" else "teacher",
        sample=sample,
        model=f"sim-{role}",
        backend="sim",
        question=problem.question if problem else "",
        gold=gold,
        text=text,
        reasoning=None,
        answer=answer,
        extractor="boxed",
        lenient=False,
        correct=correct,
        truncated=False,
        finish_reason="stop",
        prompt_hash="",
        cache_key="",
        prompt_tokens=None,
        completion_tokens=len(text) // 4,
        seconds=0.0,
        cached=False,
        subset=problem.subset if problem else None,
        steps=steps,
        parent_id=problem.parent_id if problem else None,
        perturbation=problem.perturbation if problem else None,
        perturb_seed=problem.perturb_seed if problem else None,
        logprobs=logprobs,
    )


def _forms(p: Problem) -> list[str]:
    return [f for f in (str(p.meta.get("family", p.subset)), p.perturbation) if f]


def simulate(
    seed: int, *, mixture: Mixture = TRAIN, noisy: bool = True
) -> tuple[list[Record], dict[Key, str]]:
    """One planted-cause run: teacher and student records, and the planted cause of every
    failed student item (`capacity`, `mismatch`, or `undetermined` when no single cause).

    `noisy`: with the mixture's label noise (what training sees); False gives the causes as
    planted (what a benchmark scores against). The records are the same either way."""
    rng = np.random.default_rng([seed, 13])
    variants = bool(rng.random() < mixture.variants)
    per_cell = int(rng.integers(mixture.per_cell[0], mixture.per_cell[1] + 1))
    probs = problems(seed % 5, per_cell, variants)
    student = draw_student(rng, mixture, variants)
    with_lp = bool(rng.random() < mixture.logprobs)
    difficulty = {
        c: float(rng.normal(0.0, student.difficulty_sd))
        for c in sorted({_chain_key(p) for p in probs})
    }
    records: list[Record] = []
    truth: dict[Key, str] = {}
    for p in probs:
        steps = int(p.meta["depth"])
        records.append(
            _record(p.id, "teacher", 0, _text(p.answer), p.answer, p.answer, True, p, None, steps)
        )
        z = student.slope * (student.frontier - steps) + difficulty[_chain_key(p)]
        p_cap = 1.0 / (1.0 + math.exp(-z))
        p_form = 1.0
        for f in _forms(p):
            p_form *= 1.0 - student.weak.get(f, 0.0)
        for s in range(student.samples):
            cap_ok = rng.random() < p_cap
            form_ok = rng.random() < p_form
            slip_ok = rng.random() >= student.slip
            right = cap_ok and form_ok and slip_ok
            answer = p.answer if right else str(int(p.answer) + int(rng.choice([-2, -1, 1, 3])))
            text = _text(answer)
            conf = float(rng.beta(6.0, 1.8) if right else rng.beta(2.2, 2.6))
            lp: tuple[float, ...] | None = None
            if with_lp:
                tokens = max(8, len(text) // 4)
                width = _span(text, answer, tokens)
                lp = (math.log(max(conf, 1e-4)) / width,) * tokens
            records.append(_record(p.id, "student", s, text, answer, p.answer, right, p, lp, steps))
            if right:
                continue
            if not cap_ok and form_ok:
                cause = "capacity"
            elif cap_ok and not form_ok:
                cause = "mismatch"
            else:
                cause = UNDETERMINED
            flip = rng.random() < student.noise
            if noisy and flip and cause != UNDETERMINED:
                cause = "mismatch" if cause == "capacity" else "capacity"
            truth[(TASK, p.id, s)] = cause
    return records, truth


def simulate_many(
    seeds: Sequence[int], *, mixture: Mixture = TRAIN, noisy: bool = True
) -> list[tuple[list[Record], dict[Key, str]]]:
    """Several independent runs (each one student: features are computed per run)."""
    return [simulate(s, mixture=mixture, noisy=noisy) for s in seeds]


__all__ = [
    "HELD_OUT_MIXTURE",
    "TRAIN",
    "Mixture",
    "Student",
    "draw_student",
    "problems",
    "simulate",
    "simulate_many",
]
