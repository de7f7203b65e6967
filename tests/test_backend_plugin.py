"""A backend from outside the package, registered with one line, works like a built-in one: the
spec grammar checks its declared options, its non-identity options stay out of the cache key,
`harness run` runs it end to end and `harness models --backend` lists its options."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends import BACKENDS, backend_class
from harness.cli import main
from harness.errors import HarnessError
from harness.models import parse_spec, spec_forms


@pytest.fixture
def toy() -> Iterator[None]:
    BACKENDS.register("toy", "tests.toy_backend:ToyBackend")
    yield
    BACKENDS.unregister("toy")


def harness(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`harness ARGS` in this process (so the registration above holds): exit code, out, err."""
    with pytest.raises(SystemExit) as e:
        main(list(args))
    captured = capsys.readouterr()
    code = e.value.code
    return (code if isinstance(code, int) else 0), captured.out, captured.err


def run_toy(capsys: pytest.CaptureFixture[str], tmp_path: Path, spec: str, run_id: str) -> Path:
    code, _, err = harness(
        capsys,
        "run",
        "--student",
        spec,
        "--teacher",
        "reference",
        "--tasks",
        "chains",
        "--limit",
        "3",
        "--out",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--run-id",
        run_id,
        "--chain-model",
        "none",
        "--quiet",
    )
    assert code == 0, err
    return tmp_path / "runs" / run_id


def student_records(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    return [r for r in rows if r["role"] == "student"]


def test_a_registered_backend_runs_end_to_end(toy: None, tmp_path: Path, capsys) -> None:
    run = run_toy(capsys, tmp_path, "toy:x#reply=7,n_words=2", "first")
    students = student_records(run)
    assert len(students) == 3
    assert {r["backend"] for r in students} == {"toy"}
    assert {r["answer"] for r in students} == {"7"}
    assert all(len(r["reasoning"].split()) == 2 for r in students)
    assert not any(r["cached"] for r in students)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["tasks"]["chains"]["student"]["n"] == 3
    # `workers` is declared identity=False: the same generations, served from the cache.
    again = student_records(run_toy(capsys, tmp_path, "toy:x#n_words=2,reply=7,workers=4", "2"))
    assert all(r["cached"] for r in again)
    assert [r["answer"] for r in again] == [r["answer"] for r in students]
    # `reply` is part of the identity: generated anew.
    other = student_records(run_toy(capsys, tmp_path, "toy:x#reply=8,n_words=2", "third"))
    assert not any(r["cached"] for r in other) and {r["answer"] for r in other} == {"8"}


@pytest.mark.parametrize(
    "spec, fragments",
    [
        ("toy:x#n_words=0", ["#n_words=", ">= 1", "'0'"]),
        ("toy:x#n_words=two", ["#n_words=", "whole number"]),
        ("toy:x#shout=loud", ["#shout=", "1 or 0"]),
        ("toy:x#nope=1", ["#nope", "known: n_words, reply, shout, workers"]),
        ("toy:x#n_wrds=2", ["#n_wrds", "did you mean 'n_words'?"]),
        ("toi:x", ["unknown model 'toi:x'", "did you mean 'toy'?"]),
    ],
)
def test_a_bad_option_is_one_line_naming_it(
    toy: None, tmp_path: Path, capsys, spec: str, fragments: list[str]
) -> None:
    code, out, err = harness(
        capsys,
        "run",
        "--student",
        spec,
        "--tasks",
        "chains",
        "--out",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in out + err
    assert not (tmp_path / "runs").exists()


def test_models_lists_the_backends_options(toy: None, capsys) -> None:
    code, out, _ = harness(capsys, "models", "--backend", "toy")
    assert code == 0
    assert "toy:<anything>" in out  # the title's spec forms come from the registry
    table = out[out.index("toy options") :]
    for name in ("reply", "n_words", "shout", "workers", "the answer it gives"):
        assert name in table
    row = next(line for line in table.splitlines() if " workers " in line)
    assert " no " in row and ">= 1" in row  # not part of the cache identity
    row = next(line for line in table.splitlines() if " reply " in line)
    assert " yes " in row and " 42 " in row


def test_spec_of_a_registered_backend(toy: None) -> None:
    spec = parse_spec("toy:x#workers=3,reply=hi")
    assert (spec.backend, spec.model, spec.options) == (
        "toy",
        "x",
        (("reply", "hi"), ("workers", "3")),
    )
    assert spec.cache_id == "toy:x@default#reply=hi"
    assert backend_class("toy").options_of(spec).workers == 3
    assert "toy:<anything>" in spec_forms()


def test_an_unregistered_backend_is_gone() -> None:
    assert "toy" not in BACKENDS
    with pytest.raises(HarnessError, match="unknown model 'toy:x'"):
        parse_spec("toy:x")
