"""The dashboard page opened in headless Chromium (Playwright): every chart image loads, titles and
KPI tiles are there; a screenshot is kept in the test's tmp dir."""

from __future__ import annotations

import pytest

from ecommerce_platform.analytics.dashboard import CHARTS

pytestmark = [pytest.mark.browser, pytest.mark.graph]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def test_dashboard_renders_in_chromium(analytics_run, tmp_path):
    from playwright.sync_api import sync_playwright

    data_dir, _, _ = analytics_run
    page_path = data_dir / "lake" / "analytics" / "dashboard" / "index.html"
    html = page_path.read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html  # self-contained

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            images = page.eval_on_selector_all(
                "figure img",
                "imgs => imgs.map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight}))",
            )
            assert len(images) == len(CHARTS)
            for img in images:
                assert img["complete"] and img["w"] > 600 and img["h"] > 300, img
            headings = page.locator("figure h2").all_inner_texts()
            assert headings == list(CHARTS.values())
            assert page.title() == "Sales dashboard"
            tiles = dict(zip(page.locator(".kpi .label").all_text_contents(),
                             page.locator(".kpi .value").all_text_contents()))
            assert tiles["Net revenue"] == "£9,771,318"  # the reference figure, see test_analytics_graph
            assert tiles["Orders"] == "19,773" and tiles["Customers"] == "4,334"
            assert page.locator("section.table table").count() == 4
            assert "REGENCY CAKESTAND 3 TIER" in page.locator("section.table").first.inner_text()
            assert "14646" in page.locator("section.table").nth(2).inner_text()  # ids are not numbers
            shot = tmp_path / "dashboard.png"  # kept for a person to look at
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 50_000
            assert not errors
        finally:
            browser.close()
