"""One run: tasks -> problems -> teacher and student generations (cache first) -> records ->
metrics. Nothing task- or backend-specific lives here; both come through their registries.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import Progress

from harness import __version__
from harness.backends import Backend, backend_class, load_backend
from harness.config import RunConfig
from harness.console import info, progress_bars, warn
from harness.errors import HarnessError, Interrupted
from harness.generate import generate_missing, make_request, role_sampling
from harness.metrics import MetricOptions, compute_metrics
from harness.models import ModelSpec, parse_spec
from harness.perturb import context_for, parse_kinds, perturb_problems, skip_summary
from harness.store import GenerationCache, RunDir, default_cache_dir, prompt_digest
from harness.tasks import REGISTRY as TASKS
from harness.tasks import DataSource, Task, get_task
from harness.tasks.grading import sandbox
from harness.types import (
    ROLES,
    Generation,
    Problem,
    Record,
    Request,
    Role,
    Sampling,
    Score,
)

__all__ = ["RunResult", "build_requests", "config_sampling", "resolve_tasks", "run"]


@dataclass
class RunResult:
    run_dir: Path
    records: list[Record]
    metrics: dict[str, Any]


def resolve_tasks(config: RunConfig, source: DataSource) -> list[Task]:
    """The tasks asked for, or the offline default: chains plus every real set found locally."""
    if config.tasks:
        return [get_task(s) for s in config.tasks]
    tasks = [get_task("chains")]
    for name in sorted(TASKS):
        if name != "chains":
            task = get_task(name)
            if task.default_run and task.available(source):
                tasks.append(task)
    return tasks


def config_sampling(spec: ModelSpec, config: RunConfig) -> Sampling:
    """A role's sampling under this run's overrides (the one place a run maps its flags)."""
    return role_sampling(
        spec,
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        logprobs=config.logprobs,
    )


def build_requests(
    task: Task, problems: Sequence[Problem], spec: ModelSpec, config: RunConfig
) -> list[Request]:
    """Every problem x sample for one model."""
    sampling = config_sampling(spec, config)
    style = config.style or spec.prompt.style
    requests = []
    for problem in problems:
        messages = task.prompt(problem, style)
        for sample in range(config.samples):
            requests.append(make_request(spec, problem, messages, sample, sampling, config.seed))
    return requests


class _Role:
    """One model's side of the run: its spec and a backend loaded only if something is missing."""

    def __init__(self, role: Role, spec: ModelSpec, config: RunConfig, cache_dir: Path) -> None:
        self.role, self.spec, self.config, self.cache_dir = role, spec, config, cache_dir
        self.backend: Backend | None = None
        self.pool: Any = None
        if config.ray and backend_class(spec.backend).generates:
            # Fixed text (reference, replay) costs nothing to make here; models go to the cluster.
            from harness.cluster import RayPool

            self.pool = RayPool(
                spec,
                cache_dir,
                backend_class(spec.backend).batch_size_for(spec, config.batch_size),
                actors=config.ray_actors,
                label=f"{role} {spec.name}",
            )

    def get_backend(self) -> Backend:
        if self.backend is None:
            info(f"{self.role}: loading {self.spec.name} ({self.spec.backend})")
            self.backend = load_backend(
                self.spec, cache_dir=self.cache_dir, batch_size=self.config.batch_size
            )
        return self.backend

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None


def make_record(
    run_id: str,
    role: Role,
    spec: ModelSpec,
    task: Task,
    req: Request,
    gen: Generation,
    cached: bool,
    score: Score,
) -> Record:
    """One graded generation as a record (the distill stage's collector builds its own too)."""
    p = req.problem
    return Record(
        run_id=run_id,
        task=task.spec,
        problem_id=p.id,
        role=role,
        sample=req.sample,
        model=spec.name,
        backend=spec.backend,
        question=p.question,
        gold=p.answer,
        text=gen.text,
        reasoning=gen.reasoning,
        answer=score.answer,
        extractor=score.extractor,
        lenient=score.lenient,
        correct=score.correct,
        truncated=score.truncated,
        finish_reason=gen.finish_reason,
        prompt_hash=prompt_digest(req.messages, spec.prompt.prefill)[:16],
        cache_key=req.key,
        prompt_tokens=gen.prompt_tokens,
        completion_tokens=gen.completion_tokens,
        seconds=gen.seconds,
        cached=cached,
        subset=p.subset,
        steps=task.steps(p),
        parent_id=p.parent_id,
        perturbation=p.perturbation,
        perturb_seed=p.perturb_seed,
        error=gen.error,
        logprobs=gen.logprobs,
        # A generation that exists but could not be graded says why (a sandbox failure).
        grade_error=(score.detail or "not graded") if gen.ok and score.correct is None else None,
        token_limit=gen.token_limit,
    )


