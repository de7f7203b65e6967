"""Hugging Face transformers: real batched generation on CPU or GPU.

A GGUF checkpoint (`#gguf=FILE`) is de-quantized once and saved as a plain safetensors copy
under the cache dir, so every later load takes seconds instead of a conversion.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.backends.base import Backend, weights_fingerprint
from harness.console import info
from harness.errors import HarnessError
from harness.hub import hub_unreachable
from harness.models import ModelSpec, weights_location
from harness.tasks.grading.extract import split_reasoning
from harness.types import Generation, Problem, Request

CONVERTED_MARK = "harness-converted.txt"


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


class TransformersBackend(Backend):
    name = "transformers"
    default_batch_size = 8

    @classmethod
    def fingerprint(cls, spec: ModelSpec, problem: Problem) -> str:
        """Local weights by content (size, mtime, config, chat template): replaced weights in
        the same place never reuse the old generations."""
        return weights_fingerprint(spec)

    def __init__(self, spec: ModelSpec, **kw: Any) -> None:
        super().__init__(spec, **kw)
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:
            raise HarnessError(f"the transformers backend needs torch and transformers: {e}") from e
        self.torch = torch
        source, revision = local_weights(spec, self.cache_dir)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype_opt = spec.option("dtype")
        dtype = (
            getattr(torch, dtype_opt)
            if dtype_opt
            else (torch.bfloat16 if self.device == "cuda" else torch.float32)
        )
        trust = spec.option("trust_remote_code") in ("1", "true")
        # A hub id on a machine without the hub: take the local HF cache or fail at once.
        down = None if Path(source).exists() else hub_unreachable()
        t0 = time.perf_counter()
        try:
            common = {
                "revision": revision,
                "trust_remote_code": trust,
                "local_files_only": down is not None,
            }
            self.tokenizer = AutoTokenizer.from_pretrained(source, **common)
            self.model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **common).to(
                self.device
            )
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

    def render(self, req: Request) -> str:
        """The chat template's text for a request, with the model's prefill exactly once."""
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
        prompts = [self.render(r) for r in chunk]
        enc = self.tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=False
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
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        seconds = (time.perf_counter() - t0) / len(chunk)
        input_len = enc["input_ids"].shape[1]
        results = []
        for i, req in enumerate(chunk):
            ids = out.sequences[i, input_len:].tolist()
            results.append(self._finish(req, ids, enc["attention_mask"][i], out, i, seconds))
        return results

    def _finish(
        self, req: Request, ids: list[int], mask, out, row: int, seconds: float
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
        finish = "stop" if stopped or n < sampling.max_new_tokens else "length"
        logprobs = None
        if sampling.logprobs and out.logits is not None:
            lp = []
            for step, tok in enumerate(kept):
                logits = out.logits[step][row].float()
                lp.append(float(self.torch.log_softmax(logits, dim=-1)[tok]))
            logprobs = tuple(lp)
        reasoning, answer, closed = split_reasoning(
            self.spec.prompt.prefill + text, self.spec.prompt.think
        )
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
