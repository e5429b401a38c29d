"""The SQL of the RAG layer: portable to Trino, and correct on small generated transactions."""

from __future__ import annotations

import pytest

from ecommerce_platform.resources.sql_dialect import parse_trino, read_sql, to_trino
from ecommerce_platform_tests.ml.conftest import publish_table


@pytest.mark.parametrize("name", ["basket_ids.sql", "half_pairs.sql", "product_knowledge.sql", "sales_by_product.sql"])
def test_sql_is_trino_portable(name):
    import re

    from ecommerce_platform.rag.knowledge import read_template

    sql = read_template(name)  # placeholders filled (values as literals)
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    assert not re.search(r"\{[a-z_]+\}", code)
    assert parse_trino(to_trino(sql))


def qa_statements() -> dict[str, str]:
    """The answerer's templates filled as for a question with every filter."""
    import datetime as dt

    from ecommerce_platform.rag.qa import copurchase_sql, ranking_sql, totals_sql
    from ecommerce_platform.rag.questions import Period, Query

    q = Query("x", family="ranking", entity="product", metric="units", n=5, country="France", customer="12347",
              words=(("CHRISTMAS", "XMAS"), ("MUG",)), price_max=1.0, price_min=0.1,
              period=Period(dt.date(2011, 1, 1), dt.date(2011, 3, 31), "Q1 2011"))
    out = {"qa_totals.sql": totals_sql(q), "qa_copurchase.sql": copurchase_sql(q, ("85123A", "22423"), 10)}
    for entity in ("product", "customer", "country", "month", "day"):
        for metric in ("units", "revenue", "orders", "returns", "return_rate", "aov"):
            out[f"qa_ranking.sql {entity} {metric}"] = ranking_sql(q, entity, metric, 10, "asc")[0]
    return out


def test_the_answerers_sql_is_trino_portable():
    for name, sql in qa_statements().items():
        assert parse_trino(to_trino(sql)), name


