"""The command line as a user meets it: real data, real files, exit codes, one-line errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import cli


def _one_error_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:")
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--student", "reference", "--tasks", "gsm9k"], "unknown task 'gsm9k'"),
        (["--student", "R2-Distill-Qwen", "--tasks", "chains"], "unknown model 'R2-Distill-Qwen'"),
        (
            ["--student", "reference", "--tasks", "gsm8k", "--data-dir", "no/such/dir"],
            "does not exist",
        ),
        (["--student", "reference", "--tasks", "chains", "--limit", "ten"], "--limit"),
        (["--student", "reference", "--tasks", "chains", "--limit", "0"], "--limit"),
        (["--student", "reference", "--tasks", "chains", "--samples", "-1"], "--samples"),
        (["--student", "reference", "--tasks", "chains:depth=20"], "outside 1-12"),
        (["--student", "reference", "--tasks", ","], "--tasks is empty"),
        (["--student", "openai:m@ftp://127.0.0.1:9", "--tasks", "chains"], "<base_url>"),
        (["--tasks", "chains"], "--student"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, fragment):
    proc = cli("run", *args, "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "c"))
    assert fragment in _one_error_line(proc)
    assert not (tmp_path / "runs").exists()  # nothing half-written for bad input


def test_no_data_and_no_hub_says_what_to_pass(tmp_path):
    # A real refusal: the hub endpoint is a closed port on loopback; nothing is mocked.
    proc = cli(
        "run",
        "--student",
        "reference",
        "--tasks",
        "gsm8k",
        "--out",
        str(tmp_path),
        "--cache-dir",
        str(tmp_path / "c"),
        env={"HF_HUB_OFFLINE": "", "HF_ENDPOINT": "http://127.0.0.1:9"},
    )
    line = _one_error_line(proc)
    assert "hub is unreachable" in line and "--data-dir" in line


def test_models_and_tasks_listings(data_dir):
    proc = cli("models")
    assert proc.returncode == 0
    for name in ("R1-Distill-Qwen-32B", "R1-Distill-Llama-70B", "smollm2-135m", "reference"):
        assert name in proc.stdout
    proc = cli("tasks", "--data-dir", str(data_dir))
    assert proc.returncode == 0 and "gsm8k" in proc.stdout and "1319" in proc.stdout


def test_reference_scores_all_of_gsm8k_in_seconds(tmp_path, data_dir):
    t0 = time.perf_counter()
    proc = cli(
        "run",
        "--student",
        "reference",
        "--teacher",
        "reference",
        "--tasks",
        "gsm8k",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "c"),
        "--run-id",
        "ref",
    )
    elapsed = time.perf_counter() - t0
    print(f"reference vs reference on 1319 GSM8K problems: {elapsed:.1f}s")
    assert proc.returncode == 0, proc.stderr
    m = json.loads((tmp_path / "runs/ref/metrics.json").read_text())
    g = m["tasks"]["gsm8k"]
    assert g["teacher"]["accuracy"] == g["student"]["accuracy"] == 1.0
    assert g["student"]["n"] == 1319
    paired = {k: g["paired"][k] for k in ("agreement", "retention", "pairs", "mcnemar_p")}
    assert paired == {"agreement": 1.0, "retention": 1.0, "pairs": 1319, "mcnemar_p": 1.0}
    assert elapsed < 60
    rows = (tmp_path / "runs/ref/records.jsonl").read_text().splitlines()
    assert len(rows) == 2 * 1319
    first = json.loads(rows[0])
    for field in (
        "task",
        "problem_id",
        "role",
        "sample",
        "prompt_hash",
        "text",
        "reasoning",
        "answer",
        "correct",
        "finish_reason",
        "completion_tokens",
        "seconds",
        "model",
        "backend",
        "question",
        "parent_id",
        "perturbation",
        "perturb_seed",
    ):
        assert field in first
    config = (tmp_path / "runs/ref/config.yaml").read_text()
    assert "student: reference" in config


def _replay_rows(data_dir: Path, n: int) -> list[dict]:
    rows = []
    with open(data_dir / "gsm8k" / "test.jsonl") as f:
        for i, line in zip(range(n), f, strict=False):
            item = json.loads(line)
            gold = item["answer"].split("####")[-1].strip()
            wrong = str(int(gold.replace(",", "")) + 1)
            rows.append(
                {
                    "question": item["question"],
                    "response": f"<think>\nwork {i}\n</think>\nThe answer is \\boxed"
                    f"{{{gold if i % 2 == 0 else wrong}}}.",
                }
            )
    return rows


def test_replay_with_missing_and_malformed_rows(tmp_path, data_dir):
    rows = _replay_rows(data_dir, 10)
    del rows[3], rows[6]  # problems gsm8k-3 and gsm8k-7 have no recorded generation
    lines = [json.dumps(r) for r in rows]
    lines.insert(4, '{"question": "broken", "response": ')  # line 5: not JSON
    lines.insert(6, json.dumps({"question": "no response field"}))  # line 7
    path = tmp_path / "recorded.jsonl"
    path.write_text("\n".join(lines) + "\n")
    proc = cli(
        "run",
        "--student",
        f"replay:{path}",
        "--tasks",
        "gsm8k",
        "--limit",
        "10",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path / "runs"),
        "--run-id",
        "r",
        "--cache-dir",
        str(tmp_path / "c"),
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{path}:5: skipped: not valid JSON" in proc.stderr
    assert f"{path}:7: skipped: response field" in proc.stderr
    assert "2 of 10 gsm8k problems have no generation" in proc.stderr
    s = json.loads((tmp_path / "runs/r/metrics.json").read_text())["tasks"]["gsm8k"]["student"]
    assert s["missing"] == 2 and s["missing_ids"] == ["gsm8k-3", "gsm8k-7"]
    assert s["n"] == 8  # scored: only the recorded ones
    # Recorded answers alternate right/wrong by original index: 0,2,4,6,8 right; 1,5,9 wrong.
    assert s["accuracy"] == pytest.approx(5 / 8)
    recs = [json.loads(x) for x in (tmp_path / "runs/r/records.jsonl").read_text().splitlines()]
    student = {r["problem_id"]: r for r in recs if r["role"] == "student"}
    assert (
        student["gsm8k-3"]["correct"] is None and student["gsm8k-3"]["finish_reason"] == "missing"
    )
    assert (
        student["gsm8k-0"]["reasoning"] == "work 0" and student["gsm8k-0"]["extractor"] == "boxed"
    )


def test_replay_matches_by_id_and_reasoning_override(tmp_path, data_dir):
    path = tmp_path / "by_id.jsonl"
    rows = [{"id": "gsm8k-0", "output": "#### 18"}, {"id": "gsm8k-1", "output": "#### 4"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = cli(
        "run",
        "--student",
        f"replay:{path}#response=output",
        "--tasks",
        "gsm8k",
        "--limit",
        "2",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path / "runs"),
        "--run-id",
        "r",
        "--cache-dir",
        str(tmp_path / "c"),
    )
    assert proc.returncode == 0, proc.stderr
    s = json.loads((tmp_path / "runs/r/metrics.json").read_text())["tasks"]["gsm8k"]["student"]
    assert s["accuracy"] == 0.5 and s["missing"] == 0


def test_second_student_costs_no_teacher_generations(tmp_path, data_dir):
    common = [
        "--tasks",
        "gsm8k,chains:depth=1-3",
        "--limit",
        "20",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    first = cli("run", "--student", "reference", *common, "--run-id", "a")
    assert first.returncode == 0, first.stderr
    path = tmp_path / "student.jsonl"
    path.write_text(json.dumps({"id": "gsm8k-0", "response": "\\boxed{18}"}) + "\n")
    second = cli("run", "--student", f"replay:{path}", *common, "--run-id", "b")
    assert second.returncode == 0, second.stderr
    cost = json.loads((tmp_path / "runs/b/metrics.json").read_text())["cost"]
    assert cost["teacher"]["generated"] == 0 and cost["teacher"]["cached"] == 40


def test_saved_config_reruns_the_same_run(tmp_path):
    first = cli(
        "run",
        "--student",
        "reference",
        "--tasks",
        "chains:depth=1-2",
        "--limit",
        "5",
        "--out",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "c"),
    )
    assert first.returncode == 0, first.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    again = cli("run", "--student", "reference", "--config", str(run_dir / "config.yaml"))
    assert again.returncode == 0, again.stderr
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["cost"]["student"] == {"generated": 0, "cached": 5, "tokens": 0, "seconds": 0.0}
    bad = tmp_path / "bad.yaml"
    bad.write_text("student: reference\nsamples: many\n")
    assert "--samples" in _one_error_line(
        cli("run", "--student", "reference", "--config", str(bad))
    )
