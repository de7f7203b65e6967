"""`harness report`: one self-contained HTML file per run (written by `harness run` too).

The file holds its CSS, its scripts (the plotly.js the plotly package bundles, and the
page's own), its plots and its data, so it opens from disk with no network: the run's
header and cost, teacher vs student per task with intervals and the paired test, plots
(accuracy by task, accuracy vs depth with the frontier, reliability, reasoning length, OOD
deltas, failure causes, routing), routing numbers, and an item explorer (filters; problem,
gold, both answers and both chains side by side with their matched steps, the failure
evidence, the item's variants). With a second run (`compare`), the two students are paired
on their shared items. How the page is kept safe from the model text it shows:
`harness.report.template`.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.report.data import (
    Alignment,
    Embedder,
    RunData,
    TextTable,
    align_pairs,
    alignable,
    explorer_items,
    fit_cap,
    load_run,
    paired_items,
    shared_accuracy,
    text_budget,
)
from harness.report.plots import Plot, all_plots
from harness.report.template import (
    compare_html,
    explorer_html,
    header_html,
    plots_html,
    render,
    routing_html,
    summary_html,
)
from harness.types import Record

REPORT_FILE = "report.html"
COMPRESS_OVER = 2_000_000
"""Characters of texts above which the items and texts are stored as one gzip member
(base64) that the page unpacks: long chains shrink about fourfold."""
PAGE_SIZE = 50
"""Explorer rows drawn at a time."""


def _same_answers(tasks: list[str]) -> dict[str, Callable[[str, str], bool]]:
    from harness.metrics.accuracy import str_equal
    from harness.tasks import get_task

    out: dict[str, Callable[[str, str], bool]] = {}
    for spec in tasks:
        try:
            out[spec] = get_task(spec).same_answer
        except HarnessError:
            out[spec] = str_equal  # a task this version does not know: exact answers only
    return out


def _embedder(run: RunData) -> tuple[Any, str | None]:
    """The run's chain-similarity embedder (cache first), or why there is none."""
    chain_model = run.config.get("chain_model")
    if str(chain_model or "").lower() == "none":
        return (
            None,
            "Steps are not aligned: chain similarity is off for this run (--chain-model none).",
        )
    from harness.metrics.chainsim import Embedder as StepEmbedder
    from harness.store import default_cache_dir

    cache_dir = run.config.get("cache_dir")
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    try:
        return StepEmbedder(chain_model, cache), None
    except Exception as e:  # noqa: BLE001 - an unusable cache folder: no alignment, said so
        return None, f"Steps are not aligned: the embedding cache cannot be opened ({e})."


def _alignments(
    run: RunData, embedder: Embedder | None, align: bool
) -> tuple[dict[int, Alignment], str | None]:
    if not align:
        return {}, "Steps are not aligned (alignment turned off for this report)."
    note = None
    own = embedder is None
    if own:
        embedder, note = _embedder(run)
    if embedder is None:
        return {}, note
    idx, pairs = alignable(paired_items(run.records))
    try:
        found = align_pairs(pairs, embedder)
    except HarnessError as e:
        return {}, f"Steps are not aligned: {e}"
    finally:
        close = getattr(embedder, "close", None)
        if own and callable(close):
            close()
    return dict(zip(idx, found, strict=True)), None


def _distinct_texts(run: RunData, other: RunData | None) -> list[str]:
    """The texts the items will hold, in the items' order (a student's output next to its
    teacher's, as the page stores them), for the text budget's estimate."""
    theirs: dict[tuple[str, str, int], Record] = {}
    if other is not None:
        theirs = {(r.task, r.problem_id, r.sample): r for r in other.records if r.role == "student"}
    seen: dict[str, None] = {}
    for teacher, student in paired_items(run.records):
        b = theirs.get((student.task, student.problem_id, student.sample))
        for r in (student, teacher, b):
            if r is not None:
                for t in (r.question, r.text, r.reasoning):
                    if t is not None:
                        seen.setdefault(t)
    return list(seen)


def build_payload(
    run: RunData,
    other: RunData | None,
    plots: list[Any],
    alignments: dict[int, Alignment],
    alignment_note: str | None,
    *,
    compress_over: int = COMPRESS_OVER,
    budget: int | None = None,
) -> dict[str, Any]:
    """The page's data block: tasks, figures, and the items with their texts (packed into
    one gzip member when large)."""
    tasks = list(run.metrics["tasks"])
    tasks += sorted({r.task for r in run.records} - set(tasks))
    distinct = _distinct_texts(run, other)
    if budget is None:
        budget = text_budget(distinct)
    texts = TextTable(fit_cap((len(t) for t in distinct), budget))
    items = explorer_items(run, texts, tasks, alignments, other)
    payload: dict[str, Any] = {
        "version": 1,
        "run": run.run_id,
        "other": None if other is None else other.run_id,
        "tasks": tasks,
        "items": items,
        "texts": texts.texts,
        "packed": None,
        "texts_cut": texts.cut,
        "text_cap": texts.cap,
        "figures": [{"id": p.id, "figure": p.figure} for p in plots if isinstance(p, Plot)],
        "aligned": not alignment_note,
        "page_size": PAGE_SIZE,
    }
    size = sum(len(t) for t in texts.texts)
    if size > compress_over:
        blob = json.dumps(
            {"items": items, "texts": texts.texts}, ensure_ascii=False, separators=(",", ":")
        )
        packed = gzip.compress(blob.encode("utf-8"), compresslevel=6, mtime=0)
        payload["items"] = payload["texts"] = None
        payload["packed"] = base64.b64encode(packed).decode("ascii")
    return payload


def build_report(
    run: str | Path,
    *,
    runs: str | Path = "runs",
    compare: str | Path | None = None,
    out: Path | None = None,
    embedder: Embedder | None = None,
    align: bool = True,
    compress_over: int = COMPRESS_OVER,
    budget: int | None = None,
) -> Path:
    """Write the report of `run` (a folder, or a run id under `runs`), optionally paired
    with a second run's student; returns the file written (default `<run>/report.html`).
    `embedder` embeds chain steps for the alignment (default: the run's chain model, from
    the embedding cache); `budget`: most characters of text in all (default: as many as
    compress to about `data.PACKED_TARGET` bytes)."""
    from harness.export import locate_run

    mine = load_run(locate_run(str(run), runs))
    other = load_run(locate_run(str(compare), runs)) if compare is not None else None
    alignments, note = _alignments(mine, embedder, align)
    try:
        plots = all_plots(mine, other)
    except ImportError as e:
        raise HarnessError(f"the report needs plotly ({e}): pip install plotly") from e
    payload = build_payload(
        mine, other, plots, alignments, note, compress_over=compress_over, budget=budget
    )
    static = [header_html(mine, other), summary_html(mine), routing_html(mine)]
    title = f"harness report: {mine.run_id}"
    if other is not None:
        from harness.metrics.paired import compare_runs

        tasks = sorted({r.task for r in mine.records} | {r.task for r in other.records})
        paired = compare_runs(mine.records, other.records, _same_answers(tasks))
        static.append(compare_html(mine, other, paired, shared_accuracy(mine, other)))
        title += f" vs {other.run_id}"
    static += [plots_html(plots), explorer_html(other is not None, note)]
    page = render(title, "".join(static), payload)
    path = out if out is not None else mine.path / REPORT_FILE
    _write(path, page)
    return path


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        raise HarnessError(f"cannot write the report to {path}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["COMPRESS_OVER", "REPORT_FILE", "build_payload", "build_report"]
