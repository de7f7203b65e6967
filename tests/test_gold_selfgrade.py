"""Gold self-grade: the graders never mis-grade the gold.

With the `reference` backend in both roles, every set in the data folder scores 1.000 through
the same extraction and grading a model's output goes through; with the gold corrupted (a
number +1, another option, a flipped label, a solution with one line removed) it scores 0.000.

Non-code sets run through the runner (reference teacher, reference or replay student). Code
sets are graded with `Task.score_many`, the batch entry point of the same scoring (the runner
grades one record at a time, which costs a sandbox start per record); a prefix of each code set
also goes through the runner to show both paths agree.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from harness.backends.reference import ReferenceBackend
from harness.config import RunConfig
from harness.runner import run
from harness.tasks import REGISTRY, DataSource, get_task
from harness.tasks.bbh import ANSWER_TYPES
from harness.tasks.grading.extract import LETTERS
from harness.types import Generation, Problem

pytestmark = pytest.mark.slow

# Registered tasks this file does not self-grade, each with its reason. Every other registered
# task is graded below (code tasks in the sandbox, the rest through the runner), so a task added
# to the registry fails here until it has a size, a corruption, or a line in this list.
NOT_SELF_GRADED: dict[str, str] = {
    "math": "no local copy of MATH's test split in the data folder (hub only); math500 is the "
    "same format through the same grader",
    "lmeval": "needs an lm-eval task to name, and lm-eval scores it: tests/test_lmeval_bridge.py",
    "file": "reads the user's own file: tests/test_perturb_framework.py grades reference "
    "answers through each of its graders and a variant file of every kind",
}
GRADED = [name for name in REGISTRY if name not in NOT_SELF_GRADED]
CODE_TASKS = tuple(name for name in GRADED if get_task(name).kind == "code")
TEXT_TASKS = tuple(name for name in GRADED if name not in CODE_TASKS)
SIZES = {
    "chains": 120,
    "gsm8k": 1319,
    "math500": 500,
    "aime24": 30,
    "aime25": 30,
    "aime": 60,
    "arc-challenge": 1172,
    "logiqa": 651,
    "bbh": 6511,
    "humaneval": 164,
    "mbpp": 500,
    "mbpp-sanitized": 257,
}

# MATH-500 items whose gold does not grade as correct against its own worked solution, with
# the reason (a defect of the data set). None are known: every solution's last \boxed{} is
# its `answer` field, and the graders accept all 500.
KNOWN_MATH500_DEFECTS: dict[str, str] = {}
# BBH items where corrupted gold still scores: the data set has the same input twice with
# opposite golds, so identical prompts share one generation (the cache is content-addressed)
# and any answer is right on exactly one of the pair. A model's score on these is fixed at 1/2.
KNOWN_BBH_DEFECTS: dict[str, str] = {
    "bbh/causal_judgement-104": "same input as causal_judgement-36; gold Yes there No",
    "bbh/causal_judgement-119": "same input as causal_judgement-32; gold Yes there No",
}
# Code items where the removed line is one the data set's tests never run, so the solution
# without it still passes: a limit of the tests' coverage, not of the grader.
KNOWN_UNTESTED_LINES: dict[str, dict[str, str]] = {
    "mbpp": {"mbpp-509": "the first return is in the even-n branch; all three asserts call odd n"},
}


def _config(tmp: Path, student: str, tasks, run_id: str, data_dir: Path, **kw) -> RunConfig:
    return RunConfig.build(
        student=student,
        teacher="reference",
        tasks=list(tasks),
        data_dir=str(data_dir),
        out=str(tmp / "runs"),
        cache_dir=str(tmp / "cache"),
        run_id=run_id,
        **kw,
    )


# -- corruption: the gold answer made wrong in the way the issue names ------------------------


def _bump_first_number(s: str) -> str:
    m = re.search(r"\d+", s)
    if m is None:
        return f"2\\cdot({s})"
    return s[: m.start()] + str(int(m.group()) + 1) + s[m.end() :]


def _other_letter(letter: str, n: int) -> str:
    """The next option's letter (snarks-88 lists one truncated option: B is still wrong)."""
    return LETTERS[(LETTERS.index(letter) + 1) % max(n, 2)]


