"""Unit tests of the EDA layer's plain functions on small generated data (no Dagster, no lake)."""

import pandas as pd
import pytest

from ecommerce_platform.eda.figures import FIGURES, EdaData, build_figures, gbp, markdown_image
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
    products = pd.DataFrame({
        "stock_code": [f"P{i}" for i in range(40)], "description": [f"PRODUCT {i}" for i in range(40)],
        "lines": rng.integers(1, 900, 40), "orders": rng.integers(1, 800, 40),
        "customers": rng.integers(1, 300, 40), "units": rng.integers(1, 9000, 40),
        "revenue": rng.lognormal(8, 1, 40).round(2),
    })
    days = pd.date_range("2011-01-01", periods=90, freq="D")
    daily = pd.DataFrame({"invoice_date": days, "revenue": rng.lognormal(9, 0.4, 90), "orders": 10,
                          "customers": 8, "returned_value": 0.0})
    qty = pd.DataFrame({"quantity": [1, 2, 6, 12, 24, 100, 5000], "lines": [500, 300, 200, 250, 80, 10, 1]})
    return EdaData(customers=customers, products=products, daily=daily, quantity_counts=qty)


def test_build_figures_gives_every_figure_as_png():
    figs = build_figures(_small_data())
    assert list(figs) == list(FIGURES)
    for name, (title, png) in figs.items():
        assert png[:8] == b"\x89PNG\r\n\x1a\n", name
        assert title == FIGURES[name]
        assert len(png) > 5_000, name  # not an empty canvas
    md = markdown_image("t", figs["top_products"][1])
    assert md.startswith("**t**") and "data:image/png;base64," in md


def test_build_figures_tolerates_an_empty_lake():
    empty = EdaData(customers=_small_data().customers.iloc[:0], products=_small_data().products.iloc[:0],
                    daily=_small_data().daily.iloc[:0], quantity_counts=_small_data().quantity_counts.iloc[:0])
    assert build_figures(empty) == {}
