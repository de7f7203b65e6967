"""Causal probes (`harness classify RUN --probe`): extra generations that intervene on a failure.

Correlational evidence (depth against the frontier, form against familiar forms) can be fooled;
a probe changes one thing and asks the student again, through the run's own student backend and
generation cache, with keys built like any other request (`harness.generate.make_request`), so a
probe made once costs nothing the next time:

- `decompose`: the problem with the first k steps of the teacher's chain (the teacher's own
  reasoning when it was right, else the gold worked solution) given as a started solution, k
  about half the steps; right with the prefix (and wrong without: the failure) points to
  capacity. Graded by the task's own extractor and grader (the probe is a Problem with the same
  gold, prompted with the task's `prompt()`).
- `familiarize`: the same underlying problem in a familiar form; right there points to mismatch.
  A perturbed variant's familiar form is its parent (the original wording, numbers, option
  format); a chains problem's is the same chain (meta start/ops) told in the student's best
  default family in the run (never a held-out one). When the run already answered that form
  (same sample), its record is reused and nothing is generated. A `compose` variant and an
  original with no other telling have no familiar form, so no `familiarize` key.

The run's problems are rebuilt from its config (tasks, `--limit`, `--perturb` variants made by
`perturb_problems` / `context_for` with the run's seed, as the runner makes them), so ids, prompts
and keys match the run's. `probes.jsonl` in the run folder keeps one row per probe (`ProbeRow`:
the k, where the steps came from, the cache key, whether it was reused or cached).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.backends import Backend, backend_class, load_backend
from harness.backends.reference import ReferenceBackend
from harness.config import RECORDED_ONLY, RunConfig
from harness.console import progress_bars
from harness.errors import HarnessError
from harness.generate import generate_missing, make_request, role_sampling
from harness.metrics.segment import segment_steps
from harness.models import ModelSpec, parse_spec
from harness.perturb import Skip, context_for, parse_kinds, perturb_problems
from harness.perturb.surface import chain_of
from harness.store import GenerationCache, default_cache_dir
from harness.tasks import DataSource, Task, get_task
from harness.tasks.chains import FAMILIES, Chains
from harness.types import Generation, Problem, Record, Request

DECOMPOSE = "decompose"
FAMILIARIZE = "familiarize"
PROBE_KINDS = (DECOMPOSE, FAMILIARIZE)
PROBES_FILE = "probes.jsonl"
NO_FAMILIAR_FORM = ("compose",)
"""Perturbation kinds whose parent is not the same problem in another form (a composition's
parent is only its first part), so they get no `familiarize` probe."""
_MISSING = Generation("", finish_reason="missing", error="no generation")
MIN_STEPS = 2
"""A chain needs at least this many steps for a prefix that leaves something to do."""

Item = tuple[str, str, int]
"""(task spec, problem id, sample) of one student item."""


@dataclass(frozen=True)
class ProbeRow:
    """One probe of one failed item: a row of probes.jsonl."""

    task: str
    problem_id: str
    sample: int
    kind: str
    """`decompose` or `familiarize`."""
    probe_id: str
    """The probe problem's id: `<pid>~probe-decompose-<k>`, or the familiar form's own id."""
    correct: bool | None
    """None: no generation could be had (an error, a backend that cannot generate)."""
    cache_key: str
    k: int | None = None
    """Decompose: steps given; `of_steps` is how many the chain had."""
    of_steps: int | None = None
    steps_from: str | None = None
    """Decompose: `teacher` (its reasoning, when it was right) or `gold` (the worked solution)."""
    reused: bool = False
    """Familiarize: the run had already answered the familiar form; its record was read."""
    cached: bool = False
    """The generation came from the cache (nothing generated)."""
    answer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProbeRow:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class _Planned:
    """A probe waiting for its generation."""

    item: Item
    kind: str
    task: Task
    request: Request
    k: int | None = None
    of_steps: int | None = None
    steps_from: str | None = None


def load_run_config(run_dir: Path) -> RunConfig:
    """The run's RunConfig from its config.yaml (or config.json), without what it recorded."""
    yaml_path, json_path = run_dir / "config.yaml", run_dir / "config.json"
    if yaml_path.is_file():
        return RunConfig.load_yaml(yaml_path)
    if json_path.is_file():
        try:
            data = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise HarnessError(f"cannot read config {json_path}: {e}") from e
        if not isinstance(data, dict):
            raise HarnessError(f"config {json_path}: expected a mapping of RunConfig fields")
        return RunConfig.build(**{k: v for k, v in data.items() if k not in RECORDED_ONLY})
    raise HarnessError(f"no config.yaml in {run_dir}: probes need the run's config")


