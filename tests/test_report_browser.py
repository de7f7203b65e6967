"""The report in a real browser: headless Chromium (the system's, never a downloaded one)
opens the file from disk, under the page's own CSP, with hostile model text in it.

Screenshots go to the test's tmp folder and to test-artifacts/ at the repo root.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from harness.report import build_report
from tests.conftest import REPO
from tests.report_run import IMG, LINK, SCRIPT, TEXTAREA, hostile_run

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "test-artifacts"

_WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(
            f"no Chromium at {CHROMIUM} (install Debian's chromium, or set HARNESS_CHROMIUM)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return hostile_run(tmp_path_factory.mktemp("report-browser"))


class Opened:
    """A page with everything it said: console messages, page errors, dialogs, CSP reports."""

    def __init__(self, browser, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.add_init_script(_WATCH)
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_selector("html[data-ready]", timeout=60_000)
        state = self.page.get_attribute("html", "data-ready")
        assert state == "true", self.page.inner_text("#report-status")

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def assert_quiet(self) -> None:
        bad = [m for m in self.console if m[0] in ("error", "warning")]
        assert not bad, bad
        assert not self.errors, self.errors
        assert not self.dialogs, self.dialogs
        assert self.page.evaluate("window.__csp") == []

    def count(self) -> int:
        return int(self.page.get_attribute("#item-count", "data-count") or -1)

    def shot(self, tmp_path: Path, name: str, selector: str | None = None) -> Path:
        path = tmp_path / name
        if selector:
            self.page.locator(selector).screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path), full_page=True)
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(path, ARTIFACTS / name)
        return path


def test_report_draws_without_errors_and_shows_hostile_text_as_text(browser, run_dir, tmp_path):
    view = Opened(browser, run_dir / "report.html")
    page = view.page
    assert page.locator("script").count() == 3
    figures = page.locator(".figure")
    assert figures.count() >= 4
    for i in range(figures.count()):  # each one drawn by plotly.js into an SVG, once in view
        figures.nth(i).scroll_into_view_if_needed()
        figures.nth(i).locator("svg.main-svg").first.wait_for(timeout=10_000)
    view.shot(tmp_path, "report-full.png")

    page.locator(".item-row", has_text=IMG).click()
    detail = page.locator("#item-detail")
    assert detail.locator(".side.teacher").is_visible()
    assert detail.locator(".side.student").is_visible()
    assert detail.locator(".side.student .answer-line mark").inner_text() == IMG
    detail.locator(".side.student details.chain summary").click()
    assert SCRIPT in detail.locator(".side.student .chain-text").inner_text()
    detail.locator(".side.teacher details.chain summary").click()
    assert detail.locator(".side.teacher .chain-text").inner_text().strip()
    assert detail.locator("table.aligned tr").count() >= 2
    assert detail.locator("ul.evidence li").count() >= 1
    view.shot(tmp_path, "report-item-img.png", "#item-detail")

    index = page.evaluate(
        """(needle) => {
          const r = window.harnessReport;
          return r.items.findIndex((it) => (r.texts[it.S.r] || "").includes(needle));
        }""",
        TEXTAREA,
    )
    assert index >= 0
    page.locator(f".item-row[data-index='{index}']").click()
    page.locator("#item-detail .side.student details.chain summary").click()
    chain = detail.locator(".side.student .chain-text").inner_text()
    assert TEXTAREA in chain and "<b>bold</b>" in chain and LINK in chain
    # Shown as text: no element was made from the model's markup, and no link at all.
    for tag in ("img", "b", "a", "textarea", "script"):
        assert detail.locator(tag).count() == 0, tag
    assert page.locator("a[href]").count() == 0
    assert page.locator("img").count() == 0
    view.shot(tmp_path, "report-item-textarea.png", "#item-detail")
    view.assert_quiet()


def test_filters_change_the_items_shown(browser, run_dir):
    view = Opened(browser, run_dir / "report.html")
    page = view.page
    assert view.count() == 4 and page.locator(".item-row").count() == 4
    page.select_option("#filter-outcome", "both")
    assert view.count() == 2 and page.locator(".item-row").count() == 2
    page.select_option("#filter-outcome", "teacher")
    assert view.count() == 2
    page.select_option("#filter-outcome", "")
    causes = [
        v
        for v in page.eval_on_selector_all("#filter-cause option", "o => o.map(x => x.value)")
        if v
    ]
    assert "-" in causes and len(causes) >= 2
    page.select_option("#filter-cause", "-")
    assert view.count() == 2
    page.select_option("#filter-cause", "")
    page.fill("#filter-search", "no-such-id")
    assert view.count() == 0 and page.locator(".item-row").count() == 0
    view.assert_quiet()


def test_compare_mode_with_compressed_texts(browser, run_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    rows = [json.loads(line) for line in (other / "records.jsonl").read_text().splitlines()]
    for row in rows:
        if row["role"] == "student" and row["correct"] is False:
            row["correct"] = True
            row["answer"] = "flipped <i>answer</i>"
            break
    (other / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = json.loads((other / "metrics.json").read_text())
    metrics["run"]["run_id"] = "other"
    (other / "metrics.json").write_text(json.dumps(metrics))
    path = build_report(run_dir, compare=str(other), out=tmp_path / "cmp.html", compress_over=0)
    view = Opened(browser, path)
    page = view.page
    page.select_option("#filter-flip", "b_only")
    assert view.count() == 1
    page.locator(".item-row").first.click()
    detail = page.locator("#item-detail")
    assert detail.locator(".side").count() == 3
    assert detail.locator(".side.compare .answer-line mark").inner_text() == "flipped <i>answer</i>"
    assert detail.locator("i").count() == 0
    page.select_option("#filter-flip", "same")
    assert view.count() == 3
    page.evaluate("window.harnessFigures.drawAll()")
    view.shot(tmp_path, "report-compare.png")
    view.assert_quiet()


def test_the_policy_blocks_any_other_script(browser, run_dir):
    view = Opened(browser, run_dir / "report.html")
    ran = view.page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.__injected = 1";
          document.body.appendChild(s);
          return window.__injected === 1;
        }"""
    )
    assert ran is False
    view.page.wait_for_function("window.__csp.length > 0")
    assert any("script-src" in v for v in view.page.evaluate("window.__csp"))
