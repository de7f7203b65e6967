"""What a cache key covers beyond model id, prompt and sampling: the content of local weights
(a folder or a GGUF file) and the reasoning splitter's version, so that replaced weights or a
changed splitter never reuse stale generations."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from harness.backends.base import weights_fingerprint
from harness.generate import make_request
from harness.models import parse_spec
from harness.store import cache_key
from harness.types import Message, Problem, Sampling

PROBLEM = Problem(id="p", task="t", question="2+3?", answer="5")
MESSAGES = [Message("user", "2+3?")]


def key_for(spec_text: str) -> str:
    spec = parse_spec(spec_text)
    return make_request(spec, PROBLEM, MESSAGES, 0, spec.sampling, 0).key


def model_dir(root: Path) -> Path:
    d = root / "model"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    (d / "tokenizer_config.json").write_text(
        json.dumps({"chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"})
    )
    (d / "tokenizer.json").write_text("{}")
    (d / "model-00001-of-00002.safetensors").write_bytes(b"\0" * 1000)
    (d / "model-00002-of-00002.safetensors").write_bytes(b"\0" * 500)
    (d / "README.md").write_text("notes")
    return d


def bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def test_untouched_folder_gives_the_same_key(tmp_path):
    d = model_dir(tmp_path)
    assert key_for(f"hf:{d}") == key_for(f"hf:{d}")
    (d / "README.md").write_text("other notes")  # not part of the model
    assert key_for(f"hf:{d}") == key_for(f"hf:{d}")


@pytest.mark.parametrize(
    "change",
    [
        "weights_mtime",
        "weights_size",
        "new_shard",
        "config",
        "chat_template",
        "chat_template_jinja",
        "tokenizer",
        "generation_config",
    ],
)
def test_changed_weights_config_or_template_change_the_key(tmp_path, change):
    d = model_dir(tmp_path)
    before = key_for(f"hf:{d}")
    shard = d / "model-00001-of-00002.safetensors"
    if change == "weights_mtime":
        bump_mtime(shard)
    elif change == "weights_size":
        with open(shard, "ab") as f:
            f.write(b"\1")
    elif change == "new_shard":
        (d / "model-00003-of-00003.safetensors").write_bytes(b"\0")
    elif change == "config":
        (d / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 65}))
    elif change == "chat_template":
        (d / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ x }}"}))
    elif change == "chat_template_jinja":
        (d / "chat_template.jinja").write_text("{{ messages[0].content }}")
    elif change == "tokenizer":
        bump_mtime(d / "tokenizer.json")
    elif change == "generation_config":
        (d / "generation_config.json").write_text(json.dumps({"eos_token_id": 2}))
    assert key_for(f"hf:{d}") != before


def test_vllm_folders_and_gguf_files_are_fingerprinted_too(tmp_path):
    d = model_dir(tmp_path)
    vllm = parse_spec(f"vllm:{d}")
    first = weights_fingerprint(vllm)
    assert first.startswith("weights:") and first == weights_fingerprint(vllm)
    bump_mtime(d / "model-00002-of-00002.safetensors")
    assert weights_fingerprint(vllm) != first

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 100)
    for text in (f"llamacpp:{gguf}", f"hf:{tmp_path}#gguf=m.gguf"):
        spec = parse_spec(text)
        fp = weights_fingerprint(spec)
        assert fp.startswith("weights:") and fp == weights_fingerprint(spec)
        bump_mtime(gguf)
        assert weights_fingerprint(spec) != fp, text


def test_hub_ids_have_no_local_fingerprint_their_revision_pins_them():
    assert weights_fingerprint(parse_spec("hf:Qwen/Qwen2.5-0.5B-Instruct")) == ""
    assert key_for("hf:o/m#revision=a") != key_for("hf:o/m#revision=b")


def test_fingerprint_never_reads_the_weights(tmp_path):
    """A 4 GB shard (sparse: no disk used) costs a stat, not a read."""
    d = model_dir(tmp_path)
    with open(d / "model-00001-of-00002.safetensors", "wb") as f:
        f.truncate(4 * 1024**3)
    t0 = time.perf_counter()
    for _ in range(50):
        key_for(f"hf:{d}")
    assert time.perf_counter() - t0 < 2.0


def test_the_packaged_gguf_alias_is_fingerprinted():
    assert weights_fingerprint(parse_spec("smollm2-135m")).startswith("weights:")
    assert weights_fingerprint(parse_spec("llamacpp:smollm2-135m")).startswith("weights:")


def test_the_splitter_version_is_part_of_every_key(monkeypatch):
    from harness import reasoning
    from harness.tasks.grading import extract

    assert extract.SPLIT_VERSION == reasoning.SPLIT_VERSION  # one constant, re-exported
    s = Sampling()
    plain = cache_key("m", "p", s, 0, 0)
    by_request = key_for("reference")
    monkeypatch.setattr(reasoning, "SPLIT_VERSION", reasoning.SPLIT_VERSION + 1)
    assert cache_key("m", "p", s, 0, 0) != plain
    assert key_for("reference") != by_request


def test_the_think_format_is_part_of_the_key():
    s = Sampling()
    assert cache_key("m", "p", s, 0, 0, think=True) != cache_key("m", "p", s, 0, 0, think=False)


@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python not installed: pip install '.[llamacpp]'",
)
def test_replaced_gguf_in_the_same_place_is_generated_again(tmp_path):
    """A real run on a copy of the SmolLM2 GGUF, again from the cache, then with the file
    replaced in place (same path, new mtime): the old generations are not reused."""
    from tests.conftest import cli
    from tests.llama_server import smollm2_gguf

    gguf = tmp_path / "weights" / "model.gguf"
    gguf.parent.mkdir()
    shutil.copyfile(smollm2_gguf(), gguf)
    args = ["run", "--student", f"llamacpp:{gguf}", "--teacher", "reference", "--quiet"]
    args += ["--tasks", "chains:depth=1-2", "--limit", "2", "--max-new-tokens", "4"]
    args += ["--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "c"), "--run-id", "g"]

    def student_cost() -> dict:
        proc = cli(*args)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads((tmp_path / "runs/g/metrics.json").read_text())["cost"]["student"]

    assert student_cost()["generated"] == 2
    assert student_cost()["cached"] == 2
    shutil.copyfile(smollm2_gguf(), gguf)  # "new" weights, same name and size
    bump_mtime(gguf)
    cost = student_cost()
    assert (cost["generated"], cost["cached"]) == (2, 0)
