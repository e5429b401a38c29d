"""Product knowledge: one document of facts per product, aggregated in SQL by the warehouse, stored as
Parquet in the ``rag/`` zone (table ``product_knowledge``) and rendered as one Markdown file a person can
read (one ``##`` section per product).

Units and money come from the analytics view ``sale_lines`` (the one place where the sales definition
becomes amounts), aggregated as the view ``popular_products`` does: sales are ``is_sale`` (cancellations
never count), returns ``is_return``, net revenue = gross sales - returns (a test holds the two to the
same figures on the real file). Co-purchases and prices come from the clean table ``transactions``.

What is a product: the clean table's ``is_product`` flag (schema.NON_PRODUCT_CODES: postage, fees, a
packing charge, next-day carriage, vouchers), which the SQL of this layer also applies to the stock code
itself (``NOT_PRODUCTS``), so a question filtered on lines never lists a fee as a product. 'Unspecified' is
the clean zone's placeholder for a line without a country: never counted or listed as a country.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from ecommerce_platform import schema

SQL_PACKAGE = "ecommerce_platform.rag"
SQL_FILES = ("basket_ids.sql", "half_pairs.sql", "product_knowledge.sql")
KNOWLEDGE_PREFIX = "rag/product_knowledge"
KNOWLEDGE_TABLE = "product_knowledge"
KNOWLEDGE_MARKDOWN = "rag/product_knowledge.md"
# Stock codes that are not products (the platform's one list; fee lines under product-like codes such as
# 23444 "Next Day Carriage", 23574 "PACKING CHARGE" and 22016, a gift voucher, included).
NOT_PRODUCTS: tuple[str, ...] = schema.NON_PRODUCT_CODES
UNSPECIFIED_COUNTRY = schema.UNSPECIFIED_COUNTRY  # the clean zone's placeholder for a line without a country

# name, type, description (the neutral vocabulary of schema.py)
KNOWLEDGE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("stock_code", "string", "Product code"),
    ("description", "string", "Canonical description: the most frequent one on its sale lines"),
    ("other_names", "string", "Up to 3 other descriptions seen on its sale lines, ' / '-separated"),
    ("units_sold", "bigint", "Units sold (sale lines, is_sale)"),
    ("gross_sales", "double", "Value of its sale lines, GBP (as popular_products.gross_sales)"),
    ("units_returned", "bigint", "Units on its returned product lines (is_return)"),
    ("returns_value", "double", "Value of its returned lines, GBP (as popular_products.returns_value)"),
    ("net_revenue", "double", "gross_sales - returns_value, GBP (as popular_products.net_revenue)"),
    ("min_price", "double", "Lowest unit price of a sale, GBP"),
    ("max_price", "double", "Highest unit price of a sale, GBP"),
    ("avg_price", "double", "gross_sales / units_sold, GBP"),
    ("sale_lines", "bigint", "Sale lines"),
    ("orders", "bigint", "Distinct invoices with a sale of it"),
    ("customers", "bigint", "Distinct known customers who bought it"),
    ("countries", "bigint", "Distinct countries it was sold to"),
    ("top_countries", "string", "Up to 3 countries with the most units, ', '-separated"),
    ("first_sale", "date", "Date of its first sale"),
    ("last_sale", "date", "Date of its last sale"),
    ("return_rate", "double", "units_returned / units_sold (4 decimals)"),
    ("bought_with", "string", "Up to 5 products most often on the same invoice, with invoice counts"),
)
INT_COLUMNS = ("units_sold", "units_returned", "sale_lines", "orders", "customers", "countries")
FLOAT_COLUMNS = ("gross_sales", "returns_value", "net_revenue", "min_price", "max_price", "avg_price", "return_rate")


@dataclass
class KnowledgeResult:
    products: int
    engine_seconds: float
    markdown_chars: int


def sql_params() -> dict:
    return {"not_products": NOT_PRODUCTS, "unspecified": UNSPECIFIED_COUNTRY}


def read_template(name: str) -> str:
    """A SQL file of this layer, its placeholders filled (``sql_dialect.render``: values as literals)."""
    # imported here: the query path (``ecommerce ask``) uses this module's renderers without the SQL
    from ecommerce_platform.resources import sql_dialect

    d = sql_dialect
    return d.render(d.read_sql(SQL_PACKAGE, name), **sql_params())


def sql_texts() -> list[str]:
    return [read_template(name) for name in SQL_FILES]


def catalog_table(warehouse) -> None:  # noqa: ANN001 - Warehouse
    warehouse.register_table(KNOWLEDGE_TABLE, KNOWLEDGE_PREFIX, KNOWLEDGE_COLUMNS)


def read_knowledge(warehouse) -> list[dict]:  # noqa: ANN001
    """The product documents as plain dicts (a few thousand rows: the aggregate, never the lake)."""
    df = warehouse.query_df(f"SELECT * FROM {KNOWLEDGE_TABLE} ORDER BY stock_code")
    return records_from_frame(df)


def records_from_frame(df) -> list[dict]:  # noqa: ANN001 - pandas.DataFrame
    return records_from_rows(df.to_dict("records"))


def _missing(v) -> bool:  # noqa: ANN001
    if v is None:
        return True
    try:
        return v != v  # NaN, NaT
    except (TypeError, ValueError):
        return False


def records_from_rows(rows: list[dict]) -> list[dict]:
    """Knowledge rows (dicts from any engine) as typed records: ints, floats, ISO dates, text, None."""
    out = []
    for row in rows:
        rec = {}
        for key, _, _ in KNOWLEDGE_COLUMNS:
            v = row.get(key)
            if not isinstance(v, str) and _missing(v):
                v = None
            elif key in ("first_sale", "last_sale"):
                v = str(v)[:10]
            elif key in INT_COLUMNS:
                v = int(v)
            elif key in FLOAT_COLUMNS:
                v = float(v)
            else:
                v = str(v)
            rec[key] = v
        out.append(rec)
    return out


def build_knowledge(warehouse) -> KnowledgeResult:  # noqa: ANN001 - Warehouse
    """Aggregate the facts per product, publish the Parquet table and write the Markdown knowledge file."""
    basket_sql, pairs_sql, knowledge_sql = sql_texts()
    t0 = time.perf_counter()
    (rows,), _ = warehouse.run_transform(
        temps=[("basket_ids", basket_sql), ("half_pairs", pairs_sql)],
        outputs=[(knowledge_sql, KNOWLEDGE_PREFIX, ())],
    )
    seconds = time.perf_counter() - t0
    catalog_table(warehouse)
    markdown = render_markdown(read_knowledge(warehouse))
    warehouse.lake.put_text(KNOWLEDGE_MARKDOWN, markdown)
    return KnowledgeResult(products=int(rows), engine_seconds=round(seconds, 3), markdown_chars=len(markdown))


COMPARED = ("units_sold", "units_returned", "gross_sales", "returns_value", "net_revenue", "orders", "customers")


def compare_with_sales(warehouse) -> dict:  # noqa: ANN001 - Warehouse
    """The published product_knowledge against its figures counted again from the analytics view
    ``sale_lines`` (sql/sales_by_product.sql): products missing or extra, and per product the figures
    that differ (counts exactly, money to the penny)."""
    cols = ", ".join(("stock_code", *COMPARED))
    ours = warehouse.query_df(f"SELECT {cols} FROM {KNOWLEDGE_TABLE}").set_index("stock_code")
    sales = warehouse.query_df(read_template("sales_by_product.sql")).set_index("stock_code")
    problems: list[str] = []
    missing, extra = sorted(set(sales.index) - set(ours.index)), sorted(set(ours.index) - set(sales.index))
    if missing:
        problems.append(f"{len(missing)} products with a sale are missing, e.g. {missing[:3]}")
    if extra:
        problems.append(f"{len(extra)} products have no sale in sale_lines, e.g. {extra[:3]}")
    if ours.index.has_duplicates:
        problems.append(f"{int(ours.index.duplicated().sum())} products appear more than once")
    both = sorted(set(ours.index) & set(sales.index))
    a = ours[~ours.index.duplicated()].loc[both]
    b = sales.loc[both]
    differing: set = set()
    examples = []
    for col in COMPARED:
        tolerance = 0.005 if col in FLOAT_COLUMNS else 0
        bad = (a[col].astype(float) - b[col].astype(float)).abs() > tolerance
        if bad.any():
            codes = list(a.index[bad.to_numpy()])
            differing.update(codes)
            problems.append(f"{col} differs for {len(codes)} products, e.g. {codes[:3]}")
            code = codes[0]
            examples.append({"stock_code": code, "column": col, "product_knowledge": float(a.at[code, col]),
                             "sale_lines": float(b.at[code, col])})
    return {"products": len(ours), "products_with_a_sale": len(sales), "products_differing": len(differing),
            "problems": problems, "examples": examples}


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
        f"- Gross sales: {money(rec['gross_sales'])}",
        f"- Unit price: {money(rec['min_price'])} to {money(rec['max_price'])} "
        f"(average {money(rec['avg_price'])})",
        f"- Orders: {rec['orders']:,}",
        f"- Customers: {rec['customers']:,}",
        f"- Countries: {rec['countries']:,}"
        + (f" (most units: {one_line(rec['top_countries'])})" if rec.get("top_countries") else ""),
        f"- First sale: {rec['first_sale']}",
        f"- Last sale: {rec['last_sale']}",
        f"- Units returned: {rec['units_returned']:,} (return rate {rec['return_rate']:.1%}, "
        f"{money(rec['returns_value'])})",
        f"- Net revenue: {money(rec['net_revenue'])}",
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
        "separately; net revenue = gross sales - returns, as in the analytics views). Figures in GBP. "
        "One section per product.\n"
    )
    return intro + "\n" + "\n".join(render_product(r) for r in records)
