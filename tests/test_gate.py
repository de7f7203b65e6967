"""harness gate: the paired decision rule (planted drops fail, sampling noise passes), the
threshold rules, the baseline file, the outputs (JUnit, markdown) and the exit codes."""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import junitparser
import numpy as np
import pytest
import yaml

from harness.classify.advice import label_shares
from harness.errors import HarnessError
from harness.gate import (
    Snapshot,
    TaskSnapshot,
    evaluate,
    from_run,
    junit,
    load_baseline,
    load_rules,
    markdown,
    parse_rules,
    to_document,
)
from harness.gate.snapshot import dumps, save_baseline
from harness.gate.stats import (
    holm,
    newcombe_bounds,
    paired_binary,
    paired_bootstrap,
    tango_z,
    unpaired_binary,
)
from harness.metrics import compute_metrics, mcnemar_exact
from harness.metrics.accuracy import str_equal
from harness.store import RunDir
from harness.types import Record
from tests.conftest import cli
from tests.metrics_records import make_record

DEFAULT = parse_rules(None, "test")


# --- building runs and snapshots -------------------------------------------------------------


def write_run(
    root: Path,
    run_id: str,
    student: dict[str, Sequence[bool] | Sequence[Sequence[bool]]],
    *,
    teacher: bool = True,
    extra: Sequence[Record] = (),
    failures: dict[str, list[str]] | None = None,
    config: dict[str, Any] | None = None,
) -> Path:
    """A run folder written through the harness's own store and metrics: per task, each
    problem's correctness (a bool, or a list of bools for several samples)."""
    records: list[Record] = []
    for task, problems in student.items():
        for i, got in enumerate(problems):
            samples = [got] if isinstance(got, bool) else list(got)
            pid = f"{task}-{i}"
            if teacher:
                records.append(make_record(pid, "teacher", True, task=task, run_id=run_id))
            records += [
                make_record(pid, "student", bool(ok), s, task=task, run_id=run_id)
                for s, ok in enumerate(samples)
            ]
    records += list(extra)
    metrics = compute_metrics(records, {t: str_equal for t in {r.task for r in records}})
    metrics["run"] = {"run_id": run_id, "student": f"student-{run_id}", "teacher": "reference"}
    if failures is not None:
        metrics["failures"] = {"tasks": {t: label_shares(v) for t, v in failures.items()}}
    run = RunDir(root / run_id)
    run.create()
    run.write_config(
        config or {"student": f"student-{run_id}", "teacher": "reference", "tasks": list(student)}
    )
    run.write_records(records)
    run.write_metrics(metrics)
    return run.path


def snap(run_id: str, tasks: dict[str, Sequence[bool] | Sequence[Sequence[bool]]]) -> Snapshot:
    """A snapshot straight from item correctness (what a baseline file holds): fast enough
    for a hundred simulated pairs."""
    out = {}
    for task, problems in tasks.items():
        items = []
        for i, got in enumerate(problems):
            samples = [got] if isinstance(got, bool | np.bool_) else list(got)
            items += [(f"{task}-{i}", s, bool(ok)) for s, ok in enumerate(samples)]
        acc = sum(ok for *_, ok in items) / len(items) if items else None
        spp = max((1 if isinstance(g, bool | np.bool_) else len(g)) for g in problems)
        out[task] = TaskSnapshot(acc, len(items), len(problems), spp, items=tuple(sorted(items)))
    return Snapshot(run_id=run_id, source=f"test {run_id}", tasks=out)


def verdict(result: Any, task: str = "t", check: str = "accuracy_drop") -> Any:
    return next(c for c in result.checks if c.task == task and c.check == check)


def planted_drop(rng: np.random.Generator, n: int = 1000, drop: int = 50, noise: int = 50):
    """Baseline ~70% right; the candidate flips `noise` items each way (noise that cancels)
    and `drop` more from right to wrong: a drop of exactly drop/n."""
    base = rng.random(n) < 0.7
    cand = base.copy()
    right, wrong = np.flatnonzero(base), np.flatnonzero(~base)
    down = rng.choice(right, noise + drop, replace=False)
    up = rng.choice(wrong, noise, replace=False)
    cand[down], cand[up] = False, True
    return base.tolist(), cand.tolist()


# --- the decision rule ----------------------------------------------------------------------


