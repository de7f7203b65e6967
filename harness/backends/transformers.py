"""Hugging Face transformers: real batched generation on CPU or GPU.

A GGUF checkpoint (`#gguf=FILE`) is de-quantized once and saved as a plain safetensors copy
under the cache dir, so every later load takes seconds instead of a conversion.

A raw prompt (an lm-eval context) is sent as is, with the tokenizer's own special tokens, as
lm-eval's `hf` model sends it; a chat request goes through the model's chat template.

A batch is decoded in segments of SEGMENT steps; between them, rows that have finished leave
the batch (and the KV cache), so a batch whose longest answer runs on does not keep paying for
the rows that ended long before.

On a CPU, torch's OpenMP threads are told to sleep rather than spin while they wait (unless
`OMP_WAIT_POLICY` is already set): on a machine whose cores are busy with other work, spinning
threads take the time the thread they wait for needs, and a decoding step of a small model gets
several times slower (2.3 s instead of 0.2 s per step, measured on a shared 2-core machine).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.base import Backend, FormatOptions, raw_prompt, weights_fingerprint
from harness.console import info
from harness.errors import HarnessError
from harness.hub import hub_unreachable
from harness.options import option
from harness.reasoning import split_reasoning
from harness.spec import ModelSpec, weights_location
from harness.types import FinishReason, Generation, Problem, Request, Sampling

CONVERTED_MARK = "harness-converted.txt"
DTYPES = ("auto", "bfloat16", "float16", "half", "float32", "float")
"""`#dtype=` values: torch's names (auto: the checkpoint's own)."""
SEGMENT = 16
"""Decoding steps per `generate` call; finished rows are dropped from the batch in between."""


def passive_openmp_waits() -> None:
    """Make OpenMP's idle threads sleep instead of spin, before torch loads OpenMP.

    libgomp reads OMP_WAIT_POLICY once, when torch is first imported; later it cannot change,
    so this does nothing once torch is loaded, or when the variable is already set.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def converted_dir(cache_dir: Path, source: str, gguf: str) -> Path:
    """Where the de-quantized copy of a GGUF lives: keyed by the file's identity."""
    local = Path(source) / gguf
    ident = f"{local.resolve()}:{local.stat().st_size}" if local.is_file() else f"{source}/{gguf}"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return cache_dir / "models" / f"{Path(gguf).stem}-{digest}"


