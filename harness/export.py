"""`harness export`: a run's records with their per-item metrics as one pandas-ready table.

One row per record (task x problem x role x sample): every record field except the raw token
log-probs (summarized as their count and mean), then the item metrics that metrics.json
aggregates: health (tokens, loops, language mixing, hesitations, think-block state), the
confidences (agreement, logprob, stated), the paired teacher sample's outcome and, for student
rows, chain similarity against the paired teacher chain.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError
from harness.metrics import MetricOptions, analyze
from harness.metrics.accuracy import str_equal
from harness.store import RunDir, default_cache_dir
from harness.types import Record

FORMATS = ("parquet", "csv", "jsonl")


def locate_run(run: str, runs: str | Path = "runs") -> RunDir:
    """A run folder given as a path, or as a run id under the runs folder."""
    for candidate in (Path(run).expanduser(), Path(runs).expanduser() / run):
        if (candidate / "records.jsonl").is_file():
            return RunDir(candidate)
    raise HarnessError(
        f"no run '{run}': expected a folder with records.jsonl (a path, or a run id under "
        f"{runs}/); run `harness run` first or pass --runs"
    )


def _same_answers(records: list[Record]) -> dict[str, Any]:
    from harness.tasks import get_task

    out: dict[str, Any] = {}
    for spec in sorted({r.task for r in records}):
        try:
            out[spec] = get_task(spec).same_answer
        except HarnessError:
            out[spec] = str_equal  # a task this version does not know: exact answers only
    return out


def item_rows(records: list[Record], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r, item in zip(records, items, strict=True):
        row = r.to_dict()
        lp = row.pop("logprobs", None)
        row["logprob_tokens"] = len(lp) if lp else None
        row["logprob_mean"] = round(sum(lp) / len(lp), 6) if lp else None
        row.update(item)
        rows.append(row)
    return rows


def export_run(
    run: str,
    fmt: str = "parquet",
    *,
    output: Path | None = None,
    runs: str | Path = "runs",
    chains: bool = True,
) -> tuple[Path, int]:
    """Write the table; returns (path, rows)."""
    if fmt not in FORMATS:
        raise HarnessError(f"--format {fmt}: use one of {', '.join(FORMATS)}")
    run_dir = locate_run(run, runs)
    try:
        records = list(run_dir.read_records())
    except (ValueError, TypeError) as e:
        raise HarnessError(
            f"{run_dir.records_path}: not a records file this version reads ({e})"
        ) from e
    config: dict[str, Any] = {}
    if run_dir.config_path.is_file():
        config = yaml.safe_load(run_dir.config_path.read_text(encoding="utf-8")) or {}
    chain_model = config.get("chain_model")
    cache_dir = config.get("cache_dir")
    options = MetricOptions(
        chains=chains and str(chain_model or "").lower() != "none",
        chain_model=chain_model,
        cache_dir=Path(cache_dir).expanduser() if cache_dir else default_cache_dir(),
        confidence=config.get("confidence") or "auto",
    )
    analysis = analyze(records, _same_answers(records), options)
    rows = item_rows(records, analysis.items)
    path = output or run_dir.path / f"items.{fmt}"
    _write(rows, path, fmt)
    return path, len(rows)


def _write(rows: list[dict[str, Any]], path: Path, fmt: str) -> None:
    import pandas as pd

    df = pd.DataFrame(rows)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            df.to_parquet(tmp, index=False)
        elif fmt == "csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_json(tmp, orient="records", lines=True, force_ascii=False)
        os.replace(tmp, path)
    except ImportError as e:
        raise HarnessError(f"--format {fmt} needs a package that is missing: {e}") from e
    except OSError as e:
        raise HarnessError(f"cannot write {path}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)
