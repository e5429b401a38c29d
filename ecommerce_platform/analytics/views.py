"""The analytics views: defined once in ``analytics/sql/<view>.sql`` (DuckDB dialect, Trino-portable),
created in the warehouse by ``warehouse.create_view`` (DuckDB views in the published catalog locally,
Athena views over the Glue tables in aws), and described from what the warehouse says about them
(columns and types, row count, a preview).

Plain functions, testable without Dagster. Nothing heavy is imported at module level: the asset
declarations read the constants below when the definitions load.
"""

from __future__ import annotations

from ecommerce_platform.resources.sql_dialect import read_sql
from ecommerce_platform.resources.warehouse import Warehouse
from ecommerce_platform.schema import CLEAN_TABLE

SQL_PACKAGE = "ecommerce_platform.analytics"
BASE_VIEW = "sale_lines"
# In creation order: every view after the relations it reads.
VIEWS: tuple[str, ...] = (
    BASE_VIEW,
    "daily_sales",
    "daily_sales_by_country",
    "monthly_sales",
    "popular_products",
    "sales_by_country",
    "top_customers",
    "returns",
    "sales_kpis",
)
# What each view's SQL reads (a test derives it from the SQL and compares): the published table
# `transactions` (asset clean_parquet) for the base view, the base view for every other one.
READS: dict[str, tuple[str, ...]] = {v: (CLEAN_TABLE,) if v == BASE_VIEW else (BASE_VIEW,) for v in VIEWS}
# The asset that publishes each relation a view reads.
RELATION_ASSETS: dict[str, str] = {CLEAN_TABLE: "clean_parquet", **{v: v for v in VIEWS}}
# Views whose rows partition every sale and return line: their net_revenue adds up to sales_kpis'.
RECONCILED_VIEWS: tuple[str, ...] = (
    "daily_sales", "daily_sales_by_country", "monthly_sales", "popular_products", "sales_by_country",
)
PREVIEW_ROWS = 10
PREVIEW_ORDER = {
    "sale_lines": "invoice_ts, invoice_no, stock_code",
    "daily_sales": "sale_date DESC",
    "daily_sales_by_country": "sale_date DESC, net_revenue DESC, country",
    "monthly_sales": "sale_month",
    "popular_products": "revenue_rank",
    "sales_by_country": "revenue_rank NULLS LAST, country",
    "top_customers": "revenue_rank",
    "returns": "sale_month",
    "sales_kpis": "first_day",
}


def view_sql(name: str) -> str:
    """The SELECT of a view, as written in its SQL file (comments kept)."""
    if name not in VIEWS:
        raise KeyError(f"unknown analytics view {name!r}; known: {', '.join(VIEWS)}")
    return read_sql(SQL_PACKAGE, f"{name}.sql").strip().rstrip(";")


def view_description(name: str) -> str:
    """The first sentence of the SQL file's opening comment (``-- name: what it is. ...``)."""
    first: list[str] = []
    for line in view_sql(name).splitlines():
        if not line.startswith("--"):
            break
        first.append(line[2:].strip())
    text = " ".join(first)
    text = text.split(": ", 1)[1] if text.startswith(f"{name}: ") else text
    end = text.find(". ")
    return (text[: end + 1] if end > 0 else text).strip()


def view_deps(name: str) -> list[str]:
    """The asset keys of the relations the view reads."""
    return [RELATION_ASSETS[r] for r in READS[name]]


def create_view(warehouse: Warehouse, name: str) -> None:
    warehouse.create_view(name, view_sql(name))


def column_types(warehouse: Warehouse, name: str) -> list[tuple[str, str]]:
    """(column, type) of the view, as the warehouse describes it."""
    if warehouse.engine == "duckdb":
        desc = warehouse.query_df(f"DESCRIBE SELECT * FROM {name}")
        return [(str(c), str(t)) for c, t in zip(desc["column_name"], desc["column_type"])]
    empty = warehouse.query_df(f"SELECT * FROM {name} LIMIT 0")
    return [(str(c), str(t)) for c, t in empty.dtypes.items()]


def summary(warehouse: Warehouse, name: str) -> dict:
    """Row count (and net revenue when the view has it) counted by the warehouse."""
    net = ", SUM(net_revenue) AS net_revenue" if name in (*RECONCILED_VIEWS, "sales_kpis") else ""
    row = warehouse.query_df(f"SELECT COUNT(*) AS n{net} FROM {name}").iloc[0]
    out = {"rows": int(row["n"])}
    if net:
        out["net_revenue"] = None if _missing(row["net_revenue"]) else round(float(row["net_revenue"]), 2)
    return out


def preview(warehouse: Warehouse, name: str, rows: int = PREVIEW_ROWS):
    """The first ``rows`` rows in the view's natural order (a pandas DataFrame)."""
    return warehouse.query_df(f"SELECT * FROM {name} ORDER BY {PREVIEW_ORDER[name]} LIMIT {int(rows)}")


def net_revenue_cents(warehouse: Warehouse) -> dict[str, int]:
    """Net revenue of every reconciled view and of sales_kpis, in pence, summed by the warehouse (exact
    DECIMAL sums: the figures agree to the penny when the views are right)."""
    cols = [f"(SELECT SUM(net_revenue) FROM {v}) AS {v}" for v in RECONCILED_VIEWS]
    cols.append("(SELECT SUM(net_revenue) FROM sales_kpis) AS sales_kpis")
    row = warehouse.query_df("SELECT " + ", ".join(cols)).iloc[0]
    return {k: 0 if _missing(row[k]) else int(round(float(row[k]) * 100)) for k in (*RECONCILED_VIEWS, "sales_kpis")}


def _missing(value) -> bool:  # noqa: ANN001
    """None, NaN, NaT or pandas' NA (never a string: 'nan' may be a real description)."""
    if value is None or isinstance(value, (str, bytes)):
        return value is None
    try:
        return bool(value != value) or type(value).__name__ in ("NaTType", "NAType")
    except (TypeError, ValueError):  # pandas' NA refuses to be a bool
        return True


def plain(value, decimals: int = 2):  # noqa: ANN001, ANN201
    """A value as metadata holds it: floats rounded, dates and timestamps as ISO text, NULL as None."""
    import datetime as dt
    import decimal

    import numpy as np
    import pandas as pd

    if _missing(value):
        return None
    if isinstance(value, decimal.Decimal):
        return float(value.quantize(decimal.Decimal(1).scaleb(-decimals), rounding=decimal.ROUND_HALF_UP))
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return round(value, decimals)
    if isinstance(value, int):
        return value
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value == dt.datetime.combine(value.date(), dt.time()) else \
            value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return plain(value.to_pydatetime(), decimals)
    return str(value)


def as_numbers(df, text_columns: frozenset[str] = frozenset()):  # noqa: ANN001, ANN201
    """DECIMAL columns some engines return as Python Decimals (object dtype) as floats; identifiers
    stay text."""
    import decimal

    import pandas as pd

    out = df.copy()
    for col in out.columns:
        if col in text_columns or out[col].dtype != object:
            continue
        sample = out[col].dropna()
        if len(sample) and all(isinstance(v, (decimal.Decimal, int, float)) for v in sample):
            out[col] = pd.to_numeric(out[col].map(lambda v: None if v is None else float(v)))
    return out
