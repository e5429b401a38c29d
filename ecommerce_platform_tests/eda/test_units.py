"""Unit tests of the EDA layer's plain functions on small generated data (no Dagster, no lake), and of
how the layer is declared (cadences, pools, the heavy tag, jobs selecting by tag)."""

import pandas as pd
import pytest

from ecommerce_platform.eda.figures import FIGURES, EdaData, build_figures, gbp, sales_series_csv
from ecommerce_platform.eda.profile import profile_title
from ecommerce_platform.eda.quality import log_tukey_fences, weighted_quantile


def test_weighted_quantile_matches_repeated_values():
    values, weights = [1, 2, 3, 10], [5, 3, 1, 1]
    repeated = sorted(v for v, w in zip(values, weights) for _ in range(w))
    assert weighted_quantile(values, weights, 0.5) == repeated[4]
    assert weighted_quantile(values, weights, 0.25) == 1
    assert weighted_quantile(values, weights, 1.0) == 10
    with pytest.raises(ValueError):
        weighted_quantile([], [], 0.5)


def test_log_tukey_fences_flag_only_the_extremes():
    # quantities 1..12 are common; 80,000 is the one extreme line
    values = [1, 2, 3, 4, 6, 12, 24, 80_000]
    weights = [100, 80, 40, 40, 30, 60, 20, 1]
    f = log_tukey_fences(values, weights)
    assert f["q1"] == 1 and f["q3"] == 6
    assert 24 < f["high"] < 80_000
    assert f["low"] < 1


def test_gbp_ticks():
    assert [gbp(v) for v in (0, 0.5, 950, 1500, 250_000, 1_250_000, -3_000)] == [
        "£0", "£0.50", "£950", "£1.5k", "£250k", "£1.25M", "-£3k"]


def test_profile_title_says_when_it_is_a_sample():
    assert "sample: 90,000 of 541,909 raw rows" in profile_title(536_639, 100_000, 541_909, 90_000)
    assert "all 100 raw and 90 clean rows" in profile_title(90, 90, 100, 100)


def _small_data(n=60):
    import numpy as np

    rng = np.random.default_rng(0)
    orders = rng.integers(1, 30, n)
    spent = orders * rng.lognormal(5, 1, n)
    customers = pd.DataFrame({
        "customer_id": [f"C{i}" for i in range(n)], "orders": orders, "total_spent": spent.round(2),
        "avg_order_value": spent / orders, "avg_basket_units": rng.lognormal(4, 1, n),
        "avg_basket_lines": rng.integers(1, 40, n).astype(float), "units": rng.integers(1, 5000, n),
        "distinct_products": rng.integers(1, 300, n), "recency_days": rng.integers(0, 370, n),
        "tenure_days": rng.integers(0, 370, n), "return_lines": rng.integers(0, 5, n),
        "returned_value": rng.lognormal(2, 1, n),
    })
    gross = rng.lognormal(8, 1, 40).round(2)
    products = pd.DataFrame({
        "stock_code": [f"P{i}" for i in range(40)], "description": [f"PRODUCT {i}" for i in range(40)],
        "orders": rng.integers(1, 800, 40), "customers": rng.integers(1, 300, 40),
        "units_sold": rng.integers(1, 9000, 40), "gross_sales": gross, "net_revenue": gross * 0.95,
    })
    days = pd.date_range("2011-01-01", periods=90, freq="D")
    net = rng.lognormal(9, 0.4, 90).round(2)
    daily = pd.DataFrame({"sale_date": days, "gross_sales": net + 10, "returns_value": 10.0, "net_revenue": net,
                          "orders": 10, "customers": 8})
    qty = pd.DataFrame({"quantity": [1, 2, 6, 12, 24, 100, 5000], "lines": [500, 300, 200, 250, 80, 10, 1]})
    return EdaData(customers=customers, products=products, daily=daily, quantity_counts=qty)


def test_build_figures_draws_what_has_data_and_skips_the_rest():
    # no known customer (every buyer a guest): the customer figures have no data, the others are drawn
    # (every figure on real data: test_eda_graph.py)
    small = _small_data()
    figs = build_figures(EdaData(customers=small.customers.iloc[:0], products=small.products, daily=small.daily,
                                 quantity_counts=small.quantity_counts))
    assert list(figs) == ["quantity_distribution", "item_frequency", "sales_over_time", "top_products"]
    for name, (title, png) in figs.items():
        assert png[:8] == b"\x89PNG\r\n\x1a\n", name
        assert title == FIGURES[name]
        assert len(png) > 5_000, name  # not an empty canvas
    empty = EdaData(customers=small.customers.iloc[:0], products=small.products.iloc[:0],
                    daily=small.daily.iloc[:0], quantity_counts=small.quantity_counts.iloc[:0])
    assert build_figures(empty) == {}


def test_sales_series_csv_keeps_pence():
    daily = pd.DataFrame({"sale_date": pd.to_datetime(["2011-01-02", "2011-01-03"]), "gross_sales": [10.1, 0.0],
                          "returns_value": [0.0, 2.3], "net_revenue": [10.1, -2.3], "orders": [1, 0],
                          "customers": [1, 0]})
    lines = sales_series_csv(daily).splitlines()
    assert lines[0] == "sale_date,gross_sales,returns_value,net_revenue,orders,customers"
    assert lines[1:] == ["2011-01-02,10.10,0.00,10.10,1,1", "2011-01-03,0.00,2.30,-2.30,0,0"]


def test_the_layer_is_declared_for_its_cadences():
    import dagster as dg

    from ecommerce_platform.config import load_settings
    from ecommerce_platform.eda.definitions import definitions
    from ecommerce_platform.operations import CADENCE_TAG, ENGINE_TAG, WRITER_POOL
    from ecommerce_platform.resources import build_resources

    settings = load_settings()
    defs = dg.Definitions.merge(definitions(settings), dg.Definitions(resources=build_resources(settings)))
    graph = defs.resolve_asset_graph()
    cadence = {}
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        name = key.to_user_string()
        cadence[name] = node.tags[CADENCE_TAG]
        assert node.group_name == "eda" and node.tags[ENGINE_TAG] == "warehouse", name
        assert node.pools == {WRITER_POOL}, name
        assert node.code_version and node.description and node.automation_condition is not None, name
    assert cadence == {"data_quality_report": "arrival", "eda_figures": "weekly", "data_profile": "weekly"}
    assert graph.get(dg.AssetKey("data_profile")).tags["eda/heavy"] == "true"
    jobs = {j.name: {k.to_user_string() for k in j.asset_layer.executable_asset_keys}
            for j in defs.resolve_all_job_defs() if j.name.startswith("eda_")}
    assert jobs == {"eda_reports_job": {"data_quality_report", "eda_figures"}, "eda_profile_job": {"data_profile"}}


def test_definitions_load_the_eda_layer_without_heavy_imports():
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, ecommerce_platform.definitions as d;"
        "keys = {k.to_user_string() for k in d.defs.resolve_asset_graph().get_all_asset_keys()};"
        "assert {'data_profile', 'data_quality_report', 'eda_figures', 'sales_dashboard', 'daily_sales'} <= keys, keys;"
        "assert 'athena_views' not in keys;"
        "jobs = {j.name for j in d.defs.resolve_all_job_defs()};"
        "assert {'eda_profile_job', 'eda_reports_job'} <= jobs, jobs;"
        "heavy = [m for m in ('matplotlib', 'seaborn', 'ydata_profiling', 'sqlglot', 'pandas') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).parents[2]))
