"""RunConfig: what a run is. Each field is declared once, with its `harness run` flag (help
text, flag name, how the command line's string becomes the value); the CLI builds the command
from these declarations, so a new field is a new flag. It round-trips through YAML.

The run id is a hash of a declared, versioned subset of the fields (`RUN_ID_FIELDS`): a field
added later joins the hash only at a value other than its default, so every existing command
keeps resolving to the run folder it always did.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonDict

from harness.errors import HarnessError
from harness.prompts import PROMPT_STYLES

RECORDED_ONLY = ("resolved", "harness_version")
CONFIDENCE_SOURCES = ("auto", "stated", "logprob", "agreement")
CLASSIFY_MODES = ("auto", "probe", "off")
NOT_IDENTITY = (
    "out",
    "run_id",
    "cache_dir",
    "fresh",
    "data_dir",
    "chain_model",
    "confidence",
    "classify",
    "ray",
    "ray_actors",
)
"""RunConfig fields that decide where a run is written or how it is scored, not its records."""

RUN_ID_VERSION = 1
"""The run id's hashing scheme. Version 1 hashes RUN_ID_FIELDS always and every other identity
field only at a non-default value, with no version in the hash (the ids of every run made
before the version existed). Bump it only to move every run to a new folder on purpose."""
RUN_ID_FIELDS = (
    "student",
    "teacher",
    "tasks",
    "limit",
    "samples",
    "seed",
    "max_new_tokens",
    "temperature",
    "style",
    "batch_size",
)
"""Version 1's fields hashed at any value, default or not. Never add to this tuple without
bumping RUN_ID_VERSION (that moves existing runs): a new field that changes the records (as
`logprobs` did) joins the hash by itself, only when a run sets it away from its default; a
field that does not (where runs go, how they are scored) belongs in NOT_IDENTITY."""


def flag(
    default: Any = ...,
    help: str = "",
    *,
    default_factory: Callable[[], Any] | None = None,
    names: tuple[str, ...] = (),
    parse: str | None = None,
    shown_default: str | None = None,
) -> Any:
    """A RunConfig field and its `harness run` flag, declared together.

    `help`: the flag's help text. `names`: the flag's own spelling (default `--field-name`,
    and `--x/--no-x` for a bool). `parse`: "module:function" turning the command line's string
    into the field's value (imported only when the flag is given). `shown_default`: the default
    `--help` shows when the field's own default (None) stands for a value chosen later.
    """
    extra: JsonDict = {"names": list(names), "parse": parse, "shown_default": shown_default}
    if default_factory is not None:
        return Field(default_factory=default_factory, description=help, json_schema_extra=extra)
    return Field(default, description=help, json_schema_extra=extra)


class RunConfig(BaseModel):
    """Everything that decides a run's records. Secrets never live here (env vars only)."""

    model_config = ConfigDict(extra="forbid")

    student: str = flag(help="student model spec or alias (see `harness models`)")
    teacher: str = flag("reference", help="teacher model spec or alias")
    tasks: list[str] = flag(
        default_factory=list,
        help="comma-separated task specs, e.g. chains:depth=1-6,gsm8k "
        "(default: chains plus every real set found in the data dir)",
        parse="harness.tasks:split_task_list",
    )
    """Task specs; empty means the offline default: chains plus every real set found locally."""
    limit: int | None = flag(None, help="first N problems of each task")
    perturb: str | None = flag(
        None,
        help="also evaluate variants of each problem: kinds, e.g. numeric,distractor[,per=2] "
        "or all (see `harness perturb --list`)",
    )
    """Perturbation kinds whose variants run beside the originals (seeded by --seed); headline
    figures count originals only, the ood section compares each variant with its parent."""
    samples: int = flag(1, help="samples per problem")
    seed: int = flag(0, help="sampling seed")
    max_new_tokens: int | None = flag(None, help="override both models' limit")
    """Overrides both models' recommended limit when set."""
    temperature: float | None = flag(None, help="override both (0 = greedy)")
    """Overrides both models' recommended temperature when set (0 = greedy)."""
    style: str | None = flag(None, help=f"prompt style: {', '.join(PROMPT_STYLES)}")
    """Prompt style (r1, cot-fewshot, plain, r1-confidence); default: each model's own."""
    batch_size: int | None = flag(None, help="generation batch size")
    data_dir: str | None = flag(
        None, help="local data folder (default: $HARNESS_DATA_DIR, then hub)"
    )
    out: str = flag("runs", help="folder of run folders")
    run_id: str | None = flag(None, help="run folder name (default: from config)")
    cache_dir: str | None = flag(
        None, help="generation cache (default: $HARNESS_CACHE_DIR, user cache)"
    )
    fresh: bool = flag(False, help="ignore cached generations and start over")
    logprobs: bool = flag(False, help="record generated tokens' log-probs", names=("--logprobs",))
    """Ask generating backends for the generated tokens' log-probs (calibration's logprob
    confidence); part of the sampling, so of the cache key."""
    chain_model: str | None = flag(
        None, help="embedding model for chain similarity (none: off)", shown_default="MiniLM"
    )
    """Embedding model for chain similarity; default all-MiniLM-L6-v2, `none` turns it off."""
    confidence: str = flag(
        "auto", help=f"calibration's confidence: {', '.join(CONFIDENCE_SOURCES)}"
    )
    """Calibration's headline confidence: auto, stated, logprob or agreement."""
    classify: str = flag(
        "auto",
        help="label the student's failures when the run ends: auto, probe (also the causal "
        "probes: extra student generations), off",
    )
    """`harness classify` on the run when it ends (auto: whenever the student failed something;
    probe: with `--probe`; off: not). Scoring, not records: not part of the run id."""

    ray: str | None = flag(
        None,
        help="generate on a Ray cluster: auto (the running one), local (a Ray started here) "
        "or the head's address (host:port, ray://host:port)",
    )
    """Where generation runs; the records and the cache keys are the same as on one machine,
    so not part of the run id."""
    ray_actors: int | None = flag(
        None,
        help="with --ray: actors per model (default: as many as the cluster's CPUs/GPUs hold)",
    )

    @field_validator("ray")
    @classmethod
    def _ray(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("takes auto, local or the cluster's address (host:port)")
        return v.strip() if v is not None else v

    @field_validator("limit")
    @classmethod
    def _limit(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError("must be a whole number >= 1")
        return v

    @field_validator("samples", "batch_size", "max_new_tokens", "ray_actors")
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

    @field_validator("classify")
    @classmethod
    def _classify(cls, v: str) -> str:
        if v not in CLASSIFY_MODES:
            raise ValueError(f"must be one of {', '.join(CLASSIFY_MODES)}")
        return v

    @field_validator("confidence")
    @classmethod
    def _confidence(cls, v: str) -> str:
        if v not in CONFIDENCE_SOURCES:
            raise ValueError(f"must be one of {', '.join(CONFIDENCE_SOURCES)}")
        return v

    def identity(self) -> dict[str, Any]:
        """The fields that decide the records (not where they are written, nor how they are
        scored): RUN_ID_FIELDS always, any later field only where it is not at its default."""
        values = self.model_dump()
        ident = {name: values[name] for name in RUN_ID_FIELDS}
        for name, field in type(self).model_fields.items():
            if name in RUN_ID_FIELDS or name in NOT_IDENTITY:
                continue
            if values[name] != _dumped_default(field):
                ident[name] = values[name]  # e.g. logprobs only when on: older runs keep ids
        if RUN_ID_VERSION != 1:
            ident["run_id_version"] = RUN_ID_VERSION
        return ident

    def default_run_id(self) -> str:
        """Deterministic, so the same command after a crash resumes into the same folder."""
        blob = json.dumps(self.identity(), sort_keys=True).encode()
        digest = hashlib.sha256(blob).hexdigest()[:8]
        slug = re.sub(r"[^A-Za-z0-9.]+", "-", self.student.split("#")[0]).strip("-")[-40:]
        return f"{slug or 'run'}-{digest}"

    def to_yaml(self) -> str:
        """Every field, in declaration order: a run's config.yaml, readable and re-runnable."""
        return yaml.safe_dump(self.model_dump(), sort_keys=False)

    @classmethod
    def load_yaml(cls, path: Path, **overrides: Any) -> RunConfig:
        """A saved config (a run's own config.yaml too), with `overrides` (given flags) on top."""
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
            if err["type"] == "extra_forbidden":
                raise HarnessError(f"unknown config field '{where}'") from e
            named = RUN_FLAGS[where].flag if where in RUN_FLAGS else "--" + where.replace("_", "-")
            raise HarnessError(f"{named}: {err['msg'].removeprefix('Value error, ')}") from e


def _dumped_default(field: FieldInfo) -> Any:
    """A field's default as model_dump() writes it, to compare against a dumped value."""
    default = field.get_default(call_default_factory=True)
    return default.model_dump() if isinstance(default, BaseModel) else default


@dataclass(frozen=True)
class RunFlag:
    """One RunConfig field as a `harness run` option, read from its declaration."""

    field: str
    annotation: Any
    """The field's type, `X | None` stripped to X."""
    help: str
    names: tuple[str, ...]
    """The option's spelling; empty: typer's own (`--field-name`, `--x/--no-x` for a bool)."""
    parse: str | None
    shown_default: str | None

    @property
    def flag(self) -> str:
        """The flag as an error message names it."""
        return self.names[0].split("/")[0] if self.names else "--" + self.field.replace("_", "-")


def _strip_none(annotation: Any) -> Any:
    """`int | None` -> int; other types as they are."""
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    if len(args) == 1 and type(None) in getattr(annotation, "__args__", ()):
        return args[0]
    return annotation


def _shown_default(field: FieldInfo, declared: str | None) -> str | None:
    """What `--help` gives as the default: a declared text, else a default worth showing."""
    if declared is not None:
        return declared
    if field.is_required():
        return None
    default = field.get_default(call_default_factory=True)
    if default is None or default is False or default == [] or default == {}:
        return None
    return str(default)


def run_flags(model: type[RunConfig] = RunConfig) -> dict[str, RunFlag]:
    """field name -> its `harness run` option, in declaration order."""
    flags: dict[str, RunFlag] = {}
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        names = extra.get("names") or ()
        parse = extra.get("parse")
        shown = extra.get("shown_default")
        flags[name] = RunFlag(
            field=name,
            annotation=_strip_none(field.annotation),
            help=field.description or "",
            names=tuple(str(n) for n in names) if isinstance(names, list) else (),
            parse=parse if isinstance(parse, str) else None,
            shown_default=_shown_default(field, shown if isinstance(shown, str) else None),
        )
    return flags


RUN_FLAGS = run_flags()
