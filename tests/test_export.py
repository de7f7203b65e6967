"""`harness export`: records plus per-item metrics as a pandas-ready table, in three formats."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from harness.metrics.chainsim import packaged_minilm
from harness.tasks import DataSource, get_task
from tests.conftest import cli


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real run: the reference teacher against a replayed student on 4 chains problems,
    two samples each, half of the second samples wrong."""
    root = tmp_path_factory.mktemp("export")
    problems = get_task("chains:depth=2-4").load(DataSource(None, hub=False), 4).problems
    rows = []
    for p in problems:
        steps = p.reference.splitlines()[:-1]
        for sample in range(2):
            answer = p.answer if sample == 0 or p.id.endswith(("0", "2")) else "-1"
            body = "\n".join(steps if sample == 0 else steps[::-1])
            rows.append(
                {
                    "question": p.question,
                    "response": f"<think>\n{body}\n</think>\n"
                    f"Confidence: {90 if sample == 0 else 40}%\n\\boxed{{{answer}}}",
                }
            )
    replay = root / "student.jsonl"
    replay.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = cli(
        "run",
        "--student",
        f"replay:{replay}",
        "--tasks",
        "chains:depth=2-4",
        "--limit",
        "4",
        "--samples",
        "2",
        "--out",
        str(root / "runs"),
        "--run-id",
        "x",
        "--cache-dir",
        str(root / "cache"),
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    return root / "runs" / "x"


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_export_formats_read_back_with_pandas(run_dir, fmt):
    proc = cli("export", str(run_dir), "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    path = run_dir / f"items.{fmt}"
    df = {
        "parquet": pd.read_parquet,
        "csv": pd.read_csv,
        "jsonl": lambda p: pd.read_json(p, lines=True),
    }[fmt](path)
    assert len(df) == 16  # 4 problems x 2 samples x 2 roles
    for col in (
        "task",
        "problem_id",
        "role",
        "sample",
        "correct",
        "answer",
        "reasoning_tokens",
        "loop",
        "mixed_share",
        "hesitations_per_1k",
        "think",
        "confidence_agreement",
        "confidence_stated",
        "teacher_correct",
        "agrees_with_teacher",
    ):
        assert col in df.columns, col
    assert "logprobs" not in df.columns
    student = df[df.role == "student"]
    assert set(student.confidence_stated.round(2)) == {0.9, 0.4}
    assert student.teacher_correct.astype(bool).all()
    if packaged_minilm() is not None:
        first = student[student["sample"] == 0]
        assert (first.chain_coverage == 1.0).all()  # the teacher's own steps
        assert (student[student["sample"] == 1].chain_order_score < 1.0).all()  # reversed


def test_export_to_a_chosen_file(run_dir, tmp_path):
    out = tmp_path / "deep" / "t.csv"
    proc = cli("export", str(run_dir), "--format", "csv", "--output", str(out), "--no-chains")
    assert proc.returncode == 0, proc.stderr
    assert "16 rows" in proc.stdout and "chain_similarity" not in pd.read_csv(out).columns


@pytest.mark.parametrize(
    "args, fragment",
    [(["no-such-run"], "no run 'no-such-run'"), (["RUN", "--format", "xml"], "--format xml")],
)
def test_export_bad_input_is_one_line(run_dir, args, fragment):
    args = [str(run_dir) if a == "RUN" else a for a in args]
    proc = cli("export", *args)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and fragment in lines[0], proc.stderr
