"""The profiling report opens in headless Chromium; the exploration notebook runs top to bottom."""

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.graph
@pytest.mark.browser
def test_profile_report_renders_in_chromium(eda_lake, tmp_path):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing (make system-deps)")
    data_dir, _, _, _, _ = eda_lake
    html = data_dir / "lake" / "reports" / "data_profile.html"
    shot = tmp_path / "data_profile.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(html.as_uri(), wait_until="load")
            assert page.title().startswith("Data profile: raw source vs clean zone (sample:")
            body = page.inner_text("body")
            for section in ("Overview", "Variables", "Alerts", "Sample"):
                assert section in body, section
            for column in ("quantity", "unit_price", "line_total", "invoice_date", "route"):
                assert page.locator(f"text={column}").count() > 0, column
            assert page.locator("text=raw source").count() > 0
            page.screenshot(path=str(shot))
            assert not errors, errors
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


@pytest.mark.graph
def test_notebook_runs_top_to_bottom(eda_lake, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    data_dir, _, _, _, _ = eda_lake
    # A kernel spec that runs this very interpreter (the venv's), installed in a temp dir.
    kernels = tmp_path / "jupyter" / "kernels" / "eda-test"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "eda test", "language": "python",
    }))
    env = {
        **os.environ,
        "JUPYTER_PATH": str(tmp_path / "jupyter"),
        "ECOMMERCE_DATA_DIR": str(data_dir),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "MPLBACKEND": "Agg",
    }
    for key in ("ECOMMERCE_DEPLOYMENT", "ECOMMERCE_WAREHOUSE", "ECOMMERCE_S3_BUCKET", "AWS_ENDPOINT_URL"):
        env.pop(key, None)
    nb = nbformat.read(REPO / "notebooks" / "explore.ipynb", as_version=4)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel spec manager and the kernel read the environment
    try:
        client = NotebookClient(nb, kernel_name="eda-test", timeout=120,
                                resources={"metadata": {"path": str(REPO / "notebooks")}})
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    last = nb.cells[-1]
    text = "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream")
    summary = json.loads(text.strip().splitlines()[-1])
    assert summary["rows_in"] == 541_909
    assert summary["customers"] == 4_334
    assert summary["figures"] == 10 and summary["months"] == 13
    assert summary["champions"] > 0
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
