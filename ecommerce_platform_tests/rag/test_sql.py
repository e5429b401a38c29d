"""The SQL of the RAG layer: portable to Trino, and correct on small generated transactions."""

from __future__ import annotations

import pytest

from ecommerce_platform.resources.sql_dialect import parse_trino, read_sql, to_trino


@pytest.mark.parametrize("name", ["basket_ids.sql", "half_pairs.sql", "product_knowledge.sql"])
def test_sql_is_trino_portable(name):
    sql = read_sql("ecommerce_platform.rag", name)
    assert parse_trino(to_trino(sql))


def test_every_rag_sql_file_is_checked():
    from importlib import resources

    files = sorted(p.name for p in resources.files("ecommerce_platform.rag").joinpath("sql").iterdir()
                   if p.name.endswith(".sql"))
    assert files == ["basket_ids.sql", "half_pairs.sql", "product_knowledge.sql"]


ROWS = [
    # invoice, code, description, qty, price, customer, country, date, cancellation, is_product
    ("1", "A1", "RED MUG", 10, 1.0, "c1", "United Kingdom", "2011-01-05", False, True),
    ("1", "B2", "BLUE JAR", 2, 3.0, "c1", "United Kingdom", "2011-01-05", False, True),
    ("1", "POST", "POSTAGE", 1, 18.0, "c1", "United Kingdom", "2011-01-05", False, False),
    ("2", "A1", "RED MUG", 5, 1.2, "c2", "France", "2011-02-01", False, True),
    ("2", "B2", "BLUE JAR", 1, 3.0, "c2", "France", "2011-02-01", False, True),
    ("2", "C3", "GREEN TIN", 1, 2.0, "c2", "France", "2011-02-01", False, True),
    ("3", "A1", "red mug (old)", 1, 1.0, None, "Germany", "2011-03-01", False, True),
    ("C4", "A1", "RED MUG", -4, 1.0, "c1", "United Kingdom", "2011-03-02", True, True),
    ("5", "C3", "GREEN TIN", 3, 2.0, "c3", "EIRE", "2011-04-01", False, True),
    ("6", "D4", "FREE SAMPLE", 2, 0.0, "c3", "EIRE", "2011-04-02", False, True),
]


@pytest.fixture
def tiny_warehouse(tmp_path):
    from ecommerce_platform.resources.lake import LocalLake
    from ecommerce_platform.resources.warehouse import DuckDBWarehouse, sql_str

    lake = LocalLake(path=str(tmp_path / "lake"))
    wh = DuckDBWarehouse(path=str(tmp_path / "wh.duckdb"))
    values = ",\n".join(
        "(" + ", ".join([sql_str(inv), sql_str(code), sql_str(desc), str(q), str(p),
                          "NULL" if cust is None else sql_str(cust), sql_str(country),
                          f"DATE {sql_str(day)}", str(canc).upper(), str(prod).upper()]) + ")"
        for inv, code, desc, q, p, cust, country, day, canc, prod in ROWS
    )
    wh.execute(f"""
        CREATE TABLE transactions AS
        SELECT invoice_no, stock_code, description, CAST(quantity AS BIGINT) AS quantity,
               CAST(unit_price AS DOUBLE) AS unit_price, customer_id, country, invoice_date,
               CAST(invoice_date AS TIMESTAMP) AS invoice_ts,
               round(quantity * unit_price, 2) AS line_total, is_cancellation, is_product,
               customer_id IS NULL AS is_guest,
               NOT is_cancellation AND quantity > 0 AND unit_price > 0 AND is_product AS is_sale,
               is_cancellation AND quantity < 0 AS is_return
        FROM (VALUES {values}) AS t(invoice_no, stock_code, description, quantity, unit_price, customer_id,
                                   country, invoice_date, is_cancellation, is_product)
    """)
    return lake, wh


def test_product_knowledge_facts(tiny_warehouse):
    from ecommerce_platform.rag.knowledge import KNOWLEDGE_MARKDOWN, build_knowledge, read_knowledge

    lake, wh = tiny_warehouse
    result = build_knowledge(wh, lake)
    recs = {r["stock_code"]: r for r in read_knowledge(wh, lake)}
    assert result.products == 3 and set(recs) == {"A1", "B2", "C3"}  # no POST, no zero-price D4
    a1 = recs["A1"]
    assert a1["description"] == "RED MUG" and a1["other_names"] == "red mug (old)"
    assert a1["units_sold"] == 16  # the cancellation (-4) is not a sale
    assert a1["revenue"] == pytest.approx(17.0)
    assert (a1["min_price"], a1["max_price"]) == (1.0, 1.2)
    assert a1["orders"] == 3 and a1["customers"] == 2 and a1["countries"] == 3
    assert a1["top_countries"] == "United Kingdom, France, Germany"
    assert (a1["first_sale"], a1["last_sale"]) == ("2011-01-05", "2011-03-01")
    assert a1["units_returned"] == 4 and a1["return_rate"] == pytest.approx(0.25)
    # co-purchase: B2 shares invoices 1 and 2 with A1; C3 only invoice 2
    assert a1["bought_with"] == "B2 BLUE JAR (2 orders); C3 GREEN TIN (1 orders)"
    assert recs["C3"]["bought_with"] == "A1 RED MUG (1 orders); B2 BLUE JAR (1 orders)"
    md = lake.get_text(KNOWLEDGE_MARKDOWN)
    assert md.count("\n## ") == 3 and "## RED MUG (stock code A1)" in md and "- Units sold: 16" in md