def test_planted_five_point_drop_on_1000_paired_items_fails(tmp_path: Path) -> None:
    base, cand = planted_drop(np.random.default_rng(1))
    assert sum(base) - sum(cand) == 50
    write_run(tmp_path, "base", {"t": base})
    write_run(tmp_path, "cand", {"t": cand})
    result = evaluate(
        from_run(RunDir(tmp_path / "base")), from_run(RunDir(tmp_path / "cand")), DEFAULT
    )
    c = verdict(result)
    assert c.verdict == "fail" and result.exit_code == 1
    assert c.delta == pytest.approx(-5.0)
    assert c.ci[1] < -2.0 < 0  # the whole interval of the change is below -max_drop
    assert c.p < 0.05 and c.n == 1000
    assert "Tango" in c.method and "1000 shared problems" in c.message
    assert "regression" in c.message and "shown to exceed" in c.message


def test_sampling_noise_passes_at_least_95_of_100_pairs() -> None:
    """Two runs of one model: each item right with its own probability, independently in
    each run. A gate must pass them; a naive gate (point drop > 2) would not."""
    rng = np.random.default_rng(20240601)
    passed = naive_fails = 0
    for _ in range(100):
        p = rng.beta(1.2, 1.2, 1000)
        a, b = (rng.random(1000) < p).tolist(), (rng.random(1000) < p).tolist()
        c = verdict(evaluate(snap("a", {"t": a}), snap("b", {"t": b}), DEFAULT))
        passed += c.verdict != "fail"
        naive_fails += -c.delta > 2.0
    assert passed >= 95, f"only {passed}/100 noise-only pairs passed"
    assert naive_fails > 5  # the simulation has noise enough to trip a careless rule


def test_noise_passes_with_no_allowance_too_mcnemar_exact() -> None:
    rules = parse_rules({"tasks": {"*": {"max_drop": 0}}}, "test")
    rng = np.random.default_rng(7)
    passed = 0
    for _ in range(100):
        p = rng.beta(1.2, 1.2, 1000)
        a, b = (rng.random(1000) < p).tolist(), (rng.random(1000) < p).tolist()
        c = verdict(evaluate(snap("a", {"t": a}), snap("b", {"t": b}), rules))
        assert c.method == "paired, McNemar exact"
        passed += c.verdict != "fail"
    assert passed >= 95


def test_a_true_drop_at_the_allowance_rarely_fails() -> None:
    """Size at the boundary: candidates whose expected drop is exactly max_drop (2 points)
    fail about alpha/2 of the time; 'significant and above the allowance' fails far more."""
    rng = np.random.default_rng(3)
    fails = naive = 0
    for _ in range(100):
        base = rng.random(1000) < 0.7
        down = base & (rng.random(1000) < 50 / 700)  # ~50 right -> wrong
        up = ~base & (rng.random(1000) < 30 / 300)  # ~30 wrong -> right: a 2-point drop
        cand = (base & ~down) | up
        c = verdict(
            evaluate(snap("a", {"t": base.tolist()}), snap("b", {"t": cand.tolist()}), DEFAULT)
        )
        fails += c.verdict == "fail"
        naive += c.p_change < 0.05 and -c.delta > 2.0
    assert fails <= 7
    assert naive > 20


def test_several_samples_use_the_paired_bootstrap() -> None:
    rng = np.random.default_rng(11)
    p = rng.beta(1.5, 1.5, 400)
    base = (rng.random((400, 4)) < p[:, None]).tolist()
    noise = (rng.random((400, 4)) < p[:, None]).tolist()
    worse = (rng.random((400, 4)) < np.clip(p - 0.08, 0, 1)[:, None]).tolist()
    same = verdict(evaluate(snap("a", {"t": base}), snap("b", {"t": noise}), DEFAULT))
    drop = verdict(evaluate(snap("a", {"t": base}), snap("b", {"t": worse}), DEFAULT))
    assert same.method == drop.method == "paired, bootstrap over problems"
    assert same.verdict != "fail"
    assert drop.verdict == "fail" and drop.ci[1] < -2.0
    assert "mean over samples" in drop.message


def test_noise_with_several_samples_passes_95_of_100() -> None:
    rng = np.random.default_rng(5)
    passed = 0
    for _ in range(100):
        p = rng.beta(1.2, 1.2, 300)
        a = (rng.random((300, 4)) < p[:, None]).tolist()
        b = (rng.random((300, 4)) < p[:, None]).tolist()
        result = evaluate(snap("a", {"t": a}), snap("b", {"t": b}), DEFAULT, resamples=1000)
        passed += verdict(result).verdict != "fail"
    assert passed >= 95


