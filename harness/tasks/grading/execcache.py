"""The execution cache: sandbox results and calibrated time limits on disk, shared by runs.

A result is stored under a key that covers everything that decides it (the program, the tests,
the time limit and every other limit, the isolation level and what it shows the program, the
interpreter and its installed packages, and the sandbox's own code; see
``sandbox.execution_key``), so a re-run, or a second student graded against the same teacher,
never runs the same program twice. Only outcomes that do not depend on the load of the machine
are stored: ``passed`` and ``failed`` (``sandbox.cacheable`` says which); a ``timeout``,
``crashed`` or ``sandbox_error`` is run again the next time.

One SQLite file (WAL, autocommit: a result is on disk once ``put_result`` returns), safe to
share between processes: by default ``<harness cache dir>/executions.sqlite``, beside the
generation cache.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SCHEMA = 1
"""Bumped when the tables change; a file of another schema is left alone and not used."""


class ExecCache:
    """Results (``results``) and calibrated time limits (``limits``) by content key."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(self.path), timeout=60.0, isolation_level=None, check_same_thread=False
        )
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            self._db.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('schema', ?)", (str(SCHEMA),)
            )
            (schema,) = self._db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if schema != str(SCHEMA):
                raise sqlite3.DatabaseError(f"schema {schema}, this harness writes {SCHEMA}")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, created REAL NOT NULL,"
                " status TEXT NOT NULL, data TEXT NOT NULL)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS limits (key TEXT PRIMARY KEY, created REAL NOT NULL,"
                " seconds REAL NOT NULL)"
            )
        except sqlite3.Error:
            self._db.close()
            raise

    def get_results(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self._select("results", "data", keys)}

    def put_result(self, key: str, status: str, data: dict[str, Any]) -> None:
        blob = json.dumps(data, ensure_ascii=False)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO results (key, created, status, data) VALUES (?, ?, ?, ?)",
                (key, time.time(), status, blob),
            )

    def get_limits(self, keys: Iterable[str]) -> dict[str, float]:
        return {k: float(v) for k, v in self._select("limits", "seconds", keys)}

    def put_limit(self, key: str, seconds: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO limits (key, created, seconds) VALUES (?, ?, ?)",
                (key, time.time(), float(seconds)),
            )

    def counts(self) -> dict[str, int]:
        """Stored entries: {"results": n, "limits": m}."""
        with self._lock:
            return {
                table: self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("results", "limits")
            }

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _select(self, table: str, column: str, keys: Iterable[str]) -> list[tuple[str, Any]]:
        keys = list(dict.fromkeys(keys))
        rows: list[tuple[str, Any]] = []
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows += self._db.execute(
                    f"SELECT key, {column} FROM {table} WHERE key IN ({marks})", chunk
                ).fetchall()
        return rows


__all__ = ["SCHEMA", "ExecCache"]
