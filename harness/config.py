"""RunConfig: what a run is. CLI flags map 1:1 onto its fields; it round-trips through YAML."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.errors import HarnessError
from harness.prompts import PROMPT_STYLES

RECORDED_ONLY = ("resolved", "harness_version")
CONFIDENCE_SOURCES = ("auto", "stated", "logprob", "agreement")
NOT_IDENTITY = ("out", "run_id", "cache_dir", "fresh", "data_dir", "chain_model", "confidence")
"""RunConfig fields that decide where a run is written or how it is scored, not its records."""


class RunConfig(BaseModel):
    """Everything that decides a run's records. Secrets never live here (env vars only)."""

    model_config = ConfigDict(extra="forbid")

    student: str
    teacher: str = "reference"
    tasks: list[str] = Field(default_factory=list)
    """Task specs; empty means the offline default: chains plus every real set found locally."""
    limit: int | None = None
    samples: int = 1
    seed: int = 0
    max_new_tokens: int | None = None
    """Overrides both models' recommended limit when set."""
    temperature: float | None = None
    """Overrides both models' recommended temperature when set (0 = greedy)."""
    style: str | None = None
    """Prompt style (r1, cot-fewshot, plain); default: each model's own."""
    batch_size: int | None = None
    data_dir: str | None = None
    out: str = "runs"
    run_id: str | None = None
    cache_dir: str | None = None
    fresh: bool = False
    logprobs: bool = False
    """Ask generating backends for the generated tokens' log-probs (calibration's logprob
    confidence); part of the sampling, so of the cache key."""
    chain_model: str | None = None
    """Embedding model for chain similarity; default all-MiniLM-L6-v2, `none` turns it off."""
    confidence: str = "auto"
    """Calibration's headline confidence: auto, stated, logprob or agreement."""

    @field_validator("limit")
    @classmethod
    def _limit(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError("must be a whole number >= 1")
        return v

    @field_validator("samples", "batch_size", "max_new_tokens")
    @classmethod
    def _positive(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError("must be a whole number >= 1")
        return v

    @field_validator("temperature")
    @classmethod
    def _temperature(cls, v: float | None) -> float | None:
        if v is not None and not 0.0 <= v <= 5.0:
            raise ValueError("must be between 0 and 5")
        return v

    @field_validator("style")
    @classmethod
    def _style(cls, v: str | None) -> str | None:
        if v is not None and v not in PROMPT_STYLES:
            raise ValueError(f"must be one of {', '.join(PROMPT_STYLES)}")
        return v

    @field_validator("confidence")
    @classmethod
    def _confidence(cls, v: str) -> str:
        if v not in CONFIDENCE_SOURCES:
            raise ValueError(f"must be one of {', '.join(CONFIDENCE_SOURCES)}")
        return v

    def identity(self) -> dict[str, Any]:
        """The fields that decide the records (not where they are written, nor how they are
        scored)."""
        ident = self.model_dump(exclude=set(NOT_IDENTITY))
        if not ident["logprobs"]:
            del ident["logprobs"]  # runs from before the flag keep their folder
        return ident

    def default_run_id(self) -> str:
        """Deterministic, so the same command after a crash resumes into the same folder."""
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[
            :8
        ]
        slug = re.sub(r"[^A-Za-z0-9.]+", "-", self.student.split("#")[0]).strip("-")[-40:]
        return f"{slug or 'run'}-{digest}"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(), sort_keys=False)

    @classmethod
    def load_yaml(cls, path: Path, **overrides: Any) -> RunConfig:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise HarnessError(f"cannot read config {path}: {e}") from e
        if not isinstance(data, dict):
            raise HarnessError(f"config {path}: expected a mapping of RunConfig fields")
        # A run's own config.yaml also records what was resolved; that is output, not input.
        for key in RECORDED_ONLY:
            data.pop(key, None)
        data.update(overrides)
        return cls.build(**data)

    @classmethod
    def build(cls, **fields: Any) -> RunConfig:
        """Validate, turning pydantic's report into one line naming the field."""
        try:
            return cls(**fields)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "config"
            flag = "--" + where.replace("_", "-")
            if err["type"] == "extra_forbidden":
                raise HarnessError(f"unknown config field '{where}'") from e
            raise HarnessError(f"{flag}: {err['msg'].removeprefix('Value error, ')}") from e
