"""Backend registry: one line per backend; modules import their heavy libraries lazily."""

from __future__ import annotations

import importlib
from pathlib import Path

from harness.backends.base import Backend
from harness.errors import BackendUnavailable, HarnessError
from harness.models import ModelSpec

# name -> "module:Class", or a sentence saying why it cannot run in this version.
REGISTRY: dict[str, str] = {
    "transformers": "harness.backends.transformers:TransformersBackend",
    "reference": "harness.backends.reference:ReferenceBackend",
    "replay": "harness.backends.replay:ReplayBackend",
    "openai": "unavailable: the openai backend (OpenAI-compatible servers, DeepSeek's API) is "
    "not built in this version yet; use replay:<recorded.jsonl> for API outputs",
    "vllm": "unavailable: the vllm backend is not built in this version yet; use hf:<id>",
    "llamacpp": "unavailable: the llamacpp backend is not built in this version yet; "
    "use hf:<dir>#gguf=<file>",
}


def backend_class(name: str) -> type[Backend]:
    target = REGISTRY.get(name)
    if target is None:
        raise HarnessError(f"unknown backend '{name}'; known: {', '.join(sorted(REGISTRY))}")
    if target.startswith("unavailable:"):
        raise BackendUnavailable(target.removeprefix("unavailable:").strip())
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def load_backend(spec: ModelSpec, *, cache_dir: Path, batch_size: int | None = None) -> Backend:
    return backend_class(spec.backend)(spec, cache_dir=cache_dir, batch_size=batch_size)


__all__ = ["REGISTRY", "Backend", "backend_class", "load_backend"]
