"""The EDA layer's SQL (``eda/sql/*.sql``), rendered and run by the warehouse engine.

Every query aggregates in the engine and returns a small DataFrame (one row per customer, product,
day, month or distinct value); nothing here pulls the whole clean table into Python, except the
explicitly bounded profiling samples.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources

from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.sql_dialect import read_sql
from ecommerce_platform.resources.warehouse import Warehouse

SQL_PACKAGE = "ecommerce_platform.eda"


def sql_names() -> list[str]:
    return sorted(
        p.name for p in resources.files(SQL_PACKAGE).joinpath("sql").iterdir() if p.name.endswith(".sql")
    )


def sql_fingerprint() -> str:
    """A hash of every SQL file of the layer (part of each report's fingerprint)."""
    h = hashlib.sha256()
    for name in sql_names():
        h.update(name.encode())
        h.update(read_sql(SQL_PACKAGE, name).encode())
    return h.hexdigest()


def _number(value: float | int) -> str:
    """A numeric literal safe to paste into SQL (no exponent, so both engines read it as a number)."""
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite number: {value}")
    return f"{value:.6f}"


def render(name: str, **params: object) -> str:
    """The SQL file with its ``{placeholders}`` substituted (numbers are formatted as SQL literals)."""
    sql = read_sql(SQL_PACKAGE, name)
    for key, value in params.items():
        text = value if isinstance(value, str) else _number(value) if isinstance(value, float) else str(int(value))
        sql = sql.replace("{" + key + "}", text)
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    left = sorted(set(re.findall(r"\{([a-z_]+)\}", body)))
    if left:
        raise ValueError(f"eda/sql/{name}: placeholders left unfilled: {', '.join(left)}")
    return sql


def query(warehouse: Warehouse, lake: Lake, name: str, **params: object):
    return warehouse.query_df(render(name, **params), lake)


def customer_features(warehouse: Warehouse, lake: Lake):
    """RFM-style features per known customer (see sql/customer_features.sql)."""
    df = query(warehouse, lake, "customer_features.sql")
    return _numeric(df, exclude=("customer_id",))


def product_stats(warehouse: Warehouse, lake: Lake):
    return _numeric(query(warehouse, lake, "product_stats.sql"), exclude=("stock_code", "description"))


def daily_sales(warehouse: Warehouse, lake: Lake):
    import pandas as pd

    df = _numeric(query(warehouse, lake, "daily_sales.sql"), exclude=("invoice_date",))
    df["invoice_date"] = pd.to_datetime(df["invoice_date"])
    return df


def value_counts(warehouse: Warehouse, lake: Lake, column: str):
    """(value, lines) of ``quantity`` or ``unit_price`` on sale lines."""
    name = {"quantity": "quantity_counts.sql", "unit_price": "price_counts.sql"}[column]
    return _numeric(query(warehouse, lake, name))


def _numeric(df, exclude: tuple[str, ...] = ()):
    """Athena returns text: make every column that should be a number a number (a no-op on DuckDB)."""
    import pandas as pd

    for col in df.columns:
        if col not in exclude and df[col].dtype == object:
            converted = pd.to_numeric(df[col], errors="coerce")
            if converted.notna().sum() == df[col].notna().sum():
                df[col] = converted
    return df