def read_probes(run_dir: Path) -> list[ProbeRow]:
    """probes.jsonl of a run folder ([] when probes never ran)."""
    path = run_dir / PROBES_FILE
    if not path.is_file():
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(ProbeRow.from_dict(json.loads(line)))
            except (json.JSONDecodeError, TypeError) as e:
                raise HarnessError(f"{path}:{n}: not a probe row ({e})") from e
    return rows


def decompose_k(n_steps: int) -> int | None:
    """Steps to give out of `n_steps`: about half, always leaving at least one to do."""
    if n_steps < MIN_STEPS:
        return None
    return min(math.ceil(n_steps / 2), n_steps - 1)


def decompose_problem(problem: Problem, steps: Sequence[str], k: int) -> Problem:
    """The problem with its first k solution steps given; same gold, same task, new id."""
    start = "\n".join(steps[:k])
    question = (
        f"{problem.question}\n\nHere is the start of a solution:\n{start}\n\n"
        "Continue from there and give the final answer."
    )
    meta = {**problem.meta, "probe": {"kind": DECOMPOSE, "k": k, "of": problem.id}}
    return replace(problem, id=f"{problem.id}~probe-{DECOMPOSE}-{k}", question=question, meta=meta)


def chain_steps(text: str | None) -> list[str]:
    """A chain's steps without the one that states the final answer (which would give it away)."""
    if not text:
        return []
    return [s for s in segment_steps(text) if "\\boxed" not in s and not s.startswith("####")]


class _LazyBackend:
    """The student's backend, loaded only when a probe is not in the cache."""

    def __init__(self, spec: ModelSpec, cache_dir: Path, batch_size: int | None) -> None:
        self.spec, self.cache_dir, self.batch_size = spec, cache_dir, batch_size
        self.backend: Backend | None = None

    def get(self) -> Backend:
        if self.backend is None:
            self.backend = load_backend(
                self.spec, cache_dir=self.cache_dir, batch_size=self.batch_size
            )
        return self.backend

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None


