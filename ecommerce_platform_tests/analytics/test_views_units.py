"""Unit tests of the plain helpers of the analytics layer: values as metadata holds them, numbers from
engines that return DECIMALs as Python objects, the view descriptions."""

from __future__ import annotations

import datetime as dt
import decimal

import numpy as np
import pandas as pd

from ecommerce_platform.analytics.views import VIEWS, as_numbers, plain, view_description


def test_plain_values_for_metadata():
    assert plain(np.float64(1.23456)) == 1.23 and plain(-0.4567) == -0.46
    assert plain(decimal.Decimal("1.005")) == 1.01 and plain(decimal.Decimal("-2.345")) == -2.35
    assert plain(np.int64(3)) == 3 and isinstance(plain(np.int64(3)), int)
    assert plain(np.bool_(True)) is True
    assert plain(pd.Timestamp("2011-03-01")) == "2011-03-01"
    assert plain(pd.Timestamp("2011-03-01 10:05")) == "2011-03-01 10:05:00"
    assert plain(np.datetime64("2011-01-01T10:00:00.000000000")) == "2011-01-01 10:00:00"
    assert plain(dt.date(2011, 1, 2)) == "2011-01-02"
    for missing in (None, float("nan"), pd.NaT, pd.NA, np.nan):
        assert plain(missing) is None, missing
    assert plain("nan") == "nan" and plain("NaT") == "NaT"  # text is never taken for a missing value


def test_as_numbers_turns_decimals_into_floats_and_keeps_identifiers():
    df = pd.DataFrame({"customer_id": ["14646", None], "net_revenue": [decimal.Decimal("1.50"), None],
                       "orders": [3, 4], "country": ["EIRE", "France"]})
    out = as_numbers(df, frozenset({"customer_id", "country"}))
    assert out["net_revenue"].dtype == float and out["net_revenue"].iloc[0] == 1.5
    assert pd.isna(out["net_revenue"].iloc[1])
    assert out["customer_id"].iloc[0] == "14646" and out["orders"].iloc[1] == 4


def test_every_view_has_a_one_line_description():
    for name in VIEWS:
        text = view_description(name)
        assert text and "\n" not in text and len(text) < 300, name
    assert view_description("daily_sales").startswith("one row per calendar day")
