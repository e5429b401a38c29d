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


# ------------------------------------------------------------------------------------ platform helpers
MAX_METADATA_BYTES = 50_000


def last_materialization(result, key: str):
    """The last materialization of asset ``key`` in a run ``result`` (multi-assets included)."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key]
    return events[-1].materialization


def metadata_bytes(result, key: str) -> int:
    """Serialized size of the last materialization's metadata of ``key`` in a run ``result``."""
    from dagster._serdes import serialize_value

    return len(serialize_value(last_materialization(result, key).metadata).encode())


def meta(result, key: str) -> dict:
    return {k: v.value for k, v in last_materialization(result, key).metadata.items()}


def checks(result) -> dict:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def query(sql: str) -> pd.DataFrame:
    """``sql`` on a new warehouse of the current environment: a resource object that ran before a
    materialization may see the catalog as it was (other objects' changes show within its catalog TTL)."""
    from ecommerce_platform.resources import build_resources

    return build_resources()["warehouse"].query_df(sql)


def publish_table(warehouse, name: str, prefix: str, df: pd.DataFrame, columns) -> None:
    """Crafted input: ``df`` written as the Parquet of table ``name`` (replacing it) and registered."""
    import io

    lake = warehouse.lake
    buf = io.BytesIO()
    df[[c for c, _, _ in columns]].to_parquet(buf, index=False)
    staging = lake.staging_prefix(prefix)
    lake.put_bytes(f"{staging}/part-0.parquet", buf.getvalue())
    lake.publish_prefix(staging, prefix)
    warehouse.register_table(name, prefix, columns)


TX_COLUMNS = (
    ("invoice_no", "string", ""), ("stock_code", "string", ""), ("description", "string", ""),
    ("quantity", "bigint", ""), ("invoice_ts", "timestamp", ""), ("unit_price", "double", ""),
    ("customer_id", "string", ""), ("country", "string", ""), ("line_total", "double", ""),
    ("is_cancellation", "boolean", ""), ("is_product", "boolean", ""), ("is_guest", "boolean", ""),
    ("is_sale", "boolean", ""), ("is_return", "boolean", ""),
)


def publish_transactions(warehouse, df: pd.DataFrame | None = None) -> pd.DataFrame:
    """A small clean table ``transactions`` (what the predict path reads the customers' history from)."""
    df = make_transactions() if df is None else df
    df = df.assign(invoice_ts=df["invoice_ts"].astype("datetime64[us]"))
    publish_table(warehouse, "transactions", "clean/transactions", df, TX_COLUMNS)
    return df


