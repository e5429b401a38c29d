"""Feature tables of the ML layer, computed in SQL by the warehouse engine and written to the lake's
features zone (``features/<name>/``), registered as tables of the warehouse.

Each table is one SQL file in ``ml/sql/`` (DuckDB dialect, Trino-portable) over the clean table
``transactions``. Whether a table is rebuilt is Dagster's decision (``recompute.previous_if_fresh``),
not this module's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ecommerce_platform.resources.sql_dialect import read_sql

SQL_PACKAGE = "ecommerce_platform.ml"
FEATURES_ZONE = "features"

# name, type, description (types in schema.py's neutral vocabulary)
INVOICE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("invoice_no", "string", "Sale invoice (key)"),
    ("customer_id", "string", "Customer (known customers only)"),
    ("invoice_ts", "timestamp", "Invoice date and time"),
    ("invoice_month", "int", "YYYYMM of the invoice: drives the time-based split, not a feature"),
    ("country", "string", "Customer country on the invoice"),
    ("hour_of_day", "int", "Hour of the invoice (0-23)"),
    ("day_of_week", "int", "ISO day of week (1 = Monday)"),
    ("basket_lines", "bigint", "Number of sale lines on the invoice (basket size; no quantities or prices)"),
    ("prior_orders", "bigint", "Sale invoices of the customer strictly before this one"),
    ("prior_spend", "double", "GBP spent on those prior invoices"),
    ("prior_avg_order", "double", "Average prior invoice total (null without history)"),
    ("prior_max_order", "double", "Largest prior invoice total (null without history)"),
    ("prior_avg_lines", "double", "Average lines per prior invoice (null without history)"),
    ("prior_return_invoices", "bigint", "Return invoices of the customer strictly before this one"),
    ("prior_return_value", "double", "GBP returned strictly before this invoice"),
    ("days_since_last_order", "double", "Recency: days since the previous sale invoice (null: first)"),
    ("tenure_days", "double", "Days since the customer's first sale invoice (null: first)"),
    ("invoice_total", "double", "LABEL SOURCE ONLY (never a feature): GBP total of the invoice's sale lines"),
)
CUSTOMER_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("customer_id", "string", "Customer (key)"),
    ("country", "string", "Customer country"),
    ("frequency", "bigint", "Completed sale invoices"),
    ("gross_spend", "double", "GBP of completed sales"),
    ("returns_value", "double", "GBP of returned products"),
    ("return_invoices", "bigint", "Return (cancellation) invoices"),
    ("monetary", "double", "Net spend: gross_spend - returns_value (GBP)"),
    ("avg_basket", "double", "Net spend per sale invoice (null without sales)"),
    ("avg_lines", "double", "Lines per sale invoice (null without sales)"),
    ("recency_days", "double", "Days from the last sale to the end of the data, plus one (null without sales)"),
    ("tenure_days", "double", "Days from the first sale to the end of the data, plus one (null without sales)"),
    ("first_purchase_ts", "timestamp", "First sale"),
    ("last_purchase_ts", "timestamp", "Last sale"),
    ("has_net_spend", "boolean", "Net spend > 0; customers without it are labelled, not clustered"),
)
INTERACTION_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("customer_id", "string", "Customer"),
    ("stock_code", "string", "Product"),
    ("invoice_no", "string", "Sale invoice"),
    ("invoice_ts", "timestamp", "Invoice date and time"),
    ("quantity", "bigint", "Units of the product on the invoice (sales only)"),
    ("invoice_rank_desc", "bigint", "Position of the invoice in the customer's history, 1 = last"),
    ("customer_invoices", "bigint", "Sale invoices of the customer"),
)


@dataclass(frozen=True)
class FeatureTable:
    name: str
    sql_file: str
    columns: tuple[tuple[str, str, str], ...]
    order_by: str  # a deterministic order for previews
    # column -> the clean columns it is computed from (dagster/column_lineage), where the SQL makes it plain
    lineage: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"{FEATURES_ZONE}/{self.name}"

    def sql(self) -> str:
        return read_sql(SQL_PACKAGE, self.sql_file)


_PRIOR_SALES = ("invoice_no", "invoice_ts", "customer_id", "line_total", "is_sale", "is_guest")
_PRIOR_RETURNS = ("invoice_no", "invoice_ts", "customer_id", "line_total", "is_return", "is_guest")

INVOICE_FEATURES = FeatureTable(
    "invoice_features", "invoice_features.sql", INVOICE_COLUMNS, "invoice_ts, invoice_no",
    lineage={
        "invoice_no": ("invoice_no",), "customer_id": ("customer_id",), "invoice_ts": ("invoice_ts",),
        "invoice_month": ("invoice_ts",), "country": ("country",), "hour_of_day": ("invoice_ts",),
        "day_of_week": ("invoice_ts",), "basket_lines": ("invoice_no", "is_sale"),
        "prior_orders": _PRIOR_SALES, "prior_spend": _PRIOR_SALES, "prior_avg_order": _PRIOR_SALES,
        "prior_max_order": _PRIOR_SALES, "prior_avg_lines": _PRIOR_SALES,
        "prior_return_invoices": _PRIOR_RETURNS, "prior_return_value": _PRIOR_RETURNS,
        "days_since_last_order": _PRIOR_SALES, "tenure_days": _PRIOR_SALES,
        "invoice_total": ("line_total", "is_sale"),
    },
)
CUSTOMER_FEATURES = FeatureTable(
    "customer_features", "customer_features.sql", CUSTOMER_COLUMNS, "customer_id",
    lineage={
        "customer_id": ("customer_id",), "country": ("country",), "frequency": ("invoice_no", "is_sale"),
        "gross_spend": ("line_total", "is_sale"), "returns_value": ("line_total", "is_return"),
        "return_invoices": ("invoice_no", "is_return"), "monetary": ("line_total", "is_sale", "is_return"),
        "first_purchase_ts": ("invoice_ts", "is_sale"), "last_purchase_ts": ("invoice_ts", "is_sale"),
    },
)
USER_ITEM_INTERACTIONS = FeatureTable(
    "user_item_interactions", "user_item_interactions.sql", INTERACTION_COLUMNS,
    "customer_id, invoice_ts, invoice_no, stock_code",
    lineage={
        "customer_id": ("customer_id",), "stock_code": ("stock_code",), "invoice_no": ("invoice_no",),
        "invoice_ts": ("invoice_ts",), "quantity": ("quantity", "is_sale"),
        "invoice_rank_desc": ("customer_id", "invoice_no", "invoice_ts"),
        "customer_invoices": ("customer_id", "invoice_no"),
    },
)
TABLES = {t.name: t for t in (INVOICE_FEATURES, CUSTOMER_FEATURES, USER_ITEM_INTERACTIONS)}

# The classifier's inputs: what is known before the invoice's total. Never quantities, prices or
# amounts of the invoice itself (tests assert it). `country` is one-hot encoded by the classifier.
INVOICE_FEATURE_COLUMNS: tuple[str, ...] = (
    "hour_of_day", "day_of_week", "basket_lines", "prior_orders", "prior_spend", "prior_avg_order",
    "prior_max_order", "prior_avg_lines", "prior_return_invoices", "prior_return_value",
    "days_since_last_order", "tenure_days",
)
HISTORY_COLUMNS: tuple[str, ...] = (
    "prior_orders", "prior_spend", "prior_avg_order", "prior_max_order", "prior_avg_lines",
    "prior_return_invoices", "prior_return_value", "days_since_last_order", "tenure_days",
)


@dataclass
class FeatureResult:
    name: str
    rows: int
    uri: str
    seconds: float


def catalog_table(warehouse, table: FeatureTable) -> None:  # noqa: ANN001 - Warehouse
    """Publish the Parquet under ``features/<name>/`` as the warehouse table ``<name>``."""
    warehouse.register_table(table.name, table.prefix, table.columns)


def build_feature_table(warehouse, table: FeatureTable) -> FeatureResult:  # noqa: ANN001 - Warehouse
    """Write the table's SQL result to ``features/<name>/`` (published atomically) and register it."""
    cols = ", ".join(c for c, _, _ in table.columns)
    t0 = time.perf_counter()
    rows = warehouse.write_query(f"SELECT {cols} FROM ({table.sql()}) AS q", table.prefix)
    seconds = round(time.perf_counter() - t0, 3)
    catalog_table(warehouse, table)
    return FeatureResult(table.name, int(rows), warehouse.lake.uri(table.prefix), seconds)


def count_rows(warehouse, name: str) -> int:  # noqa: ANN001
    return int(warehouse.query_df(f"SELECT count(*) AS n FROM {name}").iloc[0]["n"])


def customer_history_sql(requests_relation: str) -> str:
    """The strictly-prior history of arbitrary (request_id, customer_id, as_of_ts) requests."""
    from ecommerce_platform.resources.sql_dialect import Sql, render

    return render(read_sql(SQL_PACKAGE, "customer_history.sql"), requests=Sql(requests_relation))


def all_sql_files() -> dict[str, str]:
    from importlib import resources

    base = resources.files(SQL_PACKAGE).joinpath("sql")
    return {p.name: p.read_text(encoding="utf-8") for p in base.iterdir() if p.name.endswith(".sql")}
