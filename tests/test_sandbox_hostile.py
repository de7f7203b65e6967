"""Programs a model could write that attack the grader. Each must be contained, scored as not
passed, leave no process and no file outside its temp dir behind, and the harness must go on.

Every case runs under each isolation level this host offers (bubblewrap, namespaces, rlimits);
a level that is not available is skipped with the reason. Cases that only namespaces can
contain (filesystem, network, other processes) are skipped under ``rlimits``, which is the
documented fallback with no such isolation. So are the cases of the minimal root (at the end):
secrets in /etc, the listing of /, the harness cache, the source checkout, another job's files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.tasks.grading import sandbox
from harness.tasks.grading.sandbox import ExecResult, Job, SandboxConfig, run_many

MODES = ("bwrap", "namespaces", "rlimits")
REPO = Path(__file__).resolve().parents[1]
OWNER = sandbox.OWNER_TAG.encode()  # on the command line of every sandbox process we start
SANE = Job("sane", "def f(x):\n    return x * 2\n", "assert f(21) == 42\n", 10.0)
WRONG = "assert f(21) == 42\n"  # tests the hostile programs do not satisfy honestly
NUL = b"\0"


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    why = sandbox.probe_isolation(request.param)
    if why is not None:
        pytest.skip(f"isolation {request.param!r} is not available here: {why}")
    return request.param


@pytest.fixture
def marker() -> str:
    return f"harness-hostile-{secrets.token_hex(6)}"


def needs_isolation(mode: str, what: str) -> None:
    if mode == "rlimits":
        pytest.skip(f"rlimits mode has no {what} isolation (documented fallback)")


def _processes_matching(needles: list[bytes]) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if any(n in cmd for n in needles):
            found.append(f"{pid}: {cmd.replace(NUL, b' ')[:200]!r}")
    return found


def _sandbox_dirs() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("harness-sbx-")}


def run_hostile(
    mode: str,
    program: str,
    tests: str = WRONG,
    *,
    marker: str = "",
    timeout: float = 1.5,
    limit_s: float = 20.0,
    **config: object,
) -> ExecResult:
    """Run the program then a sane job on the same worker; check nothing is left behind."""
    before = _sandbox_dirs()
    started = time.monotonic()
    cfg = SandboxConfig(isolation=mode, **config)  # type: ignore[arg-type]
    hostile, sane = run_many([Job("hostile", program, tests, timeout), SANE], workers=1, config=cfg)
    elapsed = time.monotonic() - started
    assert sane.passed, f"the harness did not go on after the hostile job: {sane}"
    assert elapsed < limit_s, f"containing it took {elapsed:.1f}s"
    needles = [OWNER] + ([marker.encode()] if marker else [])
    deadline = time.monotonic() + 3.0
    while (left := _processes_matching(needles)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes survived the job: {left}"
    assert _sandbox_dirs() <= before, "the job's temp dir was left behind"
    assert hostile.status != "passed", hostile
    return hostile


def assert_no_file(paths: list[Path]) -> None:
    for p in paths:
        assert not p.exists(), f"the program wrote {p} outside its sandbox"


# ---------------------------------------------------------------------------------------------
# resources


def test_fork_bomb(mode: str) -> None:
    program = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    res = run_hostile(mode, program)
    assert res.status == "failed" and "processes limit exceeded" in res.detail, res


def test_fork_bomb_through_subprocess(mode: str, marker: str) -> None:
    program = (
        "import subprocess\nprocs = []\nwhile True:\n"
        f"    procs.append(subprocess.Popen(['/bin/sh', '-c', 'sleep 30  # {marker}']))\n"
    )
    res = run_hostile(mode, program, marker=marker)
    assert res.status == "failed" and "processes limit exceeded" in res.detail, res


def test_memory_bomb(mode: str) -> None:
    program = "blocks = []\nwhile True:\n    blocks.append(bytearray(64 * 1024 * 1024))\n"
    res = run_hostile(mode, program, timeout=10.0, memory_mb=512)
    assert res.status == "failed" and res.detail.startswith("MemoryError"), res


def test_infinite_loop(mode: str) -> None:
    res = run_hostile(mode, "while True:\n    pass\n", timeout=1.0)
    assert res.status == "timeout", res
    assert 0.9 < res.seconds < 5.0


def test_ignores_sigterm(mode: str) -> None:
    program = (
        "import signal, time\n"
        "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n"
        "    signal.signal(s, signal.SIG_IGN)\n"
        "while True:\n    time.sleep(0.01)\n"
    )
    assert run_hostile(mode, program, timeout=1.0).status == "timeout"


def test_prints_a_gigabyte(mode: str) -> None:
    program = (
        "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n"
    )
    res = run_hostile(mode, program, timeout=30.0, limit_s=15.0)
    assert res.status == "failed" and "output limit exceeded" in res.detail, res
    assert len(res.stdout) <= SandboxConfig().output_tail


def test_deep_python_recursion(mode: str) -> None:
    program = "def r(n):\n    return r(n + 1)\nr(0)\n"
    res = run_hostile(mode, program)
    assert res.status == "failed" and res.detail.startswith("RecursionError"), res


def test_deep_c_recursion_crashes(mode: str) -> None:
    # repr() of a deeply nested list recurses in C: past the C stack, the interpreter segfaults.
    program = (
        "import sys\nsys.setrecursionlimit(10 ** 8)\nx = []\n"
        "for _ in range(500_000):\n    x = [x]\nrepr(x)\n"
    )
    res = run_hostile(mode, program, timeout=20.0, limit_s=40.0)
    assert res.status == "crashed" and "SIGSEGV" in res.detail, res


# ---------------------------------------------------------------------------------------------
# processes


def test_child_outlives_parent(mode: str, marker: str, tmp_path: Path) -> None:
    late = tmp_path / f"{marker}.late"
    # The grandchild leaves the process group and outlives the program, which exits at once.
    program = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv('/bin/sh', ['sh', '-c', 'sleep 5; echo late > {late}  # {marker}'])\n"
        "    os._exit(0)\n"
        "time.sleep(0.3)\n"
        "os._exit(0)\n"
    )
    res = run_hostile(mode, program, marker=marker)
    assert res.status == "failed" and "exited with code 0" in res.detail, res
    assert not late.exists()


def test_kills_its_parent(mode: str) -> None:
    program = "import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(0.5)\n"
    res = run_hostile(mode, program)
    assert res.status in ("failed", "crashed", "sandbox_error"), res


def test_kills_the_grader_and_everything(mode: str) -> None:
    needs_isolation(mode, "process")
    # Our own pid (the grader) and kill(-1): everything the program may signal.
    program = (
        "import os, signal, time\n"
        f"for target in ({os.getpid()}, os.getppid(), -1):\n"
        "    try:\n        os.kill(target, signal.SIGKILL)\n    except OSError:\n        pass\n"
        "time.sleep(0.2)\n"
    )
    res = run_hostile(mode, program)
    assert res.status in ("failed", "crashed"), res


# ---------------------------------------------------------------------------------------------
# filesystem, environment, network


@pytest.fixture
def outside_dirs(tmp_path: Path, marker: str) -> Iterator[list[Path]]:
    """Directories outside the sandbox holding a file each: in /tmp, in $HOME, in the repo."""
    dirs = [tmp_path / "outside"]
    dirs.append(Path(tempfile.mkdtemp(prefix=f"{marker}-", dir=Path.home())))
    dirs.append(Path(tempfile.mkdtemp(prefix=f".{marker}-", dir=REPO)))
    for d in dirs:
        d.mkdir(exist_ok=True)
        (d / "keep.txt").write_text("precious")
    try:
        yield dirs
    finally:
        for d in dirs[1:]:
            shutil.rmtree(d, ignore_errors=True)


def test_deletes_directories_outside(mode: str, outside_dirs: list[Path]) -> None:
    needs_isolation(mode, "filesystem")
    targets = [str(d) for d in outside_dirs]
    program = (
        "import os, shutil\n"
        f"for t in {targets!r}:\n"
        "    shutil.rmtree(t, ignore_errors=True)\n"
        "    try:\n        os.remove(os.path.join(t, 'keep.txt'))\n"
        "    except OSError:\n        pass\n"
        "def f(x):\n    return -1\n"
    )
    run_hostile(mode, program)
    for d in outside_dirs:
        assert (d / "keep.txt").read_text() == "precious"


def test_writes_to_home(mode: str, marker: str) -> None:
    needs_isolation(mode, "filesystem")
    home = Path.home()
    program = (
        "import os, pathlib, pwd\n"
        f"homes = [{str(home)!r}, pwd.getpwuid(os.getuid()).pw_dir, os.path.expanduser('~')]\n"
        "for h in homes:\n"
        f"    pathlib.Path(h, {marker + '.txt'!r}).write_text('pwned')\n"
        "def f(x):\n    return 42\n"
    )
    tests = f"import os\nassert os.path.exists({str(home / (marker + '.txt'))!r})\n"
    res = run_hostile(mode, program, tests)
    assert res.status == "failed", res
    assert_no_file([home / f"{marker}.txt", Path(tempfile.gettempdir()) / f"{marker}.txt"])


def test_files_in_its_own_directories_go_away(mode: str, marker: str) -> None:
    # Its working directory, $HOME and $TMPDIR are the job's temp dir: allowed, then removed.
    program = (
        "import os, tempfile\n"
        "for d in (os.getcwd(), tempfile.gettempdir(), os.path.expanduser('~')):\n"
        f"    open(os.path.join(d, {marker!r}), 'w').write('x')\n"
        "print(os.getcwd())\n"
    )
    res = run_hostile(mode, program)
    workdir = Path(res.stdout.strip())
    assert workdir.name.startswith("harness-sbx-"), res
    assert_no_file([workdir, Path.home() / marker, Path(tempfile.gettempdir(), marker)])


def test_reads_an_environment_secret(
    mode: str, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_isolation(mode, "process")
    name, secret = "HARNESS_TEST_SECRET_TOKEN", secrets.token_hex(16)
    monkeypatch.setenv(name, secret)
    # A process that had the secret in its environment from the start, as a shell export would.
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import time; time.sleep(30)  # {marker}"],
        env={**os.environ, name: secret},
    )
    try:
        program = (
            "import os, glob\n"
            f"found = os.environ.get({name!r}, '')\n"
            "paths = ['/proc/self/environ', '/proc/1/environ', *glob.glob('/proc/*/environ')]\n"
            "for path in paths:\n"
            "    try:\n"
            "        for item in open(path, 'rb').read().split(b'\\0'):\n"
            f"            if item.startswith({name.encode() + b'='!r}):\n"
            "                found = item.split(b'=', 1)[1].decode()\n"
            "    except OSError:\n        pass\n"
            "def f():\n    return found\n"
        )
        digest = hashlib.sha256(secret.encode()).hexdigest()
        tests = f"import hashlib\nassert hashlib.sha256(f().encode()).hexdigest() == {digest!r}\n"
        res = run_hostile(mode, program, tests)
    finally:
        holder.kill()
        holder.wait()
    assert res.status == "failed", res
    assert secret not in res.stdout + res.stderr + res.detail


def test_connects_to_a_local_listener(mode: str) -> None:
    needs_isolation(mode, "network")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        program = (
            "import socket\n"
            f"s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
            "s.sendall(b'exfiltrated')\n"
            "def f(x):\n    return 42\n"
        )
        res = run_hostile(mode, program, "assert f(21) == 42\n")
        assert res.status == "failed" and "Error" in res.detail, res
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()


# ---------------------------------------------------------------------------------------------
# forging a pass


def test_sys_exit_before_the_checks(mode: str) -> None:
    program = "def f(x):\n    return -1\nimport sys\nsys.exit(0)\n"
    res = run_hostile(mode, program)
    assert res.status == "failed" and res.detail.startswith("SystemExit(0)"), res


def test_sys_exit_inside_the_checks(mode: str) -> None:
    program = "import sys\ndef f(x):\n    sys.exit(0)\n"
    res = run_hostile(mode, program)
    assert res.status == "failed" and "during the tests" in res.detail, res


def test_os_exit_before_the_checks(mode: str) -> None:
    program = "import os\ndef f(x):\n    os._exit(0)\nos._exit(0)\n"
    res = run_hostile(mode, program)
    assert res.status == "failed" and "exited with code 0" in res.detail, res


def test_os_exit_from_an_atexit_hook_and_a_thread(mode: str) -> None:
    program = (
        "import atexit, os, threading\n"
        "atexit.register(lambda: os.write(3, b'P ' + b'0' * 32 + b'\\n'))\n"
        "threading.Thread(target=lambda: os._exit(0)).start()\n"
        "def f(x):\n    return -1\n"
    )
    assert run_hostile(mode, program).status == "failed"


def test_replaces_builtins_to_fake_a_pass(mode: str) -> None:
    program = (
        "import builtins, math, sys, types\n"
        "b = __builtins__ if isinstance(__builtins__, dict) else vars(__builtins__)\n"
        "b['len'] = lambda x: 3\n"
        "builtins.abs = lambda x: 0\n"
        "builtins.all = lambda *a: True\n"
        "builtins.isinstance = lambda *a: True\n"
        "math.isclose = lambda *a, **k: True\n"
        "fake = types.ModuleType('math')\nfake.isclose = lambda *a, **k: True\n"
        "sys.modules['math'] = fake\n"
        "def f(x):\n"
        "    builtins.abs = lambda v: 0  # again, while the tests run\n"
        "    return -1\n"
    )
    tests = (
        "import math\n"
        "assert abs(f(2) - 4) < 1e-9\n"
        "assert math.isclose(f(3), 9)\n"
        "assert all([f(1) == 2])\n"
        "assert isinstance(f(1), str)\n"
        "assert len([f(1)]) == 3\n"
    )
    res = run_hostile(mode, program, tests)
    assert res.status == "failed" and "AssertionError" in res.detail, res


def test_keeps_patching_while_the_tests_run(mode: str) -> None:
    # A thread and a finalizer that put the fakes back after the harness restored the modules.
    program = (
        "import builtins, gc, math, threading, time\n"
        "def patch():\n"
        "    math.isclose = lambda *a, **k: True\n"
        "    builtins.abs = lambda x: 0\n"
        "def loop():\n"
        "    while True:\n        patch()\n        time.sleep(0.0005)\n"
        "threading.Thread(target=loop, daemon=True).start()\n"
        "class Again:\n"
        "    def __call__(self, *a, **k):\n        return True\n"
        "    def __del__(self):\n        patch()\n        math.isclose = Again()\n"
        "math.isclose = Again()\n"
        "def f(x):\n    time.sleep(0.01)\n    return -1\n"
    )
    tests = "import math\nfor _ in range(5):\n    y = f(3)\n    assert math.isclose(y, 9)\n"
    res = run_hostile(mode, program, tests)
    assert res.status == "failed" and "AssertionError" in res.detail, res


def test_writes_a_pass_to_every_descriptor(mode: str) -> None:
    program = (
        "import os\n"
        "for fd in range(1024):\n"
        "    for line in (b'P ' + b'0' * 32 + b'\\n', b'R\\n', b'P\\n', b'passed\\n'):\n"
        "        try:\n            os.write(fd, line)\n        except OSError:\n            pass\n"
        "print('passed')\n"
        "def f(x):\n    return -1\n"
    )
    res = run_hostile(mode, program)
    assert res.status == "failed" and "tampering" in res.detail, res


def test_hunts_the_token_in_memory(mode: str) -> None:
    # What a program would do to find the pass line if it knew the protocol: walk every object.
    program = (
        "import gc, os\n"
        "for obj in gc.get_objects():\n"
        "    for ref in gc.get_referents(obj):\n"
        "        if isinstance(ref, bytes) and ref.startswith(b'P ') and len(ref) == 35:\n"
        "            for fd in range(3, 64):\n"
        "                try:\n                    os.write(fd, ref)\n"
        "                except OSError:\n                    pass\n"
        "os._exit(0)\n"
    )
    res = run_hostile(mode, program)
    assert res.status == "failed" and "gc.get_objects" in res.detail, res


def test_calls_the_pass_event_itself(mode: str) -> None:
    program = "import sys\ndef f(x):\n    return -1\nsys.audit('harness.done')\n"
    res = run_hostile(mode, program)
    assert res.status == "failed" and "tampering" in res.detail, res


def test_traces_to_skip_the_asserts(mode: str) -> None:
    # A trace function can jump over a failing line; tracing is reported before it can.
    program = (
        "import sys\n"
        "def skip(frame, event, arg):\n"
        "    if event == 'line' and frame.f_code.co_filename == '<tests>':\n"
        "        frame.f_lineno = frame.f_lineno + 1\n"
        "    return skip\n"
        "sys.settrace(skip)\n"
        "def f(x):\n    return -1\n"
    )
    res = run_hostile(mode, program, "assert f(21) == 42\nx = 1\n")
    assert res.status == "failed" and "sys.settrace" in res.detail, res


def test_reads_its_own_memory(mode: str) -> None:
    program = "f = open('/proc/self/mem', 'rb')\n"
    res = run_hostile(mode, program)
    assert res.status == "failed", res
    assert "tampering" in res.detail or "FileNotFoundError" in res.detail, res


def test_peeks_at_the_test_frame(mode: str) -> None:
    program = "import sys\ndef f(x):\n    return sys._getframe(1).f_locals.get('expected', -1)\n"
    tests = "expected = 42\nassert f(21) == expected\n"
    res = run_hostile(mode, program, tests)
    assert res.status == "failed" and "sys._getframe" in res.detail, res


def test_signals_itself(mode: str) -> None:
    program = "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"
    res = run_hostile(mode, program)
    assert res.status == "crashed" and "SIGSEGV" in res.detail, res


def test_bwrap_without_nested_namespaces(monkeypatch: pytest.MonkeyPatch, marker: str) -> None:
    """The level used when bubblewrap works but namespaces cannot be nested inside it."""
    if sandbox.probe_isolation("bwrap") is not None:
        pytest.skip("bubblewrap is not available here")
    monkeypatch.setattr(sandbox, "_resolved", {})
    monkeypatch.setattr(sandbox, "_candidates", lambda isolation: [sandbox._BWRAP])
    program = (
        "import os, time\n"
        "if os.fork() == 0:\n    os.setsid()\n"
        f"    os.execv('/bin/sh', ['sh', '-c', 'sleep 5  # {marker}'])\n"
        "time.sleep(0.3)\n"
        f"os.kill({os.getpid()}, 9)\n"
    )
    res = run_hostile("auto", program, marker=marker)
    assert res.isolation == "bwrap" and res.status == "failed", res


# ---------------------------------------------------------------------------------------------
# the minimal root: only the interpreter, its libraries and a private /tmp are there


def needs_minimal_root(mode: str) -> None:
    if mode == "rlimits":
        pytest.skip(
            "rlimits mode has no minimal root: the program sees the host's filesystem as its "
            "user does (the documented fallback)"
        )


def run_inside(mode: str, program: str, tests: str, **kw: object) -> ExecResult:
    """Run a probe whose tests assert, from inside, what the sandbox must hide; it must pass
    (a failing assertion names what was visible). Then a sane job; nothing may be left."""
    before = _sandbox_dirs()
    cfg = SandboxConfig(isolation=mode)  # type: ignore[arg-type]
    probe, sane = run_many([Job("probe", program, tests, 10.0), SANE], workers=1, config=cfg, **kw)  # type: ignore[arg-type]
    assert sane.passed, sane
    assert _sandbox_dirs() <= before
    assert probe.passed, f"{probe.status}: {probe.detail}\n{probe.stderr}"
    return probe


def _skeleton(plan: sandbox.RootPlan) -> dict[str, list[str]]:
    """Every directory of the minimal root that is not bound from the host, with the names it
    must hold: nothing but the next step on the way to what is bound."""
    bound = [*plan.dirs, *plan.files, *plan.devices, *(p for p, _ in plan.links)]
    dirs: dict[str, set[str]] = {}
    for path in bound:
        parts = path.strip("/").split("/")
        for i in range(len(parts)):
            parent = "/" + "/".join(parts[:i])
            dirs.setdefault(parent, set()).add(parts[i])
    dirs["/"] |= {"tmp", "dev", "etc"}
    dirs.setdefault("/etc", set()).update({"passwd", "group"})
    dirs.setdefault("/dev", set()).add("shm")
    return {d: sorted(names) for d, names in dirs.items()}


def test_sees_only_the_interpreter_at_the_root(mode: str) -> None:
    needs_minimal_root(mode)
    plan = sandbox.minimal_root()
    skeleton = _skeleton(plan)
    assert sorted(plan.top_level()) == skeleton["/"]
    program = (
        "import os\n"
        f"seen = {{d: sorted(os.listdir(d)) for d in {sorted(skeleton)!r}}}\n"
        "gone = [p for p in ('/proc', '/sys', '/run', '/boot', '/mnt', '/media', '/srv', "
        "'/var', '/opt', '/home', '/root/.ssh', '/root/.bashrc', '/root/.cache') "
        "if os.path.lexists(p)]\n"
    )
    tests = (
        f"expected = {skeleton!r}\n"
        "for d, names in expected.items():\n"
        "    assert seen[d] == names, (d, seen[d])\n"
        "assert gone == [], gone\n"
    )
    run_inside(mode, program, tests)
    # Of the usual top-level directories only the ones the interpreter lives in are there.
    hidden = {"home", "opt", "srv", "var", "boot", "mnt", "media", "proc", "sys", "run"}
    assert hidden & plan.top_level() <= {p.split("/")[1] for p in plan.dirs + plan.files}


def test_reads_etc_shadow_and_ssh_keys(mode: str) -> None:
    needs_minimal_root(mode)
    program = (
        "import glob, os\n"
        "got = {}\n"
        "for path in ['/etc/shadow', '/etc/gshadow', '/etc/sudoers', '/etc/ssh/sshd_config',\n"
        "             *glob.glob('/etc/ssh/*key*'), '/root/.ssh/id_rsa', '/etc/hostname']:\n"
        "    try:\n        got[path] = open(path, 'rb').read()\n"
        "    except OSError as e:\n        got[path] = type(e).__name__\n"
        "etc = sorted(os.listdir('/etc'))\n"
        "passwd = open('/etc/passwd').read()\n"
    )
    tests = (
        "assert all(v == 'FileNotFoundError' for v in got.values()), got\n"
        "assert set(etc) <= {'group', 'ld.so.cache', 'localtime', 'passwd'}, etc\n"
        "assert passwd.count('\\n') == 1 and passwd.startswith('sandbox:'), passwd\n"
    )
    run_inside(mode, program, tests)


def test_reads_the_generation_cache(mode: str, marker: str) -> None:
    needs_minimal_root(mode)
    from harness.store import default_cache_dir

    cache = default_cache_dir()
    made = [p for p in (cache, *cache.parents) if not p.exists()]
    cache.mkdir(parents=True, exist_ok=True)
    secret = cache / f"{marker}.sqlite"
    secret.write_text("cached generations")
    try:
        paths = [
            str(secret),
            str(cache),
            str(cache.parent),
            str(sandbox.default_execution_cache_path()),
        ]
        program = (
            "import os\nseen = {}\n"
            f"for path in {paths!r}:\n"
            "    try:\n"
            "        isdir = os.path.isdir(path)\n"
            "        seen[path] = sorted(os.listdir(path)) if isdir else open(path).read()\n"
            "    except OSError as e:\n        seen[path] = type(e).__name__\n"
        )
        tests = "assert all(v == 'FileNotFoundError' for v in seen.values()), seen\n"
        run_inside(mode, program, tests)
    finally:
        secret.unlink()
        for p in made:  # (parents last)
            with contextlib.suppress(OSError):
                p.rmdir()


def test_reads_the_project_source(mode: str) -> None:
    needs_minimal_root(mode)
    plan = sandbox.minimal_root()
    # The checkout may hold the interpreter's venv: then the way to its site-packages shows.
    allowed = sorted(_skeleton(plan).get(str(REPO), []))
    sources = [
        str(REPO / "harness" / "tasks" / "grading" / "sandbox.py"),
        str(REPO / "harness" / "tasks" / "grading" / "_sandbox_runner.py"),
        str(REPO / "harness" / "tasks" / "grading" / "sandbox_protocol.py"),
        str(REPO / "pyproject.toml"),
        str(REPO / "tests" / "test_sandbox_hostile.py"),
        str(Path.cwd() / "runs"),
    ]
    program = (
        "import os\nseen = {}\n"
        f"for path in {sources!r}:\n"
        "    try:\n        seen[path] = open(path).read()[:50]\n"
        "    except OSError as e:\n        seen[path] = type(e).__name__\n"
        "try:\n"
        f"    listing = sorted(os.listdir({str(REPO)!r}))\n"
        "except OSError:\n    listing = []\n"
        "try:\n    import harness\n    imported = True\nexcept ImportError:\n    imported = False\n"
    )
    tests = (
        "assert set(seen.values()) <= {'FileNotFoundError', 'IsADirectoryError'}, seen\n"
        f"assert listing == {allowed!r} or listing == [], listing\n"
        "assert not imported\n"
    )
    run_inside(mode, program, tests)


def test_reads_another_jobs_files(mode: str, marker: str) -> None:
    needs_minimal_root(mode)
    # One worker, one after the other: the second job looks for what the first left.
    writer = (
        "import os\n"
        f"for d in ('/tmp', '/dev/shm', os.getcwd()):\n"
        f"    open(os.path.join(d, {marker!r}), 'w').write('secret')\n"
        f"os.makedirs('/tmp/{marker}-dir/sub')\n"
        f"open('/tmp/{marker}-dir/sub/f', 'w').write('secret')\n"
        "print(os.getcwd())\n"
    )
    reader = (
        "import os\n"
        "tmp = sorted(os.listdir('/tmp'))\n"
        "shm = os.listdir('/dev/shm')\n"
        f"there = [p for p in ('/tmp/{marker}', '/dev/shm/{marker}', '/tmp/{marker}-dir') "
        "if os.path.lexists(p)]\n"
    )
    tests = (
        "assert tmp == [os.path.basename(os.getcwd())], tmp\n"
        "assert shm == [] and there == [], (shm, there)\n"
    )
    cfg = SandboxConfig(isolation=mode)  # type: ignore[arg-type]
    first, second = run_many(
        [Job("writer", writer, "pass\n", 10.0), Job("reader", reader, "import os\n" + tests, 10.0)],
        workers=1,
        config=cfg,
    )
    assert first.passed, first
    assert second.passed, f"{second.detail} (the first job wrote in {first.stdout.strip()})"
    # At the same time, in two workers: the reader looks while the writer still runs.
    slow_writer = writer + "import time\ntime.sleep(1.5)\n"
    late_reader = "import time\ntime.sleep(0.5)\n" + reader
    first, second = run_many(
        [Job("w", slow_writer, "pass\n", 10.0), Job("r", late_reader, "import os\n" + tests, 10.0)],
        workers=2,
        config=cfg,
    )
    assert first.passed and second.passed, (first, second)


def test_bwrap_builds_the_same_minimal_root() -> None:
    """What bubblewrap is told (it is not installed on every machine that runs this)."""
    plan = sandbox.minimal_root()
    cmd = sandbox._bwrap_command(plan)
    pairs = list(zip(cmd, cmd[1:], strict=False))
    assert ("--ro-bind", "/") not in pairs  # never the host's whole root
    for path in (*plan.dirs, *plan.files):
        assert cmd[cmd.index(path) - 1] == "--ro-bind" and cmd[cmd.index(path) + 1] == path
    for path in plan.devices:
        assert ("--dev-bind", path) in pairs
    assert ("--remount-ro", "/") in pairs and ("--tmpfs", "/tmp") in pairs


def test_the_root_plan_leaves_out_and_covers_what_is_sensitive(tmp_path: Path) -> None:
    """A checkout on the import path (an old-style editable install) is left out; a sensitive
    directory inside a bound one is covered; nothing is bound twice."""
    prefix, checkout, site = tmp_path / "prefix", tmp_path / "checkout", tmp_path / "site"
    for d in (prefix / "lib" / "python3.11", prefix / "bin", checkout, site / "cache"):
        d.mkdir(parents=True)
    exe = prefix / "bin" / "python3.11"
    exe.write_text("")
    (prefix / "bin" / "python3").symlink_to("python3.11")
    info = {
        "executable": str(prefix / "bin" / "python3"),
        "prefix": str(prefix),
        "base_prefix": str(prefix),
        "path": [str(prefix / "lib" / "python3.11"), str(checkout), str(site), ""],
        "libdir": str(prefix / "lib"),
        "libpython": None,
    }
    sensitive = {str(checkout), str(site / "cache")}
    plan = sandbox._build_plan(info, str(prefix / "bin" / "python3"), sensitive)
    assert str(checkout) not in plan.dirs
    assert str(prefix / "lib") in plan.dirs and str(prefix / "lib" / "python3.11") not in plan.dirs
    assert str(site) in plan.dirs and plan.masks == (str(site / "cache"),)
    assert str(exe) in plan.files
    assert (str(prefix / "bin" / "python3"), "python3.11") in plan.links
    assert not any(d == "/" for d in plan.dirs)


def test_a_sensitive_directory_inside_a_bound_one_is_covered(
    mode: str, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_minimal_root(mode)
    home = Path("/usr/local/share") / marker  # a home directory inside /usr, which is bound
    try:
        home.mkdir(parents=True)
    except OSError as e:
        pytest.skip(f"cannot make a directory under /usr here: {e}")
    try:
        (home / "secret").write_text("precious")
        monkeypatch.setenv("HOME", str(home))
        assert str(home) in sandbox.minimal_root().masks
        program = (
            "import os\n"
            f"listing = os.listdir({str(home)!r})\n"
            f"found = os.path.exists({str(home / 'secret')!r})\n"
        )
        run_inside(mode, program, "assert listing == [] and not found, listing\n")
    finally:
        shutil.rmtree(home, ignore_errors=True)
