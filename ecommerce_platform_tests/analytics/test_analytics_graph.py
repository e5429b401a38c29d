"""Graph tests: the nine views and the dashboard materialized on the real file; the views' figures agree
with an independent pandas computation over the raw reference file, every view answers a plain DuckDB
client of the warehouse file, metadata is small and points to files, and a second run reuses everything
except what is gone (a view lost by the catalog, a dashboard file deleted)."""

from __future__ import annotations

import dagster as dg
import duckdb
import pandas as pd
import pytest

from ecommerce_platform.analytics.views import VIEWS

pytestmark = pytest.mark.graph
CHART_NAMES = ("daily_sales", "monthly_trend", "top_products", "sales_by_country", "top_customers")


def _meta(result, key):
    """The metadata of the last materialization of ``key`` in the run."""
    for event in reversed(result.get_asset_materialization_events()):
        if event.asset_key.to_user_string() == key:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"{key} was not materialized")


def _pence(series: pd.Series) -> pd.Series:
    return (series.astype(float) * 100).round().astype("int64")


def test_assets_materialize_and_checks_pass(analytics_run):
    data_dir, _, result, _ = analytics_run
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"views_reconcile": True, "net_revenue_plausible": True,
                      **{f"{v}_not_empty": True for v in VIEWS}}
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {*VIEWS, "sales_dashboard"}
    folder = data_dir / "lake" / "analytics" / "dashboard"
    dash = _meta(result, "sales_dashboard")
    assert dash["dashboard"] == str(folder / "index.html") and (folder / "index.html").is_file()
    for name in CHART_NAMES:
        png = folder / f"{name}.png"
        assert dash[f"chart/{name}"] == str(png)
        assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000
    html = (folder / "index.html").read_text()
    for name in CHART_NAMES:  # by relative path: the page works from the folder and from a web server
        assert f'src="{name}.png"' in html
    assert "base64" not in html


def test_metadata_is_small_and_holds_no_image(analytics_run):
    _, _, result, _ = analytics_run
    for event in result.get_asset_materialization_events():
        text = dg.serialize_value(event.materialization.metadata)
        assert len(text.encode()) < 50_000, (event.asset_key, len(text))
        assert "base64" not in text and "data:image" not in text, event.asset_key


def test_headline_figures_match_independent_computation(analytics_run, reference):
    _, _, result, _ = analytics_run
    kpis = _meta(result, "sales_kpis")["preview"].records[0].data
    assert round(kpis["net_revenue"] * 100) == reference["net_pence"]
    assert round(kpis["gross_sales"] * 100) == reference["gross_pence"]
    assert round(kpis["returns_value"] * 100) == reference["returns_pence"]
    assert kpis["orders"] == reference["orders"] and kpis["customers"] == reference["customers"]
    assert kpis["countries"] == reference["countries"] == 37  # 'Unspecified' is not one of them
    dash = _meta(result, "sales_dashboard")
    assert round(dash["net_revenue_gbp"] * 100) == reference["net_pence"]
    assert (dash["orders"], dash["customers"], dash["countries"]) == (reference["orders"], reference["customers"], 37)
    assert round(dash["unspecified_country_net_revenue_gbp"] * 100) == reference["net_by_country"]["Unspecified"]
    for value in (dash["net_revenue_gbp"], dash["gross_sales_gbp"], dash["avg_order_value_gbp"]):
        assert value == round(value, 2)  # pence
    for view in ("daily_sales", "daily_sales_by_country", "monthly_sales", "popular_products", "sales_by_country"):
        assert round(_meta(result, view)["net_revenue_gbp"] * 100) == reference["net_pence"], view


