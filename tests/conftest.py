"""Shared fixtures: the real data folder, a converted SmolLM2 shared by a session, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """HARNESS_DATA_DIR, else ../shared/data next to the checkout; None when neither exists."""
    env = os.environ.get("HARNESS_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("no benchmark data: set HARNESS_DATA_DIR or place ../shared/data")
    return d


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """One folder of converted models for the whole session: SmolLM2 is converted once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def cache_dir(tmp_path, models_dir) -> Path:
    """A fresh generation cache that shares the session's converted models."""
    d = tmp_path / "cache"
    d.mkdir()
    (d / "models").symlink_to(models_dir, target_is_directory=True)
    return d


def make_cache(root: Path, models_dir: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    link = root / "models"
    if not link.exists():
        link.symlink_to(models_dir, target_is_directory=True)
    return root


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run `python -m harness` as a user would, with HARNESS_DATA_DIR cleared unless given."""
    full_env = {k: v for k, v in os.environ.items() if k != "HARNESS_DATA_DIR"}
    full_env.update(env or {})
    full_env.setdefault("HF_HUB_OFFLINE", "1")
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


@pytest.fixture(scope="session", autouse=True)
def _private_execution_cache(tmp_path_factory):
    """Program results cached by the tests stay in the session: a test never passes on a
    result a previous run left in the user's cache."""
    from harness.tasks.grading import sandbox

    sandbox.set_execution_cache(tmp_path_factory.mktemp("executions") / "executions.sqlite")
    yield
    sandbox.set_execution_cache(None)
