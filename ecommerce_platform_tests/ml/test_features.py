"""Leakage tests of the invoice features: strictly prior history, no feature from the invoice's own
quantities/prices/total, and the predict path's history equal to the training features."""

import numpy as np
import pandas as pd

from ecommerce_platform.ml.features import (
    CUSTOMER_FEATURES,
    HISTORY_COLUMNS,
    INVOICE_FEATURE_COLUMNS,
    INVOICE_FEATURES,
    USER_ITEM_INTERACTIONS,
    customer_history_sql,
)
from ecommerce_platform_tests.ml.conftest import run_sql, with_flags

FEATURE_VIEW = [c for c in INVOICE_FEATURES.columns if c[0] != "invoice_total"]


def _features(tx):
    return run_sql(tx, INVOICE_FEATURES.sql()).sort_values("invoice_no").reset_index(drop=True)


def test_feature_list_has_no_invoice_amounts():
    banned = ("total", "quantity", "price", "amount", "line_total", "units")
    assert "invoice_total" not in INVOICE_FEATURE_COLUMNS
    for col in INVOICE_FEATURE_COLUMNS:
        if col.startswith("prior_"):
            continue  # history of earlier invoices
        assert not any(b in col for b in banned), col


def test_features_ignore_the_invoices_own_quantities_and_prices(transactions):
    before = _features(transactions)
    target = before.sort_values("invoice_ts").iloc[len(before) // 2]
    tx = transactions.copy()
    mine = tx["invoice_no"] == target["invoice_no"]
    rng = np.random.RandomState(1)
    tx.loc[mine, "quantity"] = rng.randint(100, 5000, mine.sum())
    tx.loc[mine, "unit_price"] = rng.uniform(10, 500, mine.sum()).round(2)
    # shuffle the order of the lines too
    after = _features(with_flags(tx.sample(frac=1.0, random_state=3)))
    cols = [c for c in INVOICE_FEATURE_COLUMNS]
    row_b = before[before.invoice_no == target.invoice_no][cols].reset_index(drop=True)
    row_a = after[after.invoice_no == target.invoice_no][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(row_b, row_a)
    # ...while the label source did change, and later invoices of the customer see it in their history
    assert after.loc[after.invoice_no == target.invoice_no, "invoice_total"].iloc[0] != target["invoice_total"]
    later = after[(after.customer_id == target.customer_id) & (after.invoice_ts > target.invoice_ts)]
    if len(later):
        assert not np.allclose(later["prior_spend"].to_numpy(),
                               before.loc[later.index, "prior_spend"].to_numpy())


def test_history_is_strictly_prior_even_at_the_same_minute():
    ts = pd.Timestamp("2011-03-01 10:00")
    rows = [("1", "A", "x", 5, ts, 2.0, "1", "UK"), ("2", "A", "x", 7, ts, 2.0, "1", "UK"),
            ("3", "A", "x", 1, ts + pd.Timedelta(days=3), 2.0, "1", "UK")]
    tx = with_flags(pd.DataFrame(rows, columns=["invoice_no", "stock_code", "description", "quantity",
                                                "invoice_ts", "unit_price", "customer_id", "country"]))
    f = _features(tx).set_index("invoice_no")
    assert f.loc["1", "prior_orders"] == 0 and f.loc["2", "prior_orders"] == 0
    assert np.isnan(f.loc["1", "days_since_last_order"])
    assert f.loc["3", "prior_orders"] == 2 and f.loc["3", "prior_spend"] == 24.0
    assert f.loc["3", "prior_max_order"] == 14.0 and f.loc["3", "days_since_last_order"] == 3.0


def test_predict_path_history_equals_training_features(transactions):
    feats = _features(transactions)
    req = feats[["customer_id", "invoice_ts"]].reset_index().rename(
        columns={"index": "request_id", "invoice_ts": "as_of_ts"})
    import duckdb

    con = duckdb.connect()
    con.register("tx_df", transactions)
    con.execute("CREATE TABLE transactions AS SELECT * FROM tx_df")
    con.register("req_df", req)
    con.execute("CREATE TABLE req AS SELECT * FROM req_df")
    hist = con.execute(customer_history_sql("req")).df().sort_values("request_id").reset_index(drop=True)
    for col in HISTORY_COLUMNS:
        np.testing.assert_allclose(hist[col].to_numpy(float), feats[col].to_numpy(float), rtol=1e-9,
                                   equal_nan=True, err_msg=col)


def test_customer_features_net_of_returns_and_flags_no_net_spend():
    t = pd.Timestamp("2011-05-01 10:00")
    rows = [("1", "A", "x", 10, t, 1.0, "good", "UK"), ("C2", "A", "x", -3, t + pd.Timedelta(days=1), 1.0, "good", "UK"),
            ("C3", "A", "x", -5, t, 2.0, "refund_only", "UK"),
            ("4", "A", "x", 1, t, 1.0, "negative", "UK"), ("C5", "A", "x", -9, t, 1.0, "negative", "UK")]
    tx = with_flags(pd.DataFrame(rows, columns=["invoice_no", "stock_code", "description", "quantity",
                                                "invoice_ts", "unit_price", "customer_id", "country"]))
    f = run_sql(tx, CUSTOMER_FEATURES.sql()).set_index("customer_id")
    assert f.loc["good", "monetary"] == 7.0 and f.loc["good", "has_net_spend"]
    assert f.loc["refund_only", "frequency"] == 0 and not f.loc["refund_only", "has_net_spend"]
    assert f.loc["negative", "monetary"] == -8.0 and not f.loc["negative", "has_net_spend"]


def test_interactions_rank_invoices_from_the_last(transactions):
    f = run_sql(transactions, USER_ITEM_INTERACTIONS.sql())
    last = f[f.invoice_rank_desc == 1].groupby("customer_id").invoice_ts.max()
    assert (last == f.groupby("customer_id").invoice_ts.max()).all()
    assert (f.quantity > 0).all()
