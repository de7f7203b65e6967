"""harness distill collect: rejection sampling through the shared cache, a chat data set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.distill.collect import collect, completion_text, lineage_key, load_rows, rejection
from harness.errors import HarnessError
from harness.tasks import get_task
from harness.tasks.base import DataSource
from harness.types import Generation, Record, Score

TASK = "chains:depth=1-3,n=2,seed=1"


def _record(gen: Generation, score: Score) -> Record:
    return Record(
        run_id="r", task="chains", problem_id="p", role="teacher", sample=0, model="m",
        backend="b", question="q", gold="1", text=gen.text, reasoning=gen.reasoning,
        answer=score.answer, extractor=None, lenient=False, correct=score.correct,
        truncated=score.truncated, finish_reason=gen.finish_reason, prompt_hash="",
        cache_key="k", prompt_tokens=None, completion_tokens=None, seconds=0.0, cached=True,
    )  # fmt: skip


def test_reference_chains_become_a_chat_dataset(tmp_path: Path) -> None:
    r = collect(
        "reference", [TASK], tmp_path / "data", cache_dir=tmp_path / "cache", progress=False
    )
    assert (r.rows, r.problems, r.asked, r.generations) == (30, 30, 30, 30)
    assert sum(r.rejected.values()) == 0
    rows = load_rows(tmp_path / "data")
    row = next(x for x in rows if x["problem_id"] == "chains-s1-d2-bank-0")
    task = get_task(TASK)
    problem = next(p for p in task.load(DataSource(None)).problems if p.id == row["problem_id"])
    user, assistant = row["messages"]
    assert user == {"role": "user", "content": task.prompt(problem, "r1")[0].content}
    assert assistant["role"] == "assistant"
    body = assistant["content"]
    assert body.startswith("<think>\nWe start with") and "\n</think>\n\n" in body
    assert body.endswith(f"\\boxed{{{problem.answer}}}.")
    # lineage and teacher metadata
    assert (row["task"], row["task_name"], row["family"], row["depth"]) == (
        TASK,
        "chains",
        "bank",
        2,
    )
    assert row["lineage"] == lineage_key(problem) == "chains/chain/s1-d2-0"
    assert (row["teacher"], row["teacher_backend"], row["gold"]) == (
        "reference",
        "reference",
        problem.answer,
    )
    manifest = json.loads((tmp_path / "data" / "collect.json").read_text())
    assert manifest["rows"] == 30 and manifest["teacher"]["name"] == "reference"


def test_second_collect_is_served_by_the_cache_and_dedups(tmp_path: Path) -> None:
    first = collect("reference", [TASK], tmp_path / "a", cache_dir=tmp_path / "c", progress=False)
    assert first.generated == 30
    # the reference gives the same chain for every sample: duplicates are dropped
    again = collect(
        "reference", [TASK], tmp_path / "b", samples=3, cache_dir=tmp_path / "c", progress=False
    )
    assert again.rows == 30 and again.rejected["duplicate"] == 60
    assert again.generated == 60  # samples 1 and 2 are new keys; sample 0 came from the cache


def test_exclude_drops_problems_before_generation(tmp_path: Path) -> None:
    r = collect(
        "reference",
        [TASK],
        tmp_path / "d",
        cache_dir=tmp_path / "c",
        exclude=lambda p: p.meta["depth"] == 1,
        progress=False,
    )
    assert r.asked == 20 and all(row["depth"] != 1 for row in load_rows(tmp_path / "d"))


def test_rejection_rules() -> None:
    ok = Generation(text="The answer is \\boxed{3}.", reasoning="1 + 2 = 3", reasoning_closed=True)
    right = Score(correct=True, answer="3")
    assert rejection(ok, right, _record(ok, right)) is None
    wrong = Score(correct=False, answer="4")
    assert rejection(ok, wrong, _record(ok, wrong)) == "wrong"
    cut = Generation(text="", reasoning="1 + 2", finish_reason="length", reasoning_closed=False)
    assert rejection(cut, Score(correct=False, truncated=True), _record(cut, right)) == "truncated"
    loop_text = "so we add one more. " * 40
    looping = Generation(text="\\boxed{3}", reasoning=loop_text, reasoning_closed=True)
    assert rejection(looping, right, _record(looping, right)) == "looping"
    failed = Generation(text="", error="boom", finish_reason="error")
    assert (
        rejection(failed, Score(correct=None), _record(failed, Score(correct=None))) == "ungraded"
    )


def test_completion_text_without_reasoning_is_the_answer() -> None:
    assert completion_text(Generation(text=" 42 ")) == "42"


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="name the tasks"):
        collect("reference", [], tmp_path / "x", progress=False)
    with pytest.raises(HarnessError, match="unknown model"):
        collect("nonsense-model", [TASK], tmp_path / "x", progress=False)
    with pytest.raises(HarnessError, match="not a data set"):
        load_rows(tmp_path)


def test_cli_collect(tmp_path: Path) -> None:
    from tests.conftest import cli

    done = cli(
        "distill", "collect", "--tasks", "chains:depth=1-2,n=1", "--out", str(tmp_path / "d"),
        "--cache-dir", str(tmp_path / "c"), "--quiet", timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "10 chains of 10/10 problems kept" in done.stdout
    bad = cli("distill", "collect", "--tasks", "chains", timeout=300)
    assert bad.returncode == 2 and "--out" in bad.stderr and "Traceback" not in bad.stderr
