"""The openai backend against a real OpenAI-compatible server on loopback.

The server is llama-cpp-python's (`python -m llama_cpp.server`) serving the packaged SmolLM2,
started once for this module with an API key it checks. Fault tests put tests/faultproxy.py
between the backend and the server: 500/503, 429 with Retry-After, connections dropped before
and after the server did the work, responses cut in half, responses slower than the timeout.
Every problem must end with a generation or a recorded error, none lost or made twice.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.backends.openai import (
    OpenAIBackend,
    backoff_delay,
    retry_after_seconds,
)
from harness.models import parse_spec
from harness.types import Message, Problem, Request, Sampling
from tests.conftest import REPO, cli
from tests.faultproxy import FaultProxy, plan_by_text
from tests.llama_server import MODEL_NAME, have_server, llama_server

KEY_ENV = "HARNESS_TEST_OPENAI_KEY"
KEY = "sk-harness-test-7c1f0e9a4b2d"
"""A fake key the test server checks: a run that does not send it gets 401."""

needs_server = pytest.mark.skipif(
    not have_server(), reason="llama-cpp-python[server] not installed: pip install '.[llamacpp]'"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with llama_server(api_key=KEY, log=tmp_path_factory.mktemp("server") / "server.log") as base:
        yield base


def spec_for(base: str, **opts: str) -> str:
    options = {"key_env": KEY_ENV, **opts}
    return f"openai:{MODEL_NAME}@{base}#" + ",".join(f"{k}={v}" for k, v in options.items())


def run_cli(tmp_path: Path, student: str, *extra: str, env: dict | None = None, run_id="r"):
    return cli(
        "run",
        "--student",
        student,
        "--teacher",
        "reference",
        "--out",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--run-id",
        run_id,
        *extra,
        env={KEY_ENV: KEY, **(env or {})},
    )


def records(tmp_path: Path, run_id="r", role="student") -> list[dict]:
    lines = (tmp_path / "runs" / run_id / "records.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["role"] == role]


def cache_rows(tmp_path: Path, model_prefix="openai:") -> dict[str, dict]:
    db = tmp_path / "cache" / "generations.sqlite"
    if not db.exists():
        return {}
    with sqlite3.connect(db, timeout=10) as con:
        rows = con.execute("SELECT key, model, data FROM generations").fetchall()
    return {k: json.loads(d) for k, m, d in rows if m.startswith(model_prefix)}


def gsm8k_questions(data_dir: Path, n: int) -> list[str]:
    with open(data_dir / "gsm8k" / "test.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["question"] for _, line in zip(range(n), f, strict=False)]


def request(text: str, sample=0, seed=0, **sampling) -> Request:
    problem = Problem(id="p", task="t", question=text, answer="")
    s = Sampling(**{"max_new_tokens": 24, **sampling})
    return Request(f"k{sample}", problem, (Message("user", text),), sample, s, seed)


# -- no server needed ------------------------------------------------------------------------


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("0.5") == 0.5
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    now = 1_700_000_000.0
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 7))
    assert retry_after_seconds(date, now=now) == pytest.approx(7, abs=1)


def test_backoff_grows_exponentially_with_jitter():
    for attempt in range(1, 6):
        full = min(60.0, 0.5 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, 0.5) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len({round(d, 6) for d in delays}) > 150  # jittered, not a fixed schedule
    assert backoff_delay(30, 1.0) <= 60.0


def test_server_split_reasoning_and_think_tags_are_both_read():
    """DeepSeek/vLLM send reasoning_content; others put <think> in the content."""
    spec = parse_spec("openai:deepseek-reasoner@http://127.0.0.1:9#think=1")
    backend = OpenAIBackend.__new__(OpenAIBackend)
    backend.spec = spec
    usage = {"prompt_tokens": 7, "completion_tokens": 30}
    msg = {"content": "The answer is \\boxed{5}.", "reasoning_content": "2+3=5"}
    g = backend._generation({"message": msg, "finish_reason": "stop"}, usage, 1, 1.0)
    assert (g.reasoning, g.text, g.reasoning_closed) == ("2+3=5", "The answer is \\boxed{5}.", True)
    cut = {"content": "", "reasoning_content": "2+3 is"}
    g = backend._generation({"message": cut, "finish_reason": "length"}, usage, 1, 1.0)
    assert g.reasoning_closed is False and g.finish_reason == "length"
    tags = {"content": "<think>2+3=5</think>It is 5."}
    g = backend._generation({"message": tags, "finish_reason": "stop"}, usage, 1, 1.0)
    assert (g.reasoning, g.text, g.reasoning_closed) == ("2+3=5", "It is 5.", True)
    g = backend._generation({"message": {"content": "2+3 i"}, "finish_reason": "length"}, {}, 1, 1)
    assert g.reasoning_closed is False and g.text == ""


def test_missing_key_env_is_one_line(tmp_path):
    proc = cli(
        "run",
        "--student",
        "openai:m@http://127.0.0.1:9/v1#key_env=HARNESS_NO_SUCH_KEY_VAR",
        "--tasks",
        "chains",
        "--limit",
        "1",
        "--out",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "c"),
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert "HARNESS_NO_SUCH_KEY_VAR" in lines[-1] and "not set" in lines[-1]
    assert "Traceback" not in proc.stderr


def test_unreachable_server_is_one_line(tmp_path):
    proc = cli(
        "run",
        "--student",
        "openai:m@http://127.0.0.1:9/v1",
        "--tasks",
        "chains",
        "--limit",
        "1",
        "--out",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "c"),
    )
    assert proc.returncode == 2
    assert "cannot reach the server" in proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr


# -- against the real server -------------------------------------------------------------------


@needs_server
def test_chat_completions_logprobs_and_seeds(server, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    backend = OpenAIBackend(parse_spec(spec_for(server, concurrency="2")), cache_dir=tmp_path)
    try:
        q = "What is 2+3? Answer with one number."
        reqs = [
            request(q),
            request(q, logprobs=True),
            request(q, sample=1, temperature=1.0),
            request(q, sample=1, temperature=1.0),
            request(q, sample=2, temperature=1.0),
        ]
        reqs.append(
            Request(
                "raw",
                reqs[0].problem,
                (Message("raw", "Question: What is 2+3?\nAnswer:"),),
                0,
                Sampling(max_new_tokens=8),
                0,
            )
        )
        got = dict(backend.stream(reqs))
    finally:
        backend.close()
    assert sorted(got) == list(range(len(reqs)))
    assert all(g.ok and g.finish_reason in ("stop", "length") for g in got.values())
    assert got[0].text and got[0].text == got[1].text  # greedy: the same answer
    assert got[0].prompt_tokens and got[0].completion_tokens
    assert got[1].logprobs is not None and len(got[1].logprobs) == got[1].completion_tokens
    assert all(lp <= 0 for lp in got[1].logprobs)
    assert got[2].text == got[3].text  # the same sample index draws with the same seed
    assert got[5].completion_tokens and got[5].completion_tokens <= 8  # the completions endpoint


@needs_server
def test_n_samples_per_call_and_a_server_that_ignores_n(server, tmp_path, data_dir):
    """`#n=3`: 3 samples asked in one call; llama.cpp's server answers one choice, so the
    backend asks again for the rest. Every sample ends up generated and cached once."""
    student = spec_for(server, n="3")
    proc = run_cli(
        tmp_path,
        student,
        *("--tasks", "gsm8k", "--limit", "2", "--samples", "3", "--temperature", "0.8"),
        *("--max-new-tokens", "16", "--data-dir", str(data_dir)),
    )
    assert proc.returncode == 0, proc.stderr
    recs = records(tmp_path)
    assert sorted((r["problem_id"], r["sample"]) for r in recs) == [
        (f"gsm8k-{i}", s) for i in range(2) for s in range(3)
    ]
    assert all(r["error"] is None and r["completion_tokens"] for r in recs)
    assert set(cache_rows(tmp_path)) == {r["cache_key"] for r in recs}


@pytest.mark.slow
@needs_server
def test_faults_end_in_a_generation_or_a_recorded_error(server, tmp_path, data_dir):
    qs = gsm8k_questions(data_dir, 8)
    plan = {
        qs[0][:40]: ["500", "429"],
        qs[1][:40]: ["drop"],
        qs[2][:40]: ["lost"],
        qs[3][:40]: ["cut"],
        qs[4][:40]: ["slow"],
        qs[5][:40]: ["503"] * 5,  # more failures than retries: a recorded error
        qs[6][:40]: ["429", "503"],
    }
    upstream = server.removesuffix("/v1")
    # The timeout leaves room for a loaded machine (one llama.cpp server thread answers every
    # request in turn); the slow fault outlasts it.
    with FaultProxy(upstream, plan_by_text(plan), retry_after=1.5, slow_seconds=25) as proxy:
        student = spec_for(
            proxy.url + "/v1", concurrency="2", retries="4", backoff="0.1", timeout="20"
        )
        args = ("--tasks", "gsm8k", "--limit", "8", "--max-new-tokens", "16")
        args += ("--data-dir", str(data_dir))
        proc = run_cli(tmp_path, student, *args)
        assert proc.returncode == 0, proc.stderr
        recs = records(tmp_path)
        assert sorted(r["problem_id"] for r in recs) == [f"gsm8k-{i}" for i in range(8)]
        failed = [r for r in recs if r["error"]]
        assert [r["problem_id"] for r in failed] == ["gsm8k-5"]
        assert failed[0]["finish_reason"] == "error" and failed[0]["correct"] is None
        assert "HTTP 503" in failed[0]["error"] and "5 attempts" in failed[0]["error"]
        ok = [r for r in recs if not r["error"]]
        assert all(r["finish_reason"] in ("stop", "length") and r["text"] for r in ok)
        cached = cache_rows(tmp_path)
        assert set(cached) == {r["cache_key"] for r in ok}  # the error is not cached
        faults = proxy.faults()
        assert faults == {"500": 1, "429": 2, "drop": 1, "lost": 1, "cut": 1, "slow": 1, "503": 6}
        # Retry-After: 1.5 s is waited out even though the backoff base is 0.1 s.
        for seen in proxy.seen:
            if seen.fault == "429":
                after = [s for s in proxy.seen if s.digest == seen.digest and s.t > seen.t]
                assert after and min(s.t for s in after) - seen.t >= 1.4
        metrics = json.loads((tmp_path / "runs" / "r" / "metrics.json").read_text())
        assert metrics["tasks"]["gsm8k"]["student"]["errors"] == 1

        # The same command again, the faults gone: only the failed problem is asked for.
        proxy.plan = None
        proxy.reset()
        proc = run_cli(tmp_path, student, *args)
        assert proc.returncode == 0, proc.stderr
        assert proxy.requests() == 1
        recs = records(tmp_path)
        assert len(recs) == 8 and not any(r["error"] for r in recs)
        assert set(cache_rows(tmp_path)) == {r["cache_key"] for r in recs}


@pytest.mark.slow
@needs_server
def test_kill_mid_run_loses_nothing_finished(server, tmp_path, data_dir):
    """kill -9 while requests are in flight; the rerun asks only for what is not cached."""
    upstream = server.removesuffix("/v1")
    with FaultProxy(upstream, lambda body, attempt: "slow", slow_seconds=1.0) as proxy:
        student = spec_for(proxy.url + "/v1", concurrency="2", timeout="60")
        args = ["run", "--student", student, "--teacher", "reference", "--tasks", "gsm8k"]
        args += ["--limit", "10", "--max-new-tokens", "24", "--data-dir", str(data_dir)]
        args += ["--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")]
        args += ["--run-id", "r"]
        env = {**os.environ, KEY_ENV: KEY, "HF_HUB_OFFLINE": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", *args],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 300
        while len(cache_rows(tmp_path)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = len(cache_rows(tmp_path))
        assert 3 <= before < 10
        proxy.wait_idle()  # the killed run's requests in flight, answered to nobody
        proxy.plan = None
        proxy.reset()
        done = cli(*args, env={KEY_ENV: KEY})
        assert done.returncode == 0, done.stderr
        assert proxy.requests() == 10 - before  # nothing finished is asked for twice
        recs = records(tmp_path)
        assert sorted(r["problem_id"] for r in recs) == sorted(f"gsm8k-{i}" for i in range(10))
        assert sum(r["cached"] for r in recs) == before
        assert len(cache_rows(tmp_path)) == 10


@needs_server
def test_wrong_key_stops_the_run_in_one_line(server, tmp_path):
    proc = run_cli(
        tmp_path, spec_for(server), "--tasks", "chains", "--limit", "1", env={KEY_ENV: "sk-wrong"}
    )
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert "rejected the API key" in last and "HTTP 401" in last and KEY_ENV in last
    assert "sk-wrong" not in proc.stderr


@needs_server
def test_the_key_reaches_the_server_and_nothing_the_run_writes(server, tmp_path, data_dir):
    """A fake key in the environment: sent in the Authorization header, found in no file the
    run writes (run dir, cache, logs), not even when a server echoes it in an error."""
    other = "sk-other-harness-test-55aa10"
    leak = {gsm8k_questions(data_dir, 2)[1][:40]: ["echo"] * 10}
    upstream = server.removesuffix("/v1")
    with FaultProxy(upstream, plan_by_text(leak)) as proxy:
        student = spec_for(proxy.url + "/v1", retries="1", backoff="0.1")
        proc = run_cli(
            tmp_path,
            student,
            *("--tasks", "gsm8k", "--limit", "2", "--max-new-tokens", "8"),
            *("--data-dir", str(data_dir)),
            env={"OPENAI_API_KEY": other, "HARNESS_DEBUG": "1"},
        )
        assert proc.returncode == 0, proc.stderr
        assert proxy.authorization == {f"Bearer {KEY}"}
    (tmp_path / "stdout.log").write_text(proc.stdout)
    (tmp_path / "stderr.log").write_text(proc.stderr)
    recs = records(tmp_path)
    echoed = [r for r in recs if r["error"]]
    assert len(echoed) == 1 and "***" in echoed[0]["error"]  # the echo was there, scrubbed
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "generations.sqlite" for p in written)
    assert any(p.name == "config.yaml" for p in written)
    for path in written:
        blob = path.read_bytes()
        for secret in (KEY, other):
            assert secret.encode() not in blob, f"{secret} found in {path}"


# -- R1 models by id: the R1 format on the openai backend too ---------------------------------


def bare_backend(text: str) -> OpenAIBackend:
    """The backend's response handling without a server behind it."""
    backend = OpenAIBackend.__new__(OpenAIBackend)
    backend.spec = parse_spec(text)
    backend.api = backend.spec.option("api", "chat")
    return backend


