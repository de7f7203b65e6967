"""`harness report`: one self-contained HTML file, safe with hostile model text.

The run is real (`harness run` with a replayed student whose outputs are hostile, see
tests/report_run.py); the checks read the HTML as a browser would get it: what is outside
the data block, what the CSP allows, what the data block decodes to.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import shutil

import numpy as np
import pytest

from harness.report import build_report
from harness.report.data import (
    CUT_MARK,
    MIN_CAP,
    TEXT_BUDGET,
    TextTable,
    fit_cap,
    matched_steps,
    step_spans,
    text_budget,
)
from harness.report.template import json_block
from tests.conftest import cli
from tests.report_run import (
    BIG_LINE,
    IMG,
    PAYLOADS,
    SCRIPT,
    TEXTAREA,
    hostile_run,
    outside_scripts,
    scripts,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return hostile_run(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def page(run_dir) -> str:
    """The report `harness run` wrote at its end."""
    path = run_dir / "report.html"
    assert path.is_file(), "harness run did not write report.html"
    return path.read_text(encoding="utf-8")


def _block(page: str) -> dict:
    (block,) = [c for a, c in scripts(page) if "application/json" in a]
    return json.loads(block)


def _data(page: str) -> dict:
    return _unpacked(_block(page))


def _unpacked(data: dict) -> dict:
    """The data block with packed items and texts (a large run's) unpacked, as the page does."""
    if data["packed"] is None:
        return data
    inner = json.loads(gzip.decompress(base64.b64decode(data["packed"])).decode("utf-8"))
    return {**data, **inner, "packed": None}


def _texts(data: dict) -> list[str]:
    return _unpacked(data)["texts"]


def _offsets(pairs: list[int]) -> list[tuple[int, int] | None]:
    """The steps' [gap, length] pairs as (start, end) in the stored chain."""
    out: list[tuple[int, int] | None] = []
    end = 0
    for gap, length in zip(pairs[::2], pairs[1::2], strict=True):
        if gap < 0:
            out.append(None)
            continue
        out.append((end + gap, end + gap + length))
        end += gap + length
    return out


def test_hostile_text_never_leaves_the_data_block(page):
    assert IMG not in page and "<img" not in page.lower()
    assert TEXTAREA not in page
    assert SCRIPT not in page and "<script>alert(2)" not in page
    found = scripts(page)
    assert len(found) == 3  # the data block, plotly.js, the page's script
    assert page.lower().count("</script") == 3
    rest = outside_scripts(page)
    assert "javascript:" not in rest
    assert "alert(" not in rest
    # The data block: the escapes make `<`, `>`, `&` unreadable to the HTML parser.
    (block,) = [c for a, c in found if "application/json" in a]
    assert not set("<>&") & set(block)
    assert "\u2028" not in block and "\u2029" not in block


def test_hostile_text_round_trips_in_the_data(page):
    data = _data(page)
    texts = _texts(data)
    answers = {it["S"]["a"] for it in data["items"]}
    assert IMG in answers  # the extracted answer, exactly as the model wrote it
    joined = "\n".join(texts)
    for payload in PAYLOADS:
        assert payload in joined
    # The 1 MB line is kept at its start and end around a visible mark, not in full.
    big = [t for t in texts if t.startswith(BIG_LINE[:30])]
    assert len(big) == 1 and len(big[0]) < 100_000
    assert "characters not shown in the report" in big[0]
    assert data["texts_cut"] >= 1


def test_csp_allows_exactly_the_inline_scripts(page):
    meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert meta, "no CSP meta tag"
    policy = {d.split()[0]: d.split()[1:] for d in meta.group(1).split("; ")}
    assert policy["default-src"] == ["'none'"]
    assert policy["img-src"] == ["data:"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    executable = [c for a, c in scripts(page) if "application/json" not in a]
    expected = {
        "'sha256-" + base64.b64encode(hashlib.sha256(c.encode("utf-8")).digest()).decode() + "'"
        for c in executable
    }
    assert set(policy["script-src"]) == expected
    assert page.index("Content-Security-Policy") < page.index("<script")


def test_nothing_remote_and_no_handlers_or_links(page):
    rest = outside_scripts(page)
    assert not re.search(
        r"""\b(?:src|href|action|srcset)\s*=\s*["']?\s*(?:https?:)?//""", rest, re.I
    )
    assert not re.search(r"<(?:link|iframe|object|embed|base|form)\b", rest, re.I)
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", page, re.I)
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", rest, re.I)  # no inline event handlers
    assert "href=" not in rest.lower()  # no link at all, so no model text as one


def test_report_contents(page):
    data = _data(page)
    for section in ("run-info", "summary", "routing", "plots", "explorer", "item-list"):
        assert f"id='{section}'" in page
    figures = {f["id"] for f in data["figures"]}
    assert {"fig-accuracy", "fig-lengths", "fig-failures", "fig-reliability"} <= figures
    assert any(f.startswith("fig-depth") for f in figures)
    for f in data["figures"]:  # plotly figures, drawn by Plotly.newPlot
        assert f["figure"]["data"] and "layout" in f["figure"]
        assert f"id='{f['id']}'" in page
    assert page.count("Plotly.newPlot") >= 1
    items = data["items"]
    assert len(items) == 4 and {it["o"] for it in items} <= {"both", "teacher", "neither"}
    assert all(it["T"] and it["T"]["c"] is True for it in items)
    assert sum(bool(it.get("f")) for it in items) == 2  # the two wrong ones are labelled
    assert all(it["ev"] for it in items if it.get("f"))
    # The student that repeats the teacher's chain: every step matched, spans into the text.
    texts = _texts(data)
    same = [it for it in items if it["S"]["c"] and IMG not in (it["S"]["a"] or "")]
    exact = [it for it in same if it.get("al") and len(it["al"]["m"]) == len(it["al"]["ts"]) // 2]
    assert exact, "no fully matched chain"
    al, it = exact[0]["al"], exact[0]
    student, teacher = texts[it["S"]["r"]], texts[it["T"]["r"]]
    for (_, _, sim), t_at, s_at in zip(
        al["m"], _offsets(al["ts"]), _offsets(al["ss"]), strict=True
    ):
        assert t_at and s_at and sim == 1.0
        assert teacher[slice(*t_at)] == student[slice(*s_at)] != ""


def test_routing_absent_is_one_line_without_a_plot(run_dir, tmp_path):
    copy = tmp_path / "norouting"
    shutil.copytree(run_dir, copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    for task in metrics["tasks"].values():
        task.pop("routing", None)
    metrics["overall"].pop("routing", None)
    (copy / "metrics.json").write_text(json.dumps(metrics))
    out = build_report(copy, align=False)
    text = out.read_text(encoding="utf-8")
    assert "This run has no routing section in its metrics." in text
    assert "fig-routing" not in {f["id"] for f in _data(text)["figures"]}
    assert "Steps are not aligned" in text


def test_routing_present_gives_table_and_curve(page):
    data = _data(page)
    assert "id='routing-table'" in page
    assert "fig-routing" in {f["id"] for f in data["figures"]}


def test_compare_mode_pairs_the_two_students(run_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    rows = [json.loads(line) for line in (other / "records.jsonl").read_text().splitlines()]
    flipped = 0
    for row in rows:
        if row["role"] == "student" and row["correct"] is False and not flipped:
            row["correct"], flipped = True, 1
    (other / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = json.loads((other / "metrics.json").read_text())
    metrics["run"]["run_id"] = "other"
    (other / "metrics.json").write_text(json.dumps(metrics))
    out = build_report(run_dir, compare=str(other), out=tmp_path / "cmp.html", align=False)
    text = out.read_text(encoding="utf-8")
    data = _data(text)
    assert (data["run"], data["other"]) == ("hostile", "other")
    assert "id='compare-table'" in text and "id='filter-flip'" in text
    flips = [it["fl"] for it in data["items"]]
    assert flips.count("b_only") == 1 and flips.count("same") == 3
    assert all(it["B"] is not None for it in data["items"])


def test_compressed_texts_decode_to_the_same(run_dir, tmp_path):
    plain = _data((run_dir / "report.html").read_text(encoding="utf-8"))
    out = build_report(run_dir, out=tmp_path / "gz.html", compress_over=0)
    text = out.read_text(encoding="utf-8")
    data = _block(text)
    assert data["texts"] is None and data["items"] is None and data["packed"]
    assert _unpacked(data)["texts"] == plain["texts"]
    assert _unpacked(data)["items"] == plain["items"]
    assert "alert(2)" not in text and "javascript:alert" not in text  # texts only in the gzip


def test_cli_report_writes_and_names_the_file(run_dir, tmp_path):
    target = tmp_path / "sub" / "r.html"
    proc = cli("report", run_dir.name, "--runs", str(run_dir.parent), "--out", str(target))
    assert proc.returncode == 0, proc.stderr
    assert target.is_file() and str(target) in proc.stdout.replace("\n", "")


def _one_error_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


def test_bad_input_is_one_line_and_exit_2(run_dir, tmp_path):
    line = _one_error_line(cli("report", "no-such-run", "--runs", str(tmp_path)))
    assert "no run 'no-such-run'" in line
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / "metrics.json").write_text('{"tasks": {', encoding="utf-8")
    assert "not readable JSON" in _one_error_line(cli("report", str(broken)))
    (broken / "metrics.json").write_text("[1, 2]", encoding="utf-8")
    assert "not a metrics document" in _one_error_line(cli("report", str(broken)))
    (broken / "metrics.json").unlink()
    assert "no metrics.json" in _one_error_line(cli("report", str(broken)))
    line = _one_error_line(cli("report", str(run_dir), "--compare", str(tmp_path / "nope")))
    assert "no run" in line
    (broken / "records.jsonl").write_text("{not json\n", encoding="utf-8")
    assert "not a records file" in _one_error_line(cli("report", str(broken)))


def test_json_block_escapes_what_could_end_the_script():
    nasty = "</script><!-- <script>&amp; \u2028\u2029 '\""
    block = json_block({"x": nasty})
    assert not set("<>&\u2028\u2029") & set(block)
    assert json.loads(block) == {"x": nasty}
    assert json.loads(json_block({"y": [float("nan"), 1.5, float("inf")]})) == {
        "y": [None, 1.5, None]
    }


def test_matched_steps_is_the_monotone_alignment():
    from harness.metrics.chainsim import monotone_alignment

    rng = np.random.default_rng(0)
    for _ in range(50):
        w = rng.random((rng.integers(1, 9), rng.integers(1, 9)))
        w = np.where(w > 0.6, w, 0.0)
        pairs = matched_steps(w)
        assert all(a[0] < b[0] and a[1] < b[1] for a, b in zip(pairs, pairs[1:], strict=False))
        assert sum(w[i, j] for i, j in pairs) == pytest.approx(monotone_alignment(w))
    assert matched_steps(np.eye(3)) == [(0, 0), (1, 1), (2, 2)]
    assert matched_steps(np.zeros((0, 2))) == []


def test_text_budget_shrinks_the_cap_per_text(run_dir, tmp_path):
    assert fit_cap([10, 20, 30], budget=100, cap=50) == 50
    assert fit_cap([100_000] * 10, budget=200_000, cap=60_000) == 20_000
    assert fit_cap([100_000] * 10, budget=10, cap=60_000) == MIN_CAP
    rng = np.random.default_rng(0)
    noisy = ["".join(rng.choice(list("abcdefghij0123456789 "), 5000)) for _ in range(1000)]
    plain = ["the same sentence again. " * 200 for _ in range(1000)]
    assert text_budget(noisy, target=1_000_000) < text_budget(plain, target=1_000_000)
    assert text_budget(noisy, target=1_000_000) == pytest.approx(1_000_000 / 0.64, rel=0.3)
    assert text_budget(["tiny"]) == TEXT_BUDGET
    out = build_report(run_dir, out=tmp_path / "small.html", budget=30_000, align=False)
    data = _data(out.read_text(encoding="utf-8"))
    assert MIN_CAP <= data["text_cap"] < 30_000  # the 1 MB line takes what the others leave
    assert max(len(t) for t in data["texts"]) < data["text_cap"] + len(CUT_MARK) + 20


def test_text_table_cuts_long_texts_and_maps_spans():
    table = TextTable(cap=15)
    assert (table.head, table.tail) == (12, 3)
    text = "abcdefghijkl" + "M" * 100 + "xyz"
    at = table.add(text)
    shown = table.texts[at]
    assert shown.startswith("abcdefghijkl") and shown.endswith("xyz")
    assert CUT_MARK.format(n=100) in shown and table.cut == 1
    assert table.add(text) == at  # stored once
    s, e = table.span(text, 113, 115)
    assert shown[s:e] == "yz"
    assert table.span(text, 2, 4) == (2, 4)
    assert table.span(text, 50, 60) is None
    assert table.add("short") is not None and table.cut == 1
    assert step_spans("a. b. a.", ["a.", "b.", "a.", "c."]) == [(0, 2), (3, 5), (6, 8), None]


def test_a_report_that_fails_costs_the_run_only_a_warning(tmp_path, monkeypatch, capsys):
    import harness.report
    from harness.config import RunConfig
    from harness.errors import HarnessError
    from harness.runner import run

    def refuse(*args, **kwargs):
        raise HarnessError("cannot write the report to nowhere")

    monkeypatch.setattr(harness.report, "build_report", refuse)
    config = RunConfig.build(
        student="reference",
        teacher="reference",
        tasks=["chains"],
        limit=2,
        out=str(tmp_path / "runs"),
        cache_dir=str(tmp_path / "cache"),
        run_id="r",
        chain_model="none",
    )
    result = run(config, progress=False)
    assert (result.run_dir / "metrics.json").is_file() and result.records
    assert not (result.run_dir / "report.html").exists()
    assert "report not written: cannot write the report to nowhere" in capsys.readouterr().err


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def test_names_in_plots_are_text_not_plotly_markup(run_dir, tmp_path):
    """Plotly reads <a href>, <b>, ... in its labels: a task named with markup is shown as
    written, its `<` an entity."""
    evil = "<a href='javascript:alert(1)'>x</a>"
    copy = tmp_path / "evil"
    shutil.copytree(run_dir, copy)
    for name in ("records.jsonl", "failures.jsonl"):
        rows = [json.loads(line) for line in (copy / name).read_text().splitlines()]
        for row in rows:
            row["task"] = evil
        (copy / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = json.loads((copy / "metrics.json").read_text())
    ((task, entry),) = metrics["tasks"].items()
    metrics["tasks"] = {evil: entry}
    metrics["failures"]["tasks"] = {evil: metrics["failures"]["tasks"][task]}
    (copy / "metrics.json").write_text(json.dumps(metrics))
    page = build_report(copy, align=False).read_text(encoding="utf-8")
    data = _data(page)
    shown = [s for f in data["figures"] for s in _strings(f["figure"]["data"])]
    assert any("&lt;a href=" in s for s in shown)
    assert not any("<a" in s for s in shown)
    assert data["tasks"] == [evil]  # the explorer's filter shows it with textContent
    assert evil not in outside_scripts(page) and "&lt;a href=&#x27;javascript" in page
