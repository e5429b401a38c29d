"""Small generated transactions for the ML layer's unit tests."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest


def make_transactions(seed: int = 0, customers: int = 30, invoices_per_customer: int = 6) -> pd.DataFrame:
    rng = np.random.RandomState(seed)
    rows = []
    inv = 500000
    for c in range(customers):
        cid = str(12000 + c)
        t = pd.Timestamp("2011-01-03 09:00") + pd.Timedelta(hours=int(rng.randint(0, 200)))
        for _ in range(invoices_per_customer):
            inv += 1
            t = t + pd.Timedelta(days=int(rng.randint(1, 40)), minutes=int(rng.randint(0, 600)))
            for line in range(int(rng.randint(1, 6))):
                q, p = int(rng.randint(1, 50)), float(rng.choice([0.85, 1.25, 2.95, 4.95]))
                rows.append((str(inv), f"2{line:04d}", f"ITEM {line}", q, t, p, cid, "United Kingdom"))
        if c % 5 == 0:  # a return
            inv += 1
            rows.append((f"C{inv}", "20000", "ITEM 0", -2, t + pd.Timedelta(days=2), 0.85, cid, "United Kingdom"))
    df = pd.DataFrame(rows, columns=["invoice_no", "stock_code", "description", "quantity", "invoice_ts",
                                     "unit_price", "customer_id", "country"])
    return with_flags(df)


def with_flags(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["line_total"] = (df["quantity"] * df["unit_price"]).round(2)
    df["is_cancellation"] = df["invoice_no"].str.startswith("C")
    df["is_guest"] = df["customer_id"].isna()
    df["is_product"] = True
    df["is_sale"] = ~df["is_cancellation"] & (df["quantity"] > 0) & (df["unit_price"] > 0)
    df["is_return"] = df["is_cancellation"] & (df["quantity"] < 0)
    return df


def run_sql(transactions: pd.DataFrame, sql: str) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("tx_df", transactions)
    con.execute("CREATE TABLE transactions AS SELECT * FROM tx_df")
    return con.execute(sql).df()


@pytest.fixture
def transactions() -> pd.DataFrame:
    return make_transactions()