def test_r1_by_id_gets_the_r1_format_and_sampling_in_the_request():
    from harness.generate import role_sampling

    backend = bare_backend("openai:deepseek-ai/DeepSeek-R1-Distill-Qwen-7B@http://127.0.0.1:9/v1")
    sampling = role_sampling(backend.spec)
    assert (sampling.temperature, sampling.top_p) == (0.6, 0.95)
    req = request("What is 2+3?", temperature=sampling.temperature, top_p=sampling.top_p)
    path, body, _ = backend._payload(req, 1)
    assert path == "/chat/completions"
    assert (body["temperature"], body["top_p"]) == (0.6, 0.95)
    assert [m["role"] for m in body["messages"]] == ["user"]  # no system prompt for R1
    # The completions endpoint has no chat template: the R1 prefill goes at the prompt's end,
    # and is put back in front of the text, so the split sees the whole chain.
    backend = bare_backend("openai:DeepSeek-R1@http://127.0.0.1:9/v1#api=completions")
    path, body, prefill = backend._payload(req, 1)
    assert path == "/completions" and body["prompt"].endswith("<think>\n")
    g = backend._generation(
        {"text": "2+3=5\n</think>\n\\boxed{5}", "finish_reason": "stop"}, {}, 1, 1, prefill
    )
    assert (g.reasoning, g.text, g.reasoning_closed) == ("2+3=5", "\\boxed{5}", True)


