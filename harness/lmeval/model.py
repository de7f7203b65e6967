"""harness as an lm-eval model: `--model harness --model_args spec=<harness model spec>`.

Every generation goes through harness's backends and its generation cache (the same SQLite
file `harness run` uses), keyed exactly as `harness run --tasks lmeval:<task>` keys it, so the
two share generations both ways. The text is cut at the task's `until` strings, as lm-eval's
own models return it; a think-tag model's reasoning is split off and lm-eval gets the answer.

model_args: `spec=` (required; a spec's own `#a=1,b=2` options may follow it, comma-separated),
`cache_dir=`, `seed=` (default 0), `max_new_tokens=`, `temperature=` (override the model's
recommended values, like `harness run`'s flags), `batch_size=`. Sampling is the model's:
lm-eval's max_gen_toks and temperature are not used.

Registered under the name `harness` in lm-eval's model registry: at import, and through the
`lm_eval.models` entry point for lm-eval versions that discover plugins. With lm-eval 0.4.13,
which does not, run `python -m harness.lmeval ...` (or `harness-lm-eval ...`), lm-eval's own
command line with this model registered. lm-eval's own models are registered first: its
registry fills itself only while it is empty, so registering `harness` alone would hide them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lm_eval.models  # noqa: F401 - lm-eval's own models (hf, vllm, ...) enter its registry
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from harness.backends import Backend, backend_class, load_backend
from harness.console import info
from harness.errors import HarnessError
from harness.generate import generate_missing, make_request, role_sampling
from harness.lmeval import context_messages, cut_at, encode_chat, stop_strings
from harness.models import ModelSpec, parse_spec
from harness.store import GenerationCache, default_cache_dir
from harness.types import Generation, Problem, Request, Sampling

GENERATES_ONLY = (
    "the harness model generates text only (generate_until tasks); score "
    "loglikelihood/multiple_choice tasks with lm-eval's own hf or vllm model"
)
OWN_ARGS = ("spec", "cache_dir", "seed", "max_new_tokens", "temperature", "batch_size")


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def regroup_args(args: dict[str, Any]) -> dict[str, Any]:
    """lm-eval splits model_args on commas; a piece that is not ours belongs to the spec.

    `spec=openai:m@http://h/v1#key_env=K,concurrency=4,cache_dir=c` arrives as
    {spec: "openai:m@http://h/v1#key_env=K", concurrency: 4, cache_dir: "c"}.
    """
    own: dict[str, Any] = {}
    spec_parts: list[str] = []
    for key, value in args.items():
        if key in OWN_ARGS:
            own[key] = value
            if key == "spec":
                spec_parts = [_as_text(value)]
        elif spec_parts:
            spec_parts.append(f"{key}={_as_text(value)}")
        else:
            raise HarnessError(
                f"model_args: unknown argument '{key}'; harness takes {', '.join(OWN_ARGS)} "
                "(spec= first; its #options may follow it)"
            )
    if not spec_parts:
        raise HarnessError("model_args: pass spec=<harness model spec>, e.g. spec=smollm2-135m")
    first, rest = spec_parts[0], spec_parts[1:]
    if rest:
        first += ("," if "#" in first else "#") + ",".join(rest)
    own["spec"] = first
    return own


@register_model("harness")
class HarnessLM(LM):
    """lm-eval's LM interface over a harness backend and the harness generation cache."""

    def __init__(
        self,
        spec: str,
        cache_dir: str | None = None,
        seed: int | str = 0,
        max_new_tokens: int | str | None = None,
        temperature: float | str | None = None,
        batch_size: int | str | None = None,
        **unused: Any,
    ) -> None:
        super().__init__()
        self.spec: ModelSpec = parse_spec(str(spec))
        self.cls = backend_class(self.spec.backend)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.seed = int(seed)
        self.batch_size = int(batch_size) if batch_size not in (None, "", "auto") else None
        self.sampling: Sampling = role_sampling(
            self.spec,
            max_new_tokens=int(max_new_tokens) if max_new_tokens not in (None, "") else None,
            temperature=float(temperature) if temperature not in (None, "") else None,
        )
        self.backend: Backend | None = None
        self.generated = 0
        self.cached = 0
        self.failed = 0

    @classmethod
    def create_from_arg_string(
        cls, arg_string: str, additional_config: dict[str, Any] | None = None
    ) -> HarnessLM:
        pieces: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in arg_string.split(","))):
            key, _, value = part.partition("=")
            pieces[key.strip()] = value.strip()
        return cls.create_from_arg_obj(pieces, additional_config)

    @classmethod
    def create_from_arg_obj(
        cls, arg_dict: dict[str, Any], additional_config: dict[str, Any] | None = None
    ) -> HarnessLM:
        extra = {
            k: v
            for k, v in (additional_config or {}).items()
            if v is not None and k in OWN_ARGS and k not in arg_dict
        }
        return cls(**regroup_args({**arg_dict, **extra}))

    # -- what lm-eval asks ------------------------------------------------------------------
    @property
    def tokenizer_name(self) -> str:
        return f"harness:{self.spec.cache_id}"

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return f"harness:{self.spec.name}" if chat_template else ""

    def apply_chat_template(
        self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        """The turns travel as they are; the backend applies the model's own template."""
        return encode_chat(chat_history, add_generation_prompt)

    def loglikelihood(
        self, requests: list[Instance], disable_tqdm: bool = False
    ) -> list[tuple[float, bool]]:
        raise NotImplementedError(GENERATES_ONLY)

    def loglikelihood_rolling(
        self, requests: list[Instance], disable_tqdm: bool = False
    ) -> list[float]:
        raise NotImplementedError(GENERATES_ONLY)

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        built: list[Request] = []
        untils: list[list[str]] = []
        seen: dict[int, int] = {}
        for inst in requests:
            context, gen_kwargs = inst.args[0], inst.args[1]
            # lm-eval repeats an instance `repeats` times in a row: those are its samples.
            sample = seen.get(id(inst), 0)
            seen[id(inst)] = sample + 1
            built.append(self._request(inst, context, sample))
            untils.append(stop_strings(gen_kwargs))
        gens = self._generate(built)
        return [cut_at(g.text, u)[0] if g.ok else "" for g, u in zip(gens, untils, strict=True)]

    # -- harness ------------------------------------------------------------------------------
    def _request(self, inst: Any, context: str, sample: int) -> Request:
        problem = Problem(
            id=f"{inst.task_name}-{inst.doc_id}",
            task=str(inst.task_name),
            question=context,
            answer="",
        )
        messages = context_messages(context)
        return make_request(self.spec, problem, messages, sample, self.sampling, self.seed)

    def _get_backend(self) -> Backend:
        if self.backend is None:
            self.backend = load_backend(
                self.spec, cache_dir=self.cache_dir, batch_size=self.batch_size
            )
        return self.backend

    def _generate(self, requests: list[Request]) -> list[Generation]:
        cache = GenerationCache(self.cache_dir / "generations.sqlite")
        try:
            found = {k: (g, True) for k, g in cache.get_many(r.key for r in requests).items()}
            self.cached += sum(r.key in found for r in requests)
            size = self.cls.batch_size_for(self.spec, self.batch_size)
            generate_missing(requests, found, cache, self.spec, self._get_backend, size)
        finally:
            cache.close()
        made = [found[k][0] for k in {r.key for r in requests} if not found[k][1]]
        self.generated += len(made)
        self.failed += sum(not g.ok for g in made)
        info(
            f"harness model {self.spec.name}: {self.generated} generated ({self.failed} failed, "
            f"scored as empty text), {self.cached} from the cache at {self.cache_dir}"
        )
        return [found[r.key][0] for r in requests]

    def get_model_info(self) -> dict[str, Any]:
        return {"harness_spec": self.spec.name, "harness_backend": self.spec.backend}

    def __del__(self) -> None:
        backend = getattr(self, "backend", None)
        if backend is not None:
            backend.close()
