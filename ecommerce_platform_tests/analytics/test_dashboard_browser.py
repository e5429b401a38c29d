"""The dashboard page opened in headless Chromium (Playwright), from the lake folder (file://) and served
by a web server started here on 127.0.0.1: every chart image loads by its relative path, titles and KPI
tiles are there; a screenshot is kept in the test's tmp dir."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest

from ecommerce_platform.analytics.dashboard import CHARTS

pytestmark = [pytest.mark.browser, pytest.mark.graph]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture
def served(analytics_run):
    """The dashboard folder served over HTTP on 127.0.0.1 (a free port); yields the page's URL."""
    data_dir, _, _, _ = analytics_run
    folder = data_dir / "lake" / "analytics" / "dashboard"
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


def _check_page(page, url: str) -> list[str]:  # noqa: ANN001
    errors: list[str] = []
    failed: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(url)
    page.wait_for_load_state("load")
    images = page.eval_on_selector_all(
        "figure img",
        "imgs => imgs.map(i => ({src: i.getAttribute('src'), complete: i.complete, w: i.naturalWidth, h: i.naturalHeight}))",
    )
    assert [i["src"] for i in images] == [f"{name}.png" for name in CHARTS]  # relative paths
    for img in images:
        assert img["complete"] and img["w"] > 600 and img["h"] > 300, (url, img)
    assert page.locator("figure h2").all_inner_texts() == list(CHARTS.values())
    assert page.title() == "Sales dashboard"
    tiles = dict(zip(page.locator(".kpi .label").all_text_contents(),
                     page.locator(".kpi .value").all_text_contents()))
    assert tiles["Net revenue"] == "£9,769,960"  # the reference figure, see test_analytics_graph
    assert tiles["Orders"] == "19,773" and tiles["Customers"] == "4,334"
    assert tiles["Countries"] == "37"  # 'Unspecified' is not a country
    assert page.locator("section.table table").count() == 4
    assert "REGENCY CAKESTAND 3 TIER" in page.locator("section.table").first.inner_text()
    countries = page.locator("section.table").nth(1).inner_text()
    assert "United Kingdom" in countries and "Unspecified" not in countries
    assert "14646" in page.locator("section.table").nth(2).inner_text()  # ids are not numbers
    assert not failed, failed
    return errors


def test_dashboard_renders_in_chromium_from_the_lake_and_a_web_server(analytics_run, served, tmp_path):
    from playwright.sync_api import sync_playwright

    data_dir, _, _, _ = analytics_run
    page_path = data_dir / "lake" / "analytics" / "dashboard" / "index.html"
    html = page_path.read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html  # nothing from outside
    assert "base64" not in html

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            for url in (page_path.as_uri(), served):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                errors = _check_page(page, url)
                assert not errors, (url, errors)
                page.close()
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(served)
            page.wait_for_load_state("load")
            shot = tmp_path / "dashboard.png"  # kept for a person to look at
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 50_000
        finally:
            browser.close()
