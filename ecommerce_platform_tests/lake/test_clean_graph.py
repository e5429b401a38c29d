"""Graph test: raw_s3 and clean_parquet materialized on the real file, reconciled against the
facts of the data set (data/reference/README.md)."""

import dagster as dg
import duckdb
import pytest

from ecommerce_platform_tests.conftest import REAL_ROWS

pytestmark = pytest.mark.graph


def _meta(result, key):
    mats = result.asset_materializations_for_node(key)
    return {k: v.value for k, v in mats[-1].metadata.items()}


def test_raw_and_clean_on_real_file(platform_env, real_source):
    from ecommerce_platform.ingestion.assets import raw_s3
    from ecommerce_platform.lake import assets as lake_assets
    from ecommerce_platform.lake.assets import clean_parquet
    from ecommerce_platform.resources import build_resources

    resources = build_resources()
    checks = dg.load_asset_checks_from_modules([lake_assets])
    result = dg.materialize([raw_s3, clean_parquet, *checks], resources=resources)
    assert result.success
    raw = _meta(result, "raw_s3")
    assert raw["rows"] == REAL_ROWS
    assert raw["sha256"] == "0a3bc1acf50608cb76604364a49626e1a9b9b8bb7f7bdb95b05ce72427b2187f"
    clean = _meta(result, "clean_parquet")
    assert clean["rows_in"] == REAL_ROWS
    assert clean["rows_duplicate"] == 5_268
    assert clean["rows_in"] == clean["rows_clean"] + clean["rows_quarantined"] + clean["rows_duplicate"]
    assert clean["rows_quarantined"] == 2  # the two negative-price bad-debt adjustments
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {
        "clean_schema", "clean_reconciliation", "clean_required_not_null", "clean_row_count_bounds"}
    for check in evaluations:
        assert check.passed, check.check_name

    # The landed file is byte-identical to the source, under an ingest-date partition.
    landed = list((platform_env / "lake" / "raw" / "batch").glob("ingest_date=*/*/online_retail.parquet"))
    assert len(landed) == 1 and landed[0].read_bytes() == real_source.read_bytes()

    # The clean zone is partitioned by invoice year/month and readable by any DuckDB.
    con = duckdb.connect()
    parts = sorted(p.relative_to(platform_env / "lake" / "clean" / "transactions").parts[:2]
                   for p in (platform_env / "lake" / "clean" / "transactions").rglob("*.parquet"))
    assert ("year=2010", "month=12") in parts and ("year=2011", "month=12") in parts
    glob = str(platform_env / "lake" / "clean" / "transactions" / "**" / "*.parquet")
    facts = con.execute(
        f"""SELECT count(DISTINCT invoice_no), count(DISTINCT invoice_no) FILTER (WHERE is_cancellation),
                   count(DISTINCT customer_id), count(DISTINCT country)
            FROM read_parquet('{glob}', hive_partitioning=true)"""
    ).fetchone()
    # the 2 quarantined rows are whole invoices (A563186, A563187: bad-debt adjustments)
    assert facts == (25_900 - 2, 3_836, 4_372, 38)
    qglob = str(platform_env / "lake" / "quarantine" / "transactions" / "*.parquet")
    assert con.execute(
        f"SELECT count(DISTINCT invoice_no) FROM (SELECT invoice_no FROM read_parquet('{glob}', hive_partitioning=true)"
        f" UNION ALL SELECT invoice_no FROM read_parquet('{qglob}'))"
    ).fetchone()[0] == 25_900

    # The warehouse file answers a plain query.
    wh = duckdb.connect(str(platform_env / "warehouse.duckdb"), read_only=True)
    assert wh.execute("SELECT count(*) FROM transactions").fetchone()[0] == clean["rows_clean"]
    wh.close()

    # Materializing again: raw is a no-op, clean is reused, figures identical.
    again = dg.materialize([raw_s3, clean_parquet, *checks], resources=resources)
    assert _meta(again, "raw_s3")["newly_landed"] == 0
    clean2 = _meta(again, "clean_parquet")
    assert clean2["reused_previous_output"] is True
    assert {k: clean2[k] for k in ("rows_in", "rows_clean", "rows_quarantined", "rows_duplicate")} == {
        k: clean[k] for k in ("rows_in", "rows_clean", "rows_quarantined", "rows_duplicate")
    }