def lake_files(lake, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix`` with its bytes (to prove nothing new was served)."""
    return {k: lake.get_bytes(k) for k in lake.list(prefix)}


def write_online_retail(path, months: tuple[str, ...], customers: int, products: int = 40, seed: int = 0) -> None:
    """A generated source file in the "Online Retail" layout (InvoiceNo, StockCode, ...) over ``months``
    (YYYY-MM), ``customers`` known customers, a few guest checkouts and returns."""
    rng = np.random.RandomState(seed)
    adjectives = ["RED", "BLUE", "VINTAGE", "GIANT", "MINI", "PINK", "RETRO", "RUSTIC", "GLASS", "PAPER"]
    nouns = ["MUG", "LANTERN", "TEAPOT", "GARLAND", "CUSHION", "CLOCK", "DOORSTOP", "UMBRELLA", "NOTEBOOK", "CANDLE"]
    names = [f"{adjectives[i % 10]} {nouns[(i // 10 + i) % 10]} {['SET', 'LARGE', 'SMALL', 'BOX'][i % 4]}"
             for i in range(products)]
    rows, inv = [], 560000
    for month in months:
        start = pd.Timestamp(f"{month}-01 08:00")
        for c in range(customers):
            for _ in range(int(rng.randint(1, 3))):
                inv += 1
                ts = start + pd.Timedelta(days=int(rng.randint(0, 27)), minutes=int(rng.randint(0, 600)))
                cid = None if c % 9 == 8 else float(13000 + c)
                for p in rng.choice(products, size=int(rng.randint(1, 6)), replace=False):
                    rows.append((str(inv), f"8{p:04d}", names[p], int(rng.randint(1, 24)),
                                 ts.strftime("%Y-%m-%d %H:%M:%S"), float(rng.choice([0.85, 1.65, 2.95, 4.25])),
                                 cid, "United Kingdom" if c % 4 else "France"))
                if rng.rand() < 0.1 and cid is not None:
                    inv += 1
                    rows.append((f"C{inv}", rows[-1][1], rows[-1][2], -1, (ts + pd.Timedelta(days=1)).strftime(
                        "%Y-%m-%d %H:%M:%S"), rows[-1][5], cid, rows[-1][7]))
    pd.DataFrame(rows, columns=["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
                                "CustomerID", "Country"]).to_parquet(path, index=False)


# ------------------------------------------------------------------------------------ sales series
DAILY_SALES_COLUMNS = (("sale_date", "date", ""), ("net_revenue", "double", ""))
DAILY_BY_COUNTRY_COLUMNS = (("sale_date", "date", ""), ("country", "string", ""), ("net_revenue", "double", ""))
WEEKDAY_PATTERN = np.array([1.1, 1.2, 1.0, 1.25, 0.95, 0.0, 0.5])  # Monday..Sunday; no trading on Saturdays


def sales_days(weeks: int, end: str = "2011-12-09") -> list:
    """The trading days (not Saturdays) of the ``weeks`` weeks ending on ``end``."""
    last = pd.Timestamp(end)
    days = pd.date_range(last - pd.Timedelta(days=7 * weeks - 1), last)
    return [d.date() for d in days if d.dayofweek != 5]


def steady_sales(weeks: int = 44, seed: int = 0, level: float = 30000.0, noise: float = 0.25) -> pd.DataFrame:
    """Daily net revenue with a weekday pattern, a slow trend and independent noise: what the forecast
    model is made for (seasonal naive copies last week's noise)."""
    rng = np.random.RandomState(seed)
    days = sales_days(weeks)
    t = np.arange(len(days))
    trend = level * (1 + 0.3 * t / len(days))
    y = trend * WEEKDAY_PATTERN[[d.weekday() for d in days]] * rng.lognormal(0, noise, len(days))
    return pd.DataFrame({"sale_date": days, "net_revenue": y.round(2)})


def random_walk_sales(weeks: int = 44, seed: int = 0, step: float = 0.6) -> pd.DataFrame:
    """Each weekday its own random walk from week to week (log steps ~ N(0, step)): last week's value is
    the best forecast there is, and a smoothed level lags it (a model cannot beat seasonal naive)."""
    rng = np.random.RandomState(seed)
    days = sales_days(weeks)
    y = np.zeros(len(days))
    last: dict[int, float] = {}
    for i, d in enumerate(days):
        wd = d.weekday()
        prev = last.get(wd, 30000.0 * WEEKDAY_PATTERN[wd])
        y[i] = prev * float(np.exp(rng.normal(0, step)))
        last[wd] = y[i]
    return pd.DataFrame({"sale_date": days, "net_revenue": y.round(2)})


def publish_sales(warehouse, total: pd.DataFrame, countries: dict[str, pd.DataFrame] | None = None) -> None:
    """Crafted input of the forecast: the relations ``daily_sales`` and ``daily_sales_by_country`` (what
    the analytics layer publishes as views) as tables of these rows."""
    by_country = pd.concat([df.assign(country=c) for c, df in (countries or {}).items()], ignore_index=True) \
        if countries else pd.DataFrame({"sale_date": total["sale_date"].iloc[:1], "country": "Unspecified",
                                        "net_revenue": [0.0]})
    publish_table(warehouse, "daily_sales", "crafted/daily_sales", total, DAILY_SALES_COLUMNS)
    publish_table(warehouse, "daily_sales_by_country", "crafted/daily_sales_by_country", by_country,
                  DAILY_BY_COUNTRY_COLUMNS)


def create_sales_views(warehouse) -> None:
    """The analytics views the forecast reads, created from the analytics layer's SQL files (for tests
    that do not materialize the analytics assets)."""
    from ecommerce_platform.resources.sql_dialect import read_sql

    for name in ("sale_lines", "daily_sales", "daily_sales_by_country"):
        warehouse.create_view(name, read_sql("ecommerce_platform.analytics", f"{name}.sql"))