def test_r1_by_id_never_grades_a_cut_chain():
    """The server's template opened the chain (R1's newer template writes `<think>\\n` itself),
    so the content is the chain without its opening tag; cut at the limit it has no answer."""
    backend = bare_backend("openai:DeepSeek-R1-Distill-Qwen-1.5B@http://127.0.0.1:9/v1")
    cut = {
        "message": {"content": "Let me add 2 and 3. The answer is 5 so"},
        "finish_reason": "length",
    }
    g = backend._generation(cut, {"completion_tokens": 12}, 1, 1.0)
    assert g.reasoning_closed is False and g.text == "" and g.reasoning.startswith("Let me")
    done = {"message": {"content": "2+3=5</think>\n\nSo \\boxed{5}."}, "finish_reason": "stop"}
    g = backend._generation(done, {}, 1, 1.0)
    assert (g.reasoning, g.text, g.reasoning_closed) == ("2+3=5", "So \\boxed{5}.", True)
    # #think=0 turns the format off: the whole content is the answer, as for any plain model.
    off = bare_backend("openai:DeepSeek-R1-Distill-Qwen-1.5B@http://127.0.0.1:9/v1#think=0")
    g = off._generation(cut, {}, 1, 1.0)
    assert g.reasoning is None and g.text.startswith("Let me") and g.reasoning_closed is None


