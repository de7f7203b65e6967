"""What the report shows, gathered from run folders: the run itself, the explorer's items and
the matched steps of each teacher/student chain pair.

Everything here is plain data (dicts, lists, strings); nothing is rendered. Texts are stored
once in a `TextTable` and referred to by index, so a teacher chain shared by many student
samples costs its size once.
"""

from __future__ import annotations

import gzip
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from harness.errors import HarnessError
from harness.metrics.chainsim import COVERAGE_THRESHOLD, chain_steps, chain_text
from harness.store import RunDir
from harness.types import Record

TEXT_CAP = 60_000
"""Most characters of one text in the report: a longer one keeps its first 80% and last 20%
(where a chain reaches its answer) around a visible mark."""
PACKED_TARGET = 12_000_000
"""Bytes the texts may take in the page once compressed (base64): with plotly.js (~5 MB)
and the rest, a report stays under 20 MB. A run with more text gets a smaller cap per text."""
TEXT_BUDGET = 60_000_000
"""Most characters of all texts together, however well they compress (the page parses
them all when it opens)."""
MIN_CAP = 6_000
"""The cap never goes below this, whatever the budget."""
CUT_MARK = (
    "\n\n[... {n} characters not shown in the report; records.jsonl has the whole text ...]\n\n"
)
OUTCOMES = ("both", "teacher", "student", "neither", "ungraded")
"""Explorer outcome codes: both right, teacher only, student only, both wrong, not graded."""


class Embedder(Protocol):
    """What the step alignment needs: texts in, one unit vector per text out."""

    def embed(self, texts: Sequence[str]) -> npt.NDArray[Any]: ...


@dataclass(frozen=True)
class RunData:
    """A run folder as the report reads it."""

    path: Path
    records: tuple[Record, ...]
    metrics: dict[str, Any]
    config: dict[str, Any]
    failures: tuple[dict[str, Any], ...]
    finished: float | None
    """When records.jsonl was last written (seconds since the epoch)."""

    @property
    def run_id(self) -> str:
        return str((self.metrics.get("run") or {}).get("run_id") or self.path.name)


def load_run(run_dir: RunDir) -> RunData:
    """Records, metrics, config and failures of a finished run; a file that cannot be read is
    one HarnessError naming it."""
    try:
        records = tuple(run_dir.read_records())
    except (ValueError, TypeError, KeyError) as e:
        raise HarnessError(
            f"{run_dir.records_path}: not a records file this version reads ({e}); "
            "run `harness run` again"
        ) from e
    try:
        metrics = run_dir.read_metrics()
    except (ValueError, UnicodeDecodeError) as e:
        raise HarnessError(
            f"{run_dir.metrics_path}: not readable JSON ({e}); run `harness run` again"
        ) from e
    if not isinstance(metrics, dict) or not isinstance(metrics.get("tasks"), dict):
        raise HarnessError(
            f"{run_dir.metrics_path}: not a metrics document (no `tasks` object); "
            "run `harness run` again"
        )
    config: dict[str, Any] = {}
    if run_dir.config_path.is_file():
        import yaml

        try:
            loaded = yaml.safe_load(run_dir.config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise HarnessError(f"{run_dir.config_path}: not readable YAML ({first})") from e
        config = loaded if isinstance(loaded, dict) else {}
    failures: list[dict[str, Any]] = []
    path = run_dir.path / "failures.jsonl"
    if path.is_file():
        try:
            with open(path, encoding="utf-8") as f:
                failures = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError) as e:
            raise HarnessError(
                f"{path}: not readable JSON Lines ({e}); run `harness classify` again"
            ) from e
        failures = [row for row in failures if isinstance(row, dict)]
    finished = run_dir.records_path.stat().st_mtime
    return RunData(run_dir.path, records, metrics, config, tuple(failures), finished)


def fit_cap(lengths: Iterable[int], budget: int = TEXT_BUDGET, cap: int = TEXT_CAP) -> int:
    """The largest cap per text (at most `cap`, at least MIN_CAP) whose capped lengths sum to
    at most `budget`."""
    sizes = np.asarray(list(lengths), dtype=np.int64)
    if sizes.size == 0 or int(np.minimum(sizes, cap).sum()) <= budget:
        return cap
    lo, hi = MIN_CAP, cap
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if int(np.minimum(sizes, mid).sum()) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def text_budget(texts: Sequence[str], target: int = PACKED_TARGET, sample: int = 2_000_000) -> int:
    """Characters of text whose compressed size is about `target` bytes, from how well a
    sample of these texts compresses: 20 runs of consecutive texts (neighbours share steps,
    as a student's chain and its teacher's do), evenly spread, up to `sample` characters."""
    total = sum(len(t) for t in texts)
    if total <= sample:
        return TEXT_BUDGET if total <= target else _budget_from(list(texts), target)
    picked: list[str] = []
    blocks = 20
    for b in range(blocks):
        at, size = b * len(texts) // blocks, 0
        while at < len(texts) and size < sample // blocks:
            picked.append(texts[at])
            size += len(texts[at])
            at += 1
    return _budget_from(picked, target)


