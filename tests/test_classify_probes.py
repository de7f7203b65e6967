"""Causal probes on real run folders: the reference student answers the gold, so every probe
of a hand-corrupted failure comes back right; a second call generates nothing."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

import harness.classify.probes as probes
from harness.classify.probes import (
    DECOMPOSE,
    FAMILIARIZE,
    PROBES_FILE,
    chain_steps,
    decompose_k,
    read_probes,
    run_probes,
)
from harness.errors import HarnessError
from harness.store import GenerationCache, RunDir
from harness.tasks.chains import HELD_OUT
from harness.types import Record
from tests.conftest import cli

TASK = "chains:depth=2-4,n=1"


def _run(root: Path, *args: str) -> RunDir:
    """A real reference-vs-reference run made by the CLI, its cache beside it."""
    proc = cli(
        "run",
        "--student",
        "reference",
        "--teacher",
        "reference",
        "--out",
        str(root / "runs"),
        "--cache-dir",
        str(root / "cache"),
        "--chain-model",
        "none",
        *args,
    )
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (root / "runs").iterdir()
    return RunDir(run_dir)


def _corrupt(run: RunDir, pids: set[str]) -> list[Record]:
    """Rewrite records.jsonl with the student wrong on `pids`; the records as now written."""
    records = [
        dataclasses.replace(r, correct=False, answer="-1", text="The answer is \\boxed{-1}.")
        if r.role == "student" and r.problem_id in pids
        else r
        for r in run.read_records()
    ]
    run.write_records(records)
    return list(run.read_records())


def _failures(records: list[Record]) -> list[tuple[str, str, int]]:
    return [
        (r.task, r.problem_id, r.sample) for r in records if r.role == "student" and not r.correct
    ]


def _cache_rows(root: Path) -> int:
    cache = GenerationCache(root / "cache" / "generations.sqlite")
    try:
        return cache.count()
    finally:
        cache.close()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("probes-base")
    _run(root, "--tasks", TASK)
    return root


@pytest.fixture
def run_copy(base: Path, tmp_path: Path) -> tuple[Path, RunDir]:
    """A private copy of the base run and its cache (tests corrupt records)."""
    root = tmp_path / "run"
    shutil.copytree(base, root)
    (run_dir,) = (root / "runs").iterdir()
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace(str(base), str(root)))
    return root, RunDir(run_dir)


def test_reference_student_passes_both_probes_and_second_call_is_free(
    run_copy: tuple[Path, RunDir], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, run = run_copy
    bad = {"chains-s0-d3-bank-0", "chains-s0-d4-shop-0", "chains-s0-d2-symbolic-0"}
    records = _corrupt(run, bad)
    failures = _failures(records)
    assert {f[1] for f in failures} == bad

    got = run_probes(run.path, records, failures, progress=False)
    assert set(got) == set(failures)
    for item, result in got.items():
        assert result == {DECOMPOSE: True, FAMILIARIZE: True}, item

    rows = read_probes(run.path)
    assert len(rows) == 2 * len(failures)
    by_kind = {(r.problem_id, r.kind): r for r in rows}
    d4 = by_kind[("chains-s0-d4-shop-0", DECOMPOSE)]
    # depth 4: the start line and 4 step lines; 3 of them given, the answer line never.
    assert (d4.k, d4.of_steps, d4.steps_from) == (3, 5, "teacher")
    assert d4.probe_id == "chains-s0-d4-shop-0~probe-decompose-3"
    assert not d4.cached
    fam = by_kind[("chains-s0-d3-bank-0", FAMILIARIZE)]
    # Every family of the chain is in the run: the best other family's record is reused.
    assert fam.reused and fam.probe_id.startswith("chains-s0-d3-") and fam.probe_id.endswith("-0")
    assert fam.probe_id != "chains-s0-d3-bank-0"
    assert all(r.probe_id.split("-")[3] not in HELD_OUT for r in rows if r.kind == FAMILIARIZE)
    lines = (run.path / PROBES_FILE).read_text().splitlines()
    assert [json.loads(x)["kind"] for x in lines] == [r.kind for r in rows]

    # Second call: every generation from the cache, the backend never loaded.
    before = _cache_rows(root)

    def no_backend(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached probe loaded the backend")

    monkeypatch.setattr(probes, "load_backend", no_backend)
    again = run_probes(run.path, records, failures, progress=False)
    assert again == got
    assert _cache_rows(root) == before
    assert all(r.cached for r in read_probes(run.path))


def test_max_items_takes_a_sorted_prefix(run_copy: tuple[Path, RunDir]) -> None:
    _, run = run_copy
    records = _corrupt(run, {"chains-s0-d2-bank-0", "chains-s0-d4-bus-0", "chains-s0-d3-shop-0"})
    failures = _failures(records)
    got = run_probes(run.path, records, list(reversed(failures)), progress=False, max_items=2)
    assert list(got) == sorted(failures)[:2]
    assert {r.problem_id for r in read_probes(run.path)} == {f[1] for f in sorted(failures)[:2]}


def test_familiar_form_not_in_the_run_is_generated(tmp_path: Path) -> None:
    # --limit 5: chain d4-0 is told only in `bus`; its familiar form must be generated.
    run = _run(tmp_path, "--tasks", TASK, "--limit", "5")
    records = _corrupt(run, {"chains-s0-d4-bus-0"})
    got = run_probes(run.path, records, _failures(records), progress=False)
    assert got == {(TASK, "chains-s0-d4-bus-0", 0): {DECOMPOSE: True, FAMILIARIZE: True}}
    (fam,) = [r for r in read_probes(run.path) if r.kind == FAMILIARIZE]
    assert not fam.reused and not fam.cached
    assert fam.probe_id in {"chains-s0-d4-shop-0", "chains-s0-d4-bank-0"}


def test_variant_familiarize_reuses_its_parents_record(tmp_path: Path) -> None:
    run = _run(tmp_path, "--tasks", TASK, "--perturb", "surface,compose")
    records = list(run.read_records())
    variants = {r.problem_id: r for r in records if r.role == "student" and r.parent_id}
    surface = sorted(p for p, r in variants.items() if r.perturbation == "surface")
    compose = sorted(p for p, r in variants.items() if r.perturbation == "compose")
    assert surface and compose
    wrong_parent, right_parent = surface[0], surface[1]
    records = _corrupt(
        run, {wrong_parent, variants[wrong_parent].parent_id or "", right_parent, compose[0]}
    )
    students = {(r.problem_id, r.sample): r for r in records if r.role == "student"}
    failures = [f for f in _failures(records) if "~" in f[1]]
    got = run_probes(run.path, records, failures, progress=False)

    # The parent's own record decides, even where the reference would answer it right.
    assert got[(TASK, wrong_parent, 0)] == {DECOMPOSE: True, FAMILIARIZE: False}
    assert got[(TASK, right_parent, 0)] == {DECOMPOSE: True, FAMILIARIZE: True}
    # A composition's parent is only its first part: no familiar form.
    assert got[(TASK, compose[0], 0)] == {DECOMPOSE: True}
    rows = {(r.problem_id, r.kind): r for r in read_probes(run.path)}
    fam = rows[(wrong_parent, FAMILIARIZE)]
    parent = students[(variants[wrong_parent].parent_id or "", 0)]
    assert fam.reused and fam.probe_id == parent.problem_id
    assert fam.cache_key == parent.cache_key


def test_gsm8k_variant_probes_through_the_gold(tmp_path: Path, data_dir: Path) -> None:
    run = _run(
        tmp_path,
        "--tasks",
        "gsm8k",
        "--limit",
        "3",
        "--perturb",
        "numeric",
        "--data-dir",
        str(data_dir),
    )
    records = list(run.read_records())
    variant = sorted(r.problem_id for r in records if r.role == "student" and r.parent_id)[0]
    records = _corrupt(run, {variant})
    got = run_probes(run.path, records, _failures(records), progress=False)
    assert got == {("gsm8k", variant, 0): {DECOMPOSE: True, FAMILIARIZE: True}}
    dec = [r for r in read_probes(run.path) if r.kind == DECOMPOSE][0]
    assert dec.k is not None and dec.of_steps is not None and 0 < dec.k < dec.of_steps


def test_bad_input_is_one_line(run_copy: tuple[Path, RunDir], tmp_path: Path) -> None:
    _, run = run_copy
    records = list(run.read_records())
    with pytest.raises(HarnessError, match="not a student record"):
        run_probes(run.path, records, [(TASK, "chains-s0-d9-shop-0", 0)], progress=False)
    with pytest.raises(HarnessError, match="no config.yaml"):
        run_probes(tmp_path, records, [], progress=False)
    with pytest.raises(HarnessError, match="max_items"):
        run_probes(run.path, records, [], progress=False, max_items=-1)


def test_steps_and_k() -> None:
    assert decompose_k(1) is None
    assert decompose_k(2) == 1
    assert decompose_k(3) == 2
    assert decompose_k(5) == 3
    assert decompose_k(10) == 5
    assert chain_steps("We start with 3.\nStep 1: 3 + 2 = 5.\nThe answer is \\boxed{5}.") == [
        "We start with 3.",
        "Step 1: 3 + 2 = 5.",
    ]
    assert chain_steps(None) == []


@pytest.mark.slow
def test_probes_run_through_a_generating_backend(tmp_path: Path) -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama_cpp is not installed")
    proc = cli(
        "run",
        "--student",
        "llamacpp:smollm2-135m",
        "--teacher",
        "reference",
        "--tasks",
        "chains:depth=3-4,n=1",
        "--limit",
        "4",
        "--max-new-tokens",
        "48",
        "--out",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--chain-model",
        "none",
    )
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    records = list(RunDir(run_dir).read_records())
    failures = _failures(records)
    if len(failures) < 2:
        pytest.skip("SmolLM2 got these chains right: nothing to probe")
    before = _cache_rows(tmp_path)
    got = run_probes(run_dir, records, failures, progress=False, max_items=2)
    assert len(got) == 2
    assert all(isinstance(r.get(DECOMPOSE), bool) for r in got.values())
    rows = read_probes(run_dir)
    made = [r for r in rows if not r.reused]
    assert made and not any(r.cached for r in made)
    assert _cache_rows(tmp_path) == before + len({r.cache_key for r in made})
    again = run_probes(run_dir, records, failures, progress=False, max_items=2)
    assert again == got
    assert all(r.cached for r in read_probes(run_dir))
