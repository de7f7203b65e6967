"""The Backend contract: requests in, generations out, streamed as they finish."""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import BackendUnavailable
from harness.options import NoOptions, names, option, parse_options
from harness.spec import ModelSpec, SpecParts, weights_location, weights_spec
from harness.types import RAW_ROLE, Generation, Message, Problem, Request


def raw_prompt(messages: Sequence[Message]) -> str | None:
    """The prompt text when a request is a ready-made completion prompt, else None.

    Such a request is sent as is: no chat template, no system prompt (a model's system prompt is
    dropped), no prefill, so a task that builds its own prompt string (lm-eval's contexts) gets
    exactly the text it built.
    """
    rest = [m for m in messages if m.role != "system"]
    if len(rest) == 1 and rest[0].role == RAW_ROLE:
        return rest[0].content
    return None


def sample_seed(seed: int, sample: int) -> int:
    """One seed per (run seed, sample index): a sample draws the same way whatever its batch."""
    return (seed * 1_000_003 + sample) % 2**31


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")
"""Files of a model folder known by name, size and mtime (never read: they are GBs)."""
WATCHED_SUFFIXES = (*WEIGHT_SUFFIXES, ".py")
STATTED_FILES = frozenset(
    {
        "tokenizer.json",
        "tokenizer.model",
        "spiece.model",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "special_tokens_map.json",
        "added_tokens.json",
    }
)
"""Tokenizer files, known by name, size and mtime too (tokenizer.json runs to megabytes)."""
READ_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "chat_template.json",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
"""Small files whose content decides the output: architecture, generation defaults (stop
tokens), the chat template, which shard holds which tensor."""
_FINGERPRINTS: dict[tuple, str] = {}
"""Fingerprints by (folder, its files' stats): the files are read once per change."""


def _stat_entry(path: Path) -> tuple[str, int, int] | None:
    try:
        st = path.stat()  # through symlinks: a hub cache snapshot links to its blobs
    except OSError:
        return None
    return (path.name, st.st_size, st.st_mtime_ns)


def _folder_signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    wanted = []
    with os.scandir(folder) as it:
        for entry in it:
            name = entry.name
            # .py: the modelling code of a trust_remote_code model
            if name in READ_FILES or name in STATTED_FILES or name.endswith(WATCHED_SUFFIXES):
                wanted.append(name)
    stats = (_stat_entry(folder / name) for name in sorted(wanted))
    return tuple(s for s in stats if s is not None)