def run(config: RunConfig, *, progress: bool = True) -> RunResult:
    """Run (or resume) a whole evaluation and write its run directory."""
    t_start = time.perf_counter()
    # Validate every input before any model loads or file is written.
    specs: dict[Role, ModelSpec] = {
        "teacher": parse_spec(config.teacher),
        "student": parse_spec(config.student),
    }
    for spec in specs.values():
        backend_class(spec.backend)
    if config.ray:
        from harness.cluster import require_ray

        require_ray()
    source = DataSource.resolve(config.data_dir)
    tasks = resolve_tasks(config, source)
    names = [t.spec for t in tasks]
    if len(set(names)) != len(names):
        raise HarnessError(f"--tasks names a task twice: {', '.join(names)}")
    if config.samples > 1 and config.temperature == 0:
        warn(f"greedy decoding with --samples {config.samples} gives identical samples")

    kinds, per = parse_kinds(config.perturb) if config.perturb else ([], None)
    loaded: dict[str, list[Problem]] = {}
    for task in tasks:
        got = task.load(source, config.limit)
        if not got.problems:
            raise HarnessError(f"task {task.spec}: no problems loaded from {got.source}")
        info(f"{task.spec}: {len(got.problems)} problems from {got.source}")
        loaded[task.spec] = got.problems + _variants(task, got.problems, kinds, per, config.seed)

    cache_dir = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
    cache = GenerationCache(cache_dir / "generations.sqlite")
    # Code answers: results of programs already run (the reference teacher's, another
    # student's identical ones) come from the execution cache beside the generations.
    sandbox.set_execution_cache(None if config.fresh else cache_dir / "executions.sqlite")
    run_id = config.run_id or config.default_run_id()
    run_dir = RunDir(Path(config.out).expanduser() / run_id)
    run_dir.create()
    if config.fresh:
        run_dir.clear()
    run_dir.write_config(
        {
            **config.model_dump(),
            "run_id": run_id,
            "tasks": names,
            "resolved": {
                role: {
                    "name": s.name,
                    "backend": s.backend,
                    "model": s.model,
                    "revision": s.revision,
                    "options": dict(s.options),
                    "prompt": dataclasses.asdict(s.prompt),
                    "sampling": config_sampling(s, config).to_dict(),
                }
                for role, s in specs.items()
            },
            "harness_version": __version__,
        }
    )

    records: list[Record] = []
    executions: dict[Role, dict[str, int]] = {}
    bars = progress_bars(progress)
    joined = False
    if config.ray:
        from harness.cluster import connect

        joined = connect(config.ray)
    try:
        with bars:
            for role in ROLES:
                side = _Role(role, specs[role], config, cache_dir)
                before = sandbox.execution_stats()
                try:
                    for task in tasks:
                        records.extend(
                            _run_role_task(side, task, loaded[task.spec], cache, run_id, bars)
                        )
                finally:
                    side.close()
                    executions[role] = (sandbox.execution_stats() - before).to_dict()
    except KeyboardInterrupt:
        cache.close()
        raise Interrupted(
            "interrupted: every finished generation is in the cache; "
            "run the same command again to resume"
        ) from None
    finally:
        if joined:
            import ray

            ray.shutdown()
    cache.close()

    metrics = compute_metrics(
        records,
        {t.spec: t.same_answer for t in tasks},
        MetricOptions(
            chains=(config.chain_model or "").lower() != "none",
            chains_off="turned off by --chain-model none",
            chain_model=config.chain_model,
            cache_dir=cache_dir,
            confidence=config.confidence,
        ),
    )
    for role, counts in executions.items():
        if any(counts.values()):  # only runs with code tasks have programs to count
            metrics["cost"][role]["executions"] = counts
    metrics["run"] = {
        "run_id": run_id,
        "student": specs["student"].name,
        "teacher": specs["teacher"].name,
        "samples": config.samples,
        "seconds": round(time.perf_counter() - t_start, 3),
        "harness_version": __version__,
    }
    run_dir.write_records(records)
    run_dir.write_metrics(metrics)
    if config.classify != "off" and any(
        r.role == "student" and r.correct is False for r in records
    ):
        metrics = _classify(run_dir, config.classify == "probe", metrics, progress)
    _report(run_dir)
    return RunResult(run_dir.path, records, metrics)


