"""Feature tables of the ML layer, computed in SQL by the warehouse engine and written to the lake's
features zone (``features/<name>/``), registered as tables of the warehouse.

Each table is one SQL file in ``ml/sql/`` (DuckDB dialect, Trino-portable). Skip-when-unchanged: a
manifest per table records a fingerprint of the clean zone's manifest and the SQL; an unchanged
fingerprint reuses the previous output.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass

from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.sql_dialect import read_sql
from ecommerce_platform.resources.warehouse import Warehouse

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

    @property
    def prefix(self) -> str:
        return f"{FEATURES_ZONE}/{self.name}"

    @property
    def manifest_key(self) -> str:
        return f"{FEATURES_ZONE}/_manifests/{self.name}.json"

    def sql(self) -> str:
        return read_sql(SQL_PACKAGE, self.sql_file)


INVOICE_FEATURES = FeatureTable("invoice_features", "invoice_features.sql", INVOICE_COLUMNS)
CUSTOMER_FEATURES = FeatureTable("customer_features", "customer_features.sql", CUSTOMER_COLUMNS)
USER_ITEM_INTERACTIONS = FeatureTable(
    "user_item_interactions", "user_item_interactions.sql", INTERACTION_COLUMNS
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
    fingerprint: str
    seconds: float
    reused: bool = False


def _fingerprint(lake: Lake, table: FeatureTable) -> str:
    from ecommerce_platform.lake.clean import CLEAN_MANIFEST

    h = hashlib.sha256(table.sql().encode())
    h.update(repr(table.columns).encode())
    if lake.exists(CLEAN_MANIFEST):
        h.update(json.loads(lake.get_text(CLEAN_MANIFEST)).get("fingerprint", "").encode())
    else:
        h.update(str(time.time()).encode())  # no manifest: never reuse
    return h.hexdigest()


def build_feature_table(
    warehouse: Warehouse, lake: Lake, table: FeatureTable, force: bool = False
) -> FeatureResult:
    """Write the table's SQL result to ``features/<name>/`` and register it (``<name>``)."""
    fp = _fingerprint(lake, table)
    if not force and lake.exists(table.manifest_key) and lake.list(table.prefix):
        previous = json.loads(lake.get_text(table.manifest_key))
        if previous.get("fingerprint") == fp:
            warehouse.register_table(table.name, lake, table.prefix, table.columns)
            return FeatureResult(**{**previous, "reused": True})
    cols = ", ".join(c for c, _, _ in table.columns)
    t0 = time.perf_counter()
    rows = warehouse.write_query(f"SELECT {cols} FROM ({table.sql()}) AS q", lake, table.prefix)
    seconds = round(time.perf_counter() - t0, 3)
    warehouse.register_table(table.name, lake, table.prefix, table.columns)
    result = FeatureResult(table.name, int(rows), lake.uri(table.prefix), fp, seconds)
    lake.put_text(table.manifest_key, json.dumps(asdict(result), sort_keys=True))
    return result


def customer_history_sql(requests_relation: str) -> str:
    """The strictly-prior history of arbitrary (request_id, customer_id, as_of_ts) requests."""
    return read_sql(SQL_PACKAGE, "customer_history.sql").replace("{requests}", requests_relation)


def all_sql_files() -> dict[str, str]:
    from importlib import resources

    base = resources.files(SQL_PACKAGE).joinpath("sql")
    return {p.name: p.read_text(encoding="utf-8") for p in base.iterdir() if p.name.endswith(".sql")}
