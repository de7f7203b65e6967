"""Backend registry: one line per backend; modules import their heavy libraries lazily.

A backend is a `Backend` subclass that declares its options (`options_class`), what it needs
installed (`requires`) and how its spec target reads (`target`, `spec_from`); `parse_spec`,
the cache identity and `harness models --backend NAME` read those declarations. A name here is
also the spec prefix (`NAME:<target>#k=v`); `hf` is a second name for transformers.

Third-party packages add a backend without touching this file, through the `harness.backends`
entry-point group, e.g. in their pyproject.toml:

    [project.entry-points."harness.backends"]
    mybackend = "mypackage.backend:MyBackend"

after which `--student mybackend:<target>#opt=value` works and `harness models --backend
mybackend` lists its options.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from harness.backends.base import Backend
from harness.registry import Registry
from harness.spec import ModelSpec

BACKENDS: Registry[Backend] = Registry(
    "backend",
    Backend,
    {
        "hf": "harness.backends.transformers:TransformersBackend",
        "transformers": "harness.backends.transformers:TransformersBackend",
        "vllm": "harness.backends.vllm:VLLMBackend",
        "openai": "harness.backends.openai:OpenAIBackend",
        "llamacpp": "harness.backends.llamacpp:LlamaCppBackend",
        "replay": "harness.backends.replay:ReplayBackend",
        "reference": "harness.backends.reference:ReferenceBackend",
    },
    group="harness.backends",
    hint="run `harness models`",
)
REGISTRY = BACKENDS
"""The older name of the registry."""

_INSTALLED: set[str] = set()
"""Modules `requires` found already: the check runs once per module, not per request."""


def backend_class(name: str) -> type[Backend]:
    """The backend class registered as `name`, once what it `requires` is installed."""
    cls = BACKENDS.load(name)
    needed = cls.requires
    if needed is not None and needed[0] not in _INSTALLED:
        try:
            found = importlib.util.find_spec(needed[0]) is not None
        except (ImportError, ValueError):  # a dotted name whose parent is missing
            found = False
        if not found:
            raise cls.unavailable()
        _INSTALLED.add(needed[0])
    return cls


def load_backend(spec: ModelSpec, *, cache_dir: Path, batch_size: int | None = None) -> Backend:
    return backend_class(spec.backend)(spec, cache_dir=cache_dir, batch_size=batch_size)


__all__ = ["BACKENDS", "REGISTRY", "Backend", "backend_class", "load_backend"]
