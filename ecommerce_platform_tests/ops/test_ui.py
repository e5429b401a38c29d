"""The web UI as a user sees it: `dagster dev` on 127.0.0.1 over an empty lake, driven in headless
Chromium the way README's "The web UI" says: a sensor turned on, a backfill launched from the lineage
page; the outcome read back through the UI's GraphQL API and from the lake, screenshots saved."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ecommerce_platform_tests.conftest import REPO_ROOT, free_port
from ecommerce_platform_tests.processes import start_group, stop_group, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.graph]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
CORE_ASSETS = ("raw_s3", "clean_parquet", "sale_lines", "daily_sales", "classifier", "segments", "als_model",
               "faiss_index")
LAYER_GROUPS = ("ingestion", "lake", "analytics", "ml", "rag", "eda")
ARTIFACTS = REPO_ROOT / "ecommerce_platform_tests" / "artifacts"


def _gql(port: int, query: str, variables: dict | None = None) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = json.loads(resp.read())
    if body.get("errors"):
        raise AssertionError(body["errors"])
    return body["data"]


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _start_dagster_dev(env: dict, log_path: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = start_group([str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port)],
                       log_path, env=env, cwd=REPO_ROOT, preexec_fn=_default_sigint)
    return proc, port


def _stop(proc: subprocess.Popen) -> None:
    stop_group(proc, signal.SIGINT)  # dagster dev stops its webserver and daemon on SIGINT


def _wait_until_serving(proc: subprocess.Popen, port: int, log_path: Path, timeout: float) -> bool:
    """True once the webserver answers and the code location is loaded; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster dev exited: {log_path.read_text()[-3000:]}")
        try:
            data = _gql(port, "{ workspaceOrError { ... on Workspace { locationEntries { name "
                              "locationOrLoadError { __typename } } } } }")
            entries = data["workspaceOrError"]["locationEntries"]
            if entries and entries[0]["locationOrLoadError"]:
                kind = entries[0]["locationOrLoadError"]["__typename"]
                assert kind == "RepositoryLocation", f"code location failed to load: {kind}"
                return True
        except OSError:
            pass
        time.sleep(1)
    return False


@pytest.fixture
def dagster_dev(real_source, tmp_path):
    """`dagster dev` as `make dev` starts it, on a fresh instance and an empty lake, reading the real file."""
    data_dir = tmp_path / "data"
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
    # DAGSTER_* CLI variables (e.g. DAGSTER_MODULE_NAME) would reach the webserver as a second target
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "ECOMMERCE_"))}
    env = {**base, "DAGSTER_HOME": str(home), "ECOMMERCE_DATA_DIR": str(data_dir),
           "ECOMMERCE_SOURCE": str(real_source), "ECOMMERCE_SENSOR_INTERVAL_SECONDS": "5",
           "DAGSTER_DISABLE_TELEMETRY": "1"}
    log_path = tmp_path / "dagster_dev.log"
    # On a loaded 2-core machine the code server can miss its start-up window: one clean restart.
    for attempt in (1, 2):
        proc, port = _start_dagster_dev(env, log_path)
        try:
            if _wait_until_serving(proc, port, log_path, timeout=240):
                break
        except BaseException:
            _stop(proc)
            raise
        _stop(proc)
        load = os.getloadavg()
        if attempt == 2:
            raise AssertionError(f"dagster dev did not serve within 240 s twice (load {load}): "
                                 f"{log_path.read_text()[-3000:]}")
    try:
        yield port, data_dir
    finally:
        _stop(proc)


