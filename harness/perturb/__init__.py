"""Perturbation stage: variants of a task's problems whose answers are recomputed or provably
kept, each carrying its lineage (parent id, kind, seed, parameters).

Kinds are registered like tasks (`KINDS`, entry-point group `harness.perturb`), one module per
kind. `perturb_problems` drives them: for every original problem and every kind it seeds one
rng per attempt from (seed, kind, parent id, attempt), so the same seed gives the same
variants and any variant can be regenerated on its own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.perturb.base import Context, Perturbation, Skip, derive
from harness.registry import Registry
from harness.types import Problem

if TYPE_CHECKING:
    from harness.tasks.base import Task

KINDS = Registry[Perturbation](
    "perturbation kind",
    Perturbation,
    {
        "numeric": "harness.perturb.numeric:Numeric",
        "distractor": "harness.perturb.distractor:Distractor",
        "rename": "harness.perturb.rename:Rename",
        "reorder": "harness.perturb.reorder:Reorder",
        "options": "harness.perturb.options:Options",
        "code-rename": "harness.perturb.code_rename:CodeRename",
        "compose": "harness.perturb.compose:Compose",
        "format": "harness.perturb.format:Format",
        "surface": "harness.perturb.surface:Surface",
    },
    group="harness.perturb",
    hint="run `harness perturb --list`",
)

ATTEMPTS = 4
"""Tries per wanted variant before a kind is taken to have no more distinct variants."""


@dataclass
class Outcome:
    """What one task's perturbation produced: the variants, and the skips counted by
    (kind, reason)."""

    variants: list[Problem] = field(default_factory=list)
    skipped: Counter[tuple[str, str]] = field(default_factory=Counter)
    attempted: Counter[str] = field(default_factory=Counter)
    """Originals each kind was tried on."""

    def covered(self, kind: str) -> int:
        """Originals that got at least one variant of `kind`."""
        return len({v.parent_id for v in self.variants if v.perturbation == kind})


def parse_kinds(text: str) -> tuple[list[str], int | None]:
    """`numeric,distractor[,per=2]` (or `all`) as kind names and the per-problem count if
    given; one line for an unknown kind."""
    kinds: list[str] = []
    per: int | None = None
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part.startswith("per="):
            try:
                per = int(part[4:])
            except ValueError:
                per = 0
            if per < 1:
                raise HarnessError(f"--perturb: '{part}' needs a whole number of at least 1")
            continue
        if part == "all":
            kinds.extend(k for k in KINDS.names() if k not in kinds)
            continue
        KINDS.load(part)  # one line with close names when unknown
        if part not in kinds:
            kinds.append(part)
    if not kinds:
        raise HarnessError(
            f"--perturb '{text}' names no kind; use any of {', '.join(KINDS.names())} or all"
        )
    return kinds, per


def _surface(p: Problem) -> tuple[object, ...]:
    """What a model sees and is graded on: two variants that agree here are the same one."""
    shown = ("answer_format", "label_style", "labels", "prompt", "entry_point", "test", "tests")
    return (p.question, p.answer, p.choices, *(repr(p.meta.get(k)) for k in shown))


def variant_id(parent: Problem, kind: str, index: int) -> str:
    return f"{parent.id}~{kind}-{index}"


def perturb_problems(
    problems: Sequence[Problem],
    ctx: Context,
    kinds: Sequence[str],
    *,
    per_problem: int = 1,
    seed: int = 0,
) -> Outcome:
    """Variants of every original in `problems` under each kind: up to `per_problem` distinct
    ones each (a kind with fewer distinct variants gives fewer). Variants of variants are not
    made. A kind that does not support the task is counted as one skip per problem."""
    out = Outcome()
    originals = [p for p in problems if p.perturbation is None]
    if not ctx.pool:
        ctx = replace(ctx, pool=tuple(originals))
    for name in kinds:
        kind = KINDS.load(name)()
        unsupported = kind.supports(ctx)
        for parent in originals:
            out.attempted[name] += 1
            if unsupported:
                out.skipped[(name, unsupported)] += 1
                continue
            seen: set[tuple[object, ...]] = set()
            made, last_skip = 0, None
            for attempt in range(per_problem * ATTEMPTS):
                if made == per_problem:
                    break
                rng = random.Random(f"perturb/{seed}/{name}/{parent.id}/{attempt}")
                got = kind.apply(parent, rng, ctx)
                if isinstance(got, Skip):
                    last_skip = got
                    if attempt == 0:  # the problem does not admit this kind at all
                        break
                    continue
                sig = _surface(got)
                if sig in seen or sig == _surface(parent):
                    continue
                seen.add(sig)
                out.variants.append(
                    replace(
                        got,
                        id=variant_id(parent, name, made),
                        parent_id=parent.id,
                        perturbation=name,
                        perturb_seed=seed,
                    )
                )
                made += 1
            if made == 0:
                reason = last_skip.reason if last_skip else "no distinct variant found"
                out.skipped[(name, reason)] += 1
    return out


def context_for(task: Task, problems: Sequence[Problem]) -> Context:
    """The context a task's kinds read: its name and answer kind, its originals, its options."""
    opts = task.opts
    options = (
        dataclasses.asdict(opts)
        if dataclasses.is_dataclass(opts) and not isinstance(opts, type)
        else {}
    )
    pool = tuple(p for p in problems if p.perturbation is None)
    return Context(task.name, task.kind, pool, options)


def skip_summary(outcome: Outcome, kind: str, top: int = 3) -> str:
    """`n: reason; n: reason` for one kind's most common skips ('' when none)."""
    got = [(n, why) for (k, why), n in outcome.skipped.most_common() if k == kind][:top]
    return "; ".join(f"{n}: {why}" for n, why in got)


def write_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """JSON Lines written to a temporary file first, so an interrupted write never leaves a
    half file where a good one was."""
    if path.is_dir():
        raise HarnessError(f"{path} is a folder: name a file to write, e.g. {path}/variants.jsonl")
    tmp = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except OSError as e:
        raise HarnessError(f"cannot write {path} ({e.strerror or e}); choose another --out") from e


__all__ = [
    "KINDS",
    "context_for",
    "skip_summary",
    "write_rows",
    "Context",
    "Outcome",
    "Perturbation",
    "Skip",
    "derive",
    "parse_kinds",
    "perturb_problems",
    "variant_id",
]
