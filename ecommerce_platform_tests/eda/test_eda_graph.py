"""Graph tests: the three EDA assets materialized on the real file (session clean lake), their reports
checked against the known facts of the data set and against figures computed here from the raw file;
the EDA money figures equal the analytics views' to the penny; metadata points to files (no image, no
report blob); a second run reuses what is there and rebuilds what is gone."""

import json
import re

import dagster as dg
import pandas as pd
import pytest

from ecommerce_platform_tests.conftest import REAL_ROWS, platform_environment
from ecommerce_platform_tests.eda.conftest import EDA_ASSETS, eda_definitions, profile_config

pytestmark = pytest.mark.graph
# Written out here (not imported): UTF-8 text decoded as Windows-1252 ('Â£', 'Ã©', 'â€™')
MOJIBAKE = re.compile("Â[\u00a0-\u00bf]|Ã[\u0080-\u00bf]|â€")


def _meta(result, key):
    for event in reversed(result.get_asset_materialization_events()):
        if event.asset_key.to_user_string() == key:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"{key} was not materialized")


@pytest.fixture(scope="module")
def raw_clean_lines(real_source) -> pd.DataFrame:
    """The raw file as the clean zone should hold it: exact duplicates folded, negative prices out."""
    raw = pd.read_parquet(real_source).drop_duplicates()
    return raw[raw["UnitPrice"] >= 0]


def test_quality_report_on_real_file(eda_lake, raw_clean_lines):
    data_dir, _, result, _, _ = eda_lake
    meta = _meta(result, "data_quality_report")
    assert meta["rows_in"] == REAL_ROWS
    assert meta["rows_duplicate"] == 5_268 and meta["rows_quarantined"] == 2
    assert meta["rows_clean"] == len(raw_clean_lines) == 536_639
    assert meta["quarantine_by_reason"] == {"negative unit_price": 2}
    assert meta["cancelled_invoices"] == 3_836 and meta["balanced"] is True and meta["months"] == 13
    assert meta["countries"] == 37  # 38 names in the file, one of them 'Unspecified'
    assert meta["unspecified_country_lines"] == int((raw_clean_lines["Country"] == "Unspecified").sum())
    assert meta["report"] == str(data_dir / "lake" / "reports" / "data_quality.md")
    md = (data_dir / "lake" / "reports" / "data_quality.md").read_text()
    assert md.startswith("# Data quality report") and "negative unit_price: 2" in md
    data = json.loads((data_dir / "lake" / "reports" / "data_quality.json").read_text())
    assert data["totals"]["customers"] == 4_372 and data["totals"]["countries"] == 37
    assert len(data["by_month"]) == 13
    assert sum(m["lines"] for m in data["by_month"]) == data["cleaning"]["rows_clean"]
    # the famous 80,995-unit line (and its cancellation) top the largest lines
    assert {r["quantity"] for r in data["largest_lines"][:2]} == {80_995, -80_995}
    assert 0 < data["outliers"]["quantity"]["lines_outside"] < 0.01 * data["lines"]["sale_lines"]


def test_quality_report_flags_extremes_and_mojibake_on_real_file(eda_lake, raw_clean_lines):
    data_dir, _, result, _, _ = eda_lake
    meta = _meta(result, "data_quality_report")
    data = json.loads((data_dir / "lake" / "reports" / "data_quality.json").read_text())
    extreme_qty = int((raw_clean_lines["Quantity"].abs() >= 10_000).sum())
    extreme_price = int((raw_clean_lines["UnitPrice"] >= 5_000).sum())
    assert meta["extreme_quantity_lines"] == data["flags"]["extreme_quantity"]["lines"] == extreme_qty == 5
    assert meta["extreme_unit_price_lines"] == data["flags"]["extreme_unit_price"]["lines"] == extreme_price == 31
    examples = data["flags"]["extreme_examples"]
    assert examples and all(abs(e["quantity"]) >= 10_000 or e["unit_price"] >= 5_000 for e in examples)
    described = raw_clean_lines["Description"].dropna().str.strip()
    mojibake = int(described.map(lambda s: bool(MOJIBAKE.search(s))).sum())
    assert mojibake > 0  # the gift vouchers' 'Â£'
    assert meta["mojibake_by_column"]["description"] == mojibake
    assert meta["mojibake_lines"] == mojibake  # no other text column has any
    shown = data["flags"]["mojibake"]["examples"]["description"]
    assert 0 < len(shown) <= 5 and all(MOJIBAKE.search(e["value"]) for e in shown)
    assert "Gift Voucher Â£" in shown[0]["value"]


def test_quality_report_reconciles_from_the_clean_zones_own_record(eda_lake):
    from ecommerce_platform.lake.clean import month_results

    data_dir, resources, _, _, _ = eda_lake
    data = json.loads((data_dir / "lake" / "reports" / "data_quality.json").read_text())
    recorded = month_results(resources["lake"])
    rows = {r["month"]: r for r in data["cleaning"]["by_month"]}
    assert set(rows) == set(recorded)
    for month, rec in recorded.items():
        r = rows[month]
        assert (r["rows_in"], r["rows_clean"], r["rows_duplicate"], r["rows_quarantined"]) == \
            (rec.rows_in, rec.rows_clean, rec.rows_duplicate, rec.rows_quarantined), month
        assert r["balanced"] and r["matches_clean_record"] and r["difference"] == 0
    assert rows["2011-08"]["quarantine_by_reason"] == {"negative unit_price": 2}


