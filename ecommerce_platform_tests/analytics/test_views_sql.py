"""Unit tests of the analytics views: every SQL file is portable to Trino (Athena), the sales
definition is the clean table's ``is_sale``, and the views compute the right figures on small data."""

from __future__ import annotations

from importlib import resources

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from ecommerce_platform.analytics.views import VIEWS, create_views, summarize, view_sql
from ecommerce_platform.resources.sql_dialect import parse_trino, to_trino
from ecommerce_platform.resources.warehouse import DuckDBWarehouse

SQL_DIR = resources.files("ecommerce_platform.analytics").joinpath("sql")
SQL_FILES = sorted(p.name for p in SQL_DIR.iterdir() if p.name.endswith(".sql"))


def test_every_sql_file_is_a_view():
    assert sorted(f"{v}.sql" for v in VIEWS) == SQL_FILES
    for name in ("daily_sales", "daily_sales_by_country", "popular_products", "sales_by_country",
                 "top_customers", "monthly_sales", "returns"):
        assert name in VIEWS


@pytest.mark.parametrize("name", VIEWS)
def test_view_sql_transpiles_to_valid_trino(name):
    sql = view_sql(name)
    trino = to_trino(sql)
    trees = parse_trino(trino)
    assert len(trees) == 1 and isinstance(trees[0], exp.Query)
    # The statement Athena receives is valid Trino too.
    ddl = to_trino(f"CREATE OR REPLACE VIEW {name} AS {sql}")
    (tree,) = parse_trino(ddl)
    assert isinstance(tree, exp.Create) and tree.kind == "VIEW"
    # Nothing DuckDB-only survives the transpilation.
    for fn in ("MODE(", "ARG_MAX(", "ARG_MIN(", "GROUP BY ALL", "STRFTIME(", "LIST(", "::"):
        assert fn not in trino.upper(), f"{name}: {fn} is not Trino"
    # Integer division differs (DuckDB: double, Trino: truncated): every division divides doubles.
    for div in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Div):
        assert isinstance(div.this, exp.Cast) and div.this.to.is_type("double"), f"{name}: {div.sql()}"


@pytest.mark.parametrize("name", VIEWS)
def test_views_use_the_one_sales_definition(name):
    sql = view_sql(name)
    assert "THE definition of a sale" in sql
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    if name == "sale_lines":
        assert "is_sale" in body and "is_return" in body
        # no re-derivation of the definition from raw columns
        assert "quantity >" not in body and "unit_price" not in body and "STARTS_WITH" not in body
    else:
        assert "FROM sale_lines" in body and "FROM transactions" not in body


def test_daily_sales_has_no_limit():
    tree = sqlglot.parse_one(view_sql("daily_sales"), read="duckdb")
    assert not list(tree.find_all(exp.Limit))


# --------------------------------------------------------------------- small generated data
ROWS = [
    # invoice, code, description, qty, ts, price, customer, country, cancellation, product
    ("1", "A", "RED MUG", 2, "2011-01-03 10:00", 5.00, "100", "UK", False, True),
    ("1", "B", "BLUE BOWL", 1, "2011-01-03 10:00", 3.50, "100", "UK", False, True),
    ("1", "POST", "POSTAGE", 1, "2011-01-03 10:00", 40.00, "100", "UK", False, False),
    ("2", "A", "red mug", 1, "2011-01-03 11:00", 5.00, None, "France", False, True),  # guest
    ("3", "A", "RED MUG", 4, "2011-02-10 09:00", 5.00, "200", "France", False, True),
    ("3", "B", "BLUE BOWL", 1, "2011-02-10 09:00", 0.00, "200", "France", False, True),  # free: not a sale
    ("C4", "A", "RED MUG", -1, "2011-02-11 09:00", 5.00, "100", "UK", True, True),  # a return
    ("C5", "M", "Manual", -1, "2011-02-11 09:00", 99.00, "100", "UK", True, False),  # not a return
    ("6", "B", "damaged", -3, "2011-02-12 09:00", 0.00, None, "UK", False, True),  # stock adjustment
]


