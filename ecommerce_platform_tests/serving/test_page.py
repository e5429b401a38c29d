"""The web page at / driven in headless Chromium against `ecommerce serve` on the session's real lake: ask
a question (keyboard), read the answer, its kind, the SQL and the rows table; ask about a product and read
its sources; look up a customer's recommendations, then a product's similar items from that table; an
unknown customer's error. What the page shows is compared with the API's JSON; every request the page
makes goes to the server itself."""

from pathlib import Path

import pytest
import requests

from ecommerce_platform_tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.graph, pytest.mark.serving]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = REPO_ROOT / "ecommerce_platform_tests" / "artifacts"


def number(text: str) -> float:
    return float(text.replace(",", ""))


def table(page, selector: str) -> tuple[list[str], list[list[str]]]:  # noqa: ANN001
    """(header texts as written in the document, cell texts per row) of a table on the page."""
    headers = [t.strip() for t in page.locator(f"{selector} thead th").all_text_contents()]
    rows = [[c.strip() for c in row.locator("td").all_text_contents()] for row in page.locator(f"{selector} tbody tr").all()]
    return headers, rows


def test_the_page_asks_and_looks_up(server, served_lake, unknown_customer):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: install Debian's chromium (make system-deps)")
    base = server.base
    analytic = requests.post(f"{base}/api/ask", json={"question": "total revenue in 2011"}, timeout=60).json()
    product = requests.post(f"{base}/api/ask", json={"question": "what is product 84077?"}, timeout=60).json()
    recs = requests.get(f"{base}/api/recommend/14646", params={"n": 10}, timeout=60).json()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        urls: list[str] = []
        problems: list[str] = []
        failed: list[tuple[int, str]] = []
        page.on("request", lambda r: urls.append(r.url))
        page.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 400 else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        # (Chromium logs every 4xx response as a console error: those are checked through `failed`)
        page.on("console", lambda m: problems.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        page.goto(f"{base}/", wait_until="networkidle", timeout=60_000)
        page.get_by_text("Serving.").wait_for(timeout=30_000)  # the footer read /api/health

        # an analytic question, typed and sent with the keyboard
        box = page.get_by_label("Question about products or sales")
        box.fill("total revenue in 2011")
        box.press("Enter")
        page.locator("#ask-result").wait_for(state="visible", timeout=60_000)
        assert page.locator("#answer").text_content() == analytic["answer"]
        assert page.locator("#answer-kind").text_content() == analytic["kind"] == "analytics"
        assert page.locator("#sql").text_content() == analytic["sql"]
        assert page.locator("#definition").text_content() == analytic["definition"]
        headers, rows = table(page, "#rows")
        assert headers == [k.replace("_", " ") for k in analytic["rows"][0]]
        assert len(rows) == len(analytic["rows"])
        for key, cell in zip(analytic["rows"][0], rows[0]):
            value = analytic["rows"][0][key]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert number(cell) == pytest.approx(value, abs=1e-4), key
            else:
                assert cell == str(value), key
        assert page.locator("#sources-block").is_hidden()
        page.screenshot(path=str(ARTIFACTS / "serving_page_answer.png"), full_page=True)

        # a product question: its sources as a table, no SQL
        box.fill("what is product 84077?")
        page.get_by_role("button", name="Ask").click()
        page.locator("#answer-kind").filter(has_text="product").wait_for(timeout=60_000)
        assert page.locator("#answer").text_content() == product["answer"]
        _, sources = table(page, "#sources")
        assert [r[0] for r in sources] == [s["stock_code"] for s in product["sources"]]
        assert page.locator("#sql-block").is_hidden() and page.locator("#rows-block").is_hidden()

        # a customer's recommendations, then the similar items of the first one from that table
        page.get_by_label("Customer id").fill("14646")
        page.get_by_role("button", name="Recommend").click()
        page.locator("#rec-result").wait_for(state="visible", timeout=30_000)
        headers, rows = table(page, "#recommendations")
        assert headers[:4] == ["rank", "stock code", "description", "score"]
        assert [r[1] for r in rows] == [it["stock_code"] for it in recs["items"]]
        assert [r[2] for r in rows] == [it["description"] or "" for it in recs["items"]]
        first = recs["items"][0]["stock_code"]
        similar = requests.get(f"{base}/api/similar/{first}", params={"n": 10}, timeout=60).json()
        page.get_by_role("button", name=f"Products similar to {first}").click()
        page.locator("#sim-result").wait_for(state="visible", timeout=30_000)
        assert page.get_by_label("Stock code").input_value() == first
        _, sims = table(page, "#similar")
        assert [r[1] for r in sims] == [it["stock_code"] for it in similar["items"]]
        page.screenshot(path=str(ARTIFACTS / "serving_page_recommend.png"), full_page=True)

        # an unknown customer: the API's message, announced as an alert
        page.get_by_label("Customer id").fill(unknown_customer)
        page.get_by_role("button", name="Recommend").click()
        alert = page.locator("#rec-error")
        alert.wait_for(state="visible", timeout=30_000)
        assert f"unknown customer '{unknown_customer}'" in alert.text_content()
        assert alert.get_attribute("role") == "alert" and page.locator("#rec-result").is_hidden()

        # every form control has a label; nothing was asked of another host; no script error
        unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
            .filter(el => el.labels.length === 0).map(el => el.id)""")
        assert unlabelled == []
        browser.close()
    assert urls and all(u.startswith(base + "/") for u in urls), [u for u in urls if not u.startswith(base)]
    assert not problems, problems
    assert failed == [(404, f"{base}/api/recommend/{unknown_customer}?n=10&mode=discovery")], failed