def folder_fingerprint(folder: Path) -> str:
    """A cheap content fingerprint of a local model folder: weight and tokenizer files by name,
    size and mtime, and the content of config.json, generation_config.json, the tokenizer
    config (which holds the chat template), chat_template.jinja and the shard index. Replacing
    weights in the same folder changes it; an untouched folder always gives the same one."""
    signature = _folder_signature(folder)
    memo = (str(folder.resolve()), signature)
    found = _FINGERPRINTS.get(memo)
    if found is not None:
        return found
    h = hashlib.sha256()
    for name, size, mtime in signature:
        h.update(f"{name}\0{size}\0{mtime}\n".encode())
    for name in READ_FILES:
        path = folder / name
        if path.is_file():
            h.update(f"{name}\0".encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    found = "weights:" + h.hexdigest()[:32]
    if len(_FINGERPRINTS) > 256:
        _FINGERPRINTS.clear()
    _FINGERPRINTS[memo] = found
    return found


def file_fingerprint(path: Path) -> str:
    """A single weights file (a GGUF, which carries its own chat template): name, size, mtime."""
    entry = _stat_entry(path)
    if entry is None:
        return ""
    name, size, mtime = entry
    return "weights:" + hashlib.sha256(f"{name}\0{size}\0{mtime}".encode()).hexdigest()[:32]


def weights_fingerprint(spec: ModelSpec) -> str:
    """The content fingerprint of a spec's local weights (a folder or a GGUF file, an alias's
    packaged GGUF included); "" for a hub id, whose `#revision=` pins it instead."""
    source, gguf = weights_location(spec)
    path = Path(source).expanduser()
    if gguf is not None:
        return file_fingerprint(path / gguf)
    if path.is_dir():
        return folder_fingerprint(path)
    if path.is_file():
        return file_fingerprint(path)
    return ""


@dataclass(frozen=True)
class BatchOptions:
    """What every generating backend takes."""

    batch_size: int | None = option(
        None,
        "requests handed over at once (--batch-size wins; default: the backend's own)",
        identity=False,
        low=1,
    )


@dataclass(frozen=True)
class ThinkOptions(BatchOptions):
    """A backend whose models may write think tags."""

    think: bool | None = option(
        None,
        "1: the output has <think> tags (R1 format and sampling); 0: plain; "
        "default: whether the model id names the R1 family",
    )


@dataclass(frozen=True)
class FormatOptions(ThinkOptions):
    """A backend that renders the chat template itself, so it can add a prefill."""

    prefill: str | None = option(
        None, "text the answer starts with, after the chat template (\\n: a newline)"
    )


_PARSED: dict[tuple[type, tuple[tuple[str, str], ...], str], Any] = {}
"""Options parsed once per (declaration, spec): fingerprints and cache keys ask per request."""


def _parsed_options(options_class: type, options: tuple[tuple[str, str], ...], name: str) -> Any:
    key = (options_class, options, name)
    found = _PARSED.get(key)
    if found is None:
        declared = set(names(options_class))
        raw = {k: v for k, v in options if k in declared}
        found = parse_options(options_class, raw, f"model spec '{name}'", mark="#")
        if len(_PARSED) > 256:
            _PARSED.clear()
        _PARSED[key] = found
    return found


class Backend(ABC):
    """One module per backend, one line in the registry.

    `stream` yields (index into requests, generation) as each finishes, so the runner can commit
    every generation to the cache before the next one: an interrupted run loses only work in
    flight. `batch_size` tells the runner how many requests to hand over at once; the runner
    groups them the same way on every invocation, so a resumed run batches like a fresh one.

    What a backend takes is declared on its class, so the spec grammar, its checks, the cache
    identity and `harness models --backend NAME` all read one place: `options_class` (a frozen
    dataclass of `option()` fields; `#key=value` in a spec), `requires` (the module it needs
    installed and how to install it), `target` (what follows `NAME:` in a spec) and
    `spec_from` (how that target becomes a ModelSpec).
    """

    name: str = ""
    default_batch_size: int = 1
    generates: bool = True
    """False for backends that replay fixed text (reference, replay): sampling is moot."""
    options_class: ClassVar[type[Any]] = NoOptions
    """The frozen dataclass of this backend's `#key=value` options."""
    requires: ClassVar[tuple[str, str] | None] = None
    """(module, how to install it): checked before the backend runs, without importing it."""
    target: ClassVar[str] = "<model>"
    """What follows `NAME:` in a spec, as `harness models` shows it; "" takes none."""
    shares_aliases: ClassVar[bool] = False
    """An alias of this backend names weights other backends can run (`vllm:ALIAS`)."""

    options: Any
    """This spec's options, parsed into `options_class`."""

    def __init__(self, spec: ModelSpec, *, cache_dir: Path, batch_size: int | None = None) -> None:
        self.spec = spec
        self.cache_dir = cache_dir
        self.options = self.options_of(spec)
        self.batch_size = self.batch_size_for(spec, batch_size)

    @classmethod
    def spec_from(cls, parts: SpecParts) -> ModelSpec:
        """The ModelSpec of `NAME:<target>#options` (options already checked). By default the
        target names weights: a hub id, a local path, or an alias whose weights can run here."""
        return weights_spec(cls.name, parts)

    @classmethod
    def options_of(cls, spec: ModelSpec) -> Any:
        """The spec's options as `options_class`, or one line naming the bad one. Options an
        alias carries for another backend (`gguf` of `llamacpp:smollm2-135m`) are not read."""
        return _parsed_options(cls.options_class, spec.options, spec.name)

    @classmethod
    def unavailable(cls, error: Exception | None = None) -> BackendUnavailable:
        """One line naming the package this backend needs and how to install it."""
        module, how = cls.requires or ("?", "")
        why = f" ({type(error).__name__}: {error})" if error is not None else ""
        return BackendUnavailable(
            f"the {cls.name} backend needs the Python package '{module}', which is not "
            f"installed: {how}{why}"
        )

    @classmethod
    def batch_size_for(cls, spec: ModelSpec, override: int | None = None) -> int:
        """--batch-size, else the spec's #batch_size=, else the backend's default."""
        opt = getattr(cls.options_of(spec), "batch_size", None)
        return max(1, override or opt or cls.default_batch_size)

    @classmethod
    def fingerprint(cls, spec: ModelSpec, problem: Problem) -> str:
        """What else, besides model, prompt and sampling, decides this backend's output."""
        return ""

    @classmethod
    def ray_resources(cls, spec: ModelSpec) -> dict[str, float]:
        """What one Ray actor running this spec reserves (`harness run --ray`)."""
        return {"num_cpus": 1}

    @abstractmethod
    def stream(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        """Generate for every request; yield each result with its index as soon as it exists."""

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        out: list[Generation | None] = [None] * len(requests)
        for i, g in self.stream(requests):
            out[i] = g
        missing = [i for i, g in enumerate(out) if g is None]
        if missing:
            raise RuntimeError(f"backend {self.name} returned nothing for requests {missing}")
        return out  # type: ignore[return-value]

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release the model (memory, GPU, servers)."""
