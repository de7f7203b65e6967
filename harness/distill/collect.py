"""Teacher chains by rejection sampling: the distillation data set.

Each problem is asked `samples` times through the same request builder and generation cache
as `harness run`, so a chain a run already made costs nothing here and a chain made here is
reused by a later run. A chain is kept only when the task's grader says it is right, it was
not cut at its token limit, it does not loop (the health section's detector), and no identical
chain of the same problem was kept already. What is written is a chat-format `datasets` data
set (`save_to_disk`): the prompt the student will see, then the teacher's reasoning inside
`<think>...</think>` and its answer, with the teacher and the problem's lineage beside it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.reasoning import THINK_CLOSE, THINK_OPEN
from harness.types import Generation, Problem, Record, Request, Score

MANIFEST = "collect.json"
"""Written beside the data set: what was asked, what was kept and why the rest was not."""
REJECTIONS = ("wrong", "ungraded", "truncated", "looping", "duplicate", "empty")


@dataclass(frozen=True)
class CollectResult:
    path: Path
    rows: int
    problems: int
    """Problems with at least one kept chain."""
    asked: int
    """Problems asked."""
    generations: int
    rejected: dict[str, int] = field(default_factory=dict)
    generated: int = 0
    """Generations made now (the rest came from the cache)."""


def completion_text(generation: Generation) -> str:
    """The assistant turn a student learns: the reasoning in think tags, then the answer."""
    answer = generation.text.strip()
    if generation.reasoning is None or not generation.reasoning.strip():
        return answer
    return f"{THINK_OPEN}\n{generation.reasoning.strip()}\n{THINK_CLOSE}\n\n{answer}"


def lineage_key(problem: Problem) -> str:
    """What two problems share when one could leak the other's answer into training: the
    synthetic chain behind a `chains` telling, else the original a variant came from."""
    chain = problem.meta.get("chain_id")
    if isinstance(chain, str) and chain:
        return f"{problem.task}/chain/{chain}"
    return f"{problem.task}/{problem.parent_id or problem.id}"


def rejection(gen: Generation, score: Score, record: Record) -> str | None:
    """Why a chain is not kept (None: keep it)."""
    from harness.metrics.health import record_health

    if not gen.ok:
        return "ungraded"
    if score.truncated or gen.finish_reason == "length" or gen.reasoning_closed is False:
        return "truncated"
    if score.correct is None:
        return "ungraded"
    if not score.correct:
        return "wrong"
    if not completion_text(gen):
        return "empty"
    if record_health(record)["loop"]:
        return "looping"
    return None


def _row(
    task_spec: str,
    task_name: str,
    steps: int | None,
    teacher: dict[str, str],
    req: Request,
    gen: Generation,
    score: Score,
) -> dict[str, Any]:
    p = req.problem
    prompt = [m.to_dict() for m in req.messages if m.role != "system"]
    family = p.meta.get("family", p.subset)
    return {
        "messages": [*prompt, {"role": "assistant", "content": completion_text(gen)}],
        "task": task_spec,
        "task_name": task_name,
        "problem_id": p.id,
        "parent_id": p.parent_id,
        "perturbation": p.perturbation,
        "subset": p.subset,
        "family": family if isinstance(family, str) else None,
        "depth": steps,
        "lineage": lineage_key(p),
        "gold": p.answer,
        "answer": score.answer,
        "sample": req.sample,
        "teacher": teacher["name"],
        "teacher_backend": teacher["backend"],
        "teacher_model": teacher["model"],
        "cache_key": req.key,
        "completion_tokens": gen.completion_tokens,
    }


def collect(
    teacher: str,
    tasks: Sequence[str],
    out: Path,
    *,
    samples: int = 1,
    seed: int = 0,
    limit: int | None = None,
    data_dir: str | None = None,
    cache_dir: Path | None = None,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    style: str | None = None,
    batch_size: int | None = None,
    exclude: Callable[[Problem], bool] | None = None,
    progress: bool = True,
) -> CollectResult:
    """Ask `teacher` `samples` times per problem of `tasks`, keep the right, whole, non-looping,
    distinct chains, and save them as a data set at `out`. `exclude` drops problems before any
    generation (held-out lineages)."""
    from harness.backends import Backend, backend_class, load_backend
    from harness.config import RunConfig
    from harness.console import info, progress_bars
    from harness.generate import generate_missing
    from harness.models import parse_spec
    from harness.runner import build_requests, make_record
    from harness.store import GenerationCache, default_cache_dir
    from harness.tasks import DataSource, get_task

    if not tasks:
        raise HarnessError("harness distill collect: name the tasks (e.g. --tasks chains)")
    if samples < 1:
        raise HarnessError(f"harness distill collect: --samples takes >= 1, not {samples}")
    spec = parse_spec(teacher)
    backend_class(spec.backend)
    config = RunConfig.build(
        student=teacher,
        teacher=teacher,
        tasks=list(tasks),
        samples=samples,
        seed=seed,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        style=style,
        batch_size=batch_size,
    )
    source = DataSource.resolve(data_dir)
    root = cache_dir if cache_dir is not None else default_cache_dir()
    cache = GenerationCache(root / "generations.sqlite")
    loaded: Backend | None = None

    def get_backend() -> Backend:
        nonlocal loaded
        if loaded is None:
            info(f"teacher: loading {spec.name} ({spec.backend})")
            loaded = load_backend(spec, cache_dir=root, batch_size=batch_size)
        return loaded

    teacher_info = {"name": spec.name, "backend": spec.backend, "model": spec.model}
    rows: list[dict[str, Any]] = []
    rejected: Counter[str] = Counter()
    asked = generations = generated = 0
    seen: set[tuple[str, str]] = set()
    try:
        with progress_bars(progress) as bars:
            for task_spec in tasks:
                task = get_task(task_spec)
                problems = task.load(source, limit).problems
                if exclude is not None:
                    problems = [p for p in problems if not exclude(p)]
                if not problems:
                    raise HarnessError(f"task {task.spec}: no problems to collect from")
                asked += len(problems)
                requests = build_requests(task, problems, spec, config)
                results = {k: (g, True) for k, g in cache.get_many(r.key for r in requests).items()}
                bar = bars.add_task(f"teacher {task.spec}", total=len(requests))
                bars.advance(bar, sum(r.key in results for r in requests))
                size = backend_class(spec.backend).batch_size_for(spec, batch_size)
                generate_missing(
                    requests,
                    results,
                    cache,
                    spec,
                    get_backend,
                    size,
                    partial(bars.advance, bar),
                )
                generated += sum(not cached for _, cached in results.values())
                gens = [results[r.key][0] for r in requests]
                pairs = [(g, r.problem) for g, r in zip(gens, requests, strict=True)]
                scores = task.score_many(pairs)
                generations += len(requests)
                for req, gen, score in zip(requests, gens, scores, strict=True):
                    record = make_record("collect", "teacher", spec, task, req, gen, True, score)
                    why = rejection(gen, score, record)
                    text = completion_text(gen)
                    if why is None and (req.problem.id, text) in seen:
                        why = "duplicate"
                    if why is not None:
                        rejected[why] += 1
                        continue
                    seen.add((req.problem.id, text))
                    steps = task.steps(req.problem)
                    rows.append(_row(task.spec, task.name, steps, teacher_info, req, gen, score))
    finally:
        if loaded is not None:
            loaded.close()
        cache.close()
    if not rows:
        raise HarnessError(
            f"harness distill collect: the teacher {spec.name} kept no chain "
            f"({', '.join(f'{k} {v}' for k, v in sorted(rejected.items())) or 'nothing asked'})"
        )
    save_rows(rows, out)
    result = CollectResult(
        path=out,
        rows=len(rows),
        problems=len({r["problem_id"] for r in rows}),
        asked=asked,
        generations=generations,
        rejected={k: rejected[k] for k in REJECTIONS},
        generated=generated,
    )
    manifest = {
        "teacher": teacher_info,
        "tasks": list(tasks),
        "samples": samples,
        "seed": seed,
        "limit": limit,
        "rows": result.rows,
        "problems": result.problems,
        "asked": asked,
        "generations": generations,
        "generated": generated,
        "rejected": result.rejected,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return result


def save_rows(rows: list[dict[str, Any]], out: Path) -> None:
    """Rows as a `datasets` data set on disk (one clear line when the folder is unusable)."""
    import datasets

    if out.exists() and not out.is_dir():
        raise HarnessError(f"{out} is a file: name a folder for the data set")
    try:
        datasets.Dataset.from_list(rows).save_to_disk(str(out))
    except (OSError, PermissionError) as e:
        raise HarnessError(f"cannot write the data set to {out}: {e}") from e


def load_rows(path: Path) -> list[dict[str, Any]]:
    """A data set written by collect (or mix) as rows."""
    import datasets

    if not (path / "dataset_info.json").is_file() and not (path / "state.json").is_file():
        raise HarnessError(
            f"{path} is not a data set written by `harness distill collect` (no dataset_info.json)"
        )
    ds = datasets.load_from_disk(str(path))
    return [dict(r) for r in ds]


__all__ = [
    "CollectResult",
    "collect",
    "completion_text",
    "lineage_key",
    "load_rows",
    "rejection",
    "save_rows",
]
