"""The EDA layer's SQL (``eda/sql/*.sql``), rendered and run by the warehouse engine.

Every query aggregates in the engine and returns a small DataFrame (one row per customer, product,
day, month or distinct value); nothing here pulls a whole table into Python, except the explicitly
bounded profiling samples. Money comes from the analytics views (``sale_lines``, ``daily_sales``,
``popular_products``): the EDA layer does not compute revenue itself.
"""

from __future__ import annotations

from importlib import resources

from ecommerce_platform.resources.sql_dialect import Sql, read_sql, render
from ecommerce_platform.resources.warehouse import Warehouse, ident
from ecommerce_platform.schema import UNSPECIFIED_COUNTRY  # the clean zone's "no country": not a country

SQL_PACKAGE = "ecommerce_platform.eda"
TEXT_COLUMNS = ("invoice_no", "stock_code", "description", "customer_id", "country")


def sql_names() -> list[str]:
    return sorted(
        p.name for p in resources.files(SQL_PACKAGE).joinpath("sql").iterdir() if p.name.endswith(".sql")
    )


def sql_text(name: str, **params: object) -> str:
    """The SQL file with its ``{placeholders}`` filled (``sql_dialect.render``: values become literals,
    ``Sql`` fragments go in as written; a placeholder left without a value is an error)."""
    return render(read_sql(SQL_PACKAGE, name), **params)


def query(warehouse: Warehouse, name: str, **params: object):
    return warehouse.query_df(sql_text(name, **params))


def customer_features(warehouse: Warehouse):
    """RFM-style features per known customer (see sql/customer_features.sql)."""
    return query(warehouse, "customer_features.sql")


def product_stats(warehouse: Warehouse):
    return query(warehouse, "product_stats.sql")


def sales_by_day(warehouse: Warehouse):
    """The analytics view daily_sales (dates as datetimes)."""
    import pandas as pd

    df = query(warehouse, "sales_by_day.sql")
    df["sale_date"] = pd.to_datetime(df["sale_date"])
    return df


def value_counts(warehouse: Warehouse, column: str):
    """(value, lines) of ``quantity`` or ``unit_price`` on sale lines."""
    name = {"quantity": "quantity_counts.sql", "unit_price": "price_counts.sql"}[column]
    return query(warehouse, name)


def mojibake_examples(warehouse: Warehouse, column: str, pattern: str, limit: int):
    return query(warehouse, "mojibake_examples.sql", column=Sql(ident(column)), pattern=pattern, limit=int(limit))