def test_every_view_matches_reference_from_a_plain_duckdb_client(analytics_run, reference):
    data_dir, _, _, _ = analytics_run
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

    # countries: every row (the lines without a country too), ranked without 'Unspecified'
    assert dict(zip(countries["country"], _pence(countries["net_revenue"]))) == reference["net_by_country"].to_dict()
    assert countries["share_of_net_revenue"].sum() == pytest.approx(1.0, abs=1e-4)
    unranked = countries[countries["revenue_rank"].isna()]
    assert list(unranked["country"]) == ["Unspecified"]
    ranked = countries.dropna(subset=["revenue_rank"]).sort_values("revenue_rank")
    assert list(ranked["revenue_rank"]) == list(range(1, 38))
    ref_rank = reference["net_by_country"].drop("Unspecified").reset_index()
    ref_rank = ref_rank.sort_values(["pence", "country"], ascending=[False, True])
    assert list(ranked["country"]) == list(ref_rank["country"])

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

    # customers: guests excluded, net revenue per customer, first/last purchase, a real main country
    assert customers["customer_id"].notna().all()
    assert dict(zip(customers["customer_id"], _pence(customers["net_revenue"]))) == reference["net_by_customer"].to_dict()
    top = customers.iloc[0]
    ref_top = reference["sales"][reference["sales"]["customer"] == top["customer_id"]]
    assert pd.Timestamp(top["first_purchase"]) == ref_top["ts"].min()
    assert pd.Timestamp(top["last_purchase"]) == ref_top["ts"].max()
    known = lines[lines["country"] != "Unspecified"].dropna(subset=["customer"])
    has_known_country = set(known["customer"])
    marked = set(customers.loc[customers["country"] == "Unspecified", "customer_id"])
    assert not marked & has_known_country  # 'Unspecified' only for customers with no real country at all

    assert int(_pence(returns["returns_value"]).sum()) == reference["returns_pence"]


def test_rerun_reuses_and_recreates_only_what_is_gone(analytics_run):
    from ecommerce_platform.analytics import assets
    from ecommerce_platform_tests.conftest import platform_environment

    data_dir, resources, first, instance = analytics_run
    with platform_environment(data_dir):
        again = dg.materialize(assets.ASSETS, resources=resources, instance=instance)
    assert again.success
    for key in (*VIEWS, "sales_dashboard"):
        assert _meta(again, key).get("reused_previous_output") is True, key
    assert _meta(again, "sales_kpis")["preview"] == _meta(first, "sales_kpis")["preview"]

    # The catalog lost a view and the dashboard page was deleted: exactly those are made again.
    lake = data_dir / "lake"
    (lake / "_catalog" / "duckdb" / "daily_sales.json").unlink()
    (lake / "analytics" / "dashboard" / "index.html").unlink()
    with platform_environment(data_dir):
        third = dg.materialize(assets.ASSETS, resources=resources, instance=instance)
    assert third.success
    rebuilt = {k for k in (*VIEWS, "sales_dashboard") if not _meta(third, k).get("reused_previous_output")}
    assert rebuilt == {"daily_sales", "sales_dashboard"}
    assert (lake / "_catalog" / "duckdb" / "daily_sales.json").is_file()
    assert (lake / "analytics" / "dashboard" / "index.html").is_file()
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM daily_sales").fetchone()[0] == 305
    finally:
        con.close()


def test_forced_run_rebuilds(analytics_run):
    from ecommerce_platform.analytics import assets
    from ecommerce_platform.recompute import FORCE_TAG
    from ecommerce_platform_tests.conftest import platform_environment

    data_dir, resources, _, instance = analytics_run
    with platform_environment(data_dir):
        forced = dg.materialize(assets.ASSETS, resources=resources, instance=instance,
                                selection=["sale_lines", "sales_kpis"], tags={FORCE_TAG: "true"})
    assert forced.success
    for key in ("sale_lines", "sales_kpis"):
        assert not _meta(forced, key).get("reused_previous_output"), key
    materialized = {e.asset_key.to_user_string() for e in forced.get_asset_materialization_events()}
    assert materialized == {"sale_lines", "sales_kpis"}  # a subset ran