def _report(run_dir: RunDir) -> None:
    """Write the run's HTML report (report.html). Records and metrics are already written,
    so a report that cannot be made costs a warning line, never the run."""
    from harness.report import build_report

    try:
        path = build_report(run_dir.path)
    except HarnessError as e:
        warn(f"report not written: {e}")
        return
    info(f"report: {path}")


def _classify(
    run_dir: RunDir, probe: bool, metrics: dict[str, Any], progress: bool
) -> dict[str, Any]:
    """Label the student's failures (failures.jsonl, metrics `failures`). The run's records
    and metrics are already written, so a classifier that cannot run costs only its section."""
    from harness.classify import classify_run

    try:
        classify_run(run_dir.path, probe=probe, progress=progress)
    except HarnessError as e:
        warn(f"failures not labelled: {e}")
        metrics["failures"] = {"error": str(e)}
        run_dir.write_metrics(metrics)
        return metrics
    return run_dir.read_metrics()


def _variants(
    task: Task, problems: list[Problem], kinds: list[str], per: int | None, seed: int
) -> list[Problem]:
    """The task's perturbed variants under `--perturb` (none without it), with one line per
    kind saying how many originals it covered and why it skipped the others."""
    if not kinds:
        return []
    ctx = context_for(task, problems)
    outcome = perturb_problems(problems, ctx, kinds, per_problem=per or 1, seed=seed)
    for kind in kinds:
        covered, tried = outcome.covered(kind), outcome.attempted[kind]
        if not covered and all(k != kind or "does not apply" in why for k, why in outcome.skipped):
            continue  # a kind for other tasks: nothing to say about this one
        made = sum(v.perturbation == kind for v in outcome.variants)
        why = skip_summary(outcome, kind)
        info(
            f"{task.spec}: {kind} variants of {covered}/{tried} problems ({made} in all)"
            + (f"; skipped {why}" if why else "")
        )
    return outcome.variants


def _run_role_task(
    side: _Role,
    task: Task,
    problems: list[Problem],
    cache: GenerationCache,
    run_id: str,
    bars: Progress,
) -> list[Record]:
    config, spec = side.config, side.spec
    requests = build_requests(task, problems, spec, config)
    results: dict[str, tuple[Generation, bool]] = {}
    if not config.fresh:
        results = {k: (g, True) for k, g in cache.get_many(r.key for r in requests).items()}
    bar = bars.add_task(f"{side.role} {task.spec}", total=len(requests))
    bars.advance(bar, sum(r.key in results for r in requests))
    batch_size = backend_class(spec.backend).batch_size_for(spec, config.batch_size)
    if side.pool is not None:
        side.pool.generate(requests, results, cache, lambda n: bars.advance(bar, n))
    else:
        generate_missing(
            requests,
            results,
            cache,
            spec,
            side.get_backend,
            batch_size,
            lambda n: bars.advance(bar, n),
        )
    bars.update(bar, completed=len(requests))
    # Scored together: a code task runs all its programs in one parallel sandbox pass.
    scores = task.score_many([(results[r.key][0], r.problem) for r in requests])
    records = [
        make_record(run_id, side.role, spec, task, r, *results[r.key], score)
        for r, score in zip(requests, scores, strict=True)
    ]
    missing = sorted({r.problem_id for r in records if r.finish_reason == "missing"})
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        warn(
            f"{side.role} {spec.name}: {len(missing)} of {len(problems)} {task.spec} problems "
            f"have no generation (counted as missing, not wrong): {shown}"
        )
    failed = sorted({r.problem_id for r in records if r.finish_reason == "error"})
    if failed:
        warn(
            f"{side.role} {spec.name}: {len(failed)} {task.spec} generations failed: "
            + ", ".join(failed[:10])
        )
    broken = [r for r in records if r.sandbox_error]
    if broken:
        ids = sorted({r.problem_id for r in broken})
        shown = ", ".join(ids[:10]) + (" ..." if len(ids) > 10 else "")
        why = " ".join((broken[0].grade_error or "").split())[:160]
        warn(
            f"{side.role} {spec.name}: {len(broken)} {task.spec} answers could not be graded "
            f"because the sandbox failed (counted as sandbox_errors, not as wrong or right): "
            f"{shown}; first: {why}"
        )
    return records
