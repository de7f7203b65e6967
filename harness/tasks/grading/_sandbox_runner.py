"""The code that runs on the far side of the sandbox boundary (stdlib only, run as a script).

Three roles, one file, so that a job costs a fork instead of an interpreter start:

* zygote: one long-lived, single-threaded process per worker, started by ``sandbox.py`` (inside
  bubblewrap when it is used). It never runs untrusted code. In the namespace modes it first
  gives the worker its user, mount, network, ipc and uts namespaces and a minimal read-only
  root of its own (``_build_root``: the interpreter, its standard library and site-packages,
  /usr, a private /tmp, three device nodes; nothing else), and carries on as pid 1 of a new pid
  namespace. Then, per job request, it forks the job, kills it when the parent asks, reports
  its wait status, and cleans up after it (orphans without pid namespaces: it is a child
  subreaper; the job's directory; the whole private /tmp and /dev/shm).
* pid 1 of a job (namespace modes only): init of the job's own pid (and ipc) namespace. It forks
  the child; when the child ends it kills and reaps every other process of the job, then
  relays the child's status and exits.
* child: drops capabilities, sets rlimits, installs the audit hook that holds the pass token,
  then runs the program and the tests in-process. See ``sandbox.py`` for the threat model.

What goes over the control socket, the job pipe and the report channel is defined once, in
``sandbox_protocol.py``, shared with the parent. Its source is this script's first argument
(``_sandbox_runner.py PROTOCOL_SOURCE CTRL_FD CONFIG_JSON``), executed into ``proto`` before
anything else: inside bubblewrap this file comes in by ``-c`` and nothing beside it is visible.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import dis
import errno
import fcntl
import gc
import io
import json
import math
import mmap
import os
import resource
import select
import shutil
import signal
import socket
import sys
import tempfile
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO


def _load_protocol(source: str) -> types.ModuleType:
    """``sandbox_protocol`` from the source the parent passed (see the module docstring)."""
    module = types.ModuleType("sandbox_protocol")
    exec(compile(source, "sandbox_protocol.py", "exec", dont_inherit=True), module.__dict__)
    return module


if TYPE_CHECKING:  # what the checker reads; at run time, the very same source from the parent
    from harness.tasks.grading import sandbox_protocol as proto
else:
    proto = _load_protocol(sys.argv[1])

# Modules imported once in the zygote so that jobs do not pay for them (forks share them).
PRELOAD = (
    "array", "bisect", "cmath", "collections", "copy", "dataclasses", "datetime", "decimal",
    "enum", "fractions", "functools", "hashlib", "heapq", "itertools", "json", "math",
    "operator", "random", "re", "statistics", "string", "typing",
)  # fmt: skip
# Modules put back as they were before the tests run, and of which the tests import private
# copies, so that a program cannot make the tests' own helpers lie (``math.isclose = ...``).
RESTORE = (
    "math", "cmath", "operator", "random", "string", "copy", "re", "itertools", "functools",
    "collections", "heapq",
)  # fmt: skip

_LIBC = ctypes.CDLL(None, use_errno=True)

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MNT_DETACH = 2
# pivot_root has no libc wrapper everywhere; its number by architecture (others: chroot).
SYS_PIVOT_ROOT = {
    "x86_64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41, "loongarch64": 41,
    "ppc64le": 203, "ppc64": 203, "s390x": 217, "i686": 217, "i386": 217, "armv7l": 218,
}  # fmt: skip
SYS_MOUNT_SETATTR = 442  # same number on every architecture (new syscall table)


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _check(ret: int, what: str) -> int:
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _prctl(option: int, arg: int = 0) -> int:
    return _check(
        _LIBC.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0),
                    ctypes.c_ulong(0), ctypes.c_ulong(0)),
        f"prctl({option})",
    )  # fmt: skip


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _LIBC.mount(
            None if source is None else source.encode(),
            target.encode(),
            None if fstype is None else fstype.encode(),
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _mount_setattr(path: str, flags: int, attr_set: int, attr_clr: int) -> None:
    attr = _MountAttr(attr_set, attr_clr, 0, 0)
    _check(
        _LIBC.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(AT_FDCWD),
                      path.encode(), ctypes.c_uint(flags), ctypes.byref(attr),
                      ctypes.c_size_t(ctypes.sizeof(attr))),
        f"mount_setattr {path}",
    )  # fmt: skip


def _die_with_parent() -> None:
    """SIGKILL this process when its parent dies; exit now if the parent is already gone."""
    parent = os.getppid()
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(70)


def _write_line(fd: int, tag: bytes, text: str = "") -> None:
    with contextlib.suppress(OSError):
        os.write(fd, proto.report_line(tag, text))


# ----------------------------------------------------------------------------------------------
# zygote


def serve(ctrl_fd: int, config: dict) -> None:
    """Start the worker: enter its namespaces and its minimal root (if asked), then fork one job
    per request.

    No parent-death signal here: it would fire when the parent *thread* that started us ends.
    The control socket is enough: it reads EOF as soon as the parent process is gone.
    """
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    ctrl = socket.socket(fileno=ctrl_fd)
    info = {proto.INFO_ISOLATION: config["outer"] or "rlimits", proto.INFO_NET: config["outer_net"]}
    pidns_fd = -1
    if config["namespaces"]:
        try:
            net = _enter_namespaces(config)
            # We are now pid 1 of a pid namespace owned by our user namespace, which is what
            # lets us give every job a pid namespace of its own and come back (setns) after.
            pidns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            nested = _forbid_nested_user_namespaces()
            how = _build_root(config["root"], config["tmpfs_mb"])
        except OSError as e:
            ctrl.sendall(proto.hello_failed(f"namespaces: {e}"))
            os._exit(0)
        label = "+".join(x for x in (config["outer"], "namespaces") if x)
        info = {
            proto.INFO_ISOLATION: label,
            proto.INFO_NET: net or config["outer_net"],
            "root": how,
            "nested_userns": nested,
        }
    else:
        with contextlib.suppress(OSError):
            _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of a job come to us, to be killed
    info["bounding_set"] = _drop_bounding_set()  # inherited by every job: done once, here
    config["bounding_dropped"] = info["bounding_set"]
    for name in PRELOAD:
        with contextlib.suppress(ImportError):  # a missing module only costs time later
            __import__(name)
    gc.freeze()  # the preloaded heap stays shared with the forks instead of being copied
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    zygote = _Zygote(ctrl, config, pidns_fd, (wake_r, wake_w))
    ctrl.sendall(proto.hello(info))
    zygote.loop()


class _Zygote:
    """Job bookkeeping of the serving process (single-threaded, never runs untrusted code).

    With namespaces a job is over when its pid 1 relays the exit status of the job's main
    process, which it does only after killing and reaping every other process of the job; the
    zygote reports the job then and starts the next one at once, and reaps that pid 1 (whose
    exit frees the job's namespaces, which can take a while on some kernels) in passing.
    """

    def __init__(self, ctrl: socket.socket, config: dict, pidns_fd: int, wake: tuple) -> None:
        self.ctrl, self.config, self.pidns_fd, self.wake = ctrl, config, pidns_fd, wake
        self.private_tmp = bool(config["namespaces"] or config["outer"])
        self.jobs: dict[int, tuple[str, str, int]] = {}  # pid -> (job id, workdir, relay fd)
        self.by_id: dict[str, int] = {}
        self.relays: dict[int, int] = {}  # relay fd -> pid, while the relay is open
        self.exiting: set[int] = set()  # pid 1s of finished jobs, not reaped yet

    def loop(self) -> None:
        wake_r = self.wake[0]
        while True:
            try:
                ready, _, _ = select.select([self.ctrl, wake_r, *self.relays], [], [])
            except InterruptedError:
                continue
            if wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
                self.reap()
            for fd in ready:
                if fd in self.relays:  # (not if reap() just finished that job)
                    self.on_relay(fd)
            if self.ctrl in ready:
                try:
                    msg, fds, _, _ = socket.recv_fds(self.ctrl, proto.CTRL_MAX, 8)
                except InterruptedError:
                    continue
                if not msg:
                    self.shutdown()
                req = proto.decode(msg)
                if req.op == proto.RUN and len(fds) == proto.RUN_FDS:
                    self.spawn(req.id, fds)
                else:
                    for fd in fds:
                        os.close(fd)
                    pid = self.by_id.get(req.id)
                    if req.op == proto.KILL and pid is not None:
                        _kill_group(pid)

    def shutdown(self) -> None:
        """The parent is done with us: kill what runs, clean up, and leave."""
        for pid in list(self.jobs):
            _kill_group(pid)
        for pid in [*self.jobs, *self.exiting]:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        for _, workdir, relay_r in self.jobs.values():
            if relay_r >= 0:
                os.close(relay_r)
            self._cleanup(workdir, last=False)
        if not self.config["namespaces"]:
            _sweep_orphans(keep=set())
        os._exit(0)

    def spawn(self, job_id: str, fds: list[int]) -> None:
        ns = self.config["namespaces"]
        if self.private_tmp:  # our own /tmp, empty: no need for mkdtemp's retries
            workdir = f"/tmp/harness-sbx-{os.urandom(6).hex()}"
            os.mkdir(workdir, 0o700)
        else:
            workdir = tempfile.mkdtemp(prefix="harness-sbx-")
        relay_r = relay_w = -1
        try:
            if ns:
                # Fresh pid and ipc namespaces for this job only: its first child is their init.
                _check(_LIBC.unshare(ctypes.c_int(CLONE_NEWPID | CLONE_NEWIPC)), "unshare")
                relay_r, relay_w = os.pipe2(os.O_CLOEXEC)
            pid = os.fork()
        except OSError as e:
            _write_line(fds[3], proto.SETUP_ERROR, f"cannot start the job: {e}")
            for fd in fds:
                os.close(fd)
            for fd in (relay_r, relay_w):
                if fd >= 0:
                    os.close(fd)
            if ns:
                with contextlib.suppress(OSError):
                    _LIBC.setns(ctypes.c_int(self.pidns_fd), ctypes.c_int(CLONE_NEWPID))
            self.ctrl.sendall(proto.exited(job_id, 0))
            self._cleanup(workdir)
            return
        if pid == 0:
            exit_ = os._exit
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                for fd in (*self.wake, self.pidns_fd, relay_r, *self.relays):
                    if fd >= 0:
                        os.close(fd)
                self.ctrl.close()
                if ns:
                    _pid1(fds, relay_w, self.config, workdir)
                else:
                    _child_entry(fds, self.config, workdir)
            finally:
                exit_(71)
        if ns:
            _check(_LIBC.setns(ctypes.c_int(self.pidns_fd), ctypes.c_int(CLONE_NEWPID)), "setns")
            os.close(relay_w)
            self.relays[relay_r] = pid
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # the child does it too: whoever runs first
        for fd in fds:
            os.close(fd)
        self.jobs[pid] = (job_id, workdir, relay_r)
        self.by_id[job_id] = pid
        self.ctrl.sendall(proto.started(job_id, pid, workdir))

    def on_relay(self, fd: int) -> None:
        """The job's pid 1 relayed its main process's status (the job is over), or died
        without doing so (killed): then its reaping decides."""
        pid = self.relays.pop(fd)
        try:
            data = os.read(fd, 64)
        except OSError:
            data = b""
        os.close(fd)
        job_id, workdir, _ = self.jobs[pid]
        self.jobs[pid] = (job_id, workdir, -1)
        if data:
            self._finish(pid, int(data), reaped=False)

    def reap(self) -> None:
        while True:
            try:
                # Look before reaping: while a job's process is a zombie its pid (and so its
                # process group id) cannot be reused, so killing the group cannot hit a
                # stranger.
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            pid = info.si_pid
            job = self.jobs.get(pid)
            if job is not None and not self.config["namespaces"]:
                _kill_group(pid)  # members of the job's process group still alive
            _, status = os.waitpid(pid, 0)
            self.exiting.discard(pid)
            if job is None:
                continue  # a finished job's pid 1, or an orphan of some job, now gone
            relay_r = job[2]
            if relay_r >= 0:
                self.relays.pop(relay_r, None)
                relayed = os.read(relay_r, 64)  # its pid 1 is gone: data or EOF, no wait
                os.close(relay_r)
                if relayed:
                    status = int(relayed)
                self.jobs[pid] = (job[0], job[1], -1)
            if not self.config["namespaces"]:
                _sweep_orphans(keep=set(self.jobs) - {pid})
            self._finish(pid, status, reaped=True)

    def _finish(self, pid: int, status: int, *, reaped: bool) -> None:
        """Report the job's end, then clean up after it (every process of it is gone)."""
        job_id, workdir, relay_r = self.jobs.pop(pid)
        if relay_r >= 0:
            self.relays.pop(relay_r, None)
            os.close(relay_r)
        self.by_id.pop(job_id, None)
        if not reaped:
            self.exiting.add(pid)
        # Report first: removing the directory can be slow on some disks, and the parent
        # waits for us to finish it (close()) before it considers the worker gone.
        self.ctrl.sendall(proto.exited(job_id, status))
        self._cleanup(workdir)

    def _cleanup(self, workdir: str, last: bool = True) -> None:
        if not (last and self.private_tmp and not self.jobs):
            shutil.rmtree(workdir, onerror=_force_remove)
        else:
            # Our /tmp and /dev/shm are private to this worker: leave nothing for the next job
            # (the job's directory included).
            for top in ("/tmp", "/dev/shm"):
                try:
                    entries = os.listdir(top)
                except OSError:
                    continue
                for name in entries:
                    path = os.path.join(top, name)
                    if os.path.isdir(path) and not os.path.islink(path):
                        shutil.rmtree(path, onerror=_force_remove)
                    else:
                        with contextlib.suppress(OSError):
                            os.unlink(path)


def _kill_group(pid: int) -> None:
    """SIGKILL a process and its process group. Only for pids not reaped yet (never reused)."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(OSError):
            kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(x) for x in f.read().split())
    except OSError:
        pass
    return kids


def _sweep_orphans(keep: set[int]) -> None:
    """Kill every child of ours that is not a live job: processes that escaped their job.

    Only needed without pid namespaces; we are a child subreaper, so orphans come to us.
    """
    me = os.getpid()
    for _ in range(1000):
        kids = [k for k in _children(me) if k not in keep]
        if not kids:
            return
        for k in kids:
            _kill_group(k)
        for k in kids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(k, 0)


def _force_remove(func: Callable[[str], Any], path: str, _exc: object) -> None:
    """rmtree helper: a job may leave directories without write or search permission."""
    with contextlib.suppress(OSError):
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
        func(path)


# ----------------------------------------------------------------------------------------------
# the worker's namespaces and its minimal root


def _enter_namespaces(config: dict) -> bool:
    """Give this worker new user, mount, pid, network, ipc and uts namespaces; continue as
    pid 1 of the new pid namespace, with mounts no longer shared with the host.

    Returns whether the network namespace was obtained. Raises OSError if the others were not.
    """
    uid, gid = os.getuid(), os.getgid()
    base = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    net = True
    if _LIBC.unshare(ctypes.c_int(base | CLONE_NEWNET)) != 0:
        net = False
        _check(_LIBC.unshare(ctypes.c_int(base)), "unshare")
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")
    pid = os.fork()
    if pid != 0:
        # The process the parent started stays outside, only to mirror the worker's end.
        os.closerange(3, max(os.sysconf("SC_OPEN_MAX"), 1024))
        _, status = os.waitpid(pid, 0)
        _mirror(status)
    _die_with_parent()
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _sethostname("sandbox")
    return net


def _forbid_nested_user_namespaces() -> bool:
    """No user namespace can be created below ours: a job can never hold a capability, not even
    in a namespace of its own. (Per user namespace since Linux 4.9; the host's limit is not
    touched.) Returns whether that holds."""
    try:
        with open("/proc/sys/user/max_user_namespaces", "w") as f:
            f.write("0")
    except OSError:
        return False
    return True


def _build_root(plan: dict, tmpfs_mb: int) -> str:
    """Make a new root on a tmpfs holding only what jobs need, and move this mount namespace
    into it for good (pivot_root, then the old root detached).

    ``plan`` (from ``sandbox.py``) lists directories and files bound read-only at their own
    paths (the interpreter, its standard library, the site-packages, /usr), symlinks to
    recreate, sensitive directories inside those to cover with an empty tmpfs, and the device
    nodes of /dev. Added here: /etc/passwd and /etc/group naming our uid only, a size-capped /tmp
    and a small /dev/shm. Nothing else exists: no /proc, /sys, /home, /root, /var, /opt, ...
    Returns how the root was entered: "pivot_root", or "chroot" where pivot_root is refused.
    """
    new = "/tmp"  # the staging mount point; our mounts are private, the host's /tmp is untouched
    _mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=8m,mode=0755")
    entries = [(p, "dir", "") for p in plan["dirs"]] + [(p, "file", "") for p in plan["files"]]
    entries += [(p, "dev", "") for p in plan["devices"]]
    entries += [(p, "link", t) for p, t in plan["links"]]
    for path, kind, target in sorted(entries):
        at = new + path
        os.makedirs(os.path.dirname(at), exist_ok=True)
        if kind == "link":
            os.symlink(target, at)
            continue
        if kind == "dir":
            os.mkdir(at)
        else:
            os.close(os.open(at, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
        _mount(path, at, None, MS_BIND | MS_REC)
        # Read-only at once: nothing created below this point can ever land on the host.
        nodev = 0 if kind == "dev" else MOUNT_ATTR_NODEV
        _mount_setattr(at, AT_RECURSIVE, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | nodev, 0)
    for path in plan["masks"]:
        if os.path.isdir(new + path):
            _mount("tmpfs", new + path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k")
    uid, gid = os.getuid(), os.getgid()
    os.makedirs(new + "/etc", exist_ok=True)
    for name, line in (
        ("passwd", f"sandbox:x:{uid}:{gid}:sandbox:/tmp:/bin/sh\n"),
        ("group", f"sandbox:x:{gid}:\n"),
    ):
        with open(f"{new}/etc/{name}", "w") as f:
            f.write(line)
    os.makedirs(new + "/dev", exist_ok=True)
    os.mkdir(new + "/tmp", 0o1777)
    _mount("tmpfs", new + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmpfs_mb}m,mode=1777")
    os.mkdir(new + "/dev/shm", 0o1777)
    _mount("tmpfs", new + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=1777")
    os.chdir(new)
    how = "pivot_root"
    if _pivot_root(".", "."):
        # The old root now lies on top of the new one at "/": detach it, with all below it.
        _check(_LIBC.umount2(b".", ctypes.c_int(MNT_DETACH)), "umount the old root")
    else:
        # pivot_root is refused on an initramfs root (or unknown here): chroot instead. Jobs
        # hold no capability and cannot get one (no nested user namespaces), so they cannot
        # leave a chroot either.
        os.chroot(".")
        how = "chroot"
    os.chdir("/")
    _mount_setattr("/", AT_RECURSIVE, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0)
    for writable in ("/tmp", "/dev/shm"):
        _mount_setattr(writable, 0, 0, MOUNT_ATTR_RDONLY)
    return how


def _pivot_root(new_root: str, put_old: str) -> bool:
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        return False
    ret = _LIBC.syscall(ctypes.c_long(number), new_root.encode(), put_old.encode())
    if ret != 0 and ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.EPERM):
        return False
    _check(ret, "pivot_root")
    return True


def _drop_bounding_set() -> bool:
    """Empty the capability bounding set (no capability can be gained through exec again).
    Done once in the zygote: every job inherits it. False where it is not ours to drop."""
    for cap in range(64):
        if _LIBC.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) != 0:
            return ctypes.get_errno() == errno.EINVAL  # EINVAL: past the kernel's last one
    return True


def _sethostname(name: str) -> None:
    _LIBC.sethostname(name.encode(), ctypes.c_size_t(len(name)))


def _mirror(status: int) -> None:
    """Exit the way a child did (same code, or the same signal)."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 74)


# ----------------------------------------------------------------------------------------------
# per-job isolation


def _pid1(fds: list[int], relay_w: int, config: dict, workdir: str) -> None:
    """Init of the job's pid namespace: run the child; when it ends, kill and reap whatever
    else the job started, relay the child's status, and exit."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # init ignores default-action signals
    pid = os.fork()
    if pid == 0:
        exit_ = os._exit
        try:
            os.close(relay_w)
            _child_entry(fds, config, workdir)
        finally:
            exit_(73)
    for fd in fds:
        os.close(fd)
    status = None
    while status is None:
        try:
            reaped, st = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(75)
        if reaped == pid:
            status = st
    # The job ends with its main process. kill(-1) from init reaches every other process of
    # this namespace; when we have no child left, none is (orphans are re-parented to us).
    while True:
        with contextlib.suppress(OSError):
            os.kill(-1, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    os.write(relay_w, str(status).encode())
    os._exit(0)  # (and the kernel would kill anything left in the namespace now)


def _child_entry(fds: list[int], config: dict, workdir: str) -> None:
    job_r, out_w, err_w, rep_w = fds
    os.dup2(err_w, 2)  # tracebacks of the set-up itself belong to the job's stderr
    if not config["namespaces"]:
        os.setpgid(0, 0)
        _die_with_parent()
    chunks = []
    while True:
        chunk = os.read(job_r, proto.JOB_READ_CHUNK)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(job_r)
    job = proto.read_job(b"".join(chunks))
    del chunks
    _child(job, (out_w, err_w, rep_w), config, workdir)


# ----------------------------------------------------------------------------------------------
# child


def _drop_privileges(bounding_dropped: bool) -> None:
    """No capabilities, no way to regain them, memory not readable by other processes."""
    if not bounding_dropped:  # (normally the zygote emptied the bounding set for all jobs)
        _drop_bounding_set()
    _LIBC.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0)
    header = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)()
    _LIBC.capset(ctypes.byref(header), data)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 0)


def _child(job: dict, fds: tuple[int, int, int], config: dict, workdir: str) -> None:
    out_w, err_w, rep_w = fds
    null = os.open("/dev/null", os.O_RDONLY)
    # Move every source above the targets first, so no dup2 overwrites a source still needed.
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64) for fd in (null, out_w, err_w, rep_w)]
    for src, dst in zip(high, (0, 1, 2, proto.REPORT_FD), strict=True):
        os.dup2(src, dst)
    os.closerange(proto.REPORT_FD + 1, max(os.sysconf("SC_OPEN_MAX"), 1024))
    os.chdir(workdir)
    os.environ["HOME"] = workdir
    os.environ["TMPDIR"] = workdir
    tempfile.tempdir = None
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _drop_privileges(bool(config.get("bounding_dropped")))
    limits = config["limits"]
    mib = 1024 * 1024
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    cpu_limit = int(cpu.ru_utime + cpu.ru_stime) + math.ceil(job[proto.JOB_TIMEOUT]) + 1
    settings = [
        (resource.RLIMIT_CPU, cpu_limit, cpu_limit + 1),
        (resource.RLIMIT_AS, limits["memory_mb"] * mib, limits["memory_mb"] * mib),
        (resource.RLIMIT_FSIZE, limits["max_file_mb"] * mib, limits["max_file_mb"] * mib),
        (resource.RLIMIT_NOFILE, limits["max_open_files"], limits["max_open_files"]),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    if config["namespaces"] and config["nproc"]:
        # Counted per user namespace on Linux >= 5.14, so this job's processes only.
        n = limits["max_processes"] + 16
        settings.append((resource.RLIMIT_NPROC, n, n))
    for which, soft, hard in settings:
        resource.setrlimit(which, (soft, hard))
    # (sys.__stdin__ & co. are final to a type checker; here they must name the job's streams)
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))  # type: ignore[misc]
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(  # type: ignore[misc]
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8",
        errors="backslashreplace",
    )  # fmt: skip
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(  # type: ignore[misc]
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8",
        errors="backslashreplace", line_buffering=True,
    )  # fmt: skip
    _arm(job, limits["max_processes"])
    _run_untrusted(job)


def _arm(job: dict, max_processes: int) -> None:
    """Move the pass token out of the job into the audit hook; nothing else keeps it."""
    _install_hook(job.pop(proto.JOB_TOKEN), max_processes)


def _install_hook(token: str, max_processes: int) -> None:
    """The only holder of the pass token. Writes ``P <token>`` exactly when the armed frame
    reaches the line after the tests, and reports tampering the moment it is attempted.

    It never raises and never calls code the program could have replaced, so neither its frame
    nor its closure is handed to untrusted code; every line it writes is made here, before.
    """
    write, getframe, exit_ = os.write, sys._getframe, os._exit
    frame_type, str_type, bytes_type = types.FrameType, str, bytes
    line = proto.report_line
    pass_line = line(proto.PASS, token)
    del token
    tamper_prefix, end, encoding = proto.TAMPER + proto.SEP, proto.END, proto.ENCODING
    open_prefix = tamper_prefix + b"open "
    processes_line = line(proto.LIMIT, "processes")
    frame_line = line(proto.TAMPER, "sys._getframe into the test harness")
    code_line = line(proto.TAMPER, "function.__code__ replaced")
    arm_line = line(proto.TAMPER, "harness.arm")
    tests_line = line(proto.TAMPER, "harness.tests")
    done_tamper_line = line(proto.TAMPER, "harness.done")
    fd, done_line = proto.REPORT_FD, _DONE_LINE
    runner_code, run_code = _RUNNER_CODE_IDS, _run_untrusted.__code__
    counter = mmap.mmap(-1, 8)  # shared with forked children: one process budget per job
    armed: list = [None, None]  # [frame running the tests, globals the tests run in]
    own: list = [False]  # the hook's own sys._getframe calls raise that event too

    def caller() -> types.FrameType:
        own[0] = True
        try:
            return getframe(2)
        finally:
            own[0] = False

    tamper = frozenset((
        "sys.settrace", "sys.setprofile", "sys._current_frames", "sys._current_exceptions",
        "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.addaudithook",
        "ctypes.call_function", "ctypes.cdata", "ctypes.cdata/buffer", "ctypes.dlsym",
        "ctypes.dlsym/handle", "ctypes.string_at", "ctypes.wstring_at",
    ))  # fmt: skip
    spawn = frozenset(("os.fork", "os.forkpty", "os.posix_spawn", "os.system", "subprocess.Popen"))
    watched = tamper | spawn | {"harness.arm", "harness.tests", "harness.done", "open",
                                "sys._getframe", "object.__setattr__"}  # fmt: skip

    def hook(event: str, args: tuple) -> None:
        if event not in watched:
            return
        try:
            if event in tamper:
                write(fd, tamper_prefix + event.encode() + end)
            elif event in spawn:
                n = int.from_bytes(counter[:8], "little") + 1
                counter[:8] = n.to_bytes(8, "little")
                if n > max_processes:
                    write(fd, processes_line)
                    exit_(77)
            elif event == "open":
                path = args[0] if args else None
                if type(path) is bytes_type:
                    path = path.decode("utf-8", "replace")
                if type(path) is str_type and path.rstrip("/").rpartition("/")[2] in (
                    "mem",
                    "kmem",
                    "kcore",
                ):
                    write(fd, open_prefix + path.encode(encoding, "replace")[:200] + end)
            elif event == "sys._getframe":
                frame = args[0] if args else None
                if (
                    type(frame) is frame_type
                    and armed[0] is not None
                    and not own[0]
                    and (id(frame.f_code) in runner_code or frame.f_globals is armed[1])
                ):
                    write(fd, frame_line)
            elif event == "object.__setattr__":
                if len(args) > 1 and type(args[1]) is str_type and args[1] == "__code__":
                    write(fd, code_line)
            elif event == "harness.arm":
                frame = caller()
                if armed[0] is None and frame.f_code is run_code:
                    armed[0] = frame
                else:
                    write(fd, arm_line)
            elif event == "harness.tests":
                if armed[1] is None and caller() is armed[0] and args and type(args[0]) is dict:
                    armed[1] = args[0]
                else:
                    write(fd, tests_line)
            elif event == "harness.done":
                frame = caller()
                if frame is armed[0] and frame.f_lineno == done_line:
                    write(fd, pass_line)
                else:
                    write(fd, done_tamper_line)
        except BaseException:  # noqa: BLE001 - the hook must never raise into untrusted code
            return

    sys.addaudithook(hook)


def _run_untrusted(job: dict) -> None:
    """Run the program, then the tests, then prove completion. Never returns.

    Everything used after the program starts is bound to a local first: the program can reach
    this module's globals (through frames), but it cannot rebind a running frame's locals.
    """
    audit, exit_, exec_, dict_, write = sys.audit, os._exit, exec, dict, os.write
    out, err = sys.stdout, sys.stderr
    program, tests = job[proto.JOB_PROGRAM], job[proto.JOB_TESTS]
    fd, ready_line, in_tests = proto.REPORT_FD, proto.report_line(proto.READY), proto.PHASE_TESTS
    try:
        test_code = compile(tests, "<tests>", "exec", dont_inherit=True, optimize=0)
    except BaseException as e:  # noqa: BLE001
        _report(proto.PHASE_SETUP, f"the test code does not compile: {e!r}")
        exit_(2)
    pristine = types.MappingProxyType(dict_(builtins.__dict__))
    modules = sys.modules
    saved_modules = tuple((name, modules[name]) for name in RESTORE if name in modules)
    saved_dicts = ((builtins.__dict__, pristine),) + tuple(
        (mod.__dict__, types.MappingProxyType(dict_(mod.__dict__))) for _, mod in saved_modules
    )
    # The tests import private copies of these modules: a thread or finalizer the program left
    # running can re-patch the real ones at any time, but it cannot reach the copies.
    private = {}
    for name, mod in saved_modules:
        private[name] = types.ModuleType(name)
        private[name].__dict__.update(mod.__dict__)
    test_builtins = dict_(pristine)
    test_builtins["__import__"] = _private_import(private, pristine["__import__"])
    graveyard: list = []  # what the restore replaces stays alive: no finalizer runs mid-restore

    solution = types.ModuleType("__solution__")
    g = solution.__dict__
    g["__builtins__"] = builtins  # the program sees ordinary builtins, its own patches included
    modules["__solution__"] = solution
    phase = proto.PHASE_PROGRAM
    audit("harness.arm")
    write(fd, ready_line)
    try:
        exec_(compile(program, "<solution>", "exec", dont_inherit=True, optimize=0), g)
        phase = in_tests
        # Undo what the program did to builtins and to the modules the tests use. Inline, not a
        # helper: a helper (or its closure) is an object the program could get at and swap.
        for name, mod in saved_modules:
            graveyard.append(modules.get(name))
            modules[name] = mod
        for live, saved in saved_dicts:
            for key, value in saved.items():
                if live.get(key, live) is not value:
                    graveyard.append(live.get(key))
                    live[key] = value
        t = dict_(g)
        t["__builtins__"] = test_builtins  # the tests' own: the program's functions cannot reach it
        audit("harness.tests", t)
        exec_(test_code, t)
    except BaseException as e:  # noqa: BLE001 - every way out of the program is a result
        try:
            _restore(saved_modules, saved_dicts)  # our own reporting needs sane builtins
            _report(phase, _describe(e, phase, program, tests))
        finally:
            _flush(out, err)
            exit_(1)
    audit("harness.done")
    # Past this point nothing can change the verdict; the parent already has the pass line.
    _flush(out, err)
    exit_(0)


def _private_import(private: dict, real_import: Callable[..., Any]) -> Callable[..., Any]:
    """``__import__`` for the tests: the snapshot copies for the usual modules, else the real."""

    def import_(
        name: str,
        globals: dict | None = None,  # noqa: A002 - the signature of __import__
        locals: dict | None = None,  # noqa: A002
        fromlist: tuple = (),
        level: int = 0,
    ) -> Any:
        if level == 0 and name in private:
            return private[name]
        return real_import(name, globals, locals, fromlist, level)

    return import_


def _restore(saved_modules: tuple, saved_dicts: tuple) -> None:
    for name, mod in saved_modules:
        sys.modules[name] = mod
    for live, saved in saved_dicts:
        live.update(saved)


def _flush(*streams: TextIO) -> None:
    for stream in streams:
        with contextlib.suppress(BaseException):
            stream.flush()


def _report(phase: str, detail: str) -> None:
    """An ``F`` line: the program or the tests raised (or the tests do not compile)."""
    _write_line(proto.REPORT_FD, proto.FAILED, proto.failure(phase, detail))


def _describe(exc: BaseException, phase: str, program: str, tests: str) -> str:
    """One line: the exception and where it happened in the program or the tests."""
    try:
        name = type(exc).__name__
        try:
            msg = str(exc)
        except BaseException:  # noqa: BLE001
            msg = "<unprintable>"
        if isinstance(exc, SystemExit):
            what = (
                "the program exited"
                if phase == proto.PHASE_PROGRAM
                else "the code exited during the tests"
            )
            return f"SystemExit({exc.code!r}): {what} before the tests completed"
        where = ""
        sources = {"<solution>": program, "<tests>": tests}
        tb = exc.__traceback__
        while tb is not None:
            filename = tb.tb_frame.f_code.co_filename
            if filename in sources:
                lines = sources[filename].splitlines()
                lineno = tb.tb_lineno
                text = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
                label = "program" if filename == "<solution>" else "tests"
                where = f" at {label} line {lineno}: {text[:200]}"
            tb = tb.tb_next
        if isinstance(exc, SyntaxError) and exc.filename == "<solution>":
            where = f" at program line {exc.lineno}: {(exc.text or '').strip()[:200]}"
        return f"{name}: {msg[:500]}{where}" if msg else f"{name}{where}"
    except BaseException as e:  # noqa: BLE001
        return f"<failed to describe the exception: {e!r}>"


def _runner_code_ids(module_code: types.CodeType) -> frozenset[int]:
    """ids of every code object of this module (they live as long as the module does): frames
    running them are harness frames. Identity, not equality: comparing code objects by value
    would hash constants the program chose."""
    codes: dict[int, types.CodeType] = {}
    pending = [module_code]
    functions = [*globals().values(), *vars(proto).values()]  # the protocol's helpers too
    pending += [f.__code__ for f in functions if isinstance(f, types.FunctionType)]
    while pending:
        code = pending.pop()
        if id(code) in codes:
            continue
        codes[id(code)] = code
        pending.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    _KEEP_ALIVE.extend(codes.values())
    return frozenset(codes)


def _done_line() -> int:
    """The line of ``audit("harness.done")`` in _run_untrusted (the only line that may pass)."""
    for ins in dis.get_instructions(_run_untrusted):
        line = ins.positions.lineno if ins.positions else ins.starts_line
        if ins.argval == "harness.done" and line is not None:
            return line
    raise RuntimeError("harness.done call not found")


_KEEP_ALIVE: list[types.CodeType] = []
_RUNNER_CODE_IDS = _runner_code_ids(sys._getframe().f_code)
_DONE_LINE = _done_line()


if __name__ == "__main__":
    serve(int(sys.argv[2]), json.loads(sys.argv[3]))