class _Run:
    """The run rebuilt from its config: tasks, problems (with variants), student requests."""

    def __init__(self, config: RunConfig, records: Sequence[Record]) -> None:
        self.config = config
        self.spec = parse_spec(config.student)
        backend_class(self.spec.backend)  # one line for an unknown backend, before anything runs
        self.sampling = role_sampling(
            self.spec,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            logprobs=config.logprobs,
        )
        self.style = config.style or self.spec.prompt.style
        self.source = DataSource.resolve(config.data_dir)
        self.kinds, self.per = parse_kinds(config.perturb) if config.perturb else ([], None)
        self.student: dict[Item, Record] = {}
        self.teacher: dict[tuple[str, str], list[Record]] = defaultdict(list)
        for r in records:
            if r.role == "student":
                self.student[(r.task, r.problem_id, r.sample)] = r
            else:
                self.teacher[(r.task, r.problem_id)].append(r)
        self.tasks: dict[str, Task] = {}
        self.problems: dict[str, dict[str, Problem]] = {}
        self._families: dict[str, list[str]] = {}

    def task(self, spec: str) -> Task:
        if spec not in self.tasks:
            if self.config.tasks and spec not in self.config.tasks:
                raise HarnessError(f"task {spec} is not one of this run's tasks")
            self.tasks[spec] = get_task(spec)
        return self.tasks[spec]

    def load(self, spec: str, failing: Sequence[str]) -> None:
        """The task's originals, and the variants of the parents that `failing` variants need
        (a variant depends only on its parent, the seed and the whole pool, so making only
        those parents' variants gives the run's very ids and texts)."""
        if spec in self.problems:
            return
        task = self.task(spec)
        originals = task.load(self.source, self.config.limit).problems
        got = {p.id: p for p in originals}
        wanted = sorted({pid.split("~", 1)[0] for pid in failing if "~" in pid})
        parents = [got[pid] for pid in wanted if pid in got]
        if parents and self.kinds:
            ctx = context_for(task, originals)
            outcome = perturb_problems(
                parents, ctx, self.kinds, per_problem=self.per or 1, seed=self.config.seed
            )
            got.update({v.id: v for v in outcome.variants})
        self.problems[spec] = got

    def problem(self, spec: str, pid: str) -> Problem:
        found = self.problems.get(spec, {}).get(pid)
        if found is None:
            raise HarnessError(
                f"{spec} problem {pid} cannot be rebuilt from the run's config (its data or the "
                "harness changed since the run)"
            )
        return found

    def request(self, task: Task, problem: Problem, sample: int) -> Request:
        messages = task.prompt(problem, self.style)
        return make_request(self.spec, problem, messages, sample, self.sampling, self.config.seed)

    def best_families(self, spec: str) -> list[str]:
        """Default families by the student's accuracy on this task's originals, best first
        (only families the run measured; held-out ones never)."""
        if spec not in self._families:
            right: dict[str, list[bool]] = defaultdict(list)
            for (task, _, _), r in self.student.items():
                original = r.perturbation is None and r.correct is not None
                if task == spec and original and r.subset in FAMILIES:
                    right[r.subset].append(bool(r.correct))
            order = list(FAMILIES)
            self._families[spec] = sorted(
                right, key=lambda f: (-sum(right[f]) / len(right[f]), order.index(f))
            )
        return self._families[spec]

    def familiar(self, task: Task, problem: Problem) -> Problem | None:
        """The same underlying problem in a familiar form, or None when it has none."""
        if problem.parent_id is not None:
            if problem.perturbation in NO_FAMILIAR_FORM:
                return None
            return self.problem(task.spec, problem.parent_id)
        if not isinstance(task, Chains):
            return None
        chain = chain_of(problem)
        if isinstance(chain, Skip) or chain[0] != task.seed:
            return None
        _, depth, index, _, _ = chain
        here = problem.meta.get("family")
        best = [f for f in self.best_families(task.spec) if f != here]
        return task.make(depth, best[0], index) if best else None

    def teacher_steps(self, task: Task, problem: Problem, sample: int) -> tuple[list[str], str]:
        """The chain a decompose probe starts from: the right teacher's, else the gold one."""
        runs = sorted(self.teacher.get((task.spec, problem.id), []), key=lambda r: r.sample)
        if runs:
            r = runs[sample % len(runs)]
            steps = chain_steps(r.reasoning or r.text)
            if r.correct and len(steps) >= MIN_STEPS:
                return steps, "teacher"
        gold = ReferenceBackend.solution(problem).reasoning if problem.reference else None
        return chain_steps(gold), "gold"