def test_first_run_from_the_ui(dagster_dev, real_source):
    """What README's "The web UI" tells a user to do on a fresh instance, done in a real browser: the six
    layer groups on Lineage; turn on source_files_sensor in Automation (the file becomes a landing run);
    then on Lineage select the clean zone with the selection syntax, Materialize, pick all invoice
    months, launch the backfill; it succeeds and the months are in the lake."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: install Debian's chromium (make system-deps)")
    port, data_dir = dagster_dev
    base = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{base}/asset-groups", wait_until="networkidle", timeout=120_000)
        _dismiss_community_popup(page)
        # every layer's group is on the global asset lineage; expand each in the sidebar tree
        for group in LAYER_GROUPS:
            label = page.locator(f'div[title="{group}"]').first
            label.wait_for(timeout=60_000)
            row = label.locator('xpath=ancestor::div[contains(@class,"itemContainer")][1]')
            row.locator('[aria-label="arrow_drop_down"]').first.click()
        page.get_by_text("faiss_index", exact=True).first.wait_for(timeout=30_000)
        text = page.inner_text("body")
        missing = [a for a in CORE_ASSETS if a not in text]
        assert not missing, f"core assets not on the asset graph page: {missing}"
        page.screenshot(path=str(ARTIFACTS / "asset_graph.png"), full_page=True)

        # Automation: every sensor starts stopped; turn on source_files_sensor
        assert _sensor_status(port, "source_files_sensor") == "STOPPED"
        page.goto(f"{base}/automation", wait_until="networkidle", timeout=120_000)
        row = page.get_by_text("source_files_sensor", exact=True).locator(
            "xpath=ancestor::div[contains(@class,'ListItem_listItem')][1]")
        # the switch is the row's last checkbox, drawn by its label (the input itself is hidden)
        row.locator("input[type=checkbox]").last.locator("xpath=ancestor::label[1]").click()
        wait_for(lambda: _sensor_status(port, "source_files_sensor") == "RUNNING", 60, "the sensor to start", interval=2)
        landing = wait_for(lambda: _finished_run(port, "raw_s3_job"), 600, "the landing run", interval=2)
        assert landing["status"] == "SUCCESS", landing
        months = _invoice_months(port)
        expected = _months_in(real_source)
        assert months == expected, (months, expected)

        # Lineage: select the clean zone by the selection syntax, Materialize, all months, backfill
        page.goto(f"{base}/asset-groups", wait_until="networkidle", timeout=120_000)
        page.locator(".CodeMirror").first.click()
        page.keyboard.type('key:"clean_parquet')  # the editor closes the quote itself
        page.keyboard.press("End")
        page.keyboard.press("Enter")
        page.locator("button", has_text="Materialize").last.click()
        # clean_parquet and quarantine are one step: the UI says quarantine comes along
        page.get_by_text("Additional assets will be materialized").wait_for(timeout=30_000)
        page.get_by_role("button", name="Confirm").click()
        page.get_by_text("Partition selection").wait_for(timeout=30_000)
        page.get_by_role("button", name="All", exact=True).click()
        page.get_by_text(f"{len(expected)} partitions", exact=True).first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Launch backfill").click()
        backfill = wait_for(lambda: _finished_backfill(port), 900, "the backfill", interval=2)
        assert backfill["status"] == "COMPLETED_SUCCESS", backfill
        # one run for all the months (the clean zone's single-run backfill policy)
        assert len(backfill["runs"]) == 1 and backfill["runs"][0]["status"] == "SUCCESS", backfill
        page.goto(f"{base}/runs/{backfill['runs'][0]['runId']}", wait_until="networkidle")
        page.get_by_text("Success").first.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "backfill_success.png"), full_page=True)
        browser.close()

    # the clean table's folders: transactions/year=YYYY/month=M/ (Hive-style, as Athena reads them)
    written = {f"{p.parent.name.split('=')[1]}-{int(p.name.split('=')[1]):02d}"
               for p in (data_dir / "lake" / "clean" / "transactions").glob("year=*/month=*") if any(p.iterdir())}
    assert expected <= written, sorted(expected - written)


def _months_in(source: Path) -> set[str]:
    """The invoice months of the source file, read with pandas (not the platform's reader)."""
    import pandas as pd

    dates = pd.to_datetime(pd.read_parquet(source, columns=["InvoiceDate"])["InvoiceDate"], errors="coerce")
    return set(dates.dropna().dt.strftime("%Y-%m"))


def _sensor_status(port: int, name: str) -> str:
    data = _gql(port, """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
        ... on Sensor { sensorState { status } } } }""",
                {"selector": {"repositoryLocationName": "ecommerce_platform", "repositoryName": "__repository__",
                              "sensorName": name}})
    return data["sensorOrError"]["sensorState"]["status"]


def _finished_run(port: int, job: str) -> dict | None:
    data = _gql(port, """query($filter: RunsFilter) { runsOrError(filter: $filter) {
        ... on Runs { results { runId status } } } }""", {"filter": {"pipelineName": job}})
    runs = data["runsOrError"]["results"]
    return next((r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")), None)


def _invoice_months(port: int) -> set[str]:
    data = _gql(port, """{ assetNodeOrError(assetKey: {path: ["clean_parquet"]}) {
        ... on AssetNode { partitionKeysByDimension { partitionKeys } } } }""")
    (dimension,) = data["assetNodeOrError"]["partitionKeysByDimension"]
    return {k for k in dimension["partitionKeys"] if k != "undated"}


def _finished_backfill(port: int) -> dict | None:
    data = _gql(port, """{ partitionBackfillsOrError(limit: 1) { ... on PartitionBackfills {
        results { id status runs(limit: 10) { runId status } } } } }""")
    results = data["partitionBackfillsOrError"]["results"]
    if results and results[0]["status"] not in ("REQUESTED", "CANCELING"):
        return results[0]
    return None


def _dismiss_community_popup(page) -> None:
    """Dagster shows a "Join the Dagster community" dialog on a browser's first visit: skip it."""
    try:
        page.get_by_text("Join the Dagster community").wait_for(timeout=10_000)
    except Exception:  # noqa: BLE001 - not shown (a profile that has seen it)
        return
    page.get_by_role("button", name="Skip").click()
    page.get_by_text("Join the Dagster community").wait_for(state="hidden", timeout=10_000)
