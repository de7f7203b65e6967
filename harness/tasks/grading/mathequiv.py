"""Mathematical equivalence of two answers: cheap exact checks first, then math-verify in a
worker process with a hard wall-clock limit.

Why worker processes: math-verify's timeouts use SIGALRM, which works only in the main thread
and cannot interrupt sympy stuck in C code. Each comparison here runs in a long-lived child
process (one per concurrent caller); when it takes longer than the limit the child is killed
and replaced, and the pair is reported as a timeout (not equal) instead of hanging the run.

Why cheap checks first: most answers are equal strings after normalization or plain numbers,
and deciding those here is exact and ~1000x faster. They never contradict math-verify on a
case math-verify gets right; they fix two of its known misses (`52_8` vs `52_9`: math-verify
drops the base subscript; `\\textbf{(113) }` AoPS-style boxed answers).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from harness.errors import HarnessError
from harness.tasks.grading.extract import MINUS_SIGNS, final_boxed, unwrap_latex

DEFAULT_TIMEOUT = 5.0
"""Seconds one comparison may take before its worker is killed (math-verify's own limit is
set just under it, so a slow parse normally fails gracefully first)."""
_KILL_GRACE = 2.0
_START_TIMEOUT = 120.0
_MAX_LEN = 4000
WORKER = Path(__file__).with_name("_mathverify_worker.py")


@dataclass(frozen=True)
class MathResult:
    equal: bool
    how: str
    """same (equal after normalization), number (exact values), base (numbers with a base
    subscript), math-verify, timeout (the worker was killed), unparsed (math-verify read
    neither side), empty (no answer), error (the worker failed, or the answer is longer than
    4000 characters: not a final answer)."""


# -- cheap, exact checks -----------------------------------------------------------------------

_SPACING = re.compile(r"\\[,;:!> ]|\\q?quad|~")
_DEGREES = re.compile(r"\^ ?\{? ?\\circ ?\}?|°|\\degree| ?degrees?\b")
_ASSIGN = re.compile(r"^[A-Za-z](?:_\{?\w+\}?)?=(?!=)")
_PLAIN = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_GROUPED = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_FRACTION = re.compile(r"([-+]?)\\frac\{([-+]?\d+)\}\{([-+]?\d+)\}|([-+]?\d+)/(\d+)")
_BASE = re.compile(r"([0-9A-Fa-f]*\d[0-9A-Fa-f]*)_\{?(\d+)\}?")
_DIGITS = re.compile(r"[0-9A-Fa-f]*\d[0-9A-Fa-f]*")


_APPROX = re.compile(r"\\approx|≈|\\sim(?![a-z])")


def _unboxed(answer: str) -> str:
    """The answer without its box(es) (several boxes of one answer become one list), with ASCII
    minus signs and without a trailing `\\approx 0.33` (the exact value is the answer)."""
    s = answer.strip().translate(MINUS_SIGNS)
    if "\\boxed" in s or "\\fbox" in s:
        boxed = final_boxed(s)
        if boxed is not None:
            s = boxed
    m = _APPROX.search(s)
    if m and s[: m.start()].strip():
        s = s[: m.start()].strip()
    return s


def canonical(answer: str) -> str:
    """A normalized string: delimiters, `\\boxed`, `\\text{}` wrappers, `\\left`/`\\right`,
    spacing, degrees, `\\dfrac`, a trailing period, `x =` and all whitespace removed."""
    s = _unboxed(answer)
    s = unwrap_latex(s)
    s = s.replace("\\left", "").replace("\\right", "").replace("\\displaystyle", "")
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = _SPACING.sub("", s)
    s = re.sub(r"\s+", " ", s)  # one space per run: the patterns below never backtrack on runs
    s = _DEGREES.sub("", s)
    s = s.replace("\\%", "%").replace("{,}", ",")
    s = re.sub(r"\s+", "", s)
    s = s.rstrip(".")
    if s.count("=") == 1 and _ASSIGN.match(s):
        s = s.split("=", 1)[1]
    # "(113)" is the number 113 (AoPS writes answers so); "(1,2)" stays a tuple.
    m = re.fullmatch(r"\(([-+]?\d+(?:\.\d+)?)\)", s)
    if m:
        s = m.group(1)
    return s


def exact_value(s: str) -> tuple[Fraction, int] | None:
    """(value, decimals written) of a canonical plain number: integer, decimal, 1,234 grouping,
    a percentage, an integer fraction `\\frac{3}{4}` or `3/4`; None for anything else."""
    s = s[:-1] if s.endswith("%") else s
    if _PLAIN.fullmatch(s) or _GROUPED.fullmatch(s):
        digits = s.replace(",", "")
        decimals = len(digits.split(".", 1)[1]) if "." in digits else 0
        return Fraction(digits), decimals
    m = _FRACTION.fullmatch(s)
    if m:
        if m.group(2) is not None:
            sign, num, den = m.group(1), int(m.group(2)), int(m.group(3))
        else:
            sign, num, den = "", int(m.group(4)), int(m.group(5))
        if den == 0:
            return None
        value = Fraction(num, den)
        return (-value if sign == "-" else value), 0
    return None


_WORDS = re.compile(r"[A-Za-z]+(?:[-'][A-Za-z]+)*")
_DECIMAL_COMMA = re.compile(r"(-?\d+),(\d{1,2})")


def quick_compare(answer: str, gold: str) -> MathResult | None:
    """Decide the pair without math-verify when that is certain; None when it is not."""
    a, g = canonical(answer), canonical(gold)
    if not a:
        return MathResult(False, "empty")
    if a == g:
        return MathResult(True, "same")
    ba, bg = _BASE.fullmatch(a), _BASE.fullmatch(g)
    if ba or bg:
        # The digits in the base the question asked for; the subscript may be left out.
        da = (ba.group(1), ba.group(2)) if ba else (a, None)
        dg = (bg.group(1), bg.group(2)) if bg else (g, None)
        bases_ok = all(b is None or 2 <= int(b) <= 36 for b in (da[1], dg[1]))
        if bases_ok and _DIGITS.fullmatch(da[0]) and _DIGITS.fullmatch(dg[0]):
            same_digits = da[0].upper().lstrip("0") == dg[0].upper().lstrip("0")
            same_base = da[1] is None or dg[1] is None or int(da[1]) == int(dg[1])
            return MathResult(same_digits and same_base, "base")
    if _WORDS.fullmatch(a) and _WORDS.fullmatch(g):
        # Words compare without case (`Even` is `\\text{even}`); math-verify would read
        # them as products of variables. Letters outside \\text{} may still be a product.
        if len(g) >= 3 and a.lower() == g.lower():
            return MathResult(True, "text")
        if "\\text" in gold or "\\text" in answer:
            return MathResult(a.lower() == g.lower(), "text")
    va, vg = exact_value(a), exact_value(g)
    if va is None and vg is not None:
        comma = _DECIMAL_COMMA.fullmatch(a)
        if comma:  # `1,22` against a single number: a decimal comma, not a list
            va = (Fraction(f"{comma.group(1)}.{comma.group(2)}"), len(comma.group(2)))
    if va is not None and vg is not None:
        if va[0] == vg[0]:
            return MathResult(True, "number")
        # A long decimal may be a rounding of an exact value: math-verify decides that.
        if max(va[1], vg[1]) < 6:
            return MathResult(False, "number")
    return None


# -- math-verify in worker processes -----------------------------------------------------------


class _WorkerDied(Exception):
    pass


class _Worker:
    """One math-verify process; used by one thread at a time."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self._buf = b""
        self._next_id = 0

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-u", str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._buf = b""
        ready = self._read(time.monotonic() + _START_TIMEOUT)
        if ready is None:
            self.close()
            raise HarnessError(
                f"the math-verify worker did not start within {_START_TIMEOUT:.0f}s; "
                "check that `python -c 'import math_verify'` works in this environment"
            )
        if "error" in ready:
            self.close()
            raise HarnessError(
                f"math grading needs math-verify: {ready['error']}; run `pip install math-verify`"
            )

    def _read(self, deadline: float) -> dict | None:
        """One reply line, or None when the deadline passes first."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise _WorkerDied("math-verify worker exited")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def compare(self, answer: str, gold: str, timeout: float, grace: float) -> MathResult:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        self._next_id += 1
        req = {"id": self._next_id, "gold": gold, "answer": answer, "timeout": timeout - 0.5}
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
            while True:
                reply = self._read(time.monotonic() + timeout + grace)
                if reply is None:
                    self.close()
                    return MathResult(False, "timeout")
                if reply.get("id") == self._next_id:
                    break
        except (BrokenPipeError, _WorkerDied, ValueError):
            self.close()
            return MathResult(False, "error")
        if "error" in reply:
            return MathResult(False, "error")
        if not reply["gold_parsed"] and not reply["answer_parsed"]:
            return MathResult(bool(reply["equal"]), "unparsed")
        return MathResult(bool(reply["equal"]), "math-verify")

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None:
                    stream.close()
            self.proc = None


class MathVerifier:
    """A pool of math-verify workers, started lazily, one per concurrent caller."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, kill_grace: float = _KILL_GRACE) -> None:
        self.timeout = timeout
        self.kill_grace = kill_grace
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()

    def _take(self) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            worker = _Worker()
            with self._lock:
                self._all.append(worker)
            return worker

    def compare(self, answer: str, gold: str) -> MathResult:
        quick = quick_compare(answer, gold)
        if quick is not None:
            return quick
        if len(answer) > _MAX_LEN:
            return MathResult(False, "error")
        worker = self._take()
        try:
            return worker.compare(
                canonical_for_parse(answer),
                canonical_for_parse(gold),
                self.timeout,
                self.kill_grace,
            )
        finally:
            self._idle.put(worker)

    def compare_many(
        self, pairs: Iterable[tuple[str, str]], workers: int | None = None
    ) -> list[MathResult]:
        """(answer, gold) pairs compared by up to `workers` processes at once, in order."""
        items: Sequence[tuple[str, str]] = list(pairs)
        n = workers or max(1, min(4, os.cpu_count() or 1))
        if n == 1:
            return [self.compare(a, g) for a, g in items]
        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(lambda p: self.compare(*p), items))

    def close(self) -> None:
        with self._lock:
            for worker in self._all:
                worker.close()
            self._all.clear()
        self._idle = queue.SimpleQueue()


def canonical_for_parse(answer: str) -> str:
    """What math-verify reads: the answer without delimiters, `\\boxed`, AoPS's bold and
    parentheses around a lone number, or a trailing period (its own normalizer does the rest)."""
    s = _unboxed(answer)
    s = s.strip().strip("$").strip()
    for open_, close in (("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(open_) and s.endswith(close):
            s = s[len(open_) : -len(close)].strip()
    s = re.sub(r"\\(?:textbf|mathbf)\s*\{\s*\(?\s*([-+]?\d+)\s*\)?\s*\}", r"\1", s)
    return s.rstrip(".").strip()


_default: MathVerifier | None = None
_default_lock = threading.Lock()


def default_verifier() -> MathVerifier:
    global _default
    with _default_lock:
        if _default is None:
            _default = MathVerifier()
            atexit.register(_default.close)
        return _default


def math_compare(answer: str | None, gold: str | None) -> MathResult:
    """Whether `answer` is mathematically the gold answer, and how that was decided."""
    if answer is None or gold is None or not answer.strip():
        return MathResult(False, "empty")
    return default_verifier().compare(answer, gold)


def math_equal(answer: str | None, gold: str | None) -> bool:
    return math_compare(answer, gold).equal
