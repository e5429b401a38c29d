"""The data quality report on a crafted file run through the REAL landing and clean SQL: extreme
quantities and unit prices (at, above and just below the bounds of lake/rules.py) and text with mojibake
are flagged and kept; the clean zone's reconciliation per month comes from its own record and tables;
'Unspecified' is not a country; the money is the views'. Expectations worked out by hand."""

import json

import dagster as dg
import pytest

from ecommerce_platform_tests.analytics.crafted import cleaned_warehouse

ROWS = [
    # --- June 2011
    ("550001", "22423", "REGENCY CAKESTAND", 12000, "2011-06-01 09:00", 1.00, "17850", "United Kingdom"),  # E1 extreme qty, sale
    ("C550002", "22423", "REGENCY CAKESTAND", -12000, "2011-06-01 10:00", 1.00, "17850", "United Kingdom"),  # E2 extreme, return
    ("550003", "85123A", "WHITE HANGING HEART", 10000, "2011-06-02 09:00", 0.10, "12345", "France"),  # E3 at the bound
    ("550004", "85123A", "WHITE HANGING HEART", 9999, "2011-06-02 10:00", 0.10, "12345", "France"),  # E4 just below
    ("550005", "M", "Manual", 1, "2011-06-03 09:00", 6000.00, "12345", "France"),  # E5 extreme price
    ("550006", "21731", "PRICEY LAMP", 1, "2011-06-03 10:00", 5000.00, "12345", "France"),  # E6 price at the bound
    ("550007", "21732", "NEARLY PRICEY LAMP", 1, "2011-06-03 11:00", 4999.99, "12345", "France"),  # E7 just below
    ("550008", "GIFT_0001_20", "Dotcomgiftshop Gift Voucher Â£20.00", 1, "2011-06-04 09:00", 16.67, None,
     "United Kingdom"),  # E8 mojibake
    ("550009", "GIFT_0001_20", "Dotcomgiftshop Gift Voucher Â£20.00", 1, "2011-06-04 10:00", 16.67, None,
     "United Kingdom"),  # E9 the same text again
    ("550010", "22139", "CafÃ© TEA SET", 2, "2011-06-05 09:00", 4.95, "17850", "United Kingdom"),  # E10 mojibake
    ("550011", "22140", "CAFÉ TEA SET", 2, "2011-06-05 10:00", 4.95, "17850", "United Kingdom"),  # E11 a real É
    ("550012", "22141", "TEA SET", 1, "2011-06-05 11:00", 4.95, "55555", "CuraÃ§ao"),  # E12 mojibake country
    # --- July 2011
    ("550013", "22423", "REGENCY CAKESTAND", 2, "2011-07-01 09:00", 12.75, None, None),  # E13 no country
    ("550013", "22423", "REGENCY CAKESTAND", 2, "2011-07-01 09:00", 12.75, None, None),  # E14 = E13
    ("550015", "22423", "REGENCY CAKESTAND", 1, "2011-07-01 10:00", -1.00, "17850", "United Kingdom"),  # E15 quarantined
    ("550016", "22423", "REGENCY CAKESTAND", 1, "2011-07-02 10:00", 12.75, "17850", "United Kingdom"),  # E16
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from ecommerce_platform.analytics.assets import analytics_views
    from ecommerce_platform.eda.assets import data_quality_report

    warehouse = cleaned_warehouse(tmp_path_factory.mktemp("quality"), ROWS)
    result = dg.materialize([analytics_views, data_quality_report], resources={"warehouse": warehouse},
                            selection=["sale_lines", "daily_sales", "data_quality_report"])
    assert result.success
    (event,) = [e for e in result.get_asset_materialization_events()
                if e.asset_key.to_user_string() == "data_quality_report"]
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    data = json.loads(warehouse.lake.get_text("reports/data_quality.json"))
    markdown = warehouse.lake.get_text("reports/data_quality.md")
    return meta, data, markdown


def test_extreme_quantities_and_prices_are_flagged_and_kept(report):
    meta, data, markdown = report
    # |quantity| >= 10,000: E1, E2 and E3 (at the bound), not E4 (9,999)
    assert meta["extreme_quantity_lines"] == data["flags"]["extreme_quantity"]["lines"] == 3
    # unit price >= £5,000: E5 and E6 (at the bound), not E7 (£4,999.99)
    assert meta["extreme_unit_price_lines"] == data["flags"]["extreme_unit_price"]["lines"] == 2
    flagged = {(e["invoice_no"], e["extreme_quantity"], e["extreme_unit_price"]) for e in data["flags"]["extreme_examples"]}
    assert flagged == {("550001", True, False), ("C550002", True, False), ("550003", True, False),
                       ("550005", False, True), ("550006", False, True)}
    assert data["by_month"][0]["extreme_quantity_lines"] == 3 and data["by_month"][1]["extreme_quantity_lines"] == 0
    # kept: every flagged line is still in the clean zone (14 clean rows, see the reconciliation)
    assert data["cleaning"]["rows_clean"] == 14
    assert "**Extreme quantity** (|quantity| >= 10,000 units" in markdown and ": 3 lines." in markdown


def test_mojibake_is_counted_per_column_with_examples(report):
    meta, data, markdown = report
    assert meta["mojibake_by_column"] == {"invoice_no": 0, "stock_code": 0, "description": 3, "customer_id": 0,
                                          "country": 1}
    assert meta["mojibake_lines"] == 4
    examples = data["flags"]["mojibake"]["examples"]
    assert examples == {
        "description": [{"value": "Dotcomgiftshop Gift Voucher Â£20.00", "lines": 2},
                        {"value": "CafÃ© TEA SET", "lines": 1}],  # not 'CAFÉ TEA SET': a real É
        "country": [{"value": "CuraÃ§ao", "lines": 1}],
    }
    assert "`CafÃ© TEA SET` (1)" in markdown


def test_reconciliation_per_month_from_the_clean_zone(report):
    _, data, _ = report
    c = data["cleaning"]
    assert (c["rows_in"], c["rows_clean"], c["rows_duplicate"], c["rows_quarantined"]) == (16, 14, 1, 1)
    assert c["balanced"] and c["matches_clean_record"] and c["months"] == 2
    assert c["quarantine_by_reason"] == {"negative unit_price": 1}
    june, july = c["by_month"]
    assert (june["month"], june["rows_in"], june["rows_clean"], june["rows_duplicate"], june["rows_quarantined"]) == \
        ("2011-06", 12, 12, 0, 0)
    assert (july["month"], july["rows_in"], july["rows_clean"], july["rows_duplicate"], july["rows_quarantined"]) == \
        ("2011-07", 4, 2, 1, 1)
    assert july["quarantine_by_reason"] == {"negative unit_price": 1}


def test_unspecified_is_not_a_country_and_money_comes_from_the_views(report):
    meta, data, _ = report
    assert meta["countries"] == data["totals"]["countries"] == 3  # United Kingdom, France, CuraÃ§ao
    assert meta["unspecified_country_lines"] == 1  # E13 (E14 folded into it)
    # June: 12,000.00 + 1,000.00 + 999.90 + 5,000.00 + 4,999.99 + 9.90 + 9.90 + 4.95 = 24,024.64 of sales,
    # 12,000.00 returned (E2); July: 25.50 + 12.75 (E15 quarantined)
    assert data["money"] == {"gross_sales": 24062.89, "returns_value": 12000.0, "net_revenue": 12062.89,
                             "source": "the analytics view daily_sales"}
    assert [m["net_revenue"] for m in data["by_month"]] == [12024.64, 38.25]
    assert meta["net_revenue_gbp"] == 12062.89