def _write_rows(path: Path, rows: Sequence[ProbeRow]) -> None:
    """probes.jsonl, written to a temporary file first so a half file never replaces a good one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row.to_dict(), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def run_probes(
    run_dir: Path,
    records: Sequence[Record],
    failures: Sequence[Item],
    *,
    progress: bool = True,
    max_items: int | None = None,
) -> dict[Item, dict[str, bool]]:
    """Decompose and familiarize probes of failed student items (task spec, problem id,
    sample), at most `max_items` of them in sorted order; item -> {probe kind: right}, a kind
    left out where the item has no such probe or no generation could be had. Writes
    probes.jsonl in `run_dir`."""
    if max_items is not None and max_items < 0:
        raise HarnessError(f"probes: max_items must be >= 0, not {max_items}")
    config = load_run_config(run_dir)
    run = _Run(config, records)
    items = sorted(set(failures))[:max_items] if max_items is not None else sorted(set(failures))
    for item in items:
        if item not in run.student:
            raise HarnessError(
                f"probes: {item[0]} {item[1]} sample {item[2]} is not a student record of this run"
            )
    by_task: dict[str, list[str]] = defaultdict(list)
    for spec, pid, _ in items:
        by_task[spec].append(pid)
    for spec, pids in sorted(by_task.items()):
        run.load(spec, pids)

    planned: list[_Planned] = []
    rows: list[ProbeRow] = []
    for item in items:
        spec, pid, sample = item
        task, problem = run.task(spec), run.problem(spec, pid)
        record = run.student[item]
        if record.question != problem.question:
            raise HarnessError(
                f"{spec} problem {pid} rebuilt from the config differs from the run's record "
                "(its data or the harness changed since the run)"
            )
        if task.kind != "code":  # a code prompt is a program to finish: no prose prefix
            steps, source = run.teacher_steps(task, problem, sample)
            k = decompose_k(len(steps))
            if k is not None:
                probe = decompose_problem(problem, steps, k)
                req = run.request(task, probe, sample)
                planned.append(_Planned(item, DECOMPOSE, task, req, k, len(steps), source))
        familiar = run.familiar(task, problem)
        if familiar is not None:
            seen = run.student.get((spec, familiar.id, sample))
            if seen is not None and seen.correct is not None:
                rows.append(
                    ProbeRow(
                        spec,
                        pid,
                        sample,
                        FAMILIARIZE,
                        familiar.id,
                        bool(seen.correct),
                        seen.cache_key,
                        reused=True,
                        cached=True,
                        answer=seen.answer,
                    )
                )
            else:
                planned.append(
                    _Planned(item, FAMILIARIZE, task, run.request(task, familiar, sample))
                )

    rows.extend(_generate(run, config, planned, progress))
    rows.sort(key=lambda r: (r.task, r.problem_id, r.sample, PROBE_KINDS.index(r.kind)))
    _write_rows(run_dir / PROBES_FILE, rows)
    out: dict[Item, dict[str, bool]] = {item: {} for item in items}
    for row in rows:
        if row.correct is not None:
            out[(row.task, row.problem_id, row.sample)][row.kind] = row.correct
    return out


def _generate(
    run: _Run, config: RunConfig, planned: Sequence[_Planned], progress: bool
) -> list[ProbeRow]:
    """Generate (cache first) and grade the planned probes with the student's backend."""
    if not planned:
        return []
    cache_dir = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
    requests = list({p.request.key: p.request for p in planned}.values())
    cache = GenerationCache(cache_dir / "generations.sqlite")
    backend = _LazyBackend(run.spec, cache_dir, config.batch_size)
    bars = progress_bars(progress)
    try:
        results = {k: (g, True) for k, g in cache.get_many(r.key for r in requests).items()}
        with bars:
            bar = bars.add_task(f"probes {run.spec.name}", total=len(requests))
            bars.advance(bar, sum(r.key in results for r in requests))
            batch_size = backend_class(run.spec.backend).batch_size_for(run.spec, config.batch_size)
            generate_missing(
                requests,
                results,
                cache,
                run.spec,
                backend.get,
                batch_size,
                lambda n: bars.advance(bar, n),
            )
            bars.update(bar, completed=len(requests))
    finally:
        backend.close()
        cache.close()

    rows: list[ProbeRow] = []
    by_task: dict[str, list[_Planned]] = defaultdict(list)
    for p in planned:
        by_task[p.task.spec].append(p)
    for group in by_task.values():
        task = group[0].task
        gens: list[tuple[Generation, bool]] = [
            results.get(p.request.key, (_MISSING, False)) for p in group
        ]
        scores = task.score_many(
            [(g, p.request.problem) for (g, _), p in zip(gens, group, strict=True)]
        )
        for p, (gen, cached), score in zip(group, gens, scores, strict=True):
            rows.append(
                ProbeRow(
                    p.item[0],
                    p.item[1],
                    p.item[2],
                    p.kind,
                    p.request.problem.id,
                    score.correct if gen.ok else None,
                    p.request.key,
                    k=p.k,
                    of_steps=p.of_steps,
                    steps_from=p.steps_from,
                    cached=cached,
                    answer=score.answer,
                )
            )
    return rows


__all__ = [
    "DECOMPOSE",
    "FAMILIARIZE",
    "PROBES_FILE",
    "PROBE_KINDS",
    "ProbeRow",
    "chain_steps",
    "decompose_k",
    "decompose_problem",
    "load_run_config",
    "read_probes",
    "run_probes",
]