@pytest.fixture
def small_warehouse(tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    values = []
    for inv, code, desc, q, ts, price, cust, country, canc, prod in ROWS:
        cust_sql = "NULL" if cust is None else f"'{cust}'"
        values.append(
            f"('{inv}', '{code}', '{desc}', {q}, TIMESTAMP '{ts}', {price}, {cust_sql}, '{country}', "
            f"{canc}, {prod})"
        )
    wh.execute(
        "CREATE TABLE raw_lines (invoice_no VARCHAR, stock_code VARCHAR, description VARCHAR, "
        "quantity BIGINT, invoice_ts TIMESTAMP, unit_price DOUBLE, customer_id VARCHAR, country VARCHAR, "
        "is_cancellation BOOLEAN, is_product BOOLEAN); INSERT INTO raw_lines VALUES " + ", ".join(values)
    )
    # the clean table's flags, as clean_transactions.sql derives them
    wh.execute(
        "CREATE VIEW transactions AS SELECT *, CAST(invoice_ts AS DATE) AS invoice_date, "
        "ROUND(quantity * unit_price, 2) AS line_total, customer_id IS NULL AS is_guest, "
        "(NOT is_cancellation AND quantity > 0 AND unit_price > 0 AND is_product) AS is_sale, "
        "(is_cancellation AND quantity < 0 AND is_product) AS is_return FROM raw_lines"
    )
    create_views(wh, None)
    return wh


def test_views_on_small_data(small_warehouse):
    wh = small_warehouse
    daily = wh.query_df("SELECT * FROM daily_sales ORDER BY sale_date")
    # 3 Jan: 10 + 3.5 (invoice 1, postage excluded) + 5 (guest invoice 2) = 18.5 gross, 2 orders
    # 10 Feb: 20 (the free bowl is not a sale); 11 Feb: return of 5 (the manual line is no return)
    assert [str(d)[:10] for d in daily["sale_date"]] == ["2011-01-03", "2011-02-10", "2011-02-11"]
    assert list(daily["gross_sales"]) == [18.5, 20.0, 0.0]
    assert list(daily["returns_value"]) == [0.0, 0.0, 5.0]
    assert list(daily["net_revenue"]) == [18.5, 20.0, -5.0]
    assert list(daily["orders"]) == [2, 1, 0]
    assert list(daily["customers"]) == [1, 1, 0]  # guests are not customers
    assert list(daily["units_sold"]) == [4, 4, 0]
    assert daily["avg_order_value"].iloc[0] == 9.25 and daily["avg_order_value"].isna().iloc[2]

    products = wh.query_df("SELECT * FROM popular_products ORDER BY revenue_rank")
    assert list(products["stock_code"]) == ["A", "B"]
    a = products.iloc[0]
    assert a["description"] == "RED MUG"  # the most frequent description, not 'red mug'
    assert (a["units_sold"], a["units_returned"], a["net_revenue"], a["orders"], a["customers"]) == (7, 1, 30.0, 3, 2)
    assert a["return_rate"] == round(1 / 7, 4)

    customers = wh.query_df("SELECT * FROM top_customers ORDER BY revenue_rank")
    assert list(customers["customer_id"]) == ["200", "100"]  # no guest row
    c100 = customers.iloc[1]
    assert (c100["country"], c100["net_revenue"], c100["orders"]) == ("UK", 8.5, 1)

    countries = wh.query_df("SELECT * FROM sales_by_country ORDER BY revenue_rank")
    assert list(countries["country"]) == ["France", "UK"]
    assert list(countries["net_revenue"]) == [25.0, 8.5]
    assert countries["share_of_net_revenue"].sum() == pytest.approx(1.0)

    monthly = wh.query_df("SELECT * FROM monthly_sales ORDER BY sale_month")
    assert list(monthly["net_revenue"]) == [18.5, 15.0]
    assert list(monthly["new_customers"]) == [1, 1]
    returns = wh.query_df("SELECT * FROM returns ORDER BY sale_month")
    assert list(returns["returns_value"]) == [0.0, 5.0] and list(returns["return_invoices"]) == [0, 1]

    s = summarize(wh, None)
    assert s["headline"]["net_revenue"] == 33.5
    assert s["headline"]["orders"] == 3 and s["headline"]["customers"] == 2
    assert set(s["totals"].values()) == {33.5}
    assert all(n > 0 for n in s["row_counts"].values())


def test_views_are_plain_duckdb_views(small_warehouse, tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    try:
        names = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        assert set(VIEWS) <= names
    finally:
        con.close()


def test_numeric_keeps_identifiers_as_text():
    import pandas as pd

    from ecommerce_platform.analytics.views import numeric

    # Athena returns every value as text
    df = numeric(pd.DataFrame({"customer_id": ["14646"], "stock_code": ["85123"], "net_revenue": ["1.50"],
                               "orders": ["3"], "country": ["EIRE"]}))
    assert df["customer_id"].iloc[0] == "14646" and df["stock_code"].iloc[0] == "85123"
    assert df["net_revenue"].iloc[0] == 1.5 and df["orders"].iloc[0] == 3