def _corrupt_text(task_name: str, problem: Problem, text: str) -> str:
    """The reference's answer part with its answer made wrong."""
    if task_name == "gsm8k":
        head, _, gold = text.rpartition("####")
        return f"{head}#### {int(gold.strip().replace(',', '')) + 1}"
    if task_name.startswith(("math", "aime")) or task_name == "chains":
        m = list(re.finditer(r"\\boxed\{", text))[-1]
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        inner = text[m.end() : i - 1]
        return f"The final answer is $\\boxed{{{_bump_first_number(inner)}}}$."
    if task_name in ("arc-challenge", "logiqa"):
        return f"The answer is \\boxed{{{_other_letter(problem.answer, len(problem.choices))}}}."
    if task_name == "bbh":
        kind = ANSWER_TYPES[problem.subset or ""]
        target = problem.meta["target"]
        if kind == "choice":
            if len(problem.answer) == 1:
                new = f"({_other_letter(problem.answer, len(problem.choices))})"
            else:  # a gold written as text: another option's text
                new = next(c for c in problem.choices if c.lower() != target.lower())
        elif kind in ("bool", "yesno", "validity"):
            flips = {"true": "False", "false": "True", "yes": "No", "no": "Yes"}
            new = flips.get(target.lower()) or ("valid" if target == "invalid" else "invalid")
        elif kind == "number":
            new = str(int(target) + 1)
        elif kind == "words":
            words = target.split()
            new = " ".join([words[1], words[0], *words[2:]])
        else:  # dyck: one closing bracket short, or the wrong one
            symbols = target.split()
            new = " ".join(symbols[:-1]) if len(symbols) > 1 else {")": "]"}.get(target, ")")
        return f"So the answer is {new}."
    raise AssertionError(task_name)


def _remove_one_line(code_block: str, skip: int = 0) -> str:
    """A fenced solution with one line removed: the first `return` line after the first
    `skip` lines (HumanEval: after the prompt, i.e. in the solution), else the last statement."""
    lines = code_block.rstrip().splitlines()
    body = lines[1:-1]
    returns = [i for i, ln in enumerate(body) if i >= skip and re.match(r"\s*return\b", ln)]
    code = [i for i, ln in enumerate(body) if ln.strip() and not ln.strip().startswith("#")]
    idx = returns[0] if returns else code[-1]
    return "\n".join([lines[0], *body[:idx], *body[idx + 1 :], lines[-1]])


def test_every_registered_task_is_self_graded_or_excluded_with_a_reason():
    assert set(NOT_SELF_GRADED) <= set(REGISTRY), "an exclusion names no registered task"
    assert set(SIZES) == set(GRADED), "a registered task without its size here"
    assert set(TEXT_TASKS) | set(CODE_TASKS) | set(NOT_SELF_GRADED) == set(REGISTRY)


# -- the runner path: every non-code set -------------------------------------------------------


