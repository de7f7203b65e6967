"""The perturbation stage's frame: kind parsing, the seeded driver, lineage, the `format` kind,
the generic `file:` task, headline figures counting originals only, `harness perturb` and
`harness run --perturb` end to end with the reference teacher."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from harness.backends.reference import ReferenceBackend
from harness.errors import HarnessError
from harness.metrics import MetricOptions, compute_metrics
from harness.perturb import KINDS, Context, parse_kinds, perturb_problems, variant_id
from harness.tasks import DataSource, get_task, split_options
from harness.types import Generation, Problem, Record
from tests.conftest import cli


def _cli(tmp_path: Path, *args: str):
    return (
        cli(*args, "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "c"))
        if args and args[0] == "run"
        else cli(*args)
    )


def _reference_scores(task, problems):
    return task.score_many([(ReferenceBackend.solution(p), p) for p in problems])


def test_parse_kinds():
    assert parse_kinds("format") == (["format"], None)
    assert parse_kinds("format, per=3") == (["format"], 3)
    kinds, per = parse_kinds("all")
    assert kinds == KINDS.names() and per is None
    with pytest.raises(HarnessError, match="did you mean 'format'"):
        parse_kinds("formatt")
    with pytest.raises(HarnessError, match="per=0"):
        parse_kinds("format,per=0")
    with pytest.raises(HarnessError, match="names no kind"):
        parse_kinds("per=2")


def test_problem_round_trip():
    p = Problem("a", "t", "q", "1", choices=("x", "y"), meta={"k": [1]}, parent_id="b")
    assert Problem.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_driver_lineage_and_determinism():
    task = get_task("chains:depth=1-3,n=2")
    problems = task.load(DataSource(None, hub=False)).problems
    ctx = Context(task.name, task.kind)
    a = perturb_problems(problems, ctx, ["format"], per_problem=2, seed=0)
    b = perturb_problems(problems, ctx, ["format"], per_problem=2, seed=0)
    assert [v.to_dict() for v in a.variants] == [v.to_dict() for v in b.variants]
    assert a.covered("format") == len(problems)
    by_id = {p.id: p for p in problems}
    for v in a.variants:
        parent = by_id[v.parent_id]
        assert v.perturbation == "format" and v.perturb_seed == 0
        assert v.id.startswith(parent.id + "~format-")
        assert v.meta["perturb"]["kind"] == "format"
        assert v.meta["answer_format"] != "boxed"
        assert v.answer == parent.answer
    # two distinct forms per problem: never the same variant twice, never the parent's form
    forms = {(v.parent_id, v.meta["answer_format"]) for v in a.variants}
    assert len(forms) == len(a.variants)
    assert variant_id(problems[0], "format", 1) == f"{problems[0].id}~format-1"


def test_unsupported_kind_is_counted_not_raised():
    task = get_task("chains:depth=1-2,n=1")
    problems = task.load(DataSource(None, hub=False)).problems
    got = perturb_problems(problems, Context("humaneval", "code"), ["format"])
    assert not got.variants
    ((kind, why), n), *_ = got.skipped.items()
    assert kind == "format" and "does not apply to humaneval" in why and n == len(problems)


@pytest.mark.parametrize(
    "spec", ["gsm8k", "math500", "aime24", "aime25", "arc-challenge", "logiqa", "chains"]
)
def test_format_reference_scores_one(spec, data_dir):
    task = get_task(spec)
    problems = task.load(DataSource(data_dir, hub=False)).problems
    out = perturb_problems(problems, Context(task.name, task.kind), ["format"], per_problem=2)
    assert out.covered("format") == len(problems)
    scores = _reference_scores(task, out.variants)
    wrong = [(v.id, s.detail) for v, s in zip(out.variants, scores, strict=True) if not s.correct]
    assert not wrong, wrong[:5]
    # the instruction the model reads changed with the form
    v = out.variants[0]
    assert task.prompt(v)[-1].content != task.prompt(problems[0])[-1].content


def test_split_options_hash_form():
    assert split_options("f", "file", "x.jsonl#grader=math,id=uid", "path") == {
        "path": "x.jsonl",
        "grader": "math",
        "id": "uid",
    }


def _write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_file_task_number_math_choice(tmp_path):
    number = _write(
        tmp_path / "n.jsonl",
        [
            {"id": "a", "question": "What is 2+2?", "answer": "4"},
            {"id": "b", "question": "What is 3*3?", "answer": "9"},
        ],
    )
    task = get_task(f"file:{number}")
    problems = task.load(DataSource(None, hub=False)).problems
    assert [p.id for p in problems] == ["a", "b"]
    yes = task.score(Generation(text="So \\boxed{4}."), problems[0])
    no = task.score(Generation(text="The answer is 5."), problems[0])
    assert yes.correct and no.correct is False

    math = _write(tmp_path / "m.jsonl", [{"question": "Half?", "answer": "\\frac{1}{2}"}])
    task = get_task(f"file:{math}#grader=math")
    (p,) = task.load(DataSource(None, hub=False)).problems
    assert task.score(Generation(text="\\boxed{0.5}"), p).correct

    choice = _write(
        tmp_path / "c.jsonl",
        [{"q": "Sky?", "options": ["green", "blue"], "gold": "blue", "uid": "s1"}],
    )
    task = get_task(f"file:{choice}#question=q,answer=gold,choices=options,id=uid")
    (p,) = task.load(DataSource(None, hub=False)).problems
    assert p.answer == "B" and p.id == "s1" and "(B) blue" in task.prompt(p)[0].content
    assert task.score(Generation(text="\\boxed{B}"), p).correct
    assert task.score(Generation(text="\\boxed{A}"), p).correct is False


def test_file_task_code(tmp_path):
    rows = [
        {
            "id": "add",
            "question": "Write add(a, b) returning the sum.",
            "answer": "def add(a, b):\n    return a + b\n",
            "tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"],
        }
    ]
    task = get_task(f"file:{_write(tmp_path / 'code.jsonl', rows)}#grader=code")
    (p,) = task.load(DataSource(None, hub=False)).problems
    good = task.score(ReferenceBackend.solution(p), p)
    bad = task.score(Generation(text="```python\ndef add(a, b):\n    return a - b\n```"), p)
    assert good.correct and bad.correct is False


@pytest.mark.parametrize(
    ("rows", "spec", "message"),
    [
        ([{"question": "q"}], "", "no 'answer' field"),
        ([{"question": "q", "answer": "1", "id": "x"}] * 2, "", "appears twice"),
        ([{"question": "q", "answer": "maybe", "choices": ["a", "b"]}], "", "neither a letter"),
        ([{"question": "q", "answer": "1", "task": "nosuch"}], "", "unknown task 'nosuch'"),
        ([{"question": "q", "answer": "1"}], "#grader=code", "no 'tests' field"),
    ],
)
def test_file_task_bad_rows(tmp_path, rows, spec, message):
    path = _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(HarnessError, match=message):
        get_task(f"file:{path}{spec}").load(DataSource(None, hub=False))


def test_file_task_missing_file(tmp_path):
    r = _cli(
        tmp_path, "run", "--student", "reference", "--tasks", f"file:{tmp_path / 'none.jsonl'}"
    )
    assert r.returncode == 2 and "does not exist" in (r.stdout + r.stderr)


def _record(pid: str, role: str, correct: bool, parent: str | None = None) -> Record:
    return Record(
        run_id="r",
        task="t",
        problem_id=pid,
        role=role,  # type: ignore[arg-type]
        sample=0,
        model="m",
        backend="b",
        question="q",
        gold="1",
        text="1",
        reasoning=None,
        answer="1" if correct else "2",
        extractor="x",
        lenient=False,
        correct=correct,
        truncated=False,
        finish_reason="stop",
        prompt_hash="h",
        cache_key=f"{pid}{role}",
        prompt_tokens=None,
        completion_tokens=None,
        seconds=0.0,
        cached=False,
        parent_id=parent,
        perturbation="numeric" if parent else None,
        perturb_seed=0 if parent else None,
    )


def test_headline_counts_originals_only():
    records = [
        _record("p1", "teacher", True),
        _record("p1", "student", True),
        _record("p2", "teacher", True),
        _record("p2", "student", True),
        _record("p1~numeric-0", "teacher", True, "p1"),
        _record("p1~numeric-0", "student", False, "p1"),
    ]
    m = compute_metrics(records, {}, MetricOptions(chains=False))
    task = m["tasks"]["t"]
    assert task["student"]["accuracy"] == 1.0 and task["student"]["n"] == 2
    assert m["overall"]["student"]["n"] == 2
    kind = task["ood"]["kinds"]["numeric"]
    assert kind["student"]["accuracy"] == 0.0 and kind["student"]["delta"] == -1.0
    assert kind["paired"]["retention"] == 0.0
    assert m["cost"]["student"]["generated"] == 3  # cost counts every generation


def test_perturb_cli_then_file_run(tmp_path):
    out = tmp_path / "variants.jsonl"
    r = _cli(
        tmp_path,
        "perturb",
        "--task",
        "chains:depth=1-3,n=1",
        "--kinds",
        "format",
        "--per-problem",
        "2",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    originals = [x for x in rows if x["perturbation"] is None]
    variants = [x for x in rows if x["perturbation"] == "format"]
    assert len(originals) == 15 and len(variants) == 30
    assert all(x["task"] == "chains:depth=1-3,n=1" for x in rows)
    r = _cli(tmp_path, "run", "--student", "reference", "--tasks", f"file:{out}", "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    (metrics,) = (tmp_path / "runs").glob("*/metrics.json")
    m = json.loads(metrics.read_text())["tasks"][f"file:{out}"]
    assert m["student"]["n"] == 15 and m["student"]["accuracy"] == 1.0
    assert m["ood"]["kinds"]["format"]["student"]["accuracy"] == 1.0
    assert m["ood"]["kinds"]["format"]["student"]["matched"] == 30


def test_perturb_cli_bad_input(tmp_path):
    r = _cli(tmp_path, "perturb", "--kinds", "format", "--out", str(tmp_path / "x.jsonl"))
    assert r.returncode == 2 and "--task" in (r.stdout + r.stderr)
    r = _cli(
        tmp_path, "perturb", "--task", "chains", "--kinds", "nosuch", "--out", str(tmp_path / "x")
    )
    assert r.returncode == 2 and "unknown perturbation kind 'nosuch'" in (r.stdout + r.stderr)
    assert not (tmp_path / "x").exists()
    r = _cli(tmp_path, "perturb", "--task", "chains", "--kinds", "format", "--out", str(tmp_path))
    assert r.returncode == 2 and "is a folder" in (r.stdout + r.stderr)


def test_run_perturb_reference(tmp_path, data_dir):
    r = _cli(
        tmp_path,
        "run",
        "--student",
        "reference",
        "--tasks",
        "gsm8k,chains:depth=1-2,n=1",
        "--limit",
        "4",
        "--perturb",
        "format,per=2",
        "--data-dir",
        str(data_dir),
        "--chain-model",
        "none",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "format variants of 4/4 problems" in (r.stdout + r.stderr)
    assert "perturbed variants" in (r.stdout + r.stderr)
    (metrics,) = (tmp_path / "runs").glob("*/metrics.json")
    tasks = json.loads(metrics.read_text())["tasks"]
    assert tasks["gsm8k"]["student"]["n"] == 4
    assert tasks["gsm8k"]["ood"]["kinds"]["format"]["student"]["n"] == 8
    (records,) = (tmp_path / "runs").glob("*/records.jsonl")
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    assert {x["perturbation"] for x in rows} == {None, "format"}
    assert all(x["parent_id"] for x in rows if x["perturbation"])


def test_perturbation_kinds_are_registered_classes():
    # every registered kind imports and declares its tasks (kinds written later included)
    for name in ["format"]:
        cls = KINDS.load(name)
        assert cls.name == name and cls.tasks


def test_derive_keeps_parent_fields():
    from harness.perturb.base import derive

    p = Problem("x", "t", "q", "1", reference="r\n\\boxed{1}", meta={"depth": 2})
    v = derive(p, "k", {"a": 1}, question="q2")
    assert v.question == "q2" and v.answer == "1" and v.meta["depth"] == 2
    assert v.parent_id == "x" and v.perturbation == "k"
    assert v.meta["perturb"] == {"kind": "k", "params": {"a": 1}}
    assert replace(v, id="y").parent_id == "x"