def test_no_shared_problems_is_unpaired_and_says_so() -> None:
    base = snap("a", {"t": [True] * 70 + [False] * 30})
    worse = snap("b", {"t": [True] * 40 + [False] * 60})
    renamed = Snapshot(
        "b",
        "test",
        {
            "t": TaskSnapshot(
                0.4,
                100,
                100,
                1,
                items=tuple((f"other-{p}", s, ok) for p, s, ok in worse.tasks["t"].items),
            )
        },
    )
    c = verdict(evaluate(base, renamed, DEFAULT))
    assert c.method == "unpaired, Newcombe score" and "unpaired" in c.message
    assert c.verdict == "fail" and c.delta == pytest.approx(-30.0)
    close = Snapshot(
        "b",
        "test",
        {
            "t": TaskSnapshot(
                0.69, 100, 100, 1, items=tuple((f"x{i}", 0, i < 69) for i in range(100))
            )
        },
    )
    assert verdict(evaluate(base, close, DEFAULT)).verdict == "pass"


def test_holm_across_tasks() -> None:
    from statsmodels.stats.multitest import multipletests

    ps = [0.01, 0.04, 0.03, 0.5]
    assert holm(ps) == pytest.approx(list(multipletests(ps, method="holm")[1]))
    # a drop that fails alone (raw p ~0.02) must clear a stricter bar beside five other tasks
    base, cand = planted_drop(np.random.default_rng(2), n=1000, drop=45, noise=40)
    alone = verdict(evaluate(snap("a", {"t": base}), snap("b", {"t": cand}), DEFAULT))
    assert alone.verdict == "fail" and 0.05 / 6 < alone.p < 0.05
    others = {f"u{i}": [True, False] * 100 for i in range(5)}
    many = evaluate(snap("a", {"t": base, **others}), snap("b", {"t": cand, **others}), DEFAULT)
    c = verdict(many)
    assert many.tested == 6
    assert c.p_raw == pytest.approx(alone.p) and c.p == pytest.approx(6 * alone.p)
    assert c.verdict == "warn" and "Holm over 6 tasks" in c.message
    assert many.exit_code == 0


# --- the statistics against known answers -------------------------------------------------


def test_tango_reduces_to_mcnemar_and_its_interval_matches_its_p() -> None:
    assert tango_z(30, 10, 1000, 0.0) == pytest.approx(20 / math.sqrt(40))
    t = paired_binary(30, 10, 1000, 0.0, 0.05)
    assert t.p == pytest.approx(mcnemar_exact(30, 10)) and t.p_change == t.p
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(20, 2000))
        b, c = (int(x) for x in rng.multinomial(n, [0.1, 0.06, 0.84])[:2])
        margin = float(rng.choice([0.01, 0.02, 0.05]))
        t = paired_binary(b, c, n, margin, 0.05)
        assert t.ci[0] <= t.drop <= t.ci[1]
        if abs(t.ci[0] - margin) > 1e-6:  # the interval and the p-value say the same thing
            assert (t.p < 0.05) == (t.ci[0] > margin)


def test_newcombe_matches_statsmodels_and_bootstrap_is_consistent() -> None:
    from statsmodels.stats.proportion import confint_proportions_2indep

    lo, hi = confint_proportions_2indep(60, 100, 40, 100, method="newcomb")
    assert newcombe_bounds(60, 100, 40, 100, 1.959963984540054) == pytest.approx((lo, hi))
    t = unpaired_binary(60, 100, 40, 100, 0.02, 0.05)
    assert t.ci == pytest.approx((lo, hi)) and (t.p < 0.05) == (t.ci[0] > 0.02)
    d = np.random.default_rng(1).normal(0.04, 0.3, 500)
    bt = paired_bootstrap(d.tolist(), 0.02, 0.05, resamples=2000)
    assert bt.ci[0] < bt.drop < bt.ci[1]
    assert (bt.p < 0.05) == (bt.ci[0] > 0.02)


# --- threshold rules, missing tasks, identity ---------------------------------------------


