"""The report's HTML: the static sections (escaped here), the data block and the inlined
scripts, under a Content-Security-Policy that lets only those scripts run.

Safety rules the page keeps (tests check each one):
- the data goes in one `<script type="application/json">` block whose `<`, `>`, `&` and
  U+2028/U+2029 are written as \\uXXXX escapes, so no text in it can close the block;
- everything else from a run that lands in the HTML here goes through `html.escape`; the
  page's script renders model text with textContent only, never as markup;
- scripts run only by the sha256 of their exact text (no 'unsafe-inline', no event-handler
  attributes), nothing is loaded from anywhere (`default-src 'none'`), and no run text ever
  becomes a link.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import time
from collections.abc import Sequence
from importlib import resources
from typing import Any

from harness.errors import HarnessError
from harness.report.data import RunData
from harness.report.plots import Note, Plot, Shown, routing_groups
from harness.store import json_safe

_ESCAPES = str.maketrans(
    {
        "<": "\\u003c",
        ">": "\\u003e",
        "&": "\\u0026",
        "\u2028": "\\u2028",
        "\u2029": "\\u2029",
    }
)


def json_block(payload: Any) -> str:
    """JSON that is safe between `<script type="application/json">` tags: the characters that
    could end the block or break a line in a script are escaped (they occur only in strings,
    where \\uXXXX means the same)."""
    try:
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a NaN or infinity somewhere: null, as JSON has no such number
        text = json.dumps(json_safe(payload), ensure_ascii=False, separators=(",", ":"))
    return text.translate(_ESCAPES)


def script_hash(source: str) -> str:
    """The CSP source expression that allows exactly this inline script."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def content_security_policy(scripts: Sequence[str]) -> str:
    hashes = " ".join(script_hash(s) for s in scripts)
    return (
        "default-src 'none'; "
        f"script-src {hashes}; "
        "style-src 'unsafe-inline'; "
        "img-src data:; "
        "base-uri 'none'; "
        "form-action 'none'"
    )


def asset(name: str) -> str:
    return (resources.files("harness.report") / "assets" / name).read_text(encoding="utf-8")


