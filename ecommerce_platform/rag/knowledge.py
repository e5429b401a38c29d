"""Product knowledge: one document of facts per product, aggregated in SQL by the warehouse from the
clean table ``transactions`` (sales are ``is_sale``: cancellations never count), stored as Parquet in the
``rag/`` zone and rendered as one Markdown file a person can read (one ``##`` section per product).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass

SQL_PACKAGE = "ecommerce_platform.rag"
SQL_FILES = ("basket_ids.sql", "half_pairs.sql", "product_knowledge.sql")
KNOWLEDGE_PREFIX = "rag/product_knowledge"
KNOWLEDGE_TABLE = "product_knowledge"
KNOWLEDGE_MARKDOWN = "rag/product_knowledge.md"
KNOWLEDGE_MANIFEST = "rag/_manifests/product_knowledge.json"
CLEAN_MANIFEST = "clean/_manifests/transactions.json"
RENDER_VERSION = "1"

# name, type, description (the neutral vocabulary of schema.py)
KNOWLEDGE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("stock_code", "string", "Product code"),
    ("description", "string", "Canonical description: the most frequent one on its sale lines"),
    ("other_names", "string", "Up to 3 other descriptions seen on its sale lines, ' / '-separated"),
    ("units_sold", "bigint", "Units sold (is_sale lines)"),
    ("revenue", "double", "Revenue of the sales, GBP"),
    ("min_price", "double", "Lowest unit price of a sale, GBP"),
    ("max_price", "double", "Highest unit price of a sale, GBP"),
    ("avg_price", "double", "Revenue / units sold, GBP"),
    ("sale_lines", "bigint", "Sale lines"),
    ("orders", "bigint", "Distinct invoices with a sale of it"),
    ("customers", "bigint", "Distinct known customers who bought it"),
    ("countries", "bigint", "Distinct countries it was sold to"),
    ("top_countries", "string", "Up to 3 countries with the most units, ', '-separated"),
    ("first_sale", "date", "Date of its first sale"),
    ("last_sale", "date", "Date of its last sale"),
    ("units_returned", "bigint", "Units on returned (cancelled) product lines"),
    ("return_rate", "double", "units_returned / units_sold"),
    ("bought_with", "string", "Up to 5 products most often on the same invoice, with invoice counts"),
)


@dataclass
class KnowledgeResult:
    products: int
    fingerprint: str
    engine_seconds: float
    markdown_chars: int
    reused: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def sql_texts() -> list[str]:
    # imported here: ``ecommerce_platform.resources`` loads Dagster, and the query path (``ecommerce ask``)
    # uses this module's renderers without it
    from ecommerce_platform.resources.sql_dialect import read_sql

    return [read_sql(SQL_PACKAGE, name) for name in SQL_FILES]


def fingerprint(lake) -> str:  # noqa: ANN001 - Lake
    """Inputs of the asset: the clean zone's own fingerprint (its manifest), the SQL and the renderer."""
    h = hashlib.sha256(RENDER_VERSION.encode())
    for text in sql_texts():
        h.update(text.encode())
    if lake.exists(CLEAN_MANIFEST):
        h.update(str(json.loads(lake.get_text(CLEAN_MANIFEST)).get("fingerprint", "")).encode())
    else:
        h.update(str(time.time()).encode())  # unknown input: never reuse
    return h.hexdigest()


def register(warehouse, lake) -> None:  # noqa: ANN001
    warehouse.register_table(KNOWLEDGE_TABLE, lake, KNOWLEDGE_PREFIX, KNOWLEDGE_COLUMNS)


def read_knowledge(warehouse, lake) -> list[dict]:  # noqa: ANN001
    """The product documents as plain dicts (a few thousand rows: the aggregate, never the lake)."""
    df = warehouse.query_df(f"SELECT * FROM {KNOWLEDGE_TABLE} ORDER BY stock_code", lake)
    return records_from_frame(df)


