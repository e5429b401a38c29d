"""The platform's shared vocabulary, imported by every layer (and by the CDK app in ``infra/``): the lake's
zones and keys, the names of its tables, their canonical columns and types, and what is not a product.

One definition used by the SQL, the checks, the Glue catalog (both the platform's and the CDK app's)
and the column schemas shown in Dagster. Types are given in a neutral vocabulary; ``GLUE_TYPES`` and
``DUCKDB_TYPES`` map them. Standard library only: ``infra/`` loads this file by path.
"""

from __future__ import annotations

# Zones of the lake, relative to the lake root (a folder locally, s3://bucket/prefix in aws).
ZONE_RAW = "raw"
ZONE_CLEAN = "clean"
ZONE_QUARANTINE = "quarantine"
ZONE_ANALYTICS = "analytics"
ZONE_FEATURES = "features"
ZONE_MODELS = "models"
ZONE_RAG = "rag"
ZONE_REPORTS = "reports"

# Prefixes inside the raw zone.
RAW_BATCH_PREFIX = "raw/batch"  # raw/batch/ingest_date=YYYY-MM-DD/<sha12>/<file>
RAW_STREAM_PREFIX = "raw/stream"  # raw/stream/year=YYYY/month=MM/day=DD/<object>
RAW_STREAM_ERROR_PREFIX = "raw/stream_errors"  # Firehose-style error output


# Tables (and the lake prefixes that hold them).
CLEAN_TABLE = "transactions"
CLEAN_PREFIX = f"{ZONE_CLEAN}/{CLEAN_TABLE}"  # clean/transactions/year=YYYY/month=M/*.parquet
QUARANTINE_TABLE = "quarantine"
QUARANTINE_PREFIX = f"{ZONE_QUARANTINE}/transactions"
RAW_LINES_TABLE = "raw_lines"  # every landed batch record as read, before typing (ingestion publishes it)
RAW_NORMALIZED_PREFIX = "raw/normalized"  # raw/normalized/<route>/<id>/part-<month>-NNNNN.parquet

# The source columns every accepted input format is normalised to (all read as text first).
SOURCE_COLUMNS: tuple[str, ...] = (
    "invoice_no",
    "stock_code",
    "description",
    "quantity",
    "invoice_date",
    "unit_price",
    "customer_id",
    "country",
)

# name, type, description
CLEAN_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("invoice_no", "string", "Invoice number; a leading 'C' marks a cancellation"),
    ("stock_code", "string", "Product (item) code, upper-cased and trimmed"),
    ("description", "string", "Product name as written on the line (may be null)"),
    ("quantity", "bigint", "Units on the line; negative on cancellations and returns"),
    ("invoice_ts", "timestamp", "Invoice date and time"),
    ("invoice_date", "date", "Invoice calendar date"),
    ("unit_price", "double", "Unit price in GBP"),
    ("customer_id", "string", "Customer id; null for guest checkouts"),
    ("country", "string", "Customer country"),
    ("line_total", "double", "quantity x unit_price, GBP, rounded to pence"),
    ("is_cancellation", "boolean", "Invoice number starts with 'C'"),
    ("is_product", "boolean", "A real product, not postage, fees, discounts, adjustments or vouchers"),
    ("is_guest", "boolean", "No customer id (guest checkout)"),
    ("is_sale", "boolean", "THE definition of a sale: not cancelled, quantity > 0, unit price > 0, a real product"),
    ("is_return", "boolean", "A cancelled/returned product line (cancellation with quantity < 0)"),
    ("source", "string", "Route the line arrived by: batch or stream"),
    ("source_lines", "bigint", "Input lines this row stands for: 1 + the exact duplicates folded into it"),
)
# A clean row's identity: no two rows of the clean table share all of these values (exact duplicates are
# folded into one row, counted by source_lines). Stored as they are, not as a hash of them: a hash is 2/3
# of the table's bytes and a third of the clean transform's time, and any engine computes one on demand.
CLEAN_KEY: tuple[str, ...] = (
    "invoice_no", "stock_code", "description", "quantity", "invoice_ts", "unit_price", "customer_id", "country",
)
# The only clean columns that may be null (a line without a product name; a guest checkout): every other
# column of CLEAN_COLUMNS and CLEAN_PARTITIONS is required (checked by clean_required_not_null), and two
# rows are the same line when equal in CLEAN_KEY with these compared null-safely.
CLEAN_NULLABLE: tuple[str, ...] = ("description", "customer_id")
CLEAN_PARTITIONS: tuple[tuple[str, str, str], ...] = (
    ("year", "int", "Invoice year (partition)"),
    ("month", "int", "Invoice month 1-12 (partition)"),
)

QUARANTINE_PARTITIONS: tuple[tuple[str, str, str], ...] = (
    ("partition_month", "string", "Invoice month YYYY-MM of the line, or 'undated' (partition)"),
)
QUARANTINE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    *((c, "string", f"Source value of {c}, as text") for c in SOURCE_COLUMNS),
    ("reason", "string", "Why the row was rejected"),
    ("source_file", "string", "Raw object the row came from"),
    ("source_row", "bigint", "1-based record number in that object (data records, header excluded)"),
    ("source_line", "bigint", "Text sources: the line (CSV) or sheet row (xlsx) where the record starts"),
    ("detail", "string", "What the source reader found wrong with a malformed record, and its text"),
)

# The DuckDB engine's catalog in the lake: one JSON entry per table or view (resources/warehouse.py)
CATALOG_PREFIX = "_catalog/duckdb"

# What the clean zone writes as the country of a line that has none: a placeholder, never a country
# (country counts and rankings leave it out; its lines still count in every total).
UNSPECIFIED_COUNTRY = "Unspecified"

# Stock codes that are not products (postage, fees, manual adjustments, ...), matched upper-cased.
NON_PRODUCT_CODES: tuple[str, ...] = (
    "POST", "DOT", "C2", "M", "S", "B", "D", "CRUK", "PADS", "BANK CHARGES", "AMAZONFEE",
    "ADJUST", "ADJUST2", "TEST001", "TEST002",
    "23444", "23574", "22016",  # "Next Day Carriage", "PACKING CHARGE", a gift voucher: fees under product-like codes
)
# Prefixes of non-product codes (gift vouchers).
NON_PRODUCT_PREFIXES: tuple[str, ...] = ("GIFT_",)

GLUE_TYPES = {
    "string": "string", "bigint": "bigint", "int": "int", "double": "double",
    "boolean": "boolean", "timestamp": "timestamp", "date": "date",
}
DUCKDB_TYPES = {
    "string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "double": "DOUBLE",
    "boolean": "BOOLEAN", "timestamp": "TIMESTAMP", "date": "DATE",
}
