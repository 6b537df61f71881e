"""`jaxsuite report` in a real browser: headless Chromium (Debian's `chromium`; `.ci/run` installs it), driven over
the DevTools protocol on a pipe (tests/report/cdp.py), asserting from the live DOM.

Two sites are opened: the one built from the committed results (``results/``), and one built from synthetic
results of two methods (one current, one stale), so that method pages, plots and links are exercised even while
few methods have committed results. Per index: one row per method (11); a number in the headline cell of every
row that has results, and the word "missing" in every row that has none; every image loaded (naturalWidth > 0)
on every page; every link resolves to a page with a heading; no console errors. A screenshot of each index is
saved under the test's tmp dir. Without Chromium the test is skipped, unless JAXSUITE_REQUIRE_CHROMIUM=1 (CI)."""
from __future__ import annotations

import os
import re

import pytest

from jaxsuite.core import provenance, registry, report, results
from tests.conftest import REPO
from tests.report.cdp import Chromium, find_chromium

NUMBER = re.compile(r"[-+]?\d+\.\d+")

ROWS_JS = """Array.from(document.querySelectorAll('tr.method-row')).map(tr => ({
  method: tr.dataset.method, hasResults: tr.dataset.hasResults === '1',
  headline: (tr.querySelector('td.headline .headline-value') || {}).textContent || '',
  status: tr.querySelector('td:last-child').textContent}))"""
IMAGES_JS = """Array.from(document.images).map(i => ({src: i.getAttribute('src'), complete: i.complete,
  width: i.naturalWidth}))"""
LINKS_JS = "Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = find_chromium()
    if exe is None:
        if os.environ.get("JAXSUITE_REQUIRE_CHROMIUM"):
            pytest.fail("chromium not found (JAXSUITE_REQUIRE_CHROMIUM=1): apt-get install -y chromium")
        pytest.skip("chromium not installed (apt-get install -y chromium; .ci/run installs it)")
    chrome = Chromium(exe, tmp_path_factory.mktemp("chromium-profile"))
    try:
        chrome.open_page()
        yield chrome
    finally:
        chrome.close()


def synthetic_results(root):
    """results/ of two methods: nddr with this tree's fingerprint (current), exgrg with another (stale)."""
    def payload(method, reference, variants, fingerprint):
        return {"method": method, "preset": "quick", "dataset": "synthetic", "primary_metric": "accuracy",
                "higher_is_better": True, "reference": reference, "variants": variants, "extra": {},
                "seeds": [0, 1, 2], "config": {}, "overrides": [], "git_commit": "0" * 40, "date": "2026-01-01",
                "jax_version": "0", "devices": "cpu x1", "wall_seconds": 1.0, "command": f"jaxsuite reproduce {method}",
                "machine": {"cpu": "Test CPU", "cores": 2, "accelerator": "cpu:cpu x1"}, "fingerprint": fingerprint}

    results.write(payload("nddr", "nddr", {"nddr": {"accuracy": [0.9, 0.91, 0.92]},
                                           "single_task": {"accuracy": [0.8, 0.82, 0.81]}},
                          provenance.fingerprint("nddr")), root / "nddr")
    results.write(payload("exgrg", "exgrg", {"exgrg": {"accuracy": [0.8, 0.7, 0.9]},
                                             "bgrl": {"accuracy": [0.79, 0.71, 0.88]}},
                          {"digest": "0" * 16, "files": {}}), root / "exgrg")
    return root


def check_site(chrome, index, shots):
    errors_before = len(chrome.console_errors())
    assert chrome.navigate(index.as_uri()) is None
    rows = chrome.evaluate(ROWS_JS)
    assert [r["method"] for r in rows] == sorted(registry.METHODS) and len(rows) == 11
    for r in rows:
        if r["hasResults"]:
            assert NUMBER.search(r["headline"]), r
            assert "current" in r["status"] or "stale" in r["status"], r
        else:
            assert "missing" in r["headline"] and "missing" in r["status"], r
    chrome.screenshot(shots)
    assert shots.stat().st_size > 1000
    pages = [index.as_uri()] + [u for u in chrome.evaluate(LINKS_JS) if u.startswith("file:")]
    for url in pages:
        assert chrome.navigate(url) is None, f"link does not resolve: {url}"
        assert chrome.evaluate("document.querySelector('h1') !== null"), url
        for img in chrome.evaluate(IMAGES_JS):
            assert img["complete"] and img["width"] > 0, f"image not loaded on {url}: {img}"
        for link in chrome.evaluate(LINKS_JS):  # links of the method pages resolve to files of the site
            assert link.startswith("file:") and os.path.exists(link[len("file://"):].split("#")[0]), link
    assert chrome.console_errors()[errors_before:] == []
    return rows


def test_report_of_committed_results_in_chromium(browser, tmp_path):
    site = report.build(REPO / "results", tmp_path / "site")
    rows = check_site(browser, site["index"], tmp_path / "index.png")
    assert sum(r["hasResults"] for r in rows) == len(site["pages"])


def test_report_pages_plots_and_links_in_chromium(browser, tmp_path):
    site = report.build(synthetic_results(tmp_path / "results"), tmp_path / "site")
    rows = {r["method"]: r for r in check_site(browser, site["index"], tmp_path / "index.png")}
    assert rows["nddr"]["status"].strip() == "current" and rows["exgrg"]["status"].startswith("stale")
    assert rows["nddr"]["headline"].startswith("0.9100") and rows["whistle"]["headline"].startswith("missing")
    assert browser.navigate((tmp_path / "site" / "nddr.html").as_uri()) is None
    images = browser.evaluate(IMAGES_JS)
    assert len(images) == 1 and images[0]["width"] > 0
    text = browser.evaluate("document.body.innerText")
    assert "ahead" in text and "Test CPU" in text
    browser.screenshot(tmp_path / "nddr.png")