def test_every_rag_sql_file_is_checked():
    from importlib import resources

    files = sorted(p.name for p in resources.files("ecommerce_platform.rag").joinpath("sql").iterdir()
                   if p.name.endswith(".sql"))
    assert files == ["basket_ids.sql", "half_pairs.sql", "product_knowledge.sql", "qa_copurchase.sql",
                     "qa_ranking.sql", "qa_totals.sql", "sales_by_product.sql"]
    assert {n.split()[0] for n in qa_statements()} == {"qa_copurchase.sql", "qa_ranking.sql", "qa_totals.sql"}


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
    """A warehouse whose `transactions` are ROWS, with the analytics view `sale_lines` over them (its
    real SQL: what the analytics layer publishes)."""
    from ecommerce_platform.resources.lake import LocalLake
    from ecommerce_platform.resources.warehouse import DuckDBWarehouse, sql_str

    lake = LocalLake(path=str(tmp_path / "lake"))
    wh = DuckDBWarehouse(lake=lake, path=str(tmp_path / "wh.duckdb"), publish_file=False)
    values = ",\n".join(
        "(" + ", ".join([sql_str(inv), sql_str(code), sql_str(desc), str(q), str(p),
                          "NULL" if cust is None else sql_str(cust), sql_str(country),
                          f"DATE {sql_str(day)}", str(canc).upper(), str(prod).upper()]) + ")"
        for inv, code, desc, q, p, cust, country, day, canc, prod in ROWS
    )
    tx = wh.query_df(f"""
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
    columns = [(c, {"object": "string", "int64": "bigint", "float64": "double", "bool": "boolean"}.get(
        str(t), "date" if c == "invoice_date" else "timestamp"), "") for c, t in tx.dtypes.items()]
    publish_table(wh, "transactions", "clean/transactions", tx, columns)
    wh.create_view("sale_lines", read_sql("ecommerce_platform.analytics", "sale_lines.sql"))
    return lake, wh


def test_product_knowledge_facts(tiny_warehouse):
    from ecommerce_platform.rag.knowledge import KNOWLEDGE_MARKDOWN, build_knowledge, read_knowledge

    lake, wh = tiny_warehouse
    result = build_knowledge(wh)
    recs = {r["stock_code"]: r for r in read_knowledge(wh)}
    assert result.products == 3 and set(recs) == {"A1", "B2", "C3"}  # no POST, no zero-price D4
    a1 = recs["A1"]
    assert a1["description"] == "RED MUG" and a1["other_names"] == "red mug (old)"
    assert a1["units_sold"] == 16  # the cancellation (-4) is not a sale
    assert a1["gross_sales"] == pytest.approx(17.0)  # 10 x 1.0 + 5 x 1.2 + 1 x 1.0
    assert a1["units_returned"] == 4 and a1["returns_value"] == pytest.approx(4.0)
    assert a1["net_revenue"] == pytest.approx(13.0) and a1["return_rate"] == pytest.approx(0.25)
    assert (a1["min_price"], a1["max_price"]) == (1.0, 1.2) and a1["avg_price"] == pytest.approx(1.06)
    assert a1["orders"] == 3 and a1["customers"] == 2 and a1["countries"] == 3
    assert a1["top_countries"] == "United Kingdom, France, Germany"
    assert (a1["first_sale"], a1["last_sale"]) == ("2011-01-05", "2011-03-01")
    assert recs["C3"]["gross_sales"] == pytest.approx(8.0) and recs["C3"]["net_revenue"] == pytest.approx(8.0)
    # co-purchase: B2 shares invoices 1 and 2 with A1; C3 only invoice 2
    assert a1["bought_with"] == "B2 BLUE JAR (2 orders); C3 GREEN TIN (1 orders)"
    assert recs["C3"]["bought_with"] == "A1 RED MUG (1 orders); B2 BLUE JAR (1 orders)"
    md = lake.get_text(KNOWLEDGE_MARKDOWN)
    assert md.count("\n## ") == 3 and "## RED MUG (stock code A1)" in md and "- Units sold: 16" in md
    assert "- Net revenue: £13.00" in md


def test_product_knowledge_check_fails_on_figures_that_disagree_with_sale_lines(tiny_warehouse):
    """The blocking check of product_knowledge recounts from sale_lines: a published table with a wrong
    figure, a missing product or a repeated one fails it."""
    import io

    from ecommerce_platform.rag.assets import product_knowledge_matches_sales
    from ecommerce_platform.rag.knowledge import KNOWLEDGE_PREFIX, build_knowledge, catalog_table

    lake, wh = tiny_warehouse
    build_knowledge(wh)
    assert product_knowledge_matches_sales(warehouse=wh).passed
    good = wh.query_df("SELECT * FROM product_knowledge")

    def publish(df):
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        lake.put_bytes(f"{KNOWLEDGE_PREFIX}/part-0.parquet", buf.getvalue())
        catalog_table(wh)

    for crafted, words in ((good.assign(net_revenue=good["gross_sales"]), "net_revenue differs"),
                           (good[good.stock_code != "B2"], "missing"),
                           (good.assign(units_returned=0), "units_returned differs"),
                           (__import__("pandas").concat([good, good.head(1)]), "more than once")):
        publish(crafted)
        result = product_knowledge_matches_sales(warehouse=wh)
        problems = result.metadata["problems"].value
        assert not result.passed and any(words in p for p in problems), (words, problems)
    publish(good)
    assert product_knowledge_matches_sales(warehouse=wh).passed


def test_a_failing_product_knowledge_check_keeps_the_index_from_being_built(tiny_warehouse, embeddings):
    """A published product_knowledge that no longer agrees with sale_lines (a tampered table, reused as
    it is because Dagster sees nothing new): its blocking check fails and faiss_index does not run."""
    import io

    import dagster as dg
    import pandas as pd

    from ecommerce_platform.rag.assets import faiss_index, product_knowledge, product_knowledge_matches_sales
    from ecommerce_platform.rag.index import RECORD_KEY
    from ecommerce_platform.rag.knowledge import KNOWLEDGE_PREFIX

    lake, wh = tiny_warehouse
    resources = {"warehouse": wh, "embeddings": embeddings}
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.materialize([product_knowledge, product_knowledge_matches_sales], resources=resources,
                               instance=instance)
        assert first.success
        table = pd.read_parquet(lake.uri(f"{KNOWLEDGE_PREFIX}/part-0.parquet"))
        buf = io.BytesIO()
        table.assign(units_sold=table["units_sold"] * 2).to_parquet(buf, index=False)
        lake.put_bytes(f"{KNOWLEDGE_PREFIX}/part-0.parquet", buf.getvalue())
        again = dg.materialize([product_knowledge, product_knowledge_matches_sales, faiss_index], resources=resources,
                               instance=instance, raise_on_error=False)
    reused = again.asset_materializations_for_node("product_knowledge")[-1].metadata
    assert reused["reused_previous_output"].value is True
    (check,) = again.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR and not again.success
    assert any("units_sold differs for 3 products" in p for p in check.metadata["problems"].value)
    assert not again.asset_materializations_for_node("faiss_index") and not lake.exists(RECORD_KEY)
