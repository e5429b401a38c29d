"""Graph tests: the three EDA assets materialized on the real file (session clean lake), their
reports checked against the known facts of the data set, and reused when nothing changed."""

import json

import dagster as dg
import pytest

from ecommerce_platform_tests.conftest import REAL_ROWS

pytestmark = pytest.mark.graph


def _meta(result, key):
    mats = result.asset_materializations_for_node(key)
    return {k: v.value for k, v in mats[-1].metadata.items()}


def test_quality_report_on_real_file(eda_lake):
    data_dir, _, result, _ = eda_lake
    meta = _meta(result, "data_quality_report")
    assert meta["rows_in"] == REAL_ROWS
    assert meta["rows_duplicate"] == 5_268 and meta["rows_quarantined"] == 2
    assert meta["cancelled_invoices"] == 3_836
    assert meta["balanced"] is True
    assert "# Data quality report" in meta["report"] and "negative unit_price: 2" in meta["report"]
    data = json.loads((data_dir / "lake" / "reports" / "data_quality.json").read_text())
    assert data["totals"]["customers"] == 4_372 and data["totals"]["countries"] == 38
    assert len(data["by_month"]) == 13
    assert sum(m["lines"] for m in data["by_month"]) == data["cleaning"]["rows_clean"]
    # the famous 80,995-unit line (and its cancellation) top the largest lines
    assert {r["quantity"] for r in data["largest_lines"][:2]} == {80_995, -80_995}
    assert 0 < data["outliers"]["quantity"]["lines_outside"] < 0.01 * data["lines"]["sale_lines"]
    assert (data_dir / "lake" / "reports" / "data_quality.md").read_text().startswith("# Data quality report")


def test_figures_on_real_file(eda_lake):
    from ecommerce_platform.eda.figures import FIGURES

    data_dir, _, result, _ = eda_lake
    meta = _meta(result, "eda_figures")
    assert meta["figure_count"] == len(FIGURES)
    assert meta["customers_plotted"] == 4_334  # known customers with at least one sale
    files = sorted(p.stem for p in (data_dir / "lake" / "reports" / "figures").glob("*.png"))
    assert files == sorted(FIGURES)
    for name in FIGURES:
        assert "data:image/png;base64," in meta[f"figure/{name}"]


def test_profile_on_real_file(eda_lake):
    data_dir, _, result, _ = eda_lake
    meta = _meta(result, "data_profile")
    html = data_dir / "lake" / "reports" / "data_profile.html"
    assert meta["report"] == str(html)
    assert meta["sampled"] is True and meta["clean_rows_profiled"] == 100_000
    assert meta["raw_rows"] == REAL_ROWS and meta["raw_rows_profiled"] <= 100_000
    assert "sample" in meta["title"] and "100,000 of 536,639 clean rows" in meta["title"]
    assert "customer_id" in meta["alerts"]  # a quarter of the lines are guest checkouts
    text = html.read_text()
    assert f"<title>{meta['title']}" in text
    assert "<script src=\"http" not in text  # self-contained


def test_second_run_reuses_the_reports(eda_lake):
    from ecommerce_platform.eda.assets import data_profile, data_quality_report, eda_figures

    _, resources, first, _ = eda_lake
    again = dg.materialize([data_quality_report, eda_figures, data_profile], resources=resources)
    assert again.success
    for key in ("data_quality_report", "eda_figures", "data_profile"):
        meta = _meta(again, key)
        assert meta["reused_previous_output"] is True, key
    assert _meta(again, "data_quality_report")["report"] == _meta(first, "data_quality_report")["report"]
    assert _meta(again, "data_profile")["title"] == _meta(first, "data_profile")["title"]


def test_reports_need_the_clean_zone(tmp_path):
    from ecommerce_platform.eda.assets import data_quality_report
    from ecommerce_platform.resources import build_resources
    from ecommerce_platform_tests.conftest import platform_environment

    with platform_environment(tmp_path / "data"):
        result = dg.materialize([data_quality_report], resources=build_resources(), raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    assert "materialize clean_parquet first" in failure.to_string()


def test_definitions_load_the_eda_layer_without_heavy_imports():
    import subprocess
    import sys

    code = (
        "import sys, ecommerce_platform.definitions as d;"
        "keys = {k.to_user_string() for k in d.defs.resolve_asset_graph().get_all_asset_keys()};"
        "assert {'data_profile', 'data_quality_report', 'eda_figures'} <= keys, keys;"
        "jobs = {j.name for j in d.defs.resolve_all_job_defs()};"
        "assert {'eda_profile_job', 'eda_reports_job'} <= jobs, jobs;"
        "heavy = [m for m in ('matplotlib', 'seaborn', 'ydata_profiling') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
