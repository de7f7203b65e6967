"""Run directories and the generation cache shared across runs.

The cache is what makes a run resumable and a new student free of teacher cost: every finished
generation is committed under a content-addressed key before the next one starts, so kill -9
loses at most the batch in flight, and the same command picks up where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from harness import reasoning
from harness.errors import HarnessError
from harness.types import Generation, Message, Record, Sampling

CACHE_SCHEMA = 2
"""Bumped when what a key covers changes (2: the reasoning splitter's version, the think flag
and local weights' content fingerprints), so no entry made under other rules is ever reused."""


def json_safe(obj: Any) -> Any:
    """JSON-safe: non-finite floats become null (json would write NaN, which is not JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def default_cache_dir() -> Path:
    env = os.environ.get("HARNESS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("harness"))


def _digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def prompt_digest(messages: Sequence[Message], prefill: str = "") -> str:
    """Hash of what the model is shown (messages, system included, and the prefill)."""
    return _digest({"messages": [m.to_dict() for m in messages], "prefill": prefill})


def cache_key(
    model_id: str,
    prompt: str,
    sampling: Sampling,
    sample: int,
    seed: int,
    fingerprint: str = "",
    think: bool = False,
) -> str:
    """Content-addressed key: model + revision, prompt, sampling, sample index, seed.

    `fingerprint` covers what else decides the output (a replay file's content, a local
    model folder's weights, config and chat template). A cached generation is stored already
    split into reasoning and answer, so the split is part of the key too: whether the model's
    format uses think tags, and the splitter's version (`reasoning.SPLIT_VERSION`, read at
    each call, so a bumped version takes effect everywhere).
    """
    return _digest(
        {
            "v": CACHE_SCHEMA,
            "model": model_id,
            "prompt": prompt,
            "sampling": sampling.to_dict(),
            "sample": sample,
            "seed": seed,
            "fingerprint": fingerprint,
            "split": {"version": reasoning.SPLIT_VERSION, "think": bool(think)},
        }
    )


class GenerationCache:
    """SQLite (WAL) store of generations by cache key; safe to share between runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS generations ("
                " key TEXT PRIMARY KEY, model TEXT NOT NULL, created REAL NOT NULL,"
                " data TEXT NOT NULL)"
            )
        except (OSError, sqlite3.Error) as e:
            raise HarnessError(
                f"cannot open the generation cache at {path}: {e}; pass a writable --cache-dir"
            ) from e

    def get_many(self, keys: Iterable[str]) -> dict[str, Generation]:
        keys = list(keys)
        found: dict[str, Generation] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, data FROM generations WHERE key IN ({marks})", chunk
            )
            for key, data in rows:
                found[key] = Generation.from_dict(json.loads(data))
        return found

    def put(self, key: str, model: str, generation: Generation) -> None:
        """Commit one generation now (autocommit): a crash after this call cannot lose it."""
        if not generation.ok:
            return
        self._db.execute(
            "INSERT OR REPLACE INTO generations (key, model, created, data) VALUES (?, ?, ?, ?)",
            (key, model, time.time(), json.dumps(generation.to_dict(), ensure_ascii=False)),
        )

    def count(self, model: str | None = None) -> int:
        if model is None:
            return self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
        return self._db.execute(
            "SELECT COUNT(*) FROM generations WHERE model = ?", (model,)
        ).fetchone()[0]

    def close(self) -> None:
        self._db.close()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RunDir:
    """runs/<run-id>/: config.yaml, records.jsonl, metrics.json."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def records_path(self) -> Path:
        return self.path / "records.jsonl"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.json"

    def create(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HarnessError(f"cannot create the run directory {self.path}: {e}") from e

    def clear(self) -> None:
        for p in (self.records_path, self.metrics_path):
            p.unlink(missing_ok=True)

    def write_config(self, config: dict[str, Any]) -> None:
        _atomic_write(self.config_path, yaml.safe_dump(config, sort_keys=False))

    def write_records(self, records: Iterable[Record]) -> None:
        lines = (json.dumps(r.to_dict(), ensure_ascii=False) for r in records)
        _atomic_write(self.records_path, "".join(line + "\n" for line in lines))

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        _atomic_write(self.metrics_path, json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")

    def read_records(self) -> Iterator[Record]:
        if not self.records_path.exists():
            raise HarnessError(f"no records in {self.path}: run `harness run` first")
        with open(self.records_path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield Record.from_dict(json.loads(line))

    def read_metrics(self) -> dict[str, Any]:
        if not self.metrics_path.exists():
            raise HarnessError(f"no metrics.json in {self.path}: the run has not finished")
        return json.loads(self.metrics_path.read_text(encoding="utf-8"))
