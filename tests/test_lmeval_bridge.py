"""The lm-eval bridge both ways, on an lm-eval task defined over the real GSM8K test file.

(a) `harness run --tasks lmeval:<task>`: lm-eval builds the prompts and scores (its filters,
its exact_match), harness generates and records. (b) `harness-lm-eval run --model harness`:
lm-eval's own command line and evaluator over harness's backends and cache. Parity: the same
generations scored by lm-eval directly (b) and through the bridge (a) give identical numbers,
item by item.

No dataset hub: the task YAML is written at test time and points lm-eval's `json` loader at
the shared data file by path (nothing is copied).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.lmeval import CHAT_MARK, context_messages, cut_at
from tests.conftest import cli, make_cache

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("lm_eval") is None,
    reason="lm-eval not installed: pip install '.[lmeval]'",
)

TASK = "gsm8k_local"

TASK_YAML = """\
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
output_type: {output_type}
test_split: test
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: false
    regexes_to_ignore: [",", "\\\\$", "(?s).*#### ", "\\\\.$"]
generation_kwargs:
  until: ["Question:", "</s>", "<|im_end|>"]
  do_sample: false
  temperature: 0.0
num_fewshot: 0
filter_list:
  - name: strict-match
    filter:
      - function: regex
        regex_pattern: "#### (\\\\-?[0-9\\\\.\\\\,]+)"
      - function: take_first
  - name: flexible-extract
    filter:
      - function: regex
        group_select: -1
        regex_pattern: "(-?[$0-9.,]{{2,}})|(-?[0-9]+)"
      - function: take_first
metadata:
  version: 3.0
