"""The sandbox's two sides speak one protocol: ``sandbox.py`` (the parent) and
``_sandbox_runner.py`` (the zygote and its jobs) both use ``sandbox_protocol`` for every tag,
field and size, spell none of them themselves, and handle every message the other side sends."""

from __future__ import annotations

import ast
import re
import types
from pathlib import Path

import pytest

from harness.tasks.grading import sandbox
from harness.tasks.grading import sandbox_protocol as proto

GRADING = Path(sandbox.__file__).parent
PARENT = GRADING / "sandbox.py"
RUNNER = GRADING / "_sandbox_runner.py"

# Which protocol helper builds which control message.
BUILDERS = {
    "hello": proto.HELLO,
    "hello_failed": proto.HELLO,
    "run_request": proto.RUN,
    "kill_request": proto.KILL,
    "started": proto.STARTED,
    "exited": proto.EXIT,
}
# Field names of control messages and ``F`` lines: only the protocol module writes them.
FIELDS = {"op", "id", "pid", "workdir", "status", "info", "error", "phase", "detail", "token"}


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def protocol_names(path: Path) -> set[str]:
    """The ``proto.<name>`` attributes a side uses (both import the module as ``proto``)."""
    return {
        node.attr
        for node in ast.walk(tree(path))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "proto"
    }


def tag_names() -> set[str]:
    return {n for n, v in vars(proto).items() if n.isupper() and v in proto.REPORT_TAGS}


def op_names() -> dict[str, str]:
    return {v: n for n, v in vars(proto).items() if n.isupper() and v in proto.OPS}


@pytest.mark.parametrize("path", [PARENT, RUNNER], ids=["parent", "runner"])
def test_every_protocol_name_a_side_uses_exists(path: Path) -> None:
    used = protocol_names(path)
    assert used, "this side no longer uses the protocol module"
    assert used <= set(dir(proto)), used - set(dir(proto))


def test_both_sides_know_every_report_tag() -> None:
    tags = tag_names()
    assert len(tags) == len(proto.REPORT_TAGS) == len(set(proto.REPORT_TAGS))
    # The runner writes each tag, the parent reads each one.
    assert tags <= protocol_names(RUNNER), tags - protocol_names(RUNNER)
    assert tags <= protocol_names(PARENT), tags - protocol_names(PARENT)


def test_every_control_message_sent_is_handled_by_the_other_side() -> None:
    parent, runner = protocol_names(PARENT), protocol_names(RUNNER)
    ops = op_names()
    assert set(BUILDERS.values()) == set(proto.OPS)
    for builder, op in BUILDERS.items():
        sides = (("parent", parent), ("runner", runner))
        senders = [side for side, used in sides if builder in used]
        assert len(senders) == 1, (builder, senders)
        receiver = runner if senders[0] == "parent" else parent
        assert "decode" in receiver
        if op != proto.HELLO:  # (hello: the parent reads its info or error, nothing to branch on)
            assert ops[op] in receiver, (builder, ops[op])


@pytest.mark.parametrize("path", [PARENT, RUNNER], ids=["parent", "runner"])
def test_no_side_spells_the_protocol_itself(path: Path) -> None:
    line_like = re.compile(rb"[A-Z]( .*)?\n?", re.DOTALL)
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
            assert not line_like.fullmatch(node.value), (node.lineno, node.value)
        keys: list[ast.expr | None] = []
        if isinstance(node, ast.Dict):
            keys = list(node.keys)
        elif isinstance(node, ast.Subscript):
            keys = [node.slice]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("get", "pop")
            and node.args
        ):
            keys = [node.args[0]]
        for key in keys:
            if isinstance(key, ast.Constant):
                assert key.value not in FIELDS, (key.lineno, key.value)


def test_the_protocol_runs_where_the_runner_runs_it() -> None:
    """Standard library only, and no file of its own needed: the runner executes its source."""
    source = proto.source()
    assert source == Path(proto.__file__).read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            assert node.module in ("__future__", "json", "typing"), node.module
        elif isinstance(node, ast.Import):
            assert all(a.name in ("json",) for a in node.names), [a.name for a in node.names]
    module = types.ModuleType("sandbox_protocol")
    exec(compile(source, "sandbox_protocol.py", "exec", dont_inherit=True), module.__dict__)
    assert module.REPORT_TAGS == proto.REPORT_TAGS
    assert module.decode(proto.exited("7", 9)) == proto.Message(proto.EXIT, "7", status=9)


