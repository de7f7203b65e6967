"""The gate's result three ways: a terminal table, JUnit XML for CI, markdown for a PR comment.

Task names and messages come from user files and run folders, so every cell is escaped for
its medium (rich markup, XML through ElementTree, markdown's pipes and HTML).
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from harness.errors import HarnessError
from harness.gate.checks import Check, GateResult

COLUMNS = ("task", "check", "value", "baseline", "limit", "delta", "CI", "p", "verdict")
_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def _value(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    return f"{x:.1f}pt" if unit == "points" else f"{x:.3f}"


def _delta(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    x = round(x, 1 if unit == "points" else 3) + 0.0  # no "-0.0"
    return f"{x:+.1f}pt" if unit == "points" else f"{x:+.3f}"


def _header(col: str, level: str) -> str:
    return f"{level} CI" if col == "CI" else ("p (Holm)" if col == "p" else col)


def cells(c: Check) -> list[str]:
    """One check's row, unescaped (COLUMNS order). Accuracy values are fractions; the drop's
    delta and interval are candidate minus baseline, in points."""
    value_unit = "fraction" if c.check == "accuracy_drop" else c.unit
    ci = f"{_delta(c.ci[0], 'points')}..{_delta(c.ci[1], 'points')}" if c.ci is not None else "-"
    return [
        c.task,
        c.check,
        _value(c.value, value_unit),
        _value(c.baseline, value_unit),
        c.limit_text or "-",
        _delta(c.delta, c.unit),
        ci,
        "-" if c.p is None else f"{c.p:.3g}",
        c.verdict.upper(),
    ]


def headline(result: GateResult) -> str:
    counts = result.counts()
    state = "FAIL" if result.failed else "PASS"
    shown = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    return (
        f"gate {state}: {result.candidate.run_id} against {result.baseline.run_id} "
        f"({shown or 'no checks'}; alpha {result.alpha:g})"
    )


def table(result: GateResult) -> Table:
    level = f"{1 - result.alpha:.0%}"
    t = Table(title=escape(headline(result)), title_justify="left")
    for col in COLUMNS:
        t.add_column(
            _header(col, level), justify="left" if col in ("task", "check", "verdict") else "right"
        )
    for c in result.checks:
        row = [escape(x) for x in cells(c)]
        row[-1] = f"[{_STYLE[c.verdict]}]{row[-1]}[/]"
        t.add_row(*row)
    return t


def lines(result: GateResult) -> list[str]:
    """What to read under the table: each failure's and warning's message, then the notes."""
    out = [
        f"{c.verdict.upper()} {c.name}: {c.message}"
        for c in result.checks
        if c.verdict in ("fail", "warn", "skip")
    ]
    out += [f"note: {n}" for n in result.notes]
    return out


def junit(result: GateResult) -> str:
    """One testsuite, one testcase per task x check; failures carry the message."""
    counts = result.counts()
    suites = ET.Element("testsuites", name="harness gate")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="harness gate",
        tests=str(len(result.checks)),
        failures=str(counts["fail"]),
        errors="0",
        skipped=str(counts["skip"]),
        time="0",
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("baseline", result.baseline.run_id),
        ("baseline_source", result.baseline.source),
        ("candidate", result.candidate.run_id),
        ("candidate_source", result.candidate.source),
        ("alpha", f"{result.alpha:g}"),
        ("holm_family", str(result.tested)),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    for c in result.checks:
        case = ET.SubElement(suite, "testcase", classname=f"gate.{c.task}", name=c.check, time="0")
        detail = "; ".join(f"{k}={v}" for k, v in zip(COLUMNS, cells(c), strict=True))
        if c.verdict == "fail":
            node = ET.SubElement(case, "failure", message=c.message, type="regression")
            node.text = detail
        elif c.verdict == "skip":
            ET.SubElement(case, "skipped", message=c.message)
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"{c.verdict}: {c.message}\n{detail}"
    if result.notes:
        notes = ET.SubElement(suite, "system-out")
        notes.text = "\n".join(result.notes)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _md(text: str) -> str:
    """A markdown table cell: HTML escaped, pipes escaped, one line."""
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def markdown(result: GateResult) -> str:
    """A PR comment: the verdict, the table, then the failures' messages and the notes."""
    level = f"{1 - result.alpha:.0%}"
    state = "FAIL (regression)" if result.failed else "PASS"
    b, c = result.baseline, result.candidate
    out = [
        f"### harness gate: {state}",
        "",
        f"Candidate **{_md(c.run_id)}** ({_md(c.student or 'student ?')}) against baseline "
        f"**{_md(b.run_id)}** ({_md(b.student or 'student ?')}); alpha {result.alpha:g}"
        + (f", Holm's correction over {result.tested} accuracy tests" if result.tested > 1 else "")
        + ". An accuracy drop fails when it is shown to exceed its allowance: its "
        f"{level} interval lies wholly above it.",
        "",
    ]
    names = [
        f"{level} CI" if col == "CI" else ("p (Holm)" if col == "p" else col) for col in COLUMNS
    ]
    out.append("| " + " | ".join(names) + " |")
    out.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(COLUMNS))) + "|")
    for check in result.checks:
        row = [_md(x) for x in cells(check)]
        if check.verdict == "fail":
            row[-1] = f"**{row[-1]}**"
        out.append("| " + " | ".join(row) + " |")
    flagged = [x for x in result.checks if x.verdict != "pass"]
    if flagged:
        out += ["", "<details open><summary>failures, warnings and skips</summary>", ""]
        out += [f"- **{x.verdict}** {_md(x.name)}: {_md(x.message)}" for x in flagged]
        out += ["", "</details>"]
    if result.notes:
        out += [""] + [f"> note: {_md(n)}" for n in result.notes]
    return "\n".join(out) + "\n"


def write_text(path: Path, text: str, what: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise HarnessError(f"cannot write the {what} {path}: {e}") from e