"""


@pytest.fixture
def task_dir(tmp_path, data_dir) -> Path:
    d = tmp_path / "tasks"
    d.mkdir()
    data = data_dir / "gsm8k" / "test.jsonl"
    (d / f"{TASK}.yaml").write_text(
        TASK_YAML.format(name=TASK, data=data, output_type="generate_until")
    )
    return d


def env_for(tmp_path: Path) -> dict[str, str]:
    # datasets keeps its Arrow copy of the json file here, not in the user's cache.
    return {"HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf-datasets")}


def harness_run(tmp_path, task_dir, student, *extra, run_id="a", options=""):
    proc = cli(
        "run",
        "--student",
        student,
        "--teacher",
        "reference",
        "--tasks",
        f"lmeval:{TASK},include={task_dir}{options}",
        "--out",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--run-id",
        run_id,
        *extra,
        env=env_for(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "runs" / run_id
    metrics = json.loads((run / "metrics.json").read_text())
    recs = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]
    (task_metrics,) = metrics["tasks"].values()
    return task_metrics, recs


def lm_eval_run(
    tmp_path, task_dir, model_args: str, limit: int, out="lmeval-out", model="harness", extra=()
):
    """lm-eval's own command line (through `python -m harness.lmeval`, which registers the
    `harness` model: lm-eval 0.4.13 loads no plugin entry points)."""
    cmd = [sys.executable, "-m", "harness.lmeval", "run", "--model", model]
    cmd += ["--model_args", model_args, "--tasks", TASK, "--include_path", str(task_dir)]
    cmd += ["--limit", str(limit), "--output_path", str(tmp_path / out), "--log_samples"]
    cmd += list(extra)
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env={**os.environ, **env_for(tmp_path)},
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results_file,) = (tmp_path / out).rglob("results_*.json")
    (samples_file,) = (tmp_path / out).rglob(f"samples_{TASK}_*.jsonl")
    results = json.loads(results_file.read_text())["results"][TASK]
    samples = [json.loads(x) for x in samples_file.read_text().splitlines()]
    return results, samples, proc.stderr


def assert_parity(results, samples, ours_by_filter: dict[str, tuple[dict, list[dict]]]):
    """lm-eval's numbers and per-item filtered answers equal the bridge's."""
    for filt, (metrics, recs) in ours_by_filter.items():
        student = metrics["student"]
        theirs_value = results[f"exact_match,{filt}"]
        mine = {r["problem_id"]: r for r in recs if r["role"] == "student"}
        # metrics.json rounds to 6 places; the count of right items is exact.
        assert theirs_value == pytest.approx(student["accuracy"], abs=5e-7)
        assert round(theirs_value * len(mine)) == sum(bool(r["correct"]) for r in mine.values())
        assert results["sample_len"] == student["n"] == len(mine)
        theirs = [s for s in samples if s["filter"] == filt]
        assert len(theirs) == len(mine)
        for s in theirs:
            rec = mine[f"{TASK}-{s['doc_id']}"]
            assert s["filtered_resps"][0] == rec["answer"]
            assert bool(s["exact_match"]) == rec["correct"]


def test_gold_solutions_score_one_through_lmeval_filters(tmp_path, task_dir):
    """The reference teacher's text is the gold solution: lm-eval's own strict-match filter
    and exact_match must call every one right (a self-test of the wiring)."""
    metrics, recs = harness_run(tmp_path, task_dir, "reference", "--limit", "25")
    assert metrics["teacher"]["accuracy"] == 1.0 and metrics["teacher"]["n"] == 25
    assert {r["extractor"] for r in recs} == {"lmeval:strict-match"}
    first = next(r for r in recs if r["problem_id"] == f"{TASK}-0")
    assert first["answer"] == "18" and first["question"].startswith("Question: Janet")


def test_parity_recorded_outputs(tmp_path, task_dir, data_dir):
    """Known outputs (some right, some wrong, some only flexibly right) scored both ways."""
    golds = []
    with open(data_dir / "gsm8k" / "test.jsonl", encoding="utf-8") as f:
        for _, line in zip(range(10), f, strict=False):
            golds.append(json.loads(line)["answer"].rsplit("####", 1)[1].strip())
    rows = []
    for i, gold in enumerate(golds):
        if i < 3:
            text = f"Step by step.\n#### {gold}"  # strict and flexible right
        elif i < 7:
            text = f"So the answer is {gold} dollars.\nQuestion: what about 99?"  # flexible only
        else:
            text = f"It is {int(gold.replace(',', '')) + 1}."  # wrong
        rows.append({"id": f"{TASK}-{i}", "response": text})
    replay = tmp_path / "outputs.jsonl"
    replay.write_text("".join(json.dumps(r) + "\n" for r in rows))
    student = f"replay:{replay}"
    ours = {
        filt: harness_run(
            tmp_path, task_dir, student, "--limit", "10", run_id=filt, options=f",filter={filt}"
        )
        for filt in ("strict-match", "flexible-extract")
    }
    assert ours["strict-match"][0]["student"]["accuracy"] == pytest.approx(0.3)
    # `until` cuts "Question: what about 99?" before lm-eval's last-number filter sees it.
    assert ours["flexible-extract"][0]["student"]["accuracy"] == pytest.approx(0.7)
    results, samples, _ = lm_eval_run(
        tmp_path, task_dir, f"spec={student},cache_dir={tmp_path / 'cache'}", 10
    )
    assert_parity(results, samples, ours)


@pytest.mark.slow
def test_parity_real_model_shares_the_cache(tmp_path, task_dir):
    """SmolLM2 (llama.cpp) through the bridge, then lm-eval with `--model harness` on the same
    cache: lm-eval gets the very same generations (none made again) and the same numbers."""
    pytest.importorskip("llama_cpp")
    student = "llamacpp:smollm2-135m"
    limit = 6
    ours = {
        filt: harness_run(
            tmp_path,
            task_dir,
            student,
            *("--limit", str(limit), "--max-new-tokens", "48"),
            run_id=filt,
            options=f",filter={filt}",
        )
        for filt in ("strict-match", "flexible-extract")
    }
    # The second filter reused the first run's generations.
    assert all(r["cached"] for r in ours["flexible-extract"][1] if r["role"] == "student")
    results, samples, log = lm_eval_run(
        tmp_path,
        task_dir,
        f"spec={student},cache_dir={tmp_path / 'cache'},max_new_tokens=48",
        limit,
    )
    assert f"0 generated (0 failed, scored as empty text), {limit} from the cache" in log
    assert_parity(results, samples, ours)
    mine = {r["problem_id"]: r for r in ours["strict-match"][1] if r["role"] == "student"}
    for s in samples:
        text = mine[f"{TASK}-{s['doc_id']}"]["text"]
        assert s["resps"][0][0] == cut_at(text, ["Question:", "</s>", "<|im_end|>"])[0]


@pytest.mark.slow
def test_transformers_backend_matches_lm_evals_own_hf_model(tmp_path, task_dir, models_dir):
    """SmolLM2 through the bridge on the transformers backend and through lm-eval's own `hf`
    model on the same weights (the copy the backend converts): lm-eval's raw prompt sent as
    is, the same greedy text and the same score, item by item."""
    from harness.backends.transformers import converted_dir
    from harness.models import parse_spec, weights_location

    limit, tokens = 4, 32
    cache = make_cache(tmp_path / "cache", models_dir)
    ours, recs = harness_run(
        tmp_path,
        task_dir,
        "smollm2-135m",
        *("--limit", str(limit), "--max-new-tokens", str(tokens), "--batch-size", "4"),
    )
    source, gguf = weights_location(parse_spec("smollm2-135m"))
    weights = converted_dir(cache, source, gguf)
    results, samples, _ = lm_eval_run(
        tmp_path,
        task_dir,
        f"pretrained={weights},dtype=float32",
        limit,
        model="hf",
        extra=("--device", "cpu", "--batch_size", "4", "--gen_kwargs", f"max_gen_toks={tokens}"),
    )
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(weights)
    mine = {r["problem_id"]: r for r in recs if r["role"] == "student"}
    until = ["Question:", "</s>", "<|im_end|>"]
    theirs = [s for s in samples if s["filter"] == "strict-match"]
    assert len(theirs) == len(mine) == limit
    for s in theirs:
        rec = mine[f"{TASK}-{s['doc_id']}"]
        # No chat template: the prompt is lm-eval's context, tokenized as lm-eval does.
        context = s["arguments"]["gen_args_0"]["arg_0"]
        assert rec["prompt_tokens"] == len(tokenizer(context)["input_ids"])
        # harness keeps an output without its surrounding whitespace.
        assert cut_at(rec["text"], until)[0] == s["resps"][0][0].strip()
        assert bool(s["exact_match"]) == rec["correct"]
    assert results["exact_match,strict-match"] == pytest.approx(ours["student"]["accuracy"])


def test_bad_lmeval_tasks_fail_in_one_line(tmp_path, task_dir, data_dir):
    mc = task_dir / "mc_local.yaml"
    mc.write_text(
        TASK_YAML.format(name="mc_local", data=data_dir / "gsm8k" / "test.jsonl", output_type="x")
        .replace("output_type: x", "output_type: multiple_choice\ndoc_to_choice: ['a', 'b']")
        .replace('doc_to_target: "{{answer}}"', "doc_to_target: 0")
    )
    cases = [
        (f"lmeval:no_such_task_xyz,include={task_dir}", "lm-eval cannot load it"),
        (f"lmeval:mc_local,include={task_dir}", "generate_until tasks only"),
        (f"lmeval:{TASK},include={task_dir},filter=nope", "has no filter 'nope'"),
        ("lmeval:", "name the lm-eval task"),
        (f"lmeval:{TASK},include={tmp_path / 'missing'}", "is not a folder"),
    ]
    for tasks, fragment in cases:
        proc = cli(
            "run",
            *("--student", "reference", "--tasks", tasks, "--limit", "2"),
            *("--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")),
            env=env_for(tmp_path),
        )
        assert proc.returncode == 2, (tasks, proc.stderr[-2000:])
        last = proc.stderr.strip().splitlines()[-1]
        assert fragment in last, (tasks, last)
        assert "Traceback" not in proc.stderr


def test_model_args_keep_spec_options_together():
    from harness.lmeval.model import regroup_args

    got = regroup_args(
        {"spec": "openai:m@http://h/v1#key_env=K", "concurrency": 4, "cache_dir": "c", "n": 2}
    )
    assert got == {"spec": "openai:m@http://h/v1#key_env=K,concurrency=4,n=2", "cache_dir": "c"}
    assert regroup_args({"spec": "hf:org/m", "revision": "abc"})["spec"] == "hf:org/m#revision=abc"
    with pytest.raises(Exception, match="pass spec="):
        regroup_args({"cache_dir": "c"})


def test_chat_contexts_travel_as_messages():
    from harness.lmeval import encode_chat

    ctx = encode_chat([{"role": "user", "content": "2+3?"}])
    assert ctx.startswith(CHAT_MARK)
    msgs = context_messages(ctx)
    assert [(m.role, m.content) for m in msgs] == [("user", "2+3?")]
    (raw,) = context_messages("Question: 2+3?\nAnswer:")
    assert raw.role == "raw"


def test_lm_eval_finds_the_harness_model():
    eps = importlib.metadata.entry_points(group="lm_eval.models")
    assert {ep.name: ep.value for ep in eps}.get("harness") == "harness.lmeval.model:HarnessLM"
    from lm_eval.api.registry import get_model

    import harness.lmeval.model  # noqa: F401 - registers on import

    assert get_model("harness").__name__ == "HarnessLM"
    # lm-eval's own models stay in the registry beside it (`--model hf` still works), also
    # in a fresh process where harness registers before lm-eval ever looked at its registry.
    probe = "import harness.lmeval.model; from lm_eval.api.registry import model_registry as r"
    probe += "; print(' '.join(r.keys()))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {"harness", "hf", "vllm", "local-completions"} <= set(proc.stdout.split())