def convert_gguf(source: str, gguf: str, target: Path, revision: str | None = None) -> Path:
    """De-quantize a GGUF into a fresh model built from its config and save it.

    A GGUF-loaded model refuses save_pretrained, so the weights move into a model made from the
    same config; the copy is written to a temporary folder and renamed, so a crash mid-write
    never leaves a half copy that looks finished.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info(f"converting {gguf} to a safetensors copy (once) ...")
    tok = AutoTokenizer.from_pretrained(source, gguf_file=gguf, revision=revision)
    loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf, revision=revision)
    fresh = AutoModelForCausalLM.from_config(loaded.config)
    fresh.load_state_dict(loaded.state_dict())
    # The weights are plain floats now; a config still saying "gguf" would make vLLM refuse it.
    if hasattr(fresh.config, "quantization_config"):
        del fresh.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fresh.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if loaded.generation_config is not None:
        loaded.generation_config.save_pretrained(tmp)
    (tmp / CONVERTED_MARK).write_text(f"converted from {source}/{gguf}\n")
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def local_weights(spec: ModelSpec, cache_dir: Path) -> tuple[str, str | None]:
    """(hub id or folder to load, revision): a GGUF is replaced by its converted copy, made
    on first use. Shared by every backend that loads safetensors weights."""
    source, gguf = weights_location(spec)
    if gguf is None:
        return source, spec.revision
    target = converted_dir(cache_dir, source, gguf)
    if not (target / CONVERTED_MARK).is_file():
        convert_gguf(source, gguf, target, spec.revision)
    return str(target), None


@dataclass(frozen=True)
class TransformersOptions(FormatOptions):
    """Which weights, in which precision."""

    revision: str | None = option(None, "hub commit or tag to pin (part of the cache key)")
    gguf: str | None = option(
        None, "GGUF file in the folder or repo (de-quantized once into a safetensors copy)"
    )
    dtype: str | None = option(
        None, "weights' precision (default: bfloat16 on a GPU, float32 on a CPU)", choices=DTYPES
    )
    trust_remote_code: bool = option(False, "run the model's own modelling code from its repo")


class TransformersBackend(Backend):
    name = "transformers"
    default_batch_size = 8
    options_class = TransformersOptions
    options: TransformersOptions
    target = "<id>"
    shares_aliases = True

    @classmethod
    def fingerprint(cls, spec: ModelSpec, problem: Problem) -> str:
        """Local weights by content (size, mtime, config, chat template): replaced weights in
        the same place never reuse the old generations."""
        return weights_fingerprint(spec)

    def __init__(self, spec: ModelSpec, **kw: Any) -> None:
        super().__init__(spec, **kw)
        passive_openmp_waits()
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:
            raise HarnessError(f"the transformers backend needs torch and transformers: {e}") from e
        self.torch = torch
        source, revision = local_weights(spec, self.cache_dir)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype_opt = self.options.dtype
        if dtype_opt == "auto":
            dtype: Any = "auto"
        elif dtype_opt:
            dtype = getattr(torch, dtype_opt)
        else:
            dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        trust = self.options.trust_remote_code
        # A hub id on a machine without the hub: take the local HF cache or fail at once.
        down = None if Path(source).exists() else hub_unreachable()
        t0 = time.perf_counter()
        try:
            common = {
                "revision": revision,
                "trust_remote_code": trust,
                "local_files_only": down is not None,
            }
            self.tokenizer: Any = AutoTokenizer.from_pretrained(source, **common)
            model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **common)
            self.model = model.to(self.device)
        except OSError as e:
            first = str(e).strip().splitlines()[0][:200]
            why = (
                f"the hub is unreachable ({down}) and it is not in the local cache"
                if down
                else first
            )
            raise HarnessError(
                f"cannot load model '{spec.name}' ({source}): {why}; pass hf:<local dir> "
                "with the model's files, or run where the hub answers"
            ) from e
        self.model.eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        info(f"loaded {spec.name} on {self.device} in {time.perf_counter() - t0:.1f}s")
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_ids = eos_ids
        self.pad_id = self.tokenizer.pad_token_id
        # The KV cache travels from one `generate` call to the next under this name (`cache`
        # since transformers 5.x renamed `past_key_values`).
        from transformers.generation.utils import GenerateDecoderOnlyOutput

        fields = getattr(GenerateDecoderOnlyOutput, "__dataclass_fields__", {})
        self.cache_arg = "cache" if "cache" in fields else "past_key_values"

    def render(self, req: Request) -> str:
        """The chat template's text for a request, with the model's prefill exactly once; a raw
        prompt (an lm-eval context) as it is."""
        raw = raw_prompt(req.messages)
        if raw is not None:
            return raw
        messages = [m.to_dict() for m in req.messages]
        if self.tokenizer.chat_template:
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        else:
            text = "\n\n".join(m["content"] for m in messages) + "\n"
        prefill = self.spec.prompt.prefill
        if prefill and not text.endswith(prefill) and not text.rstrip().endswith(prefill.strip()):
            text += prefill
        return text

    def prompt_ids(self, req: Request) -> list[int]:
        """The prompt's token ids. A templated prompt carries its special tokens already; a raw
        one gets the tokenizer's own (a BOS, for tokenizers that add one) unless it starts
        with the BOS, as lm-eval's hf model encodes its contexts."""
        text = self.render(req)
        bos = self.tokenizer.bos_token
        special = raw_prompt(req.messages) is not None and not (bos and text.startswith(bos))
        return self.tokenizer(text, add_special_tokens=special)["input_ids"]

    def stream(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start : start + self.batch_size]
            for j, gen in enumerate(self._generate_batch(chunk)):
                yield start + j, gen

    def _generate_batch(self, chunk: Sequence[Request]) -> list[Generation]:
        torch = self.torch
        sampling = chunk[0].sampling
        if any(r.sampling != sampling for r in chunk):
            raise ValueError("a batch must share its sampling parameters")
        enc = self.tokenizer.pad(
            {"input_ids": [self.prompt_ids(r) for r in chunk]}, return_tensors="pt"
        ).to(self.device)
        kwargs: dict[str, Any] = {
            "max_new_tokens": sampling.max_new_tokens,
            "pad_token_id": self.pad_id,
            "eos_token_id": sorted(self.eos_ids) or None,
            "return_dict_in_generate": True,
            "output_logits": sampling.logprobs,
        }
        if sampling.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        # One seed per batch, from its members: the same batch always samples the same way.
        seed_src = "|".join(r.key for r in chunk).encode()
        torch.manual_seed(int(hashlib.sha256(seed_src).hexdigest()[:8], 16))
        t0 = time.perf_counter()
        tokens: list[list[int]] = [[] for _ in chunk]
        logits: list[list[Any]] = [[] for _ in chunk]
        with torch.inference_mode():
            self._decode(enc["input_ids"], enc["attention_mask"], kwargs, sampling, tokens, logits)
        seconds = (time.perf_counter() - t0) / len(chunk)
        return [
            self._finish(req, tokens[i], enc["attention_mask"][i], logits[i], seconds)
            for i, req in enumerate(chunk)
        ]

    def _decode(
        self,
        ids: Any,
        mask: Any,
        kwargs: dict[str, Any],
        sampling: Sampling,
        tokens: list[list[int]],
        logits: list[list[Any]],
    ) -> None:
        """Generate for a batch SEGMENT steps at a time, each row's new tokens (and logits)
        appended to its lists. After a segment the rows that ended (an end-of-sequence or pad
        token, a stop string) leave the batch and its KV cache; the others continue from the
        cache, so `generate` sees the same sequences it would have seen in one call."""
        torch = self.torch
        rows = list(range(len(tokens)))
        left = sampling.max_new_tokens
        carry: dict[str, Any] = {}
        while rows and left > 0:
            step = min(SEGMENT, left)
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, **{**kwargs, "max_new_tokens": step}, **carry
            )
            new = out.sequences[:, ids.shape[1] :]
            left -= step
            keep = []
            for j, row in enumerate(rows):
                got = new[j].tolist()
                tokens[row].extend(got)
                if sampling.logprobs and out.logits is not None:
                    logits[row].extend(out.logits[t][j] for t in range(len(got)))
                if len(got) == step and not self._ended(got, tokens[row], sampling.stop):
                    keep.append(j)
            if not keep or left <= 0:
                return
            # Without a cache to carry (a model that returns none), the next call reads the
            # sequences from scratch: slower, the same tokens.
            cache = getattr(out, self.cache_arg, None)
            ids = torch.cat([ids, new], dim=1)
            mask = torch.cat([mask, torch.ones_like(new)], dim=1)
            if len(keep) < len(rows):
                index = torch.tensor(keep, device=ids.device)
                if cache is not None:
                    cache.batch_select_indices(index)
                ids, mask = ids[index], mask[index]
                rows = [rows[j] for j in keep]
            carry = {self.cache_arg: cache} if cache is not None else {}

    def _ended(self, new: list[int], row_tokens: list[int], stop: Sequence[str]) -> bool:
        """Whether a row is done: it produced an end-of-sequence or pad token in this segment,
        or its text so far holds a stop string."""
        if any(t in self.eos_ids or t == self.pad_id for t in new):
            return True
        if stop:
            text = self.tokenizer.decode(row_tokens, skip_special_tokens=True)
            return any(s in text for s in stop)
        return False

    def _finish(
        self, req: Request, ids: list[int], mask: Any, row_logits: list[Any], seconds: float
    ) -> Generation:
        sampling = req.sampling
        n, ended = len(ids), False
        for pos, tok in enumerate(ids):
            if tok in self.eos_ids:
                n, ended = pos + 1, True
                break
            if tok == self.pad_id:
                n, ended = pos, True
                break
        kept = ids[:n]
        body = kept[:-1] if kept and kept[-1] in self.eos_ids else kept
        text = self.tokenizer.decode(body, skip_special_tokens=True)
        stopped = ended
        for s in sampling.stop:
            cut = text.find(s)
            if cut >= 0:
                text, stopped = text[:cut], True
        finish: FinishReason = "stop" if stopped or n < sampling.max_new_tokens else "length"
        logprobs = None
        if sampling.logprobs and row_logits:
            lp = []
            for step, tok in enumerate(kept):
                logits = row_logits[step].float()
                lp.append(float(self.torch.log_softmax(logits, dim=-1)[tok]))
            logprobs = tuple(lp)
        prefill = "" if raw_prompt(req.messages) is not None else self.spec.prompt.prefill
        reasoning, answer, closed = split_reasoning(prefill + text, self.spec.prompt.think)
        return Generation(
            text=answer,
            reasoning=reasoning,
            finish_reason=finish,
            reasoning_closed=closed,
            prompt_tokens=int(mask.sum()),
            completion_tokens=len(kept),
            seconds=seconds,
            logprobs=logprobs,
        )

    def close(self) -> None:
        del self.model
        if self.device == "cuda":
            self.torch.cuda.empty_cache()