def test_candidate_missing_a_task_fails_with_a_clear_message(tmp_path: Path) -> None:
    write_run(tmp_path, "base", {"t": [True, False] * 20, "gone": [True] * 10})
    write_run(tmp_path, "cand", {"t": [True, False] * 20})
    result = evaluate(
        from_run(RunDir(tmp_path / "base")), from_run(RunDir(tmp_path / "cand")), DEFAULT
    )
    c = verdict(result, "gone", "present")
    assert c.verdict == "fail" and result.exit_code == 1
    assert "candidate has no results for task gone" in c.message
    assert "evaluate every baseline task" in c.message
    assert verdict(result).verdict == "pass"
    proc = cli("gate", "--baseline", "base", "--candidate", "cand", "--runs", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    assert "has no results for task gone" in proc.stdout


def test_threshold_rules_read_the_real_metrics(tmp_path: Path) -> None:
    variants = [
        make_record(
            f"t-{i}-numeric",
            "student",
            i % 3 != 0,
            task="t",
            parent_id=f"t-{i}",
            perturbation="numeric",
        )
        for i in range(30)
    ] + [
        make_record(
            f"t-{i}-numeric", "teacher", True, task="t", parent_id=f"t-{i}", perturbation="numeric"
        )
        for i in range(30)
    ]
    truncated = [
        make_record("t-x", "student", False, task="z", truncated=True, finish_reason="length")
    ]
    write_run(
        tmp_path,
        "base",
        {"t": [True] * 30, "z": [True] * 3},
        extra=variants,
        failures={"t": ["capacity"] * 2 + ["truncated"] * 2},
    )
    write_run(
        tmp_path,
        "cand",
        {"t": [True] * 24 + [False] * 6, "z": [True] * 3},
        extra=[*variants, *truncated],
        failures={"t": ["capacity"] * 5 + ["truncated"]},
    )
    base, cand = from_run(RunDir(tmp_path / "base")), from_run(RunDir(tmp_path / "cand"))
    assert cand.tasks["t"].ood_gap["numeric"] == pytest.approx(100 * (0.8 - 20 / 30), abs=1e-3)
    assert cand.tasks["t"].retention == pytest.approx(0.8)
    assert cand.tasks["z"].truncated_rate == pytest.approx(0.25)
    rules = parse_rules(
        {
            "tasks": {
                "*": {"max_drop": None, "min_accuracy": 0.5, "max_truncation": 0.2},
                "t": {
                    "max_ood_gap": 20,
                    "min_retention": 0.9,
                    "max_cause_share": {"capacity": 0.5, "truncated": 0.5},
                    "max_ece": 0.3,
                },
                "z": {"min_accuracy": 0.9},
            }
        },
        "test",
    )
    result = evaluate(base, cand, rules)
    got = {(c.task, c.check): c for c in result.checks}
    assert got[("t", "min_accuracy")].verdict == "pass"
    assert got[("z", "min_accuracy")].verdict == "fail"  # 3 of 4: the task's own rule, 0.9
    assert got[("t", "max_ood_gap:numeric")].verdict == "pass"
    assert got[("t", "min_retention")].verdict == "fail"
    assert got[("t", "min_retention")].baseline == pytest.approx(1.0)
    assert got[("t", "max_cause_share:capacity")].verdict == "fail"
    assert got[("t", "max_cause_share:capacity")].value == pytest.approx(5 / 6, abs=1e-5)
    assert got[("t", "max_cause_share:truncated")].verdict == "pass"
    assert got[("z", "max_truncation")].verdict == "fail"
    assert got[("t", "max_truncation")].verdict == "pass"
    ece = got[("t", "max_ece")]  # no confidence source in these records: fails, says why
    assert ece.verdict == "fail" and "no ECE" in ece.message and "missing: skip" in ece.message
    assert not any(c.check == "accuracy_drop" for c in result.checks)
    skip = parse_rules({"tasks": {"*": {"max_ece": 0.3, "missing": "skip"}}}, "test")
    assert verdict(evaluate(base, cand, skip), "t", "max_ece").verdict == "skip"


def test_ece_from_logprobs_is_checked(tmp_path: Path) -> None:
    extra = [
        make_record(f"c-{i}", "student", i % 2 == 0, task="c", logprobs=(-0.01, -0.02))
        for i in range(40)
    ]
    write_run(tmp_path, "run", {}, extra=extra)
    s = from_run(RunDir(tmp_path / "run"))
    ece = s.tasks["c"].ece
    assert ece is not None and s.tasks["c"].ece_source == "logprob"
    tight = parse_rules({"tasks": {"c": {"max_ece": ece / 2}}}, "test")
    loose = parse_rules({"tasks": {"c": {"max_ece": min(1.0, ece * 2)}}}, "test")
    assert verdict(evaluate(s, s, tight), "c", "max_ece").verdict == "fail"
    assert verdict(evaluate(s, s, loose), "c", "max_ece").verdict == "pass"


def test_rules_precedence_star_then_name_then_spec() -> None:
    rules = parse_rules(
        {
            "tasks": {
                "*": {"max_drop": 3, "max_ece": 0.2},
                "chains": {"max_drop": 1},
                "chains:n=1": {"max_ece": 0.1},
            }
        },
        "test",
    )
    one = rules.for_task("chains:n=1")
    assert (one.max_drop, one.max_ece) == (1.0, 0.1)
    other = rules.for_task("gsm8k")
    assert (other.max_drop, other.max_ece) == (3.0, 0.2)
    assert load_rules(None).for_task("x").max_drop == 2.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tasks:\n  '*':\n    max_dorp: 2\n", "tasks.*.max_dorp is not a rule"),
        ("tasks:\n  '*':\n    max_ece: high\n", "must be a number"),
        ("tasks:\n  '*':\n    min_accuracy: 40\n", "a fraction: 0.4, not 40"),
        ("tasks:\n  '*':\n    max_cause_share: {lazy: 0.5}\n", "is not a failure label"),
        ("tasks:\n  '*':\n    missing: maybe\n", "must be one of fail, skip"),
        ("alpha: 2\n", "alpha must be a number between 0 and 1"),
        ("threshold: 2\n", "threshold is not a top-level key"),
        ("tasks:\n  *:\n    max_drop: 2\n", "is not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_bad_rules_file_is_one_line_exit_2(tmp_path: Path, text: str, expected: str) -> None:
    rules = tmp_path / "gate.yaml"
    rules.write_text(text)
    with pytest.raises(HarnessError, match="rules file"):
        load_rules(rules)
    write_run(tmp_path, "r", {"t": [True, False]})
    proc = cli(
        "gate",
        "--baseline",
        "r",
        "--candidate",
        "r",
        "--runs",
        str(tmp_path),
        "--rules",
        str(rules),
    )
    assert proc.returncode == 2
    assert expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_the_examples_rules_file_is_valid() -> None:
    example = Path(__file__).parent.parent / "examples" / "gate.yaml"
    rules = load_rules(example)
    assert rules.for_task("anything").max_drop is not None


def test_the_ci_examples_parse_and_their_baseline_loads() -> None:
    examples = Path(__file__).parent.parent / "examples"
    workflow = yaml.safe_load((examples / "github-actions-gate.yml").read_text())
    steps = workflow["jobs"]["gate"]["steps"]
    commands = "\n".join(str(s.get("run", "")) for s in steps)
    assert "harness run" in commands and "--junit gate-junit.xml" in commands
    assert "examples/baseline.json" in commands
    upload = next(s for s in steps if "upload-artifact" in str(s.get("uses")))
    assert "gate-junit.xml" in upload["with"]["path"]
    hook = yaml.safe_load((examples / "pre-commit-config.yaml").read_text())
    entry = hook["repos"][0]["hooks"][0]["entry"]
    assert (examples.parent / entry).is_file()
    baseline = load_baseline(examples / "baseline.json")
    assert baseline.tasks["chains:n=1"].items and baseline.config["limit"] == 20


def test_new_candidate_task_and_config_differences_are_noted() -> None:
    base = snap("a", {"t": [True, False] * 50})
    cand = snap("b", {"t": [True, False] * 50, "new": [True] * 4})
    base = Snapshot(
        "a", "x", base.tasks, config={"student": "m1", "seed": 0, "max_new_tokens": 128}
    )
    cand = Snapshot("b", "y", cand.tasks, config={"student": "m2", "seed": 1, "max_new_tokens": 64})
    result = evaluate(base, cand, DEFAULT)
    assert result.exit_code == 0
    assert any("task new is new" in n for n in result.notes)
    assert any("max_new_tokens" in n for n in result.notes)
    assert not any("seed" in n or "student" in n for n in result.notes)
    typo = parse_rules({"tasks": {"tt": {"max_drop": 1}, "t": {"max_drop": 1}}}, "test")
    assert any("neither run (misspelt?): tt" in n for n in evaluate(base, cand, typo).notes)


# --- the baseline file --------------------------------------------------------------------


def test_save_baseline_round_trip_and_no_texts(tmp_path: Path) -> None:
    write_run(
        tmp_path,
        "base",
        {"t": [True, False, True] * 10, "u": [[True, False]] * 5},
        failures={"t": ["capacity"] * 10},
    )
    proc = cli(
        "gate",
        "--save-baseline",
        "base",
        "--runs",
        str(tmp_path),
        "--out",
        str(tmp_path / "b.json"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 tasks, 40 items" in proc.stdout
    text = (tmp_path / "b.json").read_text()
    assert "The answer is" not in text and '"q"' not in text  # no model text, no question
    doc = json.loads(text)
    assert doc["format"] == "harness-gate-baseline" and doc["version"] == 1
    assert doc["tasks"]["t"]["items"][0] == ["t-0", 0, 1]
    loaded = load_baseline(tmp_path / "b.json")
    run = from_run(RunDir(tmp_path / "base"))
    assert loaded.tasks == run.tasks and loaded.run_id == "base"
    assert to_document(loaded) == to_document(run)
    assert json.loads(dumps(to_document(run))) == to_document(run)
    proc = cli(
        "gate",
        "--baseline",
        str(tmp_path / "b.json"),
        "--candidate",
        "base",
        "--runs",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout


def _corrupt(path: Path, how: str) -> None:
    doc = json.loads(path.read_text())
    if how == "truncated":
        path.write_text(path.read_text()[: len(path.read_text()) // 2])
        return
    if how == "version":
        doc["version"] = 99
    elif how == "format":
        doc["format"] = "something-else"
    elif how == "item":
        doc["tasks"]["t"]["items"][3] = ["t-3", 0, 2]
    elif how == "edited-config":
        doc["config"]["student"] = "another"
    elif how == "not-json-object":
        doc = [1, 2]
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("truncated", "is not JSON"),
        ("version", "format version 99"),
        ("format", "is not a valid baseline"),
        ("item", "tasks.t.items[3] must be [problem_id, sample, 0 or 1]"),
        ("edited-config", "config_digest"),
        ("not-json-object", "must be a JSON object"),
    ],
)
def test_corrupted_baseline_is_exit_2_one_line(tmp_path: Path, how: str, expected: str) -> None:
    write_run(tmp_path, "base", {"t": [True, False] * 10})
    path = tmp_path / "b.json"
    save_baseline(from_run(RunDir(tmp_path / "base")), path)
    _corrupt(path, how)
    proc = cli("gate", "--baseline", str(path), "--candidate", "base", "--runs", str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_bad_inputs_are_exit_2(tmp_path: Path) -> None:
    write_run(tmp_path, "base", {"t": [True, False] * 10})
    runs = ("--runs", str(tmp_path))
    for args, expected in [
        (("--baseline", "nope", "--candidate", "base", *runs), "no run 'nope'"),
        (("--baseline", "missing.json", "--candidate", "base", *runs), "no baseline file"),
        (("--candidate", "base", *runs), "name both --baseline and --candidate"),
        (("--save-baseline", "base", *runs), "--out FILE"),
        (("--baseline", "base", "--candidate", "base", "--alpha", "1.5", *runs), "--alpha"),
    ]:
        proc = cli("gate", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert expected in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "base" / "metrics.json").write_text("{not json")
    proc = cli("gate", "--baseline", "base", "--candidate", "base", *runs)
    assert proc.returncode == 2 and "cannot read the run's metrics" in proc.stderr


# --- outputs ------------------------------------------------------------------------------


def test_junit_parses_and_markdown_has_the_table(tmp_path: Path) -> None:
    base, cand = planted_drop(np.random.default_rng(1))
    write_run(tmp_path, "base", {"t": base, "ok": [True, False] * 30, "gone": [True] * 5})
    write_run(tmp_path, "cand", {"t": cand, "ok": [True, False] * 30})
    rules = tmp_path / "gate.yaml"
    rules.write_text("tasks:\n  ok:\n    min_accuracy: 0.4\n")
    proc = cli(
        "gate",
        "--baseline",
        "base",
        "--candidate",
        "cand",
        "--runs",
        str(tmp_path),
        "--rules",
        str(rules),
        "--junit",
        str(tmp_path / "out" / "junit.xml"),
        "--markdown",
        str(tmp_path / "out" / "pr.md"),
    )
    assert proc.returncode == 1, proc.stderr
    assert "accuracy_drop" in proc.stdout and "FAIL" in proc.stdout
    xml = junitparser.JUnitXml.fromfile(str(tmp_path / "out" / "junit.xml"))
    suites = list(xml) if isinstance(xml, junitparser.JUnitXml) else [xml]
    assert len(suites) == 1
    suite = suites[0]
    cases = {(c.classname, c.name): c for c in suite}
    assert set(cases) == {
        ("gate.t", "accuracy_drop"),
        ("gate.ok", "accuracy_drop"),
        ("gate.ok", "min_accuracy"),
        ("gate.gone", "present"),
    }
    assert suite.tests == 4 and suite.failures == 2
    failed = cases[("gate.t", "accuracy_drop")].result
    assert failed and isinstance(failed[0], junitparser.Failure)
    assert "accuracy drop 5.0pt" in failed[0].message
    assert cases[("gate.ok", "min_accuracy")].is_passed
    md = (tmp_path / "out" / "pr.md").read_text()
    assert "| task | check | value | baseline | limit | delta | 95% CI | p (Holm) | verdict |" in md
    assert "| t | accuracy_drop | " in md and "**FAIL**" in md
    assert "FAIL (regression)" in md and "gone" in md


def test_outputs_escape_what_they_show() -> None:
    nasty = "x|<b>[red]y"
    s = snap("a<script>", {nasty: [True, False] * 10})
    result = evaluate(s, snap("b", {}), DEFAULT)
    md = markdown(result)
    assert "<b>" not in md and "<script>" not in md and "x\\|&lt;b&gt;" in md
    xml = junit(result)
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml.split("?>", 1)[1])
    assert root.find("testsuite/testcase").get("classname") == f"gate.{nasty}"
    from io import StringIO

    from rich.console import Console

    from harness.gate import table

    console = Console(file=StringIO(), width=200)
    console.print(table(result))
    assert "[red]y" in console.file.getvalue()


# --- the real path ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python not installed: pip install '.[llamacpp]'",
)
def test_real_runs_at_two_seeds_pass_the_gate(tmp_path: Path, cache_dir: Path) -> None:
    """SmolLM2 on the same chains problems at two sampling seeds: sampling noise, which the
    gate passes; its JUnit parses and a saved baseline gates the same way."""
    runs = tmp_path / "runs"
    for seed in (0, 1):
        proc = cli(
            "run",
            "--student",
            "llamacpp:smollm2-135m",
            "--teacher",
            "reference",
            "--tasks",
            "chains:depth=1-3,n=1",
            "--temperature",
            "0.7",
            "--seed",
            str(seed),
            "--max-new-tokens",
            "64",
            "--out",
            str(runs),
            "--run-id",
            f"s{seed}",
            "--cache-dir",
            str(cache_dir),
            "--quiet",
            "--chain-model",
            "none",
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    junit_path, md = tmp_path / "junit.xml", tmp_path / "pr.md"
    proc = cli(
        "gate",
        "--baseline",
        "s0",
        "--candidate",
        "s1",
        "--runs",
        str(runs),
        "--junit",
        str(junit_path),
        "--markdown",
        str(md),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "chains:depth=1-3,n=1" in proc.stdout and "accuracy_drop" in proc.stdout
    xml = junitparser.JUnitXml.fromfile(str(junit_path))
    suite = next(iter(xml)) if isinstance(xml, junitparser.JUnitXml) else xml
    assert suite.tests >= 1 and suite.failures == 0
    assert "accuracy_drop" in md.read_text()
    base = tmp_path / "baseline.json"
    proc = cli("gate", "--save-baseline", "s0", "--runs", str(runs), "--out", str(base))
    assert proc.returncode == 0, proc.stderr
    again = cli("gate", "--baseline", str(base), "--candidate", "s1", "--runs", str(runs))
    assert again.returncode == 0 and "accuracy_drop" in again.stdout
    s0 = load_baseline(base)
    assert s0.config.get("seed") == 0 and s0.tasks["chains:depth=1-3,n=1"].problems == 15
