"""Graph test: athena_views and sales_dashboard materialized on the real file; the views' figures
agree with an independent pandas computation over the raw reference file, and every view answers a
plain DuckDB client of the warehouse file."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import pandas as pd
import pytest

from ecommerce_platform.analytics.views import VIEWS

pytestmark = pytest.mark.graph


def _meta(result, key):
    mats = result.asset_materializations_for_node(key)
    return {k: v.value for k, v in mats[-1].metadata.items()}


def _pence(series: pd.Series) -> pd.Series:
    return (series.astype(float) * 100).round().astype("int64")


def test_assets_materialize_and_checks_pass(analytics_run):
    data_dir, _, result = analytics_run
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"views_reconcile": True, "views_not_empty": True, "net_revenue_plausible": True}
    views = _meta(result, "athena_views")
    assert views["engine"] == "duckdb"
    dash = _meta(result, "sales_dashboard")
    md = dash["dashboard"]
    assert md.count("](data:image/png;base64,") == 5
    assert (data_dir / "lake" / "analytics" / "dashboard" / "index.html").exists()
    for name in ("daily_sales", "monthly_trend", "top_products", "sales_by_country", "top_customers"):
        png = (data_dir / "lake" / "analytics" / "dashboard" / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_headline_figures_match_independent_computation(analytics_run, reference):
    _, _, result = analytics_run
    meta = _meta(result, "athena_views")
    assert round(meta["net_revenue_gbp"] * 100) == reference["net_pence"]
    assert round(meta["gross_sales_gbp"] * 100) == reference["gross_pence"]
    assert round(meta["returns_gbp"] * 100) == reference["returns_pence"]
    assert meta["orders"] == reference["orders"]
    assert meta["customers"] == reference["customers"]
    # every reconciled view sums to the same total, to the penny
    assert {round(v * 100) for v in meta["net_revenue_by_view"].values()} == {reference["net_pence"]}


def test_every_view_matches_reference_from_a_plain_duckdb_client(analytics_run, reference):
    data_dir, _, _ = analytics_run
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        counts = {v: con.execute(f"SELECT count(*) FROM {v}").fetchone()[0] for v in VIEWS}
        daily = con.execute("SELECT * FROM daily_sales ORDER BY sale_date").df()
        monthly = con.execute("SELECT * FROM monthly_sales ORDER BY sale_month").df()
        countries = con.execute("SELECT * FROM sales_by_country").df()
        products = con.execute("SELECT * FROM popular_products ORDER BY revenue_rank").df()
        customers = con.execute("SELECT * FROM top_customers ORDER BY revenue_rank").df()
        returns = con.execute("SELECT * FROM returns ORDER BY sale_month").df()
        by_country_day = con.execute(
            "SELECT sale_date, sum(net_revenue) AS net FROM daily_sales_by_country GROUP BY 1 ORDER BY 1"
        ).df()
    finally:
        con.close()
    assert all(n > 0 for n in counts.values()), counts

    # daily: every day (no LIMIT), net revenue and orders per day
    ref_day = reference["net_by_day"]
    assert len(daily) == len(ref_day) == 305
    assert dict(zip(pd.to_datetime(daily["sale_date"]), _pence(daily["net_revenue"]))) == ref_day.to_dict()
    orders_by_day = reference["orders_by_day"].reindex(ref_day.index, fill_value=0)
    assert list(daily["orders"]) == list(orders_by_day)
    assert list(_pence(by_country_day["net"])) == list(_pence(daily["net_revenue"]))

    assert dict(zip(pd.to_datetime(monthly["sale_month"]), _pence(monthly["net_revenue"]))) == \
        reference["net_by_month"].to_dict()
    assert dict(zip(countries["country"], _pence(countries["net_revenue"]))) == reference["net_by_country"].to_dict()
    assert countries["share_of_net_revenue"].sum() == pytest.approx(1.0, abs=1e-4)

    # products: every product's net revenue; the top 10 ranked and named by their most frequent description
    assert dict(zip(products["stock_code"], _pence(products["net_revenue"]))) == reference["net_by_product"].to_dict()
    lines = pd.concat([reference["sales"], reference["returns"]])
    for _, row in products.head(10).iterrows():
        counts_by_name = lines[lines["code"] == row["stock_code"]]["description"].value_counts()
        best = counts_by_name[counts_by_name == counts_by_name.max()].index.min()
        assert row["description"] == best, row["stock_code"]
        ref_sales = reference["sales"][reference["sales"]["code"] == row["stock_code"]]
        assert row["units_sold"] == ref_sales["qty"].sum()
        assert row["orders"] == ref_sales["invoice"].nunique()
        assert row["customers"] == ref_sales["customer"].nunique()
    top_ref = reference["net_by_product"].sort_values(ascending=False).head(10)
    assert list(_pence(products["net_revenue"].head(10))) == list(top_ref)
    assert products.iloc[0]["description"] == "REGENCY CAKESTAND 3 TIER"

    # customers: guests excluded, net revenue per customer, first/last purchase
    assert customers["customer_id"].notna().all()
    assert dict(zip(customers["customer_id"], _pence(customers["net_revenue"]))) == reference["net_by_customer"].to_dict()
    top = customers.iloc[0]
    ref_top = reference["sales"][reference["sales"]["customer"] == top["customer_id"]]
    assert pd.Timestamp(top["first_purchase"]) == ref_top["ts"].min()
    assert pd.Timestamp(top["last_purchase"]) == ref_top["ts"].max()

    assert int(_pence(returns["returns_value"]).sum()) == reference["returns_pence"]


def test_rerun_reuses_figures(analytics_run):
    from ecommerce_platform.analytics import assets as analytics_assets
    from ecommerce_platform_tests.conftest import platform_environment

    data_dir, resources, first = analytics_run
    with platform_environment(data_dir):
        again = dg.materialize([analytics_assets.athena_views, analytics_assets.sales_dashboard],
                               resources=resources)
    assert again.success
    views, dash = _meta(again, "athena_views"), _meta(again, "sales_dashboard")
    assert views["reused_previous_output"] is True and dash["reused_previous_output"] is True
    assert views["net_revenue_gbp"] == _meta(first, "athena_views")["net_revenue_gbp"]
    manifest = json.loads((data_dir / "lake" / "analytics" / "_manifests" / "athena_views.json").read_text())
    assert manifest["row_counts"]["daily_sales"] == 305