def plotly_js() -> str:
    """plotly.js as the plotly package bundles it (its plotly.min.js)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as e:
        raise HarnessError(f"the report needs plotly ({e}): pip install plotly") from e
    return str(get_plotlyjs())


def _safe_script(source: str, what: str) -> str:
    lowered = source.lower()
    if "</script" in lowered or "<!--" in lowered:
        raise HarnessError(f"{what} contains '</script' or '<!--' and cannot be inlined")
    return source


def _e(value: Any) -> str:
    return html.escape("-" if value is None else str(value), quote=True)


def _num(x: Any, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if isinstance(x, int | float) and not isinstance(x, bool) else "-"


def _ci(ci: Any) -> str:
    if (
        isinstance(ci, list | tuple)
        and len(ci) == 2
        and all(isinstance(v, int | float) for v in ci)
    ):
        return f"[{ci[0]:.3f}, {ci[1]:.3f}]"
    return ""


def _p(p: Any) -> str:
    if not isinstance(p, int | float):
        return "-"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def _model_line(config: dict[str, Any], metrics: dict[str, Any], role: str) -> str:
    resolved = (config.get("resolved") or {}).get(role) or {}
    spec = (metrics.get("run") or {}).get(role) or config.get(role) or resolved.get("name")
    parts = [f"<code>{_e(spec)}</code>"]
    if resolved.get("backend"):
        parts.append(f"backend {_e(resolved['backend'])}")
    if resolved.get("model") and resolved.get("model") != spec:
        parts.append(f"model {_e(resolved['model'])}")
    parts.append(f"revision {_e(resolved.get('revision') or 'not recorded')}")
    return ", ".join(parts)


def _sampling(config: dict[str, Any], role: str) -> str:
    s = ((config.get("resolved") or {}).get(role) or {}).get("sampling") or {}
    if not s:
        return "-"
    if s.get("max_new_tokens") == 0:
        return "not sampled (gold solutions)"
    bits = [
        f"temperature {_e(s.get('temperature'))}",
        f"top-p {_e(s.get('top_p'))}",
        f"max {_e(s.get('max_new_tokens'))} new tokens",
    ]
    if s.get("logprobs"):
        bits.append("log-probs")
    return ", ".join(bits)


def _cost(metrics: dict[str, Any]) -> str:
    rows = []
    for role, c in (metrics.get("cost") or {}).items():
        if not isinstance(c, dict):
            continue
        rows.append(
            f"{_e(role)}: {_e(c.get('generated'))} generated, {_e(c.get('cached'))} from cache, "
            f"{_e(c.get('tokens'))} tokens, {_num(c.get('seconds'), 1)} s generating"
        )
    run = metrics.get("run") or {}
    if run.get("seconds") is not None:
        rows.append(f"run total {_num(run.get('seconds'), 1)} s")
    return "<br>".join(rows) or "-"


def header_html(run: RunData, other: RunData | None) -> str:
    m, c = run.metrics, run.config
    tasks = ", ".join(f"<code>{_e(t)}</code>" for t in m["tasks"])
    rows = [
        ("student", _model_line(c, m, "student")),
        ("teacher", _model_line(c, m, "teacher")),
        ("tasks", tasks or "-"),
        ("student sampling", _e(_sampling(c, "student"))),
        ("teacher sampling", _e(_sampling(c, "teacher"))),
        (
            "samples, seed",
            f"{_e((m.get('run') or {}).get('samples', c.get('samples')))} per problem, "
            f"seed {_e(c.get('seed'))}",
        ),
        ("prompt style", _e(c.get("style") or "model default")),
        ("perturbations", _e(c.get("perturb") or "none")),
        ("run finished", _e(_when(run.finished))),
        ("report built", _e(_when(time.time()))),
        ("harness version", _e((m.get("run") or {}).get("harness_version"))),
        ("cost", _cost(m)),
    ]
    if other is not None:
        rows.append(
            (
                "compared with",
                f"run <code>{_e(other.run_id)}</code>: student "
                + _model_line(other.config, other.metrics, "student"),
            )
        )
    body = "".join(f"<tr><th scope='row'>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<section id='run-info'><h2>Run</h2><table class='meta'>{body}</table></section>"


def summary_html(run: RunData) -> str:
    head = (
        "<tr><th>task</th><th>teacher acc [95% CI]</th><th>student acc [95% CI]</th>"
        "<th>student − teacher [95% CI]</th><th>McNemar p</th><th>retention</th>"
        "<th>agreement</th><th>chain sim</th><th>student ECE</th><th>n</th></tr>"
    )
    rows = []
    groups = list(run.metrics["tasks"].items())
    if len(groups) > 1 and isinstance(run.metrics.get("overall"), dict):
        groups.append(("overall", run.metrics["overall"]))
    for task, g in groups:
        t, s, p = g.get("teacher") or {}, g.get("student") or {}, g.get("paired") or {}
        cal = s.get("calibration") or {}
        ece = (
            f"{_num(cal.get('ece'))} ({_e(cal['confidence_source'])})"
            if cal.get("confidence_source")
            else "-"
        )
        diff = p.get("diff")
        cells = [
            f"<th scope='row'><code>{_e(task)}</code></th>",
            f"<td>{_num(t.get('accuracy'))} <small>{_ci(t.get('ci95'))}</small></td>",
            f"<td>{_num(s.get('accuracy'))} <small>{_ci(s.get('ci95'))}</small></td>",
            f"<td>{'-' if diff is None else f'{diff:+.3f}'} "
            f"<small>{_ci(p.get('diff_ci95'))}</small></td>",
            f"<td>{_p(p.get('mcnemar_p'))}</td>",
            f"<td>{_num(p.get('retention'))}</td>",
            f"<td>{_num(p.get('agreement'))}</td>",
            f"<td>{_num((g.get('chains') or {}).get('similarity'))}</td>",
            f"<td>{ece}</td>",
            f"<td>{_e(s.get('n'))}</td>",
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        "<section id='summary-section'><h2>Teacher vs student</h2>"
        f"<table id='summary' class='grid'><thead>{head}</thead><tbody>{''.join(rows)}</tbody>"
        "</table><p class='caption'>Intervals: 95% bootstrap over problems. The difference and "
        "McNemar's exact test are paired on the same problems. Retention: P(student right | "
        "teacher right). Agreement: equivalent answers.</p></section>"
    )


def routing_html(run: RunData) -> str:
    groups = routing_groups(run)
    if not groups:
        return (
            "<section id='routing'><h2>Routing</h2><p class='note'>This run has no routing "
            "section in its metrics.</p></section>"
        )
    head = (
        "<tr><th>group</th><th>confidence</th><th>n</th><th>student acc</th>"
        "<th>teacher acc</th><th>routed to match the teacher (within 1 point)</th>"
        "<th>teacher tokens then</th><th>AURC</th><th>AURC optimal</th></tr>"
    )
    rows = []
    for name, g in groups:
        if g.get("curve") is None and g.get("reason"):
            rows.append(
                f"<tr><th scope='row'><code>{_e(name)}</code></th>"
                f"<td colspan='8' class='note'>{_e(g['reason'])}</td></tr>"
            )
            continue
        frac = g.get("fraction_to_match_teacher")
        tokens = g.get("tokens_to_match_teacher")
        rows.append(
            f"<tr><th scope='row'><code>{_e(name)}</code></th>"
            f"<td>{_e(g.get('confidence_source'))}</td><td>{_e(g.get('n'))}</td>"
            f"<td>{_num(g.get('student_accuracy'))}</td><td>{_num(g.get('teacher_accuracy'))}</td>"
            f"<td>{'-' if frac is None else f'{100 * frac:.0f}% of items'}</td>"
            f"<td>{_e(tokens) if tokens is not None and g.get('teacher_tokens_known') else '-'}"
            "</td>"
            f"<td>{_num(g.get('aurc'))}</td><td>{_num(g.get('aurc_optimal'))}</td></tr>"
        )
    reasons = [
        f"{_e(name)}: {_e(g['reason'])}"
        for name, g in groups
        if g.get("reason") and g.get("curve") is not None
    ]
    extra = f"<p class='caption'>{'; '.join(reasons)}</p>" if reasons else ""
    return (
        "<section id='routing'><h2>Routing</h2>"
        f"<table id='routing-table' class='grid'><thead>{head}</thead><tbody>{''.join(rows)}"
        f"</tbody></table>{extra}</section>"
    )


def compare_html(
    run: RunData, other: RunData, paired: dict[str, Any], shared: dict[str, Any]
) -> str:
    head = (
        f"<tr><th>task</th><th>shared items</th><th>A: {_e(run.run_id)}</th>"
        f"<th>B: {_e(other.run_id)}</th><th>B − A [95% CI]</th><th>McNemar p</th>"
        "<th>right in A only</th><th>right in B only</th></tr>"
    )
    rows = []
    for name, acc in shared.items():
        p = paired["overall"] if name == "overall" else (paired["tasks"].get(name) or {})
        diff = p.get("diff")
        rows.append(
            f"<tr><th scope='row'><code>{_e(name)}</code></th><td>{_e(acc['n'])}</td>"
            f"<td>{_num(acc['a'])}</td><td>{_num(acc['b'])}</td>"
            f"<td>{'-' if diff is None else f'{diff:+.3f}'} <small>{_ci(p.get('diff_ci95'))}"
            f"</small></td><td>{_p(p.get('mcnemar_p'))}</td>"
            f"<td>{_e(acc['a_only'])}</td><td>{_e(acc['b_only'])}</td></tr>"
        )
    return (
        "<section id='compare'><h2>Comparison of the two students</h2>"
        f"<table id='compare-table' class='grid'><thead>{head}</thead><tbody>{''.join(rows)}"
        "</tbody></table><p class='caption'>Paired on the items both runs graded (task, problem, "
        "sample). B − A: per-problem pass@1 difference with a paired bootstrap interval; "
        "McNemar's exact test over problems.</p></section>"
    )


def plots_html(plots: Sequence[Shown]) -> str:
    parts = []
    for p in plots:
        if isinstance(p, Plot):
            parts.append(
                f"<figure class='plot'><figcaption><h3>{_e(p.title)}</h3></figcaption>"
                f"<div class='figure' id='{_e(p.id)}'></div>"
                f"<p class='caption'>{_e(p.caption)}</p></figure>"
            )
        elif isinstance(p, Note):
            parts.append(
                f"<figure class='plot absent' id='{_e(p.id)}'><figcaption><h3>{_e(p.title)}</h3>"
                f"</figcaption><p class='note'>{_e(p.text)}</p></figure>"
            )
    return f"<section id='plots'><h2>Plots</h2><div class='plots'>{''.join(parts)}</div></section>"


def explorer_html(compare: bool, alignment_note: str | None) -> str:
    flip = (
        "<label>flip <select id='filter-flip'><option value=''>all</option>"
        "<option value='flipped'>flipped (either way)</option>"
        "<option value='a_only'>A right, B wrong</option>"
        "<option value='b_only'>A wrong, B right</option>"
        "<option value='same'>unchanged</option>"
        "<option value='unpaired'>not in B</option></select></label>"
        if compare
        else ""
    )
    note = f"<p class='note' id='alignment-note'>{_e(alignment_note)}</p>" if alignment_note else ""
    return (
        "<section id='explorer'><h2>Items</h2>"
        "<div class='filters' id='filters'>"
        "<label>task <select id='filter-task'><option value=''>all</option></select></label>"
        "<label>outcome <select id='filter-outcome'><option value=''>all</option>"
        "<option value='both'>both right</option><option value='teacher'>teacher only</option>"
        "<option value='student'>student only</option><option value='neither'>both wrong</option>"
        "<option value='truncated'>truncated</option><option value='ungraded'>not graded</option>"
        "</select></label>"
        "<label>depth <select id='filter-depth'><option value=''>all</option></select></label>"
        "<label>perturbation <select id='filter-kind'><option value=''>all</option></select>"
        "</label>"
        "<label>failure cause <select id='filter-cause'><option value=''>all</option></select>"
        f"</label>{flip}"
        "<label>problem id <input id='filter-search' type='search' placeholder='contains'>"
        "</label></div>"
        f"{note}"
        "<div class='pager'><button type='button' id='page-prev'>previous</button>"
        "<span id='page-info'></span><button type='button' id='page-next'>next</button>"
        "<span id='item-count' data-count='0'></span></div>"
        "<div class='explorer'><ol id='item-list'></ol>"
        "<div id='item-detail'><p class='note'>Pick an item to see both chains side by side."
        "</p></div></div></section>"
    )


def render(title: str, static: str, payload: dict[str, Any]) -> str:
    """The whole page; the CSP names the sha256 of each inline script."""
    scripts = [
        _safe_script(plotly_js(), "plotly.js"),
        _safe_script(asset("report.js"), "report.js"),
    ]
    css = asset("report.css")
    if "</style" in css.lower():
        raise HarnessError("report.css contains '</style' and cannot be inlined")
    policy = content_security_policy(scripts)
    tags = "".join(f"<script>{s}</script>" for s in scripts)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        "<meta name='referrer' content='no-referrer'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{css}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p id='report-status' class='note'>Loading…</p></header>"
        f"<main>{static}</main>"
        f"<script type='application/json' id='report-data'>{json_block(payload)}</script>"
        f"{tags}</body></html>\n"
    )
