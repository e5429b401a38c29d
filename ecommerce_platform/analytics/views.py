"""The analytics views: defined once in ``analytics/sql/<view>.sql`` (DuckDB dialect, Trino-portable),
created in the warehouse by ``warehouse.create_view`` (DuckDB views in the warehouse file locally,
Athena views over the Glue tables in aws), then summarised (row counts, headline figures, previews).

The summary is kept in the lake (``analytics/_manifests/athena_views.json``) with a fingerprint of
the clean zone's manifest and of the views' SQL: when neither changed, the views are re-created (cheap
DDL, so a fresh warehouse file always has them) but the figures are reused instead of re-queried.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field

from ecommerce_platform.lake.clean import CLEAN_MANIFEST, register_tables
from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.sql_dialect import read_sql
from ecommerce_platform.resources.warehouse import Warehouse

SQL_PACKAGE = "ecommerce_platform.analytics"
CODE_VERSION = "1"
# In creation order: every view after the ones it reads (all read sale_lines).
BASE_VIEW = "sale_lines"
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
# Views whose net_revenue adds up to the total (each partitions all sale and return lines).
RECONCILED_VIEWS: tuple[str, ...] = (
    "daily_sales", "daily_sales_by_country", "monthly_sales", "popular_products", "sales_by_country",
)
VIEWS_MANIFEST = "analytics/_manifests/athena_views.json"
PREVIEW_ORDER = {
    "sale_lines": "invoice_ts, invoice_no, stock_code",
    "daily_sales": "sale_date DESC",
    "daily_sales_by_country": "sale_date DESC, net_revenue DESC",
    "monthly_sales": "sale_month",
    "popular_products": "revenue_rank",
    "sales_by_country": "revenue_rank",
    "top_customers": "revenue_rank",
    "returns": "sale_month",
    "sales_kpis": "net_revenue",
}
TEXT_COLUMNS = frozenset({"customer_id", "stock_code", "invoice_no", "description", "country"})


def view_sql(name: str) -> str:
    """The SELECT of a view, as written in its SQL file (DuckDB dialect, comments kept)."""
    if name not in VIEWS:
        raise KeyError(f"unknown analytics view {name!r}; known: {', '.join(VIEWS)}")
    return read_sql(SQL_PACKAGE, f"{name}.sql").strip().rstrip(";")


def sql_fingerprint() -> str:
    h = hashlib.sha256(CODE_VERSION.encode())
    for name in VIEWS:
        h.update(name.encode())
        h.update(view_sql(name).encode())
    return h.hexdigest()


def clean_fingerprint(lake: Lake) -> str:
    """The clean zone's fingerprint (from its manifest): changes whenever the clean data changes."""
    if not lake.exists(CLEAN_MANIFEST):
        raise RuntimeError(
            f"no clean manifest at {lake.uri(CLEAN_MANIFEST)}: materialize clean_parquet first"
        )
    return str(json.loads(lake.get_text(CLEAN_MANIFEST)).get("fingerprint", ""))


def fingerprint(lake: Lake) -> str:
    return hashlib.sha256(f"{clean_fingerprint(lake)}|{sql_fingerprint()}".encode()).hexdigest()


@dataclass
class ViewsResult:
    views: list[str]
    row_counts: dict[str, int]
    headline: dict[str, float | int | str]
    previews: dict[str, str] = field(default_factory=dict)  # markdown tables
    totals: dict[str, float] = field(default_factory=dict)  # net revenue summed per reconciled view
    engine: str = ""
    create_seconds: float = 0.0
    query_seconds: float = 0.0
    fingerprint: str = ""
    reused: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)


def create_views(warehouse: Warehouse, lake: Lake, names: tuple[str, ...] = VIEWS) -> float:
    """CREATE OR REPLACE every view in order; returns the seconds it took."""
    t0 = time.perf_counter()
    for name in names:
        warehouse.create_view(name, view_sql(name), lake)
    return time.perf_counter() - t0


def numeric(df):  # noqa: ANN001, ANN201 - pandas DataFrame in and out
    """Athena returns every value as text: turn the columns that hold numbers into numbers."""
    import pandas as pd

    out = df.copy()
    for col in out.columns:
        if col in TEXT_COLUMNS:
            continue  # identifiers that look like numbers stay text ('14646', '85123')
        if out[col].dtype == object:
            converted = pd.to_numeric(out[col], errors="coerce")
            if converted.notna().sum() == out[col].notna().sum() and out[col].notna().any():
                out[col] = converted
    return out


