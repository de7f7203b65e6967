"""Planted-cause runs: simulated students over real `chains` problems and GSM8K-shaped problem
sets, with their perturbation variants, whose every failure has a known cause, to train and
score the failure model.

A student has a **depth frontier** (its capacity draw succeeds with probability
sigmoid(slope * (frontier - depth) + the problem's own difficulty), whatever the form) and a set
of **weak forms** (surface families or perturbation kinds whose form draw fails with the form's
penalty, whatever the depth); a rare **slip** fails neither way. An answer is right when all
three draws pass. The planted cause of a failure:

- only the capacity draw failed: `capacity`; only the form draw failed: `mismatch`;
- both failed (fixing either one alone would still fail), or only a slip: no single cause, so
  `undetermined` in truth and left out of scoring;
- then a few percent of capacity/mismatch labels are flipped (label noise, for training;
  `noisy=False` gives the causes as planted, which benchmarks score against).

Two problem sets:

- **chains**: the task's default families at depths 1-12 plus its perturbation variants
  (`surface` retellings in held-out families, `rename`, `format`, `compose`) made by
  `harness.perturb`;
- **gsm8k**: one subset with GSM8K test's depth profile (annotated calculations per problem,
  `GSM8K_DEPTHS`) and, per run, two to five of its perturbation kinds at the rates
  `harness perturb` makes them on GSM8K test (`GSM8K_KINDS`); `compose` adds the depths of its
  two parts. Only the structure the features read is simulated (ids, depths, lineage), no text.

The teacher (the reference) is right on all of them, so no failure is `teacher_also_wrong`.
Confidences are log-prob-like (token log-probs whose answer span gives a draw that is higher
when right), drawn the same way whatever the cause: confidence is not a planted signal.

Some runs also carry what a real run adds later (`Planted.extra`):

- **probes**, as `harness classify --probe` makes them, redrawn from the same student:
  `decompose` gives the first ceil(depth/2) steps, so the capacity draw is at the remaining
  depth and the form draw unchanged; `familiarize` restates the problem in a familiar form (a
  variant's parent form, a chain's best default family), so the form draw is at that form and
  the capacity draw at the same depth. A share of probe outcomes is replaced by a coin flip
  (a probe prompt can confuse a small model whatever the cause).
- **divergence** (share of the teacher's steps followed): a capacity failure follows about as
  many steps as its frontier, a mismatch one goes astray early; both with wide noise and a share
  drawn uniformly, so it is weak evidence, as the embedding alignment it stands for is.
- **OOD percentile**, in the same runs (both need an embedding model): high for retellings in
  held-out families, anywhere for the rest, whatever the cause.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from harness.classify.base import UNDETERMINED, Features
from harness.errors import HarnessError
from harness.metrics.calibration import logprob_confidence
from harness.perturb import context_for, perturb_problems
from harness.tasks.chains import FAMILIES, HELD_OUT, Chains
from harness.types import Problem, Record

Key = tuple[str, str, int]
CHAINS = "chains"
GSM8K = "gsm8k"
TASK = CHAINS
WEAK_KINDS = ("surface", "rename", "format")
"""Chains perturbation kinds a student may be weak in (compose changes the depth, not the form)."""
GSM8K_DEPTHS = {1: 65, 2: 362, 3: 367, 4: 295, 5: 139, 6: 60, 7: 22, 8: 9}
"""GSM8K test: problems by number of annotated calculations (the task's `steps`)."""
GSM8K_KINDS = {
    "numeric": 0.9,
    "distractor": 0.88,
    "rename": 0.78,
    "reorder": 0.5,
    "format": 1.0,
    "compose": 0.95,
}
"""Share of GSM8K test problems each kind makes a variant of (as `harness perturb` prints)."""
GSM8K_WEAK = ("numeric", "distractor", "rename", "reorder", "format")


@dataclass(frozen=True)
class Mixture:
    """The distribution simulated students are drawn from (each range is uniform)."""

    weights: tuple[float, float, float] = (0.35, 0.35, 0.3)
    """Chance of a capacity-only, a mismatch-only and a mixed student."""
    frontier: tuple[float, float] = (3.0, 10.0)
    """Frontier of a capacity-limited student on chains (a mismatch-only one has 15-22)."""
    gsm8k_frontier: tuple[float, float] = (0.5, 6.0)
    """The same on GSM8K-shaped runs (depths 1-8; a mismatch-only student has 11-16)."""
    slope: tuple[float, float] = (0.7, 2.0)
    penalty: tuple[float, float] = (0.55, 0.9)
    """Chance that a weak form's draw fails."""
    weak: tuple[int, int] = (1, 2)
    """How many weak forms a mismatch-limited student has."""
    difficulty_sd: tuple[float, float] = (0.2, 1.2)
    """Spread of the problems' own difficulty (logit), shared by every telling of a problem."""
    gsm8k_difficulty_sd: tuple[float, float] = (0.8, 1.8)
    """The same on GSM8K-shaped runs (step counts say less about a word problem's difficulty)."""
    slip: tuple[float, float] = (0.0, 0.02)
    noise: tuple[float, float] = (0.0, 0.04)
    """Share of planted labels flipped."""
    per_cell: tuple[int, int] = (1, 4)
    """Chains per depth and family."""
    gsm8k_problems: tuple[int, int] = (40, 300)
    """Originals of a GSM8K-shaped run."""
    samples: tuple[int, ...] = (1, 1, 1, 2, 3)
    variants: float = 0.85
    """Chance that a run has perturbation variants (else originals only)."""
    logprobs: float = 0.85
    """Chance that a run has token log-probs (else no confidence)."""
    gsm8k: float = 0.35
    """Chance that a run is GSM8K-shaped (else chains)."""
    probes: float = 0.5
    """Chance that a run has causal probes for its failures."""
    probe_noise: tuple[float, float] = (0.0, 0.15)
    """Share of probe outcomes replaced by a coin flip."""
    divergence: float = 0.5
    """Chance that a run has the divergence point (teacher and student chains aligned)."""
    persistence: tuple[float, float] = (0.3, 0.95)
    """Chance that a redraw of a problem (another sample, a probe) repeats its first draw."""


TRAIN = Mixture()
HELD_OUT_MIXTURE = Mixture(
    weights=(0.25, 0.3, 0.45),
    frontier=(2.0, 11.0),
    gsm8k_frontier=(0.3, 7.0),
    slope=(0.5, 2.6),
    penalty=(0.45, 0.95),
    weak=(1, 3),
    difficulty_sd=(0.1, 1.4),
    gsm8k_difficulty_sd=(0.6, 2.0),
    slip=(0.0, 0.03),
    noise=(0.01, 0.05),
    per_cell=(1, 5),
    gsm8k_problems=(30, 400),
    samples=(1, 2, 4),
    variants=0.9,
    logprobs=0.7,
    gsm8k=0.4,
    probes=0.5,
    probe_noise=(0.0, 0.2),
    divergence=0.5,
    persistence=(0.2, 1.0),
)
"""Parameter ranges and weights never seen in training (wider frontier, slope, penalty, noise
and probe noise, more weak forms, more mixed students), for the held-out benchmark."""


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


@dataclass(frozen=True)
class Planted:
    """One planted-cause run."""

    records: list[Record]
    truth: dict[Key, str]
    """The planted cause of every failed student item (capacity, mismatch or undetermined)."""
    extra: dict[Key, dict[str, object]]
    """Per failed item, what a real run adds after the fact: `probes` ({kind: right}) and
    `divergence` (share of the teacher's steps followed), where the run has them."""


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


def gsm8k_problems(rng: np.random.Generator, n: int, kinds: Sequence[str]) -> tuple[Problem, ...]:
    """GSM8K-shaped originals (depths drawn from GSM8K test's profile) and variants of `kinds`
    (each made for its share of the originals; a composition's depth adds its parts')."""
    depths = np.array(list(GSM8K_DEPTHS), dtype=int)
    weights = np.array(list(GSM8K_DEPTHS.values()), dtype=float)
    drawn = rng.choice(depths, size=n, p=weights / weights.sum())
    originals = [
        Problem(
            id=f"gsm8k-{i}",
            task=GSM8K,
            question=f"gsm8k-{i}",
            answer=str(10 + i),
            meta={"depth": int(d)},
        )
        for i, d in enumerate(drawn)
    ]
    out = list(originals)
    for kind in kinds:
        share = GSM8K_KINDS[kind]
        for i, p in enumerate(originals):
            if rng.random() >= share:
                continue
            depth = int(p.meta["depth"])
            if kind == "compose":
                depth += int(originals[(i + 1) % n].meta["depth"])
            out.append(
                replace(
                    p,
                    id=f"{p.id}~{kind}-0",
                    question=f"{p.id}~{kind}-0",
                    parent_id=p.id,
                    perturbation=kind,
                    perturb_seed=0,
                    meta={"depth": depth},
                )
            )
    return tuple(out)


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def draw_student(
    rng: np.random.Generator, mixture: Mixture, variants: bool, task: str = CHAINS
) -> Student:
    w = np.asarray(mixture.weights, dtype=float)
    if w.min() < 0 or w.sum() <= 0:
        raise HarnessError("simulate: mixture weights must be non-negative and not all zero")
    kind = int(rng.choice(3, p=w / w.sum()))
    capacity_limited = kind in (0, 2)
    if task == GSM8K:
        strong = (11.0, 16.0)
        frontier = _uniform(rng, mixture.gsm8k_frontier if capacity_limited else strong)
        pool = list(GSM8K_WEAK) if variants else []
        if kind == 1 and not pool:  # nothing a GSM8K-shaped run without variants can be weak in
            kind, capacity_limited = 0, True
            frontier = _uniform(rng, mixture.gsm8k_frontier)
        p = np.ones(len(pool))
    else:
        frontier = _uniform(rng, mixture.frontier) if capacity_limited else _uniform(rng, (15, 22))
        pool = [*FAMILIES, *HELD_OUT, *WEAK_KINDS] if variants else list(FAMILIES)
        # Held-out retellings are the commonest real mismatch: weigh them up.
        p = np.array([3.0 if f in HELD_OUT or f == "surface" else 1.0 for f in pool])
    weak: dict[str, float] = {}
    if kind in (1, 2) and pool:
        count = int(rng.integers(mixture.weak[0], mixture.weak[1] + 1))
        count = max(1, min(count, len(pool) - 1))
        for f in rng.choice(pool, size=count, replace=False, p=p / p.sum()):
            weak[str(f)] = _uniform(rng, mixture.penalty)
    return Student(
        frontier=frontier,
        slope=_uniform(rng, mixture.slope),
        weak=weak,
        difficulty_sd=_uniform(
            rng, mixture.gsm8k_difficulty_sd if task == GSM8K else mixture.difficulty_sd
        ),
        slip=_uniform(rng, mixture.slip),
        noise=_uniform(rng, mixture.noise),
        samples=int(rng.choice(mixture.samples)),
    )


def _chain_key(p: Problem) -> str:
    return str(p.meta.get("chain_id", p.parent_id or p.id))


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
    task: str = CHAINS,
) -> Record:
    return Record(
        run_id="planted",
        task=task,
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
    family = p.meta.get("family", p.subset)
    return [str(f) for f in (family, p.perturbation) if f]


def _form_pass(student: Student, forms: Sequence[str]) -> float:
    out = 1.0
    for f in forms:
        out *= 1.0 - student.weak.get(f, 0.0)
    return out


def _cap_pass(student: Student, depth: float, difficulty: float) -> float:
    return 1.0 / (1.0 + math.exp(-(student.slope * (student.frontier - depth) + difficulty)))


def _familiar_forms(p: Problem, student: Student, by_id: dict[str, Problem]) -> list[str] | None:
    """The forms of the problem restated familiarly (None: it has no familiar form), as the
    familiarize probe picks it: a variant's parent, a chain's best default family."""
    if p.perturbation == "compose":
        return None
    if p.parent_id is not None:
        parent = by_id.get(p.parent_id)
        return _forms(parent) if parent is not None else None
    family = p.meta.get("family")
    if family is None:
        return None
    best = sorted((f for f in FAMILIES if f != family), key=lambda f: student.weak.get(f, 0.0))
    return [best[0]] if best else None


class _Luck:
    """Per-problem draws that persist: a model decoding near-greedily fails the same problem
    the same way again, so a redraw (another sample, a probe) reuses the problem's own uniform
    with chance `persistence` and draws afresh otherwise."""

    def __init__(self, rng: np.random.Generator, persistence: float) -> None:
        self.rng, self.persistence = rng, persistence
        self.seen: dict[str, float] = {}

    def __call__(self, key: str) -> float:
        if key not in self.seen:
            self.seen[key] = float(self.rng.random())
        return self.seen[key] if self.rng.random() < self.persistence else float(self.rng.random())


def _probes(
    rng: np.random.Generator,
    luck: _Luck,
    student: Student,
    p: Problem,
    depth: int,
    difficulty: float,
    noise: float,
    by_id: dict[str, Problem],
) -> dict[str, bool]:
    out: dict[str, bool] = {}
    cap_key = f"cap|{_chain_key(p)}"
    if depth >= 2:
        k = min(math.ceil(depth / 2), depth - 1)
        right = (
            luck(cap_key) < _cap_pass(student, depth - k, difficulty)
            and luck(f"form|{p.id}") < _form_pass(student, _forms(p))
            and rng.random() >= student.slip
        )
        out["decompose"] = bool(rng.random() < 0.5) if rng.random() < noise else right
    familiar = _familiar_forms(p, student, by_id)
    if familiar is not None:
        right = (
            luck(cap_key) < _cap_pass(student, depth, difficulty)
            and luck(f"form|{_chain_key(p)}|{'/'.join(familiar)}") < _form_pass(student, familiar)
            and rng.random() >= student.slip
        )
        out["familiarize"] = bool(rng.random() < 0.5) if rng.random() < noise else right
    return out


def _divergence(rng: np.random.Generator, student: Student, depth: int, cause: str) -> float:
    if rng.random() < 0.35:
        return round(float(rng.random()), 4)
    if cause == "capacity":
        followed = student.frontier + rng.normal(0.0, 1.5)
        return round(float(np.clip(followed / max(depth, 1), 0.0, 1.0)), 4)
    return round(float(np.clip(rng.beta(1.3, 3.5), 0.0, 1.0)), 4)


def _ood(rng: np.random.Generator, p: Problem) -> float:
    """The problem's OOD percentile against the run's originals: a retelling in a held-out
    family lies far out, anything else (the originals, variants that keep the wording's
    subject) anywhere in the originals' own spread. It follows the form, not the cause."""
    family = str(p.meta.get("family", ""))
    far = family in HELD_OUT or p.perturbation == "surface"
    return round(float(100.0 * (rng.beta(4.0, 1.5) if far else rng.random())), 2)


def simulate(seed: int, *, mixture: Mixture = TRAIN, noisy: bool = True) -> Planted:
    """One planted-cause run: teacher and student records, the planted cause of every failed
    student item (`capacity`, `mismatch`, or `undetermined` when no single cause), and the
    probes and divergence where the run has them.

    `noisy`: with the mixture's label noise (what training sees); False gives the causes as
    planted (what a benchmark scores against). The records are the same either way."""
    rng = np.random.default_rng([seed, 13])
    variants = bool(rng.random() < mixture.variants)
    task = GSM8K if rng.random() < mixture.gsm8k else CHAINS
    if task == GSM8K:
        n = int(rng.integers(mixture.gsm8k_problems[0], mixture.gsm8k_problems[1] + 1))
        count = int(rng.integers(2, len(GSM8K_KINDS) + 1))
        kinds = sorted(rng.choice(list(GSM8K_KINDS), size=count, replace=False)) if variants else []
        probs = gsm8k_problems(rng, n, [str(k) for k in kinds])
    else:
        per_cell = int(rng.integers(mixture.per_cell[0], mixture.per_cell[1] + 1))
        probs = problems(seed % 5, per_cell, variants)
    student = draw_student(rng, mixture, variants, task)
    with_lp = bool(rng.random() < mixture.logprobs)
    with_probes = bool(rng.random() < mixture.probes)
    probe_noise = _uniform(rng, mixture.probe_noise)
    luck = _Luck(rng, _uniform(rng, mixture.persistence))
    with_divergence = bool(rng.random() < mixture.divergence)
    by_id = {p.id: p for p in probs}
    difficulty = {
        c: float(rng.normal(0.0, student.difficulty_sd))
        for c in sorted({_chain_key(p) for p in probs})
    }
    records: list[Record] = []
    truth: dict[Key, str] = {}
    extra: dict[Key, dict[str, object]] = {}
    for p in probs:
        steps = int(p.meta["depth"])
        records.append(
            _record(
                p.id, "teacher", 0, _text(p.answer), p.answer, p.answer, True, p, None, steps, task
            )
        )
        diff = difficulty[_chain_key(p)]
        p_cap = _cap_pass(student, steps, diff)
        p_form = _form_pass(student, _forms(p))
        for s in range(student.samples):
            cap_ok = luck(f"cap|{_chain_key(p)}") < p_cap
            form_ok = luck(f"form|{p.id}") < p_form
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
            records.append(
                _record(p.id, "student", s, text, answer, p.answer, right, p, lp, steps, task)
            )
            if right:
                continue
            if not cap_ok and form_ok:
                cause = "capacity"
            elif cap_ok and not form_ok:
                cause = "mismatch"
            else:
                cause = UNDETERMINED
            key = (task, p.id, s)
            more: dict[str, object] = {}
            if with_probes:
                more["probes"] = _probes(rng, luck, student, p, steps, diff, probe_noise, by_id)
            if with_divergence:  # a run with an embedding model has both
                more["divergence"] = _divergence(rng, student, steps, cause)
                more["ood_percentile"] = _ood(rng, p)
            if more:
                extra[key] = more
            flip = rng.random() < student.noise
            if noisy and flip and cause != UNDETERMINED:
                cause = "mismatch" if cause == "capacity" else "capacity"
            truth[key] = cause
    return Planted(records, truth, extra)


def planted_features(planted: Planted) -> dict[Key, Features]:
    """Features of a planted run's failures as a real run gives them: computed from its
    records, then its probes and divergence added."""
    from harness.classify.features import compute

    out = compute(planted.records)
    for key, more in planted.extra.items():
        f = out.get(key)
        if f is None:
            continue
        probes = more.get("probes")
        divergence = more.get("divergence")
        ood = more.get("ood_percentile")
        out[key] = replace(
            f,
            probes=dict(probes) if isinstance(probes, dict) else f.probes,
            divergence=float(divergence) if isinstance(divergence, float) else f.divergence,
            ood_percentile=float(ood) if isinstance(ood, float) else f.ood_percentile,
        )
    return out


def simulate_many(
    seeds: Sequence[int], *, mixture: Mixture = TRAIN, noisy: bool = True
) -> list[Planted]:
    """Several independent runs (each one student: features are computed per run)."""
    return [simulate(s, mixture=mixture, noisy=noisy) for s in seeds]


__all__ = [
    "GSM8K_DEPTHS",
    "GSM8K_KINDS",
    "HELD_OUT_MIXTURE",
    "TRAIN",
    "Mixture",
    "Planted",
    "Student",
    "draw_student",
    "gsm8k_problems",
    "planted_features",
    "problems",
    "simulate",
    "simulate_many",
]