def records_from_frame(df) -> list[dict]:  # noqa: ANN001 - pandas.DataFrame
    import pandas as pd

    out = []
    for row in df.to_dict("records"):
        rec = {}
        for key, _, _ in KNOWLEDGE_COLUMNS:
            v = row.get(key)
            if v is None or (not isinstance(v, str) and pd.isna(v)):
                v = None
            elif key in ("first_sale", "last_sale"):
                v = str(v)[:10]
            elif key in ("units_sold", "sale_lines", "orders", "customers", "countries", "units_returned"):
                v = int(v)
            elif key in ("revenue", "min_price", "max_price", "avg_price", "return_rate"):
                v = float(v)
            else:
                v = str(v)
            rec[key] = v
        out.append(rec)
    return out


def build_knowledge(warehouse, lake, force: bool = False) -> KnowledgeResult:  # noqa: ANN001
    """Aggregate the facts per product (skipped when the clean zone and the SQL are unchanged),
    write the Parquet table and the Markdown knowledge file."""
    fp = fingerprint(lake)
    if not force and lake.exists(KNOWLEDGE_MANIFEST) and lake.list(KNOWLEDGE_PREFIX):
        previous = KnowledgeResult(**json.loads(lake.get_text(KNOWLEDGE_MANIFEST)))
        if previous.fingerprint == fp and lake.exists(KNOWLEDGE_MARKDOWN):
            previous.reused = True
            register(warehouse, lake)
            return previous
    basket_sql, pairs_sql, knowledge_sql = sql_texts()
    t0 = time.perf_counter()
    (rows,), _ = warehouse.run_transform(
        lake,
        temps=[("basket_ids", basket_sql), ("half_pairs", pairs_sql)],
        outputs=[(knowledge_sql, KNOWLEDGE_PREFIX, ())],
    )
    seconds = time.perf_counter() - t0
    register(warehouse, lake)
    records = read_knowledge(warehouse, lake)
    markdown = render_markdown(records)
    lake.put_text(KNOWLEDGE_MARKDOWN, markdown)
    result = KnowledgeResult(products=int(rows), fingerprint=fp, engine_seconds=round(seconds, 3),
                             markdown_chars=len(markdown))
    lake.put_text(KNOWLEDGE_MANIFEST, result.to_json())
    return result


# ---------------------------------------------------------------- rendering

_WS = re.compile(r"\s+")


def one_line(text: str | None) -> str:
    """Descriptions are data: one line, no Markdown header or list syntax at its start."""
    return _WS.sub(" ", str(text or "")).strip()


def money(x: float | None) -> str:
    return "n/a" if x is None else f"£{x:,.2f}"


def header(rec: dict) -> str:
    return f"## {one_line(rec['description'])} (stock code {rec['stock_code']})"


def fact_lines(rec: dict) -> list[str]:
    """The facts of one product as Markdown list items (every figure straight from the table)."""
    lines = [f"- Stock code: {rec['stock_code']}", f"- Description: {one_line(rec['description'])}"]
    if rec.get("other_names"):
        lines.append(f"- Also listed as: {one_line(rec['other_names'])}")
    lines += [
        f"- Units sold: {rec['units_sold']:,}",
        f"- Revenue: {money(rec['revenue'])}",
        f"- Unit price: {money(rec['min_price'])} to {money(rec['max_price'])} "
        f"(average {money(rec['avg_price'])})",
        f"- Orders: {rec['orders']:,}",
        f"- Customers: {rec['customers']:,}",
        f"- Countries: {rec['countries']:,}"
        + (f" (most units: {one_line(rec['top_countries'])})" if rec.get("top_countries") else ""),
        f"- First sale: {rec['first_sale']}",
        f"- Last sale: {rec['last_sale']}",
        f"- Units returned: {rec['units_returned']:,} (return rate {rec['return_rate']:.1%})",
    ]
    if rec.get("bought_with"):
        lines.append(f"- Most often bought with: {one_line(rec['bought_with'])}")
    return lines


def render_product(rec: dict) -> str:
    return header(rec) + "\n\n" + "\n".join(fact_lines(rec)) + "\n"


def render_markdown(records: list[dict]) -> str:
    intro = (
        "# Product knowledge\n\n"
        "Facts per product from the clean sales (cancellations excluded; returns counted "
        "separately). Figures in GBP. One section per product.\n"
    )
    return intro + "\n" + "\n".join(render_product(r) for r in records)