def test_reference_scores_every_set_one_and_corrupted_gold_zero(tmp_path, data_dir):
    t0 = time.perf_counter()
    result = run(_config(tmp_path, "reference", TEXT_TASKS, "gold", data_dir), progress=False)
    t_gold = time.perf_counter() - t0
    for name in TEXT_TASKS:
        m = result.metrics["tasks"][name]
        assert m["student"]["n"] == m["teacher"]["n"] == SIZES[name], name
        misses = sorted(
            r.problem_id for r in result.records if r.task == name and r.correct is not True
        )
        if name == "math500":
            assert misses == sorted(KNOWN_MATH500_DEFECTS), misses
        else:
            assert misses == [], (name, misses[:10])
        assert m["paired"]["agreement"] == 1.0, name
    assert not any(r.lenient for r in result.records)

    # The same gold, corrupted, replayed as the student: every answer must now be wrong.
    tasks = {name: get_task(name) for name in TEXT_TASKS}
    source = DataSource.resolve(data_dir)
    rows = {}
    for name, task in tasks.items():
        for p in task.load(source).problems:
            text = ReferenceBackend.solution(p).text
            rows[p.id] = {"problem_id": p.id, "response": _corrupt_text(name, p, text)}
    replay = tmp_path / "corrupted.jsonl"
    replay.write_text("".join(json.dumps(r) + "\n" for r in rows.values()))
    t1 = time.perf_counter()
    bad = run(_config(tmp_path, f"replay:{replay}", TEXT_TASKS, "bad", data_dir), progress=False)
    t_bad = time.perf_counter() - t1
    print(
        f"gold self-grade of {sum(SIZES[t] for t in TEXT_TASKS)} problems x 2 roles: "
        f"{t_gold:.1f}s; corrupted: {t_bad:.1f}s"
    )
    for name in TEXT_TASKS:
        m = bad.metrics["tasks"][name]
        right = [
            r.problem_id
            for r in bad.records
            if r.task == name and r.role == "student" and r.correct is not False
        ]
        expected = sorted(KNOWN_BBH_DEFECTS) if name == "bbh" else []
        assert sorted(right) == expected, (name, right[:10])
        if not expected:
            assert m["student"]["accuracy"] == 0.0, name
        assert m["teacher"]["accuracy"] == 1.0, name
        assert m["student"]["n"] == SIZES[name]


def test_the_cli_self_grades_one_set(tmp_path, data_dir):
    """The README's self-test command, as a user runs it, on a set with every BBH type."""
    from tests.conftest import cli

    proc = cli(
        "run",
        "--student",
        "reference",
        "--tasks",
        "bbh",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "c"),
        "--run-id",
        "r",
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    m = json.loads((tmp_path / "runs/r/metrics.json").read_text())["tasks"]["bbh"]
    assert m["student"]["accuracy"] == m["teacher"]["accuracy"] == 1.0
    assert m["student"]["n"] == 6511


# -- code sets: the sandbox ---------------------------------------------------------------------


@pytest.mark.parametrize("name", CODE_TASKS)
def test_code_gold_passes_and_a_removed_line_fails(name, data_dir):
    task = get_task(name)
    problems = task.load(DataSource.resolve(data_dir)).problems
    assert len(problems) == SIZES[name]
    gold = [ReferenceBackend.solution(p) for p in problems]
    t0 = time.perf_counter()
    scores = task.score_many(list(zip(gold, problems, strict=True)))
    t_gold = time.perf_counter() - t0
    failed = [
        (p.id, s.detail) for p, s in zip(problems, scores, strict=True) if s.correct is not True
    ]
    assert failed == [], failed[:5]
    assert {s.extractor for s in scores} == {"code_block"}

    skip = [len(p.meta["prompt"].splitlines()) if name == "humaneval" else 0 for p in problems]
    broken = [Generation(text=_remove_one_line(g.text, k)) for g, k in zip(gold, skip, strict=True)]
    t1 = time.perf_counter()
    scores = task.score_many(list(zip(broken, problems, strict=True)))
    t_bad = time.perf_counter() - t1
    passed = [p.id for p, s in zip(problems, scores, strict=True) if s.correct is not False]
    print(f"{name}: gold {t_gold:.1f}s, one line removed {t_bad:.1f}s for {len(problems)}")
    assert passed == sorted(KNOWN_UNTESTED_LINES.get(name, {})), passed


@pytest.mark.parametrize("name", CODE_TASKS)
def test_code_sets_through_the_runner(tmp_path, name, data_dir):
    result = run(_config(tmp_path, "reference", [name], "code", data_dir, limit=8), progress=False)
    m = result.metrics["tasks"][name]
    assert m["student"]["accuracy"] == m["teacher"]["accuracy"] == 1.0
    assert m["student"]["n"] == 8
