"""`answer_question` on a tiny warehouse (the clean table + the real sale_lines view + product_knowledge):
every family answered with the figure the test computes from the same rows with pandas; fee lines never
products, 'Unspecified' never a country, lists complete or saying how many more, same-name products
listed with a question, honest refusals with no figure, and nothing in a question changing a statement."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from ecommerce_platform_tests.rag.conftest import tiny_warehouse

ROWS = [
    # invoice, code, description, qty, price, customer, country, day, is_product (the clean zone's flag)
    ("1", "A1", "RED MUG", 10, 1.0, "c1", "United Kingdom", "2011-01-05", True),
    ("1", "B2", "BLUE JAR", 2, 3.0, "c1", "United Kingdom", "2011-01-05", True),
    ("1", "POST", "POSTAGE", 1, 18.0, "c1", "United Kingdom", "2011-01-05", False),
    ("1", "23444", "Next Day Carriage", 1, 15.0, "c1", "United Kingdom", "2011-01-05", True),  # is_product misses it
    ("2", "A1", "RED MUG", 5, 1.2, "c2", "France", "2011-02-01", True),
    ("2", "B2", "BLUE JAR", 1, 3.0, "c2", "France", "2011-02-01", True),
    ("2", "C3", "GREEN TIN", 1, 2.0, "c2", "France", "2011-02-01", True),
    ("3", "A9", "RED MUG", 4, 0.9, None, "Germany", "2011-02-10", True),  # same name, another code; a guest
    ("4", "B2", "BLUE JAR", 6, 2.5, "c3", "Unspecified", "2011-02-15", True),
    ("4", "X5", "CHRISTMAS STAR", 20, 0.5, "c3", "Unspecified", "2011-02-15", True),
    ("C5", "A1", "RED MUG", -4, 1.0, "c1", "United Kingdom", "2011-02-20", True),  # a return
    ("6", "X6", "XMAS TREE DECORATION", 12, 0.8, "c4", "Germany", "2011-03-01", True),
    ("6", "B2", "BLUE JAR", 3, 3.0, "c4", "Germany", "2011-03-01", True),
    ("7", "23843", "PAPER CRAFT , LITTLE BIRDIE", 100, 2.0, "c5", "United Kingdom", "2011-03-05", True),
    ("C8", "23843", "PAPER CRAFT , LITTLE BIRDIE", -100, 2.0, "c5", "United Kingdom", "2011-03-05", True),
    ("9", "C3", "GREEN TIN", 2, 2.0, "c2", "France", "2011-03-09", True),
]
FEES = {"23444", "POST"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    lake, wh, tx = tiny_warehouse(tmp_path_factory.mktemp("qa"), ROWS)
    from ecommerce_platform.rag.qa import Context

    return wh, tx, Context.load(wh)


def ask(tiny, question: str) -> dict:
    from ecommerce_platform.rag.qa import answer_question

    wh, _, ctx = tiny
    return answer_question(question, wh, None, None, context=ctx)


# ------------------------------------------------------------------ expected figures, from the rows
def lines(tx: pd.DataFrame) -> pd.DataFrame:
    """Sale and return lines with their units and money (the definitions, written here again)."""
    t = tx[tx.is_sale | tx.is_return].copy()
    t["sold"] = t.quantity.where(t.is_sale, 0)
    t["back"] = (-t.quantity).where(t.is_return, 0)
    t["gross"] = t.line_total.where(t.is_sale, 0.0)
    t["ret"] = (-t.line_total).where(t.is_return, 0.0)
    return t


def per(t: pd.DataFrame, key: str) -> pd.DataFrame:
    g = t.groupby(key).agg(sold=("sold", "sum"), back=("back", "sum"), gross=("gross", "sum"), ret=("ret", "sum"))
    g["orders"] = t[t.is_sale].groupby(key).invoice_no.nunique()
    g = g.fillna({"orders": 0})
    g["net_units"] = g.sold - g.back
    g["net_revenue"] = (g.gross - g.ret).round(2)
    return g


def products(t: pd.DataFrame) -> pd.DataFrame:
    return t[~t.stock_code.isin(FEES)]


def numbers(text: str) -> list[str]:
    return re.findall(r"\d[\d,]*(?:\.\d+)?", text)


# ------------------------------------------------------------------ families
def test_top_products_by_revenue_are_complete_and_never_fees(tiny):
    _, tx, _ = tiny
    g = per(products(lines(tx)), "stock_code")
    g = g[g.sold > 0].sort_values(["net_revenue"], ascending=False, kind="stable")
    want = list(g.index[:3])
    out = ask(tiny, "top 3 products by revenue")
    assert out["kind"] == "analytics" and out["sql"] and out["definition"].startswith("net revenue")
    assert [r["stock_code"] for r in out["rows"]] == want
    assert [round(r["net_revenue"], 2) for r in out["rows"]] == list(g.net_revenue[:3])
    assert f"£{g.net_revenue.iloc[0]:,.2f}" in out["answer"]
    assert f"{len(g) - 3} more not listed" in out["answer"] and f"{len(g)} products ranked" in out["answer"]
    assert "23444" not in out["answer"] and "Carriage" not in out["answer"]
    everything = ask(tiny, "top 20 products by revenue")
    assert {r["stock_code"] for r in everything["rows"]} == set(g.index) and "all listed" in everything["answer"]
    assert "23444" not in {r["stock_code"] for r in everything["rows"]}


def test_best_selling_product_in_a_country_and_a_period(tiny):
    _, tx, _ = tiny
    t = products(lines(tx))
    fr = per(t[t.country == "France"], "stock_code").sort_values("net_units", ascending=False, kind="stable")
    out = ask(tiny, "best-selling product in France")
    assert len(out["rows"]) == 1 and out["rows"][0]["stock_code"] == fr.index[0]
    assert out["rows"][0]["net_units"] == fr.net_units.iloc[0] and "France" in out["answer"]
    feb = t[(t.invoice_date >= pd.Timestamp("2011-02-01").date()) & (t.invoice_date <= pd.Timestamp("2011-02-28").date())]
    g = per(feb, "stock_code")
    g = g[g.sold > 0].sort_values(["net_units"], ascending=False, kind="stable")
    out = ask(tiny, "top 2 products in february 2011")
    assert [r["net_units"] for r in out["rows"]] == list(g.net_units[:2])
    assert "2011-02-01 to 2011-02-28" in out["answer"]


def test_christmas_products_match_christmas_and_xmas(tiny):
    out = ask(tiny, "what sells best at christmas")
    assert [r["stock_code"] for r in out["rows"]] == ["X5", "X6"] and "all listed" in out["answer"]


def test_totals_counts_and_what_they_count(tiny):
    _, tx, _ = tiny
    t = lines(tx)
    feb = t[t.invoice_date.astype(str).str.startswith("2011-02")]
    out = ask(tiny, "total revenue in February 2011")
    want = round(feb.gross.sum() - feb.ret.sum(), 2)
    assert out["rows"][0]["net_revenue"] == pytest.approx(want) and f"£{want:,.2f}" in out["answer"]
    assert "2011-02-01 to 2011-02-28" in out["answer"] and "guest checkouts included" in out["answer"]
    customers = ask(tiny, "how many customers did we have")
    known = t[t.is_sale & t.customer_id.notna()].customer_id.nunique()
    assert customers["rows"][0]["customers"] == known and f"{known} known customers" in customers["answer"]
    assert "guest" in customers["definition"]
    countries = ask(tiny, "how many countries do we sell to")
    real = t[t.is_sale & (t.country != "Unspecified")].country.nunique()
    assert countries["rows"][0]["countries"] == real == 3 and "'Unspecified'" in countries["definition"]


def test_which_countries_ordered_a_product_is_the_complete_list(tiny):
    _, tx, _ = tiny
    t = lines(tx)
    b2 = per(t[t.stock_code == "B2"], "country")
    out = ask(tiny, "which countries ordered the blue jar")
    got = {r["country"]: r["net_units"] for r in out["rows"]}
    assert got == {c: int(v) for c, v in b2.net_units.items() if c != "Unspecified"}
    assert "Unspecified" not in got and "'Unspecified', not counted as a country" in out["answer"]
    assert out["sources"][0]["stock_code"] == "B2"


def test_bought_with_counts_shared_invoices_and_never_fees(tiny):
    _, tx, _ = tiny
    t = lines(tx)
    invoices = set(t[t.is_sale & (t.stock_code == "B2")].invoice_no)
    others = t[t.is_sale & t.invoice_no.isin(invoices) & (t.stock_code != "B2") & ~t.stock_code.isin(FEES)]
    want = others.groupby("stock_code").invoice_no.nunique().sort_values(ascending=False, kind="stable")
    out = ask(tiny, "what is bought with the blue jar")
    got = {r["stock_code"]: r["orders_together"] for r in out["rows"]}
    assert got == want.to_dict() and "23444" not in got and "all listed" in out["answer"]


def test_return_rate_and_comparison(tiny):
    _, tx, _ = tiny
    t = lines(tx)
    uk = t[t.country == "United Kingdom"]
    rate = round(uk.ret.sum() / uk.gross.sum(), 4)
    out = ask(tiny, "return rate in the UK")
    assert out["rows"][0]["value_return_rate"] == pytest.approx(rate) and f"{rate * 100:.1f}%" in out["answer"]
    out = ask(tiny, "compare revenue in january 2011 and february 2011")
    jan = t[t.invoice_date.astype(str).str.startswith("2011-01")]
    feb = t[t.invoice_date.astype(str).str.startswith("2011-02")]
    values = [round(x.gross.sum() - x.ret.sum(), 2) for x in (jan, feb)]
    assert [r["net_revenue"] for r in out["rows"]] == pytest.approx(values)
    assert all(f"£{v:,.2f}" in out["answer"] for v in values)


def test_a_product_in_a_period(tiny):
    out = ask(tiny, "how many blue jars did we sell in february 2011")
    # B2 in February: 1 (France) + 6 (Unspecified: a sale, not a country)
    assert out["rows"][0]["net_units"] == 7 and "7 net units" in out["answer"] and out["sources"][0]["stock_code"] == "B2"


# ------------------------------------------------------------------ products
def test_same_name_products_are_listed_and_the_user_asked(tiny):
    out = ask(tiny, "red mug")
    assert out["kind"] == "product" and "which one do you mean" in out["answer"]
    assert {s["stock_code"] for s in out["sources"]} == {"A1", "A9"}


def test_product_headline_is_net_of_cancellations(tiny):
    out = ask(tiny, "what is product 23843?")
    assert out["kind"] == "product" and out["sources"][0]["stock_code"] == "23843"
    assert "sold 100 units, all 100 cancelled or returned: net 0 units" in out["answer"]
    assert "net revenue £0.00" in out["answer"]


def test_product_facts_leave_out_fees_and_unspecified(tiny):
    wh, _, ctx = tiny
    from ecommerce_platform.rag.knowledge import read_knowledge

    recs = {r["stock_code"]: r for r in read_knowledge(wh)}
    assert "23444" not in recs and "POST" not in recs and "23444" not in ctx.products
    assert recs["B2"]["countries"] == 3  # UK, France, Germany: 'Unspecified' is not a country
    assert "Unspecified" not in (recs["B2"]["top_countries"] or "")
    assert "23444" not in (recs["A1"]["bought_with"] or "")


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize("question", [
    "next day carriage", "price of postage", "do we sell gift vouchers", "do we sell iphone chargers?",
    "what is our profit margin on mugs", "who supplies the blue jar", "sales in 2012", "customer 99 revenue",
    "how many blue jars are in stock", "how much web traffic did we get", "sales to china",
    "revenue in january 2010",
])
def test_what_the_data_cannot_answer_is_refused_without_figures(tiny, question):
    out = ask(tiny, question)
    assert out["kind"] == "not_answerable", out["answer"]
    assert out["sql"] is None and out["rows"] is None
    assert "The data holds" in out["answer"]
    allowed = set(numbers(question)) | {"2011-01-05", "2011-03-09", "2011", "01", "05", "03", "09"}
    for n in numbers(out["answer"]):
        assert n in allowed or all(p in allowed for p in n.split("-")), (n, out["answer"])


# ------------------------------------------------------------------ nothing in a question changes a statement
@pytest.mark.parametrize("question", [
    "top products in France'; DROP TABLE transactions; --",
    "revenue of customer 1' OR '1'='1",
    "best sellers under £1'); DELETE FROM sale_lines; --",
    "what is bought with \"BLUE JAR\"; COPY transactions TO '/tmp/x.csv'",
])
def test_questions_cannot_change_a_statement(tiny, question):
    import sqlglot

    wh, tx, _ = tiny
    before = int(wh.query_df("SELECT count(*) AS n FROM transactions").iloc[0]["n"])
    out = ask(tiny, question)
    for sql in (out["sql"] or "").split(";\n"):
        if sql.strip():
            trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
            assert len(trees) == 1 and trees[0].key == "select", sql
    assert int(wh.query_df("SELECT count(*) AS n FROM transactions").iloc[0]["n"]) == before == len(tx)


def test_every_value_is_a_literal():
    """Values that reach a statement go through the one quoting function, whatever they hold."""
    import datetime as dt

    import sqlglot

    from ecommerce_platform.rag.qa import lines_filter, ranking_sql
    from ecommerce_platform.rag.questions import Period, Query

    q = Query("x", family="ranking", entity="product", metric="units", n=5, country="Fr'ance; DROP TABLE t; --",
              customer="1' OR '1'='1", words=(("MUG') OR (1=1",),), price_max=1.0,
              period=Period(dt.date(2011, 1, 1), dt.date(2011, 1, 31), "January 2011"))
    where = lines_filter(q)
    assert "'Fr''ance; DROP TABLE t; --'" in where and "'1'' OR ''1''=''1'" in where
    assert "'% MUG'') OR (1=1%'" in where
    sql, _ = ranking_sql(q, "product", "units", 5, "desc")
    (tree,) = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    assert tree.key == "select"


def test_a_customer_is_a_filter_never_ignored(tiny):
    _, tx, _ = tiny
    t = lines(tx)
    c2 = t[t.customer_id == "c2"]
    out = ask(tiny, "how much did customer c2 spend")
    want = round(c2.gross.sum() - c2.ret.sum(), 2)
    assert out["rows"][0]["net_revenue"] == pytest.approx(want) and "customer c2" in out["answer"]
    assert ask(tiny, "how much did customer c77 spend")["kind"] == "not_answerable"