def test_eda_money_equals_the_views_to_the_penny(eda_lake):
    """The EDA layer's daily, monthly and total sales are the views' (it never computes revenue)."""
    data_dir, resources, result, _, _ = eda_lake
    warehouse = resources["warehouse"]

    def pence(v) -> int:
        return int(round(float(v) * 100))

    views_daily = warehouse.query_df("SELECT sale_date, gross_sales, returns_value, net_revenue FROM daily_sales "
                                     "ORDER BY sale_date")
    kpis = warehouse.query_df("SELECT gross_sales, returns_value, net_revenue FROM sales_kpis").iloc[0]
    monthly = warehouse.query_df("SELECT sale_month, net_revenue FROM monthly_sales ORDER BY sale_month")

    # the daily series the sales figure shows (written beside it)
    series = pd.read_csv(data_dir / "lake" / "reports" / "figures" / "sales_over_time.csv", dtype={"net_revenue": str})
    assert list(series["sale_date"]) == [d.strftime("%Y-%m-%d") for d in pd.to_datetime(views_daily["sale_date"])]
    for col in ("gross_sales", "returns_value", "net_revenue"):
        assert [pence(v) for v in series[col]] == [pence(v) for v in views_daily[col]], col
    assert sum(pence(v) for v in series["net_revenue"]) == pence(kpis["net_revenue"]) == 976_995_983

    # the quality report's money: totals and months
    data = json.loads((data_dir / "lake" / "reports" / "data_quality.json").read_text())
    for col in ("gross_sales", "returns_value", "net_revenue"):
        assert pence(data["money"][col]) == pence(kpis[col]), col
    by_month = {f"{m['year']:04d}-{m['month']:02d}": pence(m["net_revenue"]) for m in data["by_month"]}
    assert by_month == {f"{d:%Y-%m}": pence(v) for d, v in zip(pd.to_datetime(monthly["sale_month"]), monthly["net_revenue"])}
    assert pence(_meta(result, "data_quality_report")["net_revenue_gbp"]) == pence(kpis["net_revenue"])


def test_figures_on_real_file(eda_lake):
    from ecommerce_platform.eda.figures import FIGURES

    data_dir, _, result, _, _ = eda_lake
    meta = _meta(result, "eda_figures")
    folder = data_dir / "lake" / "reports" / "figures"
    assert meta["figure_count"] == len(FIGURES) and meta["figures_without_data"] == []
    assert meta["customers_plotted"] == 4_334  # known customers with at least one sale
    assert sorted(p.stem for p in folder.glob("*.png")) == sorted(FIGURES)
    for name in FIGURES:
        path = folder / f"{name}.png"
        assert meta[f"figure/{name}"] == str(path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_profile_reads_raw_lines_and_is_sampled(eda_lake):
    data_dir, _, result, _, _ = eda_lake
    meta = _meta(result, "data_profile")
    html = data_dir / "lake" / "reports" / "data_profile.html"
    assert meta["report"] == str(html)
    assert meta["sampled"] is True and meta["sample_rows"] == 5_000
    assert meta["clean_rows"] == 536_639 and meta["clean_rows_profiled"] == 5_000
    assert meta["raw_rows"] == REAL_ROWS  # the table raw_lines: every landed line
    # every 109th record of the source (541,909 / 5,000 rounded up): 4,971 records
    assert meta["raw_rows_profiled"] == REAL_ROWS // 109
    assert "sample" in meta["title"] and "5,000 of 536,639 clean rows" in meta["title"]
    assert any("customer_id" in a for a in meta["clean_alerts"])  # a quarter of the lines are guest checkouts
    text = html.read_text()
    assert f"<title>{meta['title']}" in text
    assert "<script src=\"http" not in text  # self-contained
    summary = json.loads((data_dir / "lake" / "reports" / "data_profile.json").read_text())
    assert summary["title"] == meta["title"] and summary["raw_rows"] == REAL_ROWS


def test_metadata_is_small_and_holds_no_image_or_report(eda_lake):
    _, _, result, _, _ = eda_lake
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() not in EDA_ASSETS:
            continue
        text = dg.serialize_value(event.materialization.metadata)
        assert len(text.encode()) < 50_000, (event.asset_key, len(text))
        assert "base64" not in text and "data:image" not in text
        assert "## By month" not in text  # the report is a file, not a metadata blob


def test_second_run_reuses_and_rebuilds_what_is_gone(eda_lake):
    data_dir, resources, first, _, instance = eda_lake
    with platform_environment(data_dir):
        again = dg.materialize(eda_definitions(), resources=resources, instance=instance, selection=EDA_ASSETS,
                               run_config=profile_config())
    assert again.success
    for key in EDA_ASSETS:
        assert _meta(again, key).get("reused_previous_output") is True, key
    assert _meta(again, "data_quality_report")["summary"] == _meta(first, "data_quality_report")["summary"]

    # a report file deleted: that report is written again, the others are reused
    (data_dir / "lake" / "reports" / "data_quality.json").unlink()
    with platform_environment(data_dir):
        third = dg.materialize(eda_definitions(), resources=resources, instance=instance,
                               selection=["data_quality_report", "eda_figures"])
    assert third.success
    assert not _meta(third, "data_quality_report").get("reused_previous_output")
    assert _meta(third, "eda_figures").get("reused_previous_output") is True
    assert (data_dir / "lake" / "reports" / "data_quality.json").is_file()


def test_quality_report_needs_the_clean_zone(tmp_path):
    from ecommerce_platform.eda.assets import data_quality_report
    from ecommerce_platform.resources import build_resources

    with platform_environment(tmp_path / "data"):
        result = dg.materialize([data_quality_report], resources=build_resources(), raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    assert "materialize clean_parquet first" in failure.to_string()