def _budget_from(texts: list[str], target: int) -> int:
    blob = json.dumps(texts, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    packed = len(gzip.compress(blob, compresslevel=6, mtime=0)) * 4 / 3
    per_char = packed / max(1, sum(len(t) for t in texts))
    return int(min(TEXT_BUDGET, target / max(per_char, 1e-6)))


class TextTable:
    """Distinct texts in first-seen order; a text past `cap` characters keeps its first 80%
    and last 20% around a visible mark."""

    def __init__(self, cap: int = TEXT_CAP) -> None:
        self.cap = cap
        self.head = cap * 4 // 5
        self.tail = cap - self.head
        self.texts: list[str] = []
        self._index: dict[str, int] = {}
        self.cut = 0
        """Texts shortened."""

    def add(self, text: str | None) -> int | None:
        if text is None:
            return None
        at = self._index.get(text)
        if at is None:
            at = len(self.texts)
            self._index[text] = at
            shown = text
            if len(text) > self.cap:
                shown = self._cut(text)
                self.cut += 1
            self.texts.append(shown)
        return at

    def _cut(self, text: str) -> str:
        omitted = len(text) - self.head - self.tail
        return text[: self.head] + CUT_MARK.format(n=omitted) + text[len(text) - self.tail :]

    def span(self, text: str, start: int, end: int) -> tuple[int, int] | None:
        """Where the characters start..end of `text` sit in its stored form (None: cut out)."""
        if len(text) <= self.cap or end <= self.head:
            return start, end
        tail_from = len(text) - self.tail
        if start >= tail_from:
            shift = self.head + len(CUT_MARK.format(n=tail_from - self.head)) - tail_from
            return start + shift, end + shift
        return None


def step_spans(text: str, steps: Sequence[str]) -> list[tuple[int, int] | None]:
    """Where each step (as chain similarity segments the text) lies in the text, in order;
    None for a step that is not a plain substring (it then shows as its own text)."""
    out: list[tuple[int, int] | None] = []
    at = 0
    for step in steps:
        i = text.find(step, at)
        if i < 0:
            out.append(None)
            continue
        out.append((i, i + len(step)))
        at = i + len(step)
    return out


def matched_steps(weights: npt.NDArray[np.float64]) -> list[tuple[int, int]]:
    """The matched (teacher step, student step) pairs of the best monotone alignment: the
    same LCS over the weighted matrix that chain similarity's order_score scores
    (`chainsim.monotone_alignment`), with its traceback."""
    n, m = weights.shape
    if n == 0 or m == 0:
        return []
    table = np.zeros((n + 1, m + 1))
    for i in range(n):
        prev = table[i]
        cand = np.maximum(prev[1:], prev[:-1] + weights[i])
        table[i + 1, 1:] = np.maximum.accumulate(cand)
    pairs: list[tuple[int, int]] = []
    i, j = n, m
    while i > 0 and j > 0:
        here = table[i, j]
        if here == table[i - 1, j]:
            i -= 1
        elif here == table[i, j - 1]:
            j -= 1
        else:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
    pairs.reverse()
    return pairs


@dataclass(frozen=True)
class Alignment:
    """A teacher/student chain pair as steps, and which steps match."""

    teacher_steps: tuple[str, ...]
    student_steps: tuple[str, ...]
    matches: tuple[tuple[int, int, float], ...]
    """(teacher step, student step, cosine), both indices increasing."""


def align_pairs(
    pairs: Sequence[tuple[Record, Record]],
    embedder: Embedder,
    threshold: float = COVERAGE_THRESHOLD,
) -> list[Alignment]:
    """Each pair's matched steps, every distinct chain's steps embedded in one call (from the
    embedding cache the run filled, so usually without loading the model)."""
    texts = dict.fromkeys(chain_text(r) for pair in pairs for r in pair)
    steps = {t: chain_steps(t) for t in texts}
    need = list(
        dict.fromkeys(
            text
            for a, b in pairs
            if chain_text(a) != chain_text(b)
            for text in (chain_text(a), chain_text(b))
        )
    )
    flat = [s for t in need for s in steps[t]]
    vectors = embedder.embed(flat) if flat else np.zeros((0, 0))
    spans: dict[str, npt.NDArray[Any]] = {}
    at = 0
    for t in need:
        spans[t] = vectors[at : at + len(steps[t])]
        at += len(steps[t])
    out = []
    for teacher, student in pairs:
        tt, st = chain_text(teacher), chain_text(student)
        if tt == st:
            ident = tuple((i, i, 1.0) for i in range(len(steps[tt])))
            out.append(Alignment(tuple(steps[tt]), tuple(steps[st]), ident))
            continue
        sim = np.asarray(spans[tt] @ spans[st].T, dtype=np.float64)
        weights = np.where(sim >= threshold, sim, 0.0)
        found = tuple(
            (i, j, round(float(sim[i, j]), 2))
            for i, j in matched_steps(weights)
            if weights[i, j] > 0
        )
        out.append(Alignment(tuple(steps[tt]), tuple(steps[st]), found))
    return out


def teacher_for(records: Iterable[Record]) -> dict[tuple[str, str], list[Record]]:
    """Teacher records per (task, problem), in sample order."""
    out: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        if r.role == "teacher":
            out[(r.task, r.problem_id)].append(r)
    for group in out.values():
        group.sort(key=lambda r: r.sample)
    return out


def paired_items(records: Sequence[Record]) -> list[tuple[Record | None, Record]]:
    """(teacher, student) per student record, in the records' order: student sample s with
    teacher sample s mod (the problem's teacher samples), as the paired metrics pair them."""
    teachers = teacher_for(records)
    out: list[tuple[Record | None, Record]] = []
    for r in records:
        if r.role != "student":
            continue
        ts = teachers.get((r.task, r.problem_id))
        out.append((ts[r.sample % len(ts)] if ts else None, r))
    return out


def chain_usable(r: Record) -> bool:
    """A record whose chain can be aligned (a generation with a non-empty chain)."""
    return (
        r.error is None
        and r.finish_reason not in ("missing", "error")
        and bool(chain_text(r).strip())
    )


def tokens_of(r: Record) -> tuple[int, str]:
    """The output's length: the model's token count, else its words."""
    if r.completion_tokens is not None:
        return int(r.completion_tokens), "tokens"
    return len(f"{r.reasoning or ''} {r.text}".split()), "words"


def outcome(teacher: Record | None, student: Record) -> str:
    t = None if teacher is None else teacher.correct
    s = student.correct
    if t is None or s is None:
        return "ungraded"
    if t and s:
        return "both"
    if t:
        return "teacher"
    if s:
        return "student"
    return "neither"


def _side(r: Record, texts: TextTable) -> dict[str, Any]:
    n, unit = tokens_of(r)
    return {
        "a": r.answer,
        "c": r.correct,
        "x": texts.add(r.text),
        "r": texts.add(r.reasoning) if r.reasoning and r.reasoning.strip() else None,
        "f": r.finish_reason,
        "tr": bool(r.truncated),
        "n": n,
        "nu": unit,
        "e": r.extractor,
        "l": bool(r.lenient),
        "err": r.error or r.grade_error,
        "m": r.model,
    }


def _spans(text: str, steps: Sequence[str], texts: TextTable) -> tuple[list[int], list[str | None]]:
    """Each step's place in the stored text as flat [gap, length, ...] pairs, the gap counted
    from the previous placed step's end (-1, 0: not in the stored text, cut out of its
    middle), and the steps shown as their own text (not a plain substring; None elsewhere)."""
    flat: list[int] = []
    own: list[str | None] = []
    end = 0
    for step, where in zip(steps, step_spans(text, steps), strict=True):
        stored = texts.span(text, *where) if where else None
        if stored is None:
            flat += [-1, 0]
            own.append(step if where is None else None)
        else:
            flat += [stored[0] - end, stored[1] - stored[0]]
            end = stored[1]
            own.append(None)
    return flat, own


def _alignment_payload(
    alignment: Alignment, teacher: Record, student: Record, texts: TextTable
) -> dict[str, Any]:
    ts, t_own = _spans(chain_text(teacher), alignment.teacher_steps, texts)
    ss, s_own = _spans(chain_text(student), alignment.student_steps, texts)
    out: dict[str, Any] = {
        "ts": ts,
        "ss": ss,
        "m": [[i, j, sim] for i, j, sim in alignment.matches],
    }
    if any(t_own):
        out["to"] = t_own
    if any(s_own):
        out["so"] = s_own
    return out


def _finite(x: float | None) -> float | None:
    return x if x is None or math.isfinite(x) else None


def explorer_items(
    run: RunData,
    texts: TextTable,
    tasks: Sequence[str],
    alignments: dict[int, Alignment] | None = None,
    other: RunData | None = None,
) -> list[dict[str, Any]]:
    """One item per student record (task, problem, sample): its problem, the paired teacher
    record, its failure label and evidence, the matched steps, and with `other` (a second
    run) that run's student on the same item. `alignments` is keyed by the item's index."""
    task_index = {t: i for i, t in enumerate(tasks)}
    failures = {
        (str(f.get("task")), str(f.get("problem_id")), int(f.get("sample") or 0)): f
        for f in run.failures
    }
    theirs: dict[tuple[str, str, int], Record] = {}
    if other is not None:
        theirs = {(r.task, r.problem_id, r.sample): r for r in other.records if r.role == "student"}
    items: list[dict[str, Any]] = []
    for at, (teacher, student) in enumerate(paired_items(run.records)):
        key = (student.task, student.problem_id, student.sample)
        failure = failures.get(key)
        item: dict[str, Any] = {
            "t": task_index[student.task],
            "id": student.problem_id,
            "s": student.sample,
            "q": texts.add(student.question),
            "g": student.gold,
            "d": student.steps,
            "k": student.perturbation,
            "p": student.parent_id,
            "sub": student.subset,
            "o": outcome(teacher, student),
            "tr": bool(student.truncated or (teacher is not None and teacher.truncated)),
            "S": _side(student, texts),
            "T": None if teacher is None else _side(teacher, texts),
        }
        if failure is not None:
            evidence = failure.get("evidence") or []
            item["f"] = str(failure.get("label"))
            probability = failure.get("probability")
            item["fp"] = (
                _finite(float(probability)) if isinstance(probability, int | float) else None
            )
            item["ev"] = [str(line) for line in evidence] if isinstance(evidence, list) else []
        alignment = (alignments or {}).get(at)
        if alignment is not None and teacher is not None:
            item["al"] = _alignment_payload(alignment, teacher, student, texts)
        if other is not None:
            mine = theirs.get(key)
            item["B"] = None if mine is None else _side(mine, texts)
            item["fl"] = _flip(student, mine)
        items.append(item)
    return items


def _flip(a: Record, b: Record | None) -> str:
    """How the item changed from run A's student to run B's: `a_only` (A right, B wrong),
    `b_only`, `same`, or `unpaired` (B has no graded record of it)."""
    if b is None or a.correct is None or b.correct is None:
        return "unpaired"
    if a.correct == b.correct:
        return "same"
    return "a_only" if a.correct else "b_only"


def alignable(
    pairs: Sequence[tuple[Record | None, Record]],
) -> tuple[list[int], list[tuple[Record, Record]]]:
    """The item indices whose teacher and student chains can be aligned, and those pairs."""
    idx: list[int] = []
    out: list[tuple[Record, Record]] = []
    for i, (t, s) in enumerate(pairs):
        if t is not None and chain_usable(t) and chain_usable(s):
            idx.append(i)
            out.append((t, s))
    return idx, out


def shared_accuracy(a: RunData, b: RunData) -> dict[str, dict[str, Any]]:
    """Per task and overall: run A's and run B's student accuracy on the items both graded
    (task, problem id, sample), and how many flipped each way."""
    mine = {(r.task, r.problem_id, r.sample): r for r in a.records if r.role == "student"}
    theirs = {(r.task, r.problem_id, r.sample): r for r in b.records if r.role == "student"}
    groups: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for key, ra in mine.items():
        rb = theirs.get(key)
        if rb is None or ra.correct is None or rb.correct is None:
            continue
        groups[key[0]].append((bool(ra.correct), bool(rb.correct)))
    out: dict[str, dict[str, Any]] = {}
    every: list[tuple[bool, bool]] = []
    for task in sorted(groups):
        out[task] = _shared(groups[task])
        every += groups[task]
    out["overall"] = _shared(every)
    return out


def _shared(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    n = len(pairs)
    if not n:
        return {"n": 0, "a": None, "b": None, "a_only": 0, "b_only": 0}
    return {
        "n": n,
        "a": round(sum(x for x, _ in pairs) / n, 6),
        "b": round(sum(y for _, y in pairs) / n, 6),
        "a_only": sum(x and not y for x, y in pairs),
        "b_only": sum(y and not x for x, y in pairs),
    }