@pytest.mark.parametrize(
    "message, finish",
    [
        ({"content": "", "reasoning_content": "2+3 is"}, "length"),
        ({"content": None, "reasoning_content": "2+3 is 5, so"}, "stop"),
        ({"content": "  \n", "reasoning_content": "2+3 is 5"}, "stop"),
    ],
)
def test_reasoning_content_without_content_is_no_answer(message, finish):
    for spec in ("openai:deepseek-reasoner@http://127.0.0.1:9", "R1"):
        backend = bare_backend(spec)
        g = backend._generation({"message": message, "finish_reason": finish}, {}, 1, 1.0)
        assert g.reasoning_closed is False and g.text == "" and g.reasoning, (spec, message)


def test_an_unclosed_think_block_is_no_answer_even_for_a_plain_spec():
    backend = bare_backend("openai:some-reasoner@http://127.0.0.1:9")
    assert not backend.spec.prompt.think
    cut = {
        "message": {"content": "<think>\nFirst, 2+3 = 5, so the answer"},
        "finish_reason": "length",
    }
    g = backend._generation(cut, {}, 1, 1.0)
    assert g.reasoning_closed is False and g.text == ""
    plain = {"message": {"content": "The answer is 5"}, "finish_reason": "length"}
    g = backend._generation(plain, {}, 1, 1.0)
    assert g.text == "The answer is 5" and g.reasoning_closed is None


