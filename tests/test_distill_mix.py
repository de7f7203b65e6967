"""harness distill mix: recipe proportions, failure-weighted slices, held-out lineages."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.distill.collect import collect, load_rows
from harness.distill.mix import Recipe, build_mix, mix, parse_selector, read_diagnosis
from harness.errors import HarnessError
from harness.store import RunDir
from harness.tasks import get_task
from harness.tasks.base import DataSource
from harness.types import Record

RUN_TASK = "chains:depth=1-2,n=1,seed=0"


def classified_run(folder: Path) -> Path:
    """A run folder as `harness run` + classify leave it: the student fails every bank
    problem, the classifier called the bank family a mismatch and depth 2 a capacity band."""
    task = get_task(RUN_TASK)
    problems = task.load(DataSource(None)).problems
    records = []
    for p in problems:
        wrong = p.meta["family"] == "bank"
        records.append(
            Record(
                run_id="r",
                task=RUN_TASK,
                problem_id=p.id,
                role="student",
                sample=0,
                model="s",
                backend="toy",
                question=p.question,
                gold=p.answer,
                text="",
                reasoning=None,
                answer="0" if wrong else p.answer,
                extractor="boxed",
                lenient=False,
                correct=not wrong,
                truncated=False,
                finish_reason="stop",
                prompt_hash="",
                cache_key=p.id,
                prompt_tokens=None,
                completion_tokens=None,
                seconds=0.0,
                cached=False,
                subset=p.subset,
                steps=p.meta["depth"],
            )  # fmt: skip
        )
    bank = sorted(p.id for p in problems if p.meta["family"] == "bank")
    failures: dict[str, Any] = {
        "n": len(bank),
        "advice": {
            "mismatch": [
                {
                    "task": RUN_TASK,
                    "dimension": "family",
                    "value": "bank",
                    "failures": len(bank),
                    "share": 1.0,
                    "student_accuracy": 0.0,
                    "student_n": len(bank),
                    "problem_ids": bank,
                    "problem_ids_total": len(bank),
                }
            ],  # fmt: skip
            "capacity": [{"task": RUN_TASK, "failures": 1, "depth_band": [2, 2]}],
            "lines": [],
        },
    }
    run = RunDir(folder)
    run.create()
    run.write_records(records)
    run.write_metrics({"tasks": {}, "failures": failures})
    run.write_config({"student": "s", "tasks": [RUN_TASK], "data_dir": None})
    return folder


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mix")
    # seed 0 shares chains with the run; seed 1 does not
    collect(
        "reference",
        ["chains:depth=1-2,n=2,seed=0", "chains:depth=1-2,n=2,seed=1"],
        root / "data",
        cache_dir=root / "cache",
        progress=False,
    )
    return root / "data"


def test_selectors() -> None:
    assert parse_selector("math").group == "math"
    assert parse_selector("chains").task == "chains"
    s = parse_selector("chains/family=shop")
    assert (s.task, s.dimension, s.value, s.rank) == ("chains", "family", "shop", 2)
    for bad in ("chains/colour=red", "chains/family=", "/family=shop"):
        with pytest.raises(HarnessError, match="selector"):
            parse_selector(bad)


def test_recipe_proportions(collected: Path) -> None:
    rows = load_rows(collected)
    recipe = Recipe(seed=3, total=200, weights={"chains/family=shop": 3.0, "chains": 1.0})
    mixed, manifest = build_mix(rows, recipe)
    assert len(mixed) == 200
    fam = Counter(r["family"] for r in mixed)
    # shop: 8 rows at weight 3 against 32 other rows at weight 1 -> 24/56 of the mix
    assert fam["shop"] == round(200 * 24 / 56)
    groups = {g["selector"]: g for g in manifest["groups"]}
    assert groups["chains/family=shop"]["available"] == 8
    assert groups["chains"]["rows"] == 200 - fam["shop"]
    again, _ = build_mix(rows, recipe)
    assert [r["cache_key"] for r in again] == [r["cache_key"] for r in mixed]  # seeded


def test_group_weight_zero_drops(collected: Path) -> None:
    rows = load_rows(collected)
    with pytest.raises(HarnessError, match="no row is left"):
        build_mix(rows, Recipe(weights={"math": 0.0}))


def test_from_failures_weights_slices_and_holds_out(collected: Path, tmp_path: Path) -> None:
    run = classified_run(tmp_path / "run")
    diagnosis = read_diagnosis(run)
    assert [(s.label, s.name) for s in diagnosis.slices] == [
        ("mismatch", "chains/family=bank"),
        ("capacity", "chains/depth=2-2"),
    ]
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump({"mix": {"seed": 0, "failure_weight": 4}}))
    result = mix(collected, tmp_path / "mixed", Recipe.load(recipe_file), from_failures=run)
    mixed = load_rows(tmp_path / "mixed")
    # every chain the run asked about (seed 0, index 0) is held out in every family
    assert all(not r["lineage"].startswith("chains/chain/s0-") or r["lineage"].endswith("-1")
               for r in mixed)  # fmt: skip
    assert result.manifest["dropped"]["held_out"] == 10  # 2 chains x 5 families
    bank = sum(r["family"] == "bank" for r in mixed)
    # 6 bank rows at weight 4 against 24 others at 1: bank is half the mix
    assert bank == len(mixed) // 2
    held = json.loads((tmp_path / "mixed" / "heldout.json").read_text())
    assert sorted(held["problem_ids"][RUN_TASK]) == sorted(
        p.id for p in get_task(RUN_TASK).load(DataSource(None)).problems
    )
    bank_slice = held["slices"][0]
    assert bank_slice["label"] == "mismatch"
    assert {i["problem_id"] for i in bank_slice["items"]} == {
        "chains-s0-d1-bank-0",
        "chains-s0-d2-bank-0",
    }
    assert all("-d2-" in i["problem_id"] for i in held["slices"][1]["items"])
    weighted = result.manifest["from_failures"]["weighted"]
    assert [w["value"] for w in weighted] == ["bank"]
    assert result.manifest["from_failures"]["not_weighted"][0]["label"] == "capacity"


def test_unclassified_run_is_one_line(tmp_path: Path) -> None:
    run = classified_run(tmp_path / "run")
    RunDir(run).write_metrics({"tasks": {}})
    with pytest.raises(HarnessError, match="harness classify"):
        read_diagnosis(run)


def test_bad_recipe(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("mix: {weigths: {}}\n")
    with pytest.raises(HarnessError, match="unknown key"):
        Recipe.load(p)
    p.write_text("mix: {weights: {chains: -1}}\n")
    with pytest.raises(HarnessError, match="number >= 0"):
        Recipe.load(p)


def test_cli_mix(collected: Path, tmp_path: Path) -> None:
    from tests.conftest import cli

    run = classified_run(tmp_path / "run")
    done = cli(
        "distill", "mix", str(collected), "--out", str(tmp_path / "m"),
        "--from-failures", str(run), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "10 rows held out" in done.stdout
    bad = cli("distill", "mix", str(tmp_path / "nothing"), "--out", str(tmp_path / "m2"))
    assert bad.returncode == 2 and "not a data set" in bad.stderr