def format_frame(df):  # noqa: ANN001, ANN201
    """Values as a person reads them: dates without a time, GBP with pence, counts with separators."""
    import pandas as pd

    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            is_date = bool((s.dropna() == s.dropna().dt.normalize()).all())
            out[col] = s.dt.strftime("%Y-%m-%d" if is_date else "%Y-%m-%d %H:%M").fillna("")
        elif pd.api.types.is_bool_dtype(s):
            out[col] = s.astype(str)
        elif pd.api.types.is_integer_dtype(s):
            out[col] = s.map(lambda v: f"{v:,}")
        elif pd.api.types.is_float_dtype(s):
            if col.endswith(("_rate", "share_of_net_revenue")):
                out[col] = s.map(lambda v: "" if pd.isna(v) else f"{v:.2%}")
            elif col.startswith(("units", "return_lines")):
                out[col] = s.map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")
            else:
                out[col] = s.map(lambda v: "" if pd.isna(v) else f"{v:,.2f}")
        else:
            out[col] = s.astype(str).where(s.notna(), "")
    return out


def markdown_table(df) -> str:  # noqa: ANN001
    return format_frame(df).to_markdown(index=False, disable_numparse=True)


def summary_sql() -> str:
    """One query: row count of every view, net revenue of every reconciled view, the headline row
    (one aggregate per view, cross-joined: each view is scanned once)."""
    parts = []
    for v in VIEWS:
        net = f", SUM(net_revenue) AS net_{v}" if v in RECONCILED_VIEWS else ""
        parts.append(f"(SELECT COUNT(*) AS rows_{v}{net} FROM {v}) AS s_{v}")
    return "SELECT * FROM " + " CROSS JOIN ".join(parts) + " CROSS JOIN sales_kpis AS k"


def summarize(warehouse: Warehouse, lake: Lake, preview_rows: int = 10) -> dict:
    row = numeric(warehouse.query_df(summary_sql(), lake))
    if row.empty:
        raise RuntimeError("the summary query of the analytics views returned no row")
    r = row.iloc[0]
    row_counts = {v: int(r[f"rows_{v}"]) for v in VIEWS}
    totals = {v: round(float(r[f"net_{v}"] or 0), 2) for v in RECONCILED_VIEWS}
    headline: dict = {}
    for col in ("net_revenue", "gross_sales", "returns_value", "orders", "customers", "units_sold",
                "products", "countries", "trading_days", "avg_order_value", "first_day", "last_day"):
        value = r[col]
        if col in ("orders", "customers", "units_sold", "products", "countries", "trading_days"):
            headline[col] = int(value)
        elif col in ("first_day", "last_day"):
            headline[col] = str(value)[:10]
        else:
            headline[col] = round(float(value), 2)
    previews = {}
    for v in VIEWS:
        df = numeric(
            warehouse.query_df(f"SELECT * FROM {v} ORDER BY {PREVIEW_ORDER[v]} LIMIT {int(preview_rows)}", lake)
        )
        previews[v] = markdown_table(df)
    return {"row_counts": row_counts, "totals": totals, "headline": headline, "previews": previews}


def build_views(warehouse: Warehouse, lake: Lake, force: bool = False) -> ViewsResult:
    """Make sure the clean tables are registered, create the views, summarise them (or reuse the
    summary of the previous run when the clean data and the views' SQL are unchanged)."""
    fp = fingerprint(lake)
    register_tables(warehouse, lake)  # idempotent: the Glue tables / DuckDB views the SQL reads
    create_s = create_views(warehouse, lake)
    if not force and lake.exists(VIEWS_MANIFEST):
        previous = ViewsResult(**json.loads(lake.get_text(VIEWS_MANIFEST)))
        if previous.fingerprint == fp and previous.engine == warehouse.engine:
            previous.reused = True
            previous.create_seconds = round(create_s, 3)
            return previous
    t0 = time.perf_counter()
    summary = summarize(warehouse, lake)
    result = ViewsResult(
        views=list(VIEWS),
        engine=warehouse.engine,
        create_seconds=round(create_s, 3),
        query_seconds=round(time.perf_counter() - t0, 3),
        fingerprint=fp,
        **summary,
    )
    lake.put_text(VIEWS_MANIFEST, result.to_json())
    return result


def read_result(lake: Lake) -> ViewsResult | None:
    if not lake.exists(VIEWS_MANIFEST):
        return None
    return ViewsResult(**json.loads(lake.get_text(VIEWS_MANIFEST)))