def test_a_server_that_splits_reasoning_off_through_a_whole_run(tmp_path):
    """DeepSeek's API shape (reasoning_content) from a scripted loopback server: a chain cut
    before its answer is recorded truncated and not correct, never graded from the chain."""
    from tests.fakeopenai import FakeOpenAI, chat_reply

    def respond(body, n):
        question = body["messages"][-1]["content"]
        if n % 2 == 0:  # the chain ran out of tokens: reasoning, no content
            return chat_reply("", reasoning=f"Working on: {question[:20]} ... 42", finish="length")
        return chat_reply("The answer is \\boxed{42}.", reasoning="Thinking.")

    with FakeOpenAI(respond) as server:
        proc = run_cli(
            tmp_path, f"openai:DeepSeek-R1@{server.url}", "--tasks", "chains", "--limit", "4"
        )
        assert proc.returncode == 0, proc.stderr
        bodies = list(server.bodies)
    assert all((b["temperature"], b["top_p"]) == (0.6, 0.95) for b in bodies)
    recs = records(tmp_path)
    assert len(recs) == 4
    cut = [r for r in recs if r["reasoning"].startswith("Working on")]
    assert len(cut) == 2
    assert all(r["text"] == "" and r["truncated"] and r["correct"] is False for r in cut)
    assert all(r["answer"] is None for r in cut)  # the 42 in the chain was never taken
    rows = cache_rows(tmp_path)
    assert sorted(g["reasoning_closed"] for g in rows.values()) == [False, False, True, True]


@needs_server
def test_r1_model_id_on_a_real_server_is_split_and_sampled_as_r1(server, tmp_path, data_dir):
    """A real server (it answers for any model name) under an R1 model id: the run resolves the
    R1 format and sampling, and SmolLM2's output, cut at 12 tokens with no `</think>`, is a
    truncated chain with no answer. `#think=0` on the same id gives plain text to grade."""
    import yaml

    args = ("--tasks", "gsm8k", "--limit", "2", "--max-new-tokens", "12")
    args += ("--data-dir", str(data_dir))
    r1 = f"openai:DeepSeek-R1-Distill-Qwen-1.5B@{server}#key_env={KEY_ENV}"
    proc = run_cli(tmp_path, r1, *args, run_id="r1")
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load((tmp_path / "runs" / "r1" / "config.yaml").read_text())["resolved"]
    student = resolved["student"]
    assert student["prompt"]["think"] is True and student["prompt"]["prefill"] == "<think>\n"
    assert (student["sampling"]["temperature"], student["sampling"]["top_p"]) == (0.6, 0.95)
    recs = records(tmp_path, run_id="r1")
    assert len(recs) == 2
    for r in recs:
        assert r["finish_reason"] == "length" and r["text"] == "" and r["reasoning"]
        assert r["truncated"] and r["correct"] is False and r["answer"] is None
    assert {g["reasoning_closed"] for g in cache_rows(tmp_path).values()} == {False}

    proc = run_cli(tmp_path, r1.replace("#", "#think=0,"), *args, run_id="plain")
    assert proc.returncode == 0, proc.stderr
    plain = records(tmp_path, run_id="plain")
    assert len(plain) == 2 and all(r["reasoning"] is None and r["text"] for r in plain)
    assert {r["cache_key"] for r in plain}.isdisjoint({r["cache_key"] for r in recs})
