"""The sale definition exercised end to end: a crafted file that hits every branch of it (postage POST,
DOT and C2, fees AMAZONFEE and BANK CHARGES, a gift voucher GIFT_*, a zero and a negative unit price,
a cancelled line with a POSITIVE quantity, a cancelled manual line, a stock adjustment, guests with no
customer id, a line without a country, an exact duplicate, a normal sale and a normal return) is landed
and cleaned by the platform's REAL SQL, the views are created by the real asset, and every view's
figures are compared with expectations worked out by hand below (line numbers: crafted.py)."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from ecommerce_platform_tests.analytics.crafted import SALE_DEFINITION_ROWS, cleaned_warehouse


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    """(warehouse, result): the crafted file cleaned; the nine views, every check and the dashboard in
    one run (as in test_checks.py, where crafted input makes a check fail and stops the dashboard)."""
    from ecommerce_platform.analytics import assets

    warehouse = cleaned_warehouse(tmp_path_factory.mktemp("sale_definition"), SALE_DEFINITION_ROWS)
    result = dg.materialize([*assets.ASSETS, *assets.CHECKS], resources={"warehouse": warehouse})
    assert result.success
    return warehouse, result


def _rows(warehouse, sql: str) -> list[dict]:
    df = warehouse.query_df(sql)
    out = []
    for rec in df.to_dict("records"):
        row = {}
        for k, v in rec.items():
            if isinstance(v, pd.Timestamp):
                v = v.date().isoformat() if v == v.normalize() else v.isoformat(sep=" ", timespec="minutes")
            elif v is pd.NA or (isinstance(v, float) and v != v):
                v = None
            elif isinstance(v, float):
                v = round(v, 4)
            row[k] = v
        out.append(row)
    return out


def _tuples(crafted, sql: str) -> list[tuple]:
    """The rows of ``sql`` on the crafted warehouse as tuples, in the order of its columns."""
    warehouse, _ = crafted
    return [tuple(r.values()) for r in _rows(warehouse, sql)]


def test_the_clean_zone_of_the_crafted_file(crafted):
    warehouse, _ = crafted
    # 24 lines: L4 is an exact duplicate of L1 (folded), L13 has a negative price (quarantined)
    counts = warehouse.query_df("SELECT COUNT(*) AS n, SUM(source_lines) AS lines FROM transactions").iloc[0]
    assert (int(counts["n"]), int(counts["lines"])) == (22, 23)
    q = warehouse.query_df("SELECT reason, invoice_no FROM quarantine")
    assert list(zip(q["reason"], q["invoice_no"])) == [("negative unit_price", "536008")]
    flags = warehouse.query_df(
        "SELECT invoice_no, stock_code, quantity, is_sale, is_return, country FROM transactions "
        "ORDER BY invoice_no, stock_code")
    sales = set(zip(flags[flags["is_sale"]]["invoice_no"], flags[flags["is_sale"]]["stock_code"]))
    assert sales == {("536001", "85123A"), ("536001", "22423"), ("536002", "22423"), ("536003", "21731"),
                     ("536009", "21731"), ("536014", "22423"), ("536014", "85123A"), ("536015", "85123A"),
                     ("536016", "21731"), ("536016", "22139"), ("536017", "22139")}
    returns = set(zip(flags[flags["is_return"]]["invoice_no"], flags[flags["is_return"]]["stock_code"]))
    assert returns == {("C536012", "22423")}
    # the line without a country is written as the placeholder 'Unspecified'
    assert set(flags[flags["invoice_no"] == "536009"]["country"]) == {"Unspecified"}


def test_sale_lines(crafted):
    warehouse, _ = crafted
    rows = _rows(warehouse, "SELECT invoice_no, stock_code, units_sold, units_returned, sale_amount, return_amount "
                            "FROM sale_lines ORDER BY invoice_no, stock_code")
    got = {(r["invoice_no"], r["stock_code"]): (r["units_sold"], r["units_returned"], r["sale_amount"], r["return_amount"])
           for r in rows}
    assert got == {
        ("536001", "22423"): (2, 0, 25.50, 0.0), ("536001", "85123A"): (6, 0, 15.30, 0.0),  # L2, L1 (L4 folded)
        ("536002", "22423"): (1, 0, 12.75, 0.0),  # L5 guest
        ("536003", "21731"): (3, 0, 4.95, 0.0),  # L7
        ("536009", "21731"): (2, 0, 3.30, 0.0),  # L14 guest without a country
        ("536014", "22423"): (4, 0, 51.00, 0.0), ("536014", "85123A"): (1, 0, 2.95, 0.0),  # L19, L20
        ("536015", "85123A"): (12, 0, 30.60, 0.0),  # L21
        ("536016", "21731"): (10, 0, 16.50, 0.0), ("536016", "22139"): (1, 0, 4.95, 0.0),  # L22, L23
        ("536017", "22139"): (2, 0, 9.90, 0.0),  # L24
        ("C536012", "22423"): (0, 1, 0.0, 12.75),  # L17: the one return
    }
    # never a sale or a return: postage, carriage, fees, voucher, free line, stock adjustment, the cancelled
    # line with a positive quantity, the cancelled manual line
    for invoice in ("536004", "536005", "536006", "536007", "536010", "C536011", "C536013"):
        assert all(r["invoice_no"] != invoice for r in rows), invoice


def test_daily_sales(crafted):
    warehouse, _ = crafted
    assert _rows(warehouse, "SELECT * FROM daily_sales ORDER BY sale_date") == [
        # 1 Mar: L1 15.30 + L2 25.50 + L5 12.75 + L7 4.95 + L14 3.30 = 61.80 in invoices 536001/2/3/9;
        # customers 17850 and 12345 (the guests are not customers); units 6+2+1+3+2; AOV 61.80 / 4
        {"sale_date": "2011-03-01", "gross_sales": 61.80, "returns_value": 0.0, "net_revenue": 61.80, "orders": 4,
         "units_sold": 14, "units_returned": 0, "customers": 2, "avg_order_value": 15.45},
        # 2 Mar: L19 51.00 + L20 2.95; the return L17 12.75
        {"sale_date": "2011-03-02", "gross_sales": 53.95, "returns_value": 12.75, "net_revenue": 41.20, "orders": 1,
         "units_sold": 5, "units_returned": 1, "customers": 1, "avg_order_value": 53.95},
        # 5 Apr: L21 30.60 + L22 16.50 + L23 4.95 + L24 9.90 in 536015/6/7; AOV 61.95 / 3
        {"sale_date": "2011-04-05", "gross_sales": 61.95, "returns_value": 0.0, "net_revenue": 61.95, "orders": 3,
         "units_sold": 25, "units_returned": 0, "customers": 2, "avg_order_value": 20.65},
    ]


def test_daily_sales_by_country(crafted):
    assert _tuples(crafted, "SELECT sale_date, country, gross_sales, returns_value, net_revenue, orders, customers "
                            "FROM daily_sales_by_country ORDER BY sale_date, country") == [
        ("2011-03-01", "France", 4.95, 0.0, 4.95, 1, 1),
        ("2011-03-01", "United Kingdom", 53.55, 0.0, 53.55, 2, 1),  # L1 + L2 + L5 (guest)
        ("2011-03-01", "Unspecified", 3.30, 0.0, 3.30, 1, 0),  # L14: kept, so that the day adds up
        ("2011-03-02", "France", 53.95, 0.0, 53.95, 1, 1),
        ("2011-03-02", "United Kingdom", 0.0, 12.75, -12.75, 0, 0),  # the return only
        ("2011-04-05", "Germany", 9.90, 0.0, 9.90, 1, 1),
        ("2011-04-05", "United Kingdom", 30.60, 0.0, 30.60, 1, 1),
        ("2011-04-05", "Unspecified", 21.45, 0.0, 21.45, 1, 1),  # L22 + L23
    ]


def test_monthly_sales_and_returns(crafted):
    warehouse, _ = crafted
    monthly = _rows(warehouse, "SELECT sale_month, first_day, last_day, trading_days, gross_sales, returns_value, "
                               "net_revenue, orders, units_sold, customers, new_customers, avg_order_value "
                               "FROM monthly_sales ORDER BY sale_month")
    assert monthly == [
        # March: 61.80 + 53.95 gross, 12.75 returned; 5 orders; 17850 and 12345 are new
        {"sale_month": "2011-03-01", "first_day": "2011-03-01", "last_day": "2011-03-02", "trading_days": 2,
         "gross_sales": 115.75, "returns_value": 12.75, "net_revenue": 103.00, "orders": 5, "units_sold": 19,
         "customers": 2, "new_customers": 2, "avg_order_value": 23.15},
        # April: 17850 again (not new), 55555 new
        {"sale_month": "2011-04-01", "first_day": "2011-04-05", "last_day": "2011-04-05", "trading_days": 1,
         "gross_sales": 61.95, "returns_value": 0.0, "net_revenue": 61.95, "orders": 3, "units_sold": 25,
         "customers": 2, "new_customers": 1, "avg_order_value": 20.65},
    ]
    returns = _rows(warehouse, "SELECT * FROM returns ORDER BY sale_month")
    assert returns == [
        {"sale_month": "2011-03-01", "return_invoices": 1, "return_lines": 1, "units_returned": 1,
         "returns_value": 12.75, "gross_sales": 115.75, "return_rate": 0.1102, "customers_returning": 1},
        {"sale_month": "2011-04-01", "return_invoices": 0, "return_lines": 0, "units_returned": 0,
         "returns_value": 0.0, "gross_sales": 61.95, "return_rate": 0.0, "customers_returning": 0},
    ]


def test_popular_products(crafted):
    assert _tuples(crafted, "SELECT revenue_rank, stock_code, description, units_sold, units_returned, gross_sales, "
                            "returns_value, net_revenue, orders, customers, return_rate "
                            "FROM popular_products ORDER BY revenue_rank") == [
        # L2 + L5 + L19 = 89.25, minus the return L17; units 2+1+4, 1 back; the guest is no customer
        (1, "22423", "REGENCY CAKESTAND", 7, 1, 89.25, 12.75, 76.50, 3, 2, 0.1429),
        (2, "85123A", "WHITE HANGING HEART", 19, 0, 48.85, 0.0, 48.85, 3, 2, 0.0),  # L1 + L20 + L21
        # L7 + L14 + L22; named by its sale lines ('damaged' is on the stock adjustment, not a sale)
        (3, "21731", "RED TOADSTOOL LED", 15, 0, 24.75, 0.0, 24.75, 3, 2, 0.0),
        (4, "22139", "RETROSPOT TEA SET", 3, 0, 14.85, 0.0, 14.85, 2, 1, 0.0),  # L23 + L24 (L12 free)
    ]


def test_sales_by_country_does_not_rank_unspecified(crafted):
    assert _tuples(crafted, "SELECT revenue_rank, country, gross_sales, returns_value, net_revenue, orders, customers, "
                            "units_sold, share_of_net_revenue FROM sales_by_country "
                            "ORDER BY revenue_rank NULLS LAST, country") == [
        (1, "United Kingdom", 84.15, 12.75, 71.40, 3, 1, 21, round(71.40 / 164.95, 4)),
        (2, "France", 58.90, 0.0, 58.90, 2, 1, 8, round(58.90 / 164.95, 4)),
        # Germany is third although the lines without a country hold more (24.75): they are no country
        (3, "Germany", 9.90, 0.0, 9.90, 1, 1, 2, round(9.90 / 164.95, 4)),
        (None, "Unspecified", 24.75, 0.0, 24.75, 2, 1, 13, round(24.75 / 164.95, 4)),
    ]


def test_top_customers(crafted):
    assert _tuples(crafted, "SELECT revenue_rank, customer_id, country, gross_sales, returns_value, net_revenue, "
                            "orders, units_sold, products, first_purchase, last_purchase "
                            "FROM top_customers ORDER BY revenue_rank") == [
        (1, "12345", "France", 58.90, 0.0, 58.90, 2, 8, 3, "2011-03-01 11:00", "2011-03-02 12:00"),
        # 17850 spent more (71.40) but returned 12.75: ranked by net revenue, second
        (2, "17850", "United Kingdom", 71.40, 12.75, 58.65, 2, 20, 2, "2011-03-01 09:00", "2011-04-05 10:00"),
        # two lines without a country, one in Germany: the real country is the customer's country
        (3, "55555", "Germany", 31.35, 0.0, 31.35, 2, 13, 2, "2011-04-05 11:00", "2011-04-05 12:00"),
    ]


def test_sales_kpis(crafted):
    warehouse, _ = crafted
    (kpis,) = _rows(warehouse, "SELECT * FROM sales_kpis")
    assert kpis == {
        "first_day": "2011-03-01", "last_day": "2011-04-05", "trading_days": 3,
        "gross_sales": 177.70, "returns_value": 12.75, "net_revenue": 164.95,
        "orders": 8, "customers": 3, "units_sold": 44, "products": 4,
        "countries": 3,  # United Kingdom, France, Germany: 'Unspecified' is not a country
        "avg_order_value": 22.21,  # 177.70 / 8
    }


def test_asset_metadata_describes_each_view(crafted):
    warehouse, result = crafted
    mats = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert set(mats) == {"sale_lines", "daily_sales", "daily_sales_by_country", "monthly_sales", "popular_products",
                         "sales_by_country", "top_customers", "returns", "sales_kpis", "sales_dashboard"}
    mats.pop("sales_dashboard")
    expected_rows = {"sale_lines": 12, "daily_sales": 3, "daily_sales_by_country": 8, "monthly_sales": 2,
                     "popular_products": 4, "sales_by_country": 4, "top_customers": 3, "returns": 2, "sales_kpis": 1}
    for view, md in mats.items():
        assert md["dagster/row_count"].value == expected_rows[view], view
        assert md["dagster/table_name"].value == f"warehouse.{view}"  # the warehouse file's name
        assert md["dagster/uri"].value == warehouse.path
        described = dict(zip(*warehouse.query_df(f"DESCRIBE SELECT * FROM {view}")[["column_name", "column_type"]].T.values))
        schema = md["dagster/column_schema"].value
        assert [(c.name, c.type) for c in schema.columns] == [(c, t.lower()) for c, t in described.items()], view
        preview = md["preview"].value
        assert len(preview.records) == min(10, expected_rows[view])
    kpis = mats["sales_kpis"]["preview"].value.records[0].data
    assert kpis["net_revenue"] == 164.95 and kpis["avg_order_value"] == 22.21 and kpis["first_day"] == "2011-03-01"
    assert mats["sales_kpis"]["net_revenue_gbp"].value == 164.95
    # every float of a preview is rounded to 2 decimals (return_rate 1/7 shows as 0.14)
    products = mats["popular_products"]["preview"].value.records
    assert products[0].data["return_rate"] == 0.14
    for md in mats.values():
        for rec in md["preview"].value.records:
            for v in rec.data.values():
                assert not isinstance(v, float) or v == round(v, 2)
    lineage = mats["daily_sales"]["dagster/column_lineage"].value.deps_by_column
    assert {(d.asset_key.to_user_string(), d.column_name) for d in lineage["net_revenue"]} == {
        ("sale_lines", "sale_amount"), ("sale_lines", "return_amount")}
    base = mats["sale_lines"]["dagster/column_lineage"].value.deps_by_column
    assert {(d.asset_key.to_user_string(), d.column_name) for d in base["sale_amount"]} == {
        ("clean_parquet", "is_sale"), ("clean_parquet", "line_total")}


def test_every_check_passes_on_the_crafted_file(crafted):
    _, result = crafted
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert len(checks) == 11 and all(checks.values()), checks


def test_the_dashboard_shows_the_crafted_figures(crafted):
    warehouse, result = crafted
    (event,) = [e for e in result.get_asset_materialization_events()
                if e.asset_key.to_user_string() == "sales_dashboard"]
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    assert (meta["net_revenue_gbp"], meta["gross_sales_gbp"], meta["returns_gbp"]) == (164.95, 177.70, 12.75)
    assert (meta["orders"], meta["customers"], meta["countries"], meta["avg_order_value_gbp"]) == (8, 3, 3, 22.21)
    assert meta["unspecified_country_net_revenue_gbp"] == 24.75  # L14 + L22 + L23: not charted as a country
    assert [r.data["stock_code"] for r in meta["top_products"].records] == ["22423", "85123A", "21731", "22139"]
    assert sorted(k.rsplit("/", 1)[1] for k in warehouse.lake.list("analytics/dashboard")) == [
        "daily_sales.png", "index.html", "monthly_trend.png", "sales_by_country.png", "top_customers.png",
        "top_products.png"]
    page = warehouse.lake.get_text("analytics/dashboard/index.html")
    assert '<div class="label">Net revenue</div><div class="value">£165</div>' in page  # whole pounds on tiles
    assert '<div class="label">Countries</div><div class="value">3</div>' in page  # not 4: no 'Unspecified'
    assert "net revenue £24.75" in page  # the page says what the lines without a country hold