def test_control_messages_round_trip() -> None:
    info = {proto.INFO_ISOLATION: "namespaces", proto.INFO_NET: True}
    assert proto.decode(proto.hello(info)) == proto.Message(proto.HELLO, info=info)
    assert proto.decode(proto.hello_failed("no")).error == "no"
    assert proto.decode(proto.hello(info)).error is None
    assert proto.decode(proto.run_request("3")) == proto.Message(proto.RUN, "3")
    assert proto.decode(proto.kill_request("3")) == proto.Message(proto.KILL, "3")
    assert proto.decode(proto.started("3", 41, "/tmp/x")) == proto.Message(
        proto.STARTED, "3", pid=41, workdir="/tmp/x"
    )
    assert proto.decode(proto.exited("3", 256)) == proto.Message(proto.EXIT, "3", status=256)
    for built in (proto.hello(info), proto.started("3", 1, "/t"), proto.exited("3", 0)):
        assert len(built) < proto.CTRL_MAX
    with pytest.raises(KeyError):
        proto.decode(b'{"op": "exit", "id": "3"}')  # an exit without a status


def test_job_payload_and_report_lines_round_trip() -> None:
    job = proto.read_job(proto.job_payload("x = 1\n", "assert x\n", "t0k", 2.5))
    assert job.pop(proto.JOB_TOKEN) == "t0k"
    assert (job[proto.JOB_PROGRAM], job[proto.JOB_TESTS], job[proto.JOB_TIMEOUT]) == (
        "x = 1\n",
        "assert x\n",
        2.5,
    )
    assert proto.report_line(proto.READY) == b"R\n"
    assert proto.split_report(proto.report_line(proto.PASS, "abc")[:-1]) == (proto.PASS, b"abc")
    line = proto.report_line(proto.FAILED, proto.failure(proto.PHASE_TESTS, "boom \udcff"))
    tag, rest = proto.split_report(line.rstrip(proto.END))
    assert tag == proto.FAILED
    assert proto.parse_failure(rest.decode(proto.ENCODING)) == (proto.PHASE_TESTS, "boom \udcff")
    assert proto.parse_failure("not json") == ("", "not json")
    assert proto.parse_failure("[1]") == ("", "[1]")


def test_a_runner_started_from_its_source_alone_grades(monkeypatch: pytest.MonkeyPatch) -> None:
    """The launch bubblewrap gets (``python -c <runner source>``, no file of the checkout to
    import), with ``env`` standing in for bwrap, inside the worker's own namespaces."""
    if sandbox.probe_isolation("namespaces") is not None:
        pytest.skip("needs user namespaces")
    monkeypatch.setattr(sandbox, "_bwrap_command", lambda plan: ["env"])
    worker = sandbox._Worker(sandbox._BWRAP_NS, sandbox.SandboxConfig())
    try:
        cases = [
            ("x = 6 * 7\n", "assert x == 42\n", "passed"),
            ("x = 6 * 7\n", "assert x == 41\n", "failed"),
            ("import sys\nsys.settrace(None)\n", "pass\n", "failed"),
            ("import os\nos._exit(0)\n", "pass\n", "failed"),
        ]
        for program, tests, want in cases:
            res = worker.run(sandbox.Job("j", program, tests, 10.0))
            assert res.status == want, res
            assert res.isolation == "bwrap+namespaces"
        assert worker.proc is not None
        assert "-c" in list(worker.proc.args)  # type: ignore[arg-type]
    finally:
        worker.close()


def test_the_protocol_is_part_of_the_sandbox_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached result is reused only by the protocol that produced it."""
    assert Path(proto.__file__) == sandbox.PROTOCOL
    before = sandbox._code_version()
    changed = tmp_path / "sandbox_protocol.py"
    changed.write_text(proto.source() + "\n# changed\n", encoding="utf-8")
    monkeypatch.setattr(sandbox, "PROTOCOL", changed)
    assert sandbox._code_version() != before
