"""The wire protocol between ``sandbox.py`` (the parent) and ``_sandbox_runner.py`` (the zygote
and its jobs): every tag, field name, size and encoding the two sides exchange, defined once.

Why a module of its own, with the standard library only: the runner is not the ``harness``
package. It runs as a script (``python -I`` imports nothing beside it), or from ``-c`` inside
bubblewrap where no file of this checkout is visible, with an interpreter that may not have
``harness`` installed. So ``sandbox.py`` imports this module, and hands the runner this file's
source as its first argument (``source()``), which the runner executes into a module of its
own before anything else. Both sides therefore run the very same definitions.

Three channels:

Control socket (parent <-> zygote; ``SOCK_SEQPACKET``, one JSON object per datagram of at most
``CTRL_MAX`` bytes, its ``op`` saying what it is)::

    hello    zygote -> parent, once: {"info": {...}} (the isolation it got) or {"error": why}
    run      parent -> zygote, with RUN_FDS descriptors: {"id": job id}
    kill     parent -> zygote: {"id"}: SIGKILL the job's process group
    started  zygote -> parent: {"id", "pid", "workdir"}
    exit     zygote -> parent: {"id", "status"}: the wait status; every process of it is gone

Job pipe (parent -> child, the first descriptor of ``run``): one JSON object (``job_payload``),
read to EOF.

Report channel (child -> parent, fd ``REPORT_FD``), one line per message, ``TAG[ text]\\n`` in
UTF-8::

    S <text>      the job could not be started (zygote)
    R             the untrusted code starts now: the parent starts its clock
    F <json>      the program or the tests raised ({"phase", "detail"})
    T <event>     tampering with the harness was seen (audit hook)
    L <what>      a resource limit enforced by the hook was hit
    P <token>     the tests ran to completion (written only by the audit hook)

In the child, nothing that decides a pass may rely on this module once the untrusted program
runs: the program can reach it (through frames) and rebind its names. So the audit hook and
the runner bind what they write to locals beforehand; only a failure report (which can make
a result worse, never better) still calls a helper here.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

# ----------------------------------------------------------------------------------------------
# control socket

CTRL_MAX = 65536
"""Bytes: the largest control datagram either side sends or reads."""
RUN_FDS = 4
"""Descriptors sent with ``run``: job pipe (read end), stdout, stderr, report (write ends)."""

HELLO = "hello"
RUN = "run"
KILL = "kill"
STARTED = "started"
EXIT = "exit"
OPS = (HELLO, RUN, KILL, STARTED, EXIT)

INFO_ISOLATION = "isolation"
"""Key of the ``hello`` info: the isolation label the worker got (``bwrap+namespaces``, ...)."""
INFO_NET = "net"
"""Key of the ``hello`` info: whether the network is cut off (a network namespace)."""


class Message(NamedTuple):
    """A decoded control datagram; fields a message does not carry keep their defaults."""

    op: str
    id: str = ""
    pid: int = 0
    workdir: str = ""
    status: int = 0
    info: dict[str, Any] | None = None
    error: str | None = None


def _encode(op: str, **fields: Any) -> bytes:
    return json.dumps({"op": op, **fields}).encode()


def hello(info: dict[str, Any]) -> bytes:
    return _encode(HELLO, info=info)


def hello_failed(error: str) -> bytes:
    return _encode(HELLO, error=error)


def run_request(job_id: str) -> bytes:
    return _encode(RUN, id=job_id)


def kill_request(job_id: str) -> bytes:
    return _encode(KILL, id=job_id)


def started(job_id: str, pid: int, workdir: str) -> bytes:
    return _encode(STARTED, id=job_id, pid=pid, workdir=workdir)


def exited(job_id: str, status: int) -> bytes:
    return _encode(EXIT, id=job_id, status=status)


def decode(data: bytes) -> Message:
    """A control datagram as a ``Message``. An ``exit`` without a status is malformed (raises
    KeyError): reading a default there would invent a verdict."""
    msg = json.loads(data)
    op = msg["op"]
    return Message(
        op,
        str(msg.get("id", "")),
        int(msg.get("pid", 0)),
        msg.get("workdir") or "",
        int(msg["status"]) if op == EXIT else 0,
        msg.get("info"),
        None if msg.get("error") is None else str(msg["error"]),
    )


# ----------------------------------------------------------------------------------------------
# job pipe

JOB_PROGRAM = "program"
JOB_TESTS = "tests"
JOB_TOKEN = "token"
"""Popped by the child into the audit hook before anything else runs: nothing else keeps it."""
JOB_TIMEOUT = "timeout"
JOB_READ_CHUNK = 1 << 20
"""Bytes the child reads from the job pipe at a time."""


def job_payload(program: str, tests: str, token: str, timeout: float) -> bytes:
    return json.dumps(
        {JOB_PROGRAM: program, JOB_TESTS: tests, JOB_TOKEN: token, JOB_TIMEOUT: timeout}
    ).encode()


def read_job(data: bytes) -> dict[str, Any]:
    """The job as a dict (not a tuple: the token must be removable from it)."""
    job: dict[str, Any] = json.loads(data)
    return job


# ----------------------------------------------------------------------------------------------
# report channel

REPORT_FD = 3
"""The child's descriptor of the report channel (0, 1, 2 are stdin, stdout, stderr)."""
REPORT_MAX = 1 << 20
"""Bytes of report lines the parent accepts from one job; more is a flood (tampering)."""
ENCODING = "utf-8"
SEP = b" "
END = b"\n"

SETUP_ERROR = b"S"
READY = b"R"
FAILED = b"F"
TAMPER = b"T"
LIMIT = b"L"
PASS = b"P"
REPORT_TAGS = (SETUP_ERROR, READY, FAILED, TAMPER, LIMIT, PASS)

PHASE_SETUP = "setup"
"""A failure of the harness's own set-up (the tests do not compile): a sandbox error."""
PHASE_PROGRAM = "program"
PHASE_TESTS = "tests"


def report_line(tag: bytes, text: str = "") -> bytes:
    """One report line (text is optional; undecodable characters are replaced)."""
    return tag + (SEP + text.encode(ENCODING, "replace") if text else b"") + END


def split_report(line: bytes) -> tuple[bytes, bytes]:
    """(tag, rest) of a report line without its END."""
    tag, _, rest = line.partition(SEP)
    return tag, rest


def failure(phase: str, detail: str) -> str:
    """The text of an ``F`` line."""
    return json.dumps({"phase": phase, "detail": detail})


def parse_failure(text: str) -> tuple[str, str]:
    """(phase, detail) of an ``F`` line's text; text that is not ours is all detail."""
    try:
        payload = json.loads(text)
        return str(payload.get("phase", "")), str(payload.get("detail", ""))
    except (ValueError, AttributeError):
        return "", text


# ----------------------------------------------------------------------------------------------


def source() -> str:
    """This module's source, as the runner gets it (its first command-line argument). (No
    pathlib here: the runner executes this module too, and pays for every import.)"""
    with open(__file__, encoding="utf-8") as f:
        return f.read()
