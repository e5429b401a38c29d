"""Every check of the analytics layer FAILS on crafted input (built with the platform's real landing and
clean SQL, or views replaced by broken SQL in a test-only warehouse), and a failing blocking check stops
the dashboard in the same run: nothing new is published in analytics/dashboard/."""

from __future__ import annotations

import dagster as dg
import pytest

from ecommerce_platform.resources.warehouse import DuckDBWarehouse
from ecommerce_platform_tests.analytics.crafted import SALE_DEFINITION_ROWS, cleaned_warehouse


class BrokenViewsWarehouse(DuckDBWarehouse):
    """A test-only warehouse that creates some views from other SQL than their files' (a broken view)."""

    broken: dict[str, str] = {}

    def create_view(self, name: str, select_sql: str) -> None:
        super().create_view(name, self.broken.get(name, select_sql))


def _run(warehouse):
    """The views, their checks and the dashboard in one run (as automation or `make run` launch them)."""
    from ecommerce_platform.analytics import assets

    return dg.materialize([*assets.ASSETS, *assets.CHECKS], resources={"warehouse": warehouse},
                          raise_on_error=False)


def _checks(result) -> dict[str, bool]:
    return {c.check_name: c.passed for c in result.get_asset_check_evaluations()}


def _dashboard_blocked(result, warehouse) -> None:
    assert not result.success
    assert result.asset_materializations_for_node("sales_dashboard") == []
    assert not warehouse.lake.list("analytics/dashboard"), "the dashboard wrote files although a check failed"


def _line(invoice, code, qty, day, price, customer, country="United Kingdom", desc="A PRODUCT"):  # noqa: ANN001, ANN202
    return (invoice, code, desc, qty, f"2011-05-{day:02d} 10:00", price, customer, country)


def test_views_reconcile_fails_when_a_view_loses_the_returns(tmp_path):
    from ecommerce_platform.analytics.views import view_sql

    good = view_sql("daily_sales")
    bug = good.replace("gross_sales - returns_value AS net_revenue", "gross_sales AS net_revenue")
    assert bug != good  # the test really changes the view
    warehouse = cleaned_warehouse(tmp_path, SALE_DEFINITION_ROWS, warehouse_cls=BrokenViewsWarehouse,
                                  broken={"daily_sales": bug})
    result = _run(warehouse)
    checks = _checks(result)
    assert checks["views_reconcile"] is False
    assert all(passed for name, passed in checks.items() if name != "views_reconcile"), checks
    evaluation = next(c for c in result.get_asset_check_evaluations() if c.check_name == "views_reconcile")
    # daily_sales now says 177.70 (gross), every other view 164.95: the 12.75 of returns is the difference
    assert evaluation.metadata["differences_gbp"].value == {"daily_sales": 12.75}
    _dashboard_blocked(result, warehouse)


def test_not_empty_checks_fail_when_nothing_is_a_sale(tmp_path):
    # postage, a fee, a free line, a cancelled line with a positive quantity: the clean zone has lines,
    # but not one sale or return
    rows = [
        _line("540001", "POST", 1, 3, 18.0, "17850"),
        _line("540002", "AMAZONFEE", 1, 3, 50.0, None),
        _line("540003", "22139", 4, 4, 0.0, "17850"),
        _line("C540004", "22139", 2, 4, 4.95, "17850"),
    ]
    warehouse = cleaned_warehouse(tmp_path, rows)
    assert int(warehouse.query_df("SELECT COUNT(*) AS n FROM transactions").iloc[0]["n"]) == 4
    result = _run(warehouse)
    checks = _checks(result)
    from ecommerce_platform.analytics.views import VIEWS

    # every view is empty; sales_kpis has its one row (an aggregate), but no sale in it
    assert {v: checks[f"{v}_not_empty"] for v in VIEWS} == {v: False for v in VIEWS}
    assert int(warehouse.query_df("SELECT COUNT(*) AS n FROM sales_kpis").iloc[0]["n"]) == 1
    assert checks["net_revenue_plausible"] is False  # and no revenue at all is not plausible either
    _dashboard_blocked(result, warehouse)


def test_top_customers_not_empty_fails_alone_when_every_buyer_is_a_guest(tmp_path):
    rows = [
        _line("540010", "22423", 2, 3, 12.75, None),
        _line("540011", "85123A", 6, 4, 2.55, None, country="France"),
    ]
    warehouse = cleaned_warehouse(tmp_path, rows)
    result = _run(warehouse)
    checks = _checks(result)
    failed = sorted(name for name, passed in checks.items() if not passed)
    assert failed == ["top_customers_not_empty"]
    # the dashboard reads top_customers: it is blocked
    _dashboard_blocked(result, warehouse)


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        # a sale of 10.00 and a return of 8.00 the next day: returns are 80 % of gross sales
        ([_line("540020", "22423", 1, 3, 10.0, "17850"), _line("C540021", "22423", -1, 4, 8.0, "17850")],
         "more than 50% of gross sales"),
        # a single sale of 20 pence: an average order value below £1 (and net revenue below £1)
        ([_line("540030", "22423", 1, 3, 0.20, "17850")], "average order value £0.20"),
    ],
    ids=["returns_above_half", "order_value_below_one_pound"],
)
def test_net_revenue_plausible_fails_on_implausible_figures(tmp_path, rows, problem):
    warehouse = cleaned_warehouse(tmp_path, rows)
    result = _run(warehouse)
    checks = _checks(result)
    assert checks["net_revenue_plausible"] is False
    evaluation = next(c for c in result.get_asset_check_evaluations() if c.check_name == "net_revenue_plausible")
    assert problem in evaluation.metadata["problems"].value
    assert checks["views_reconcile"] is True  # the views are right: only the figures are implausible
    _dashboard_blocked(result, warehouse)
