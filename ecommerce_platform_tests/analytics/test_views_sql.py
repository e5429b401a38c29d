"""Unit tests of the analytics views' SQL: every file is portable to Trino (Athena), reads what its asset
declares, uses the one sales definition, leaves 'Unspecified' out of country counts and rankings; the
column lineage derived from the SQL is right on the columns checked by hand."""

from __future__ import annotations

from importlib import resources

import pytest
import sqlglot
from sqlglot import exp

from ecommerce_platform.analytics.lineage import relations_read, view_lineage
from ecommerce_platform.analytics.views import (
    READS,
    RECONCILED_VIEWS,
    VIEWS,
    view_deps,
    view_description,
    view_sql,
)
from ecommerce_platform.resources.sql_dialect import parse_trino, to_trino
from ecommerce_platform.schema import UNSPECIFIED_COUNTRY

SQL_DIR = resources.files("ecommerce_platform.analytics").joinpath("sql")
SQL_FILES = sorted(p.name for p in SQL_DIR.iterdir() if p.name.endswith(".sql"))


def _body(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))


def test_every_sql_file_is_a_view():
    assert sorted(f"{v}.sql" for v in VIEWS) == SQL_FILES
    assert set(RECONCILED_VIEWS) < set(VIEWS)


@pytest.mark.parametrize("name", VIEWS)
def test_view_sql_transpiles_to_valid_trino(name):
    sql = view_sql(name)
    trees = parse_trino(to_trino(sql))
    assert len(trees) == 1 and isinstance(trees[0], exp.Query)
    # The statement Athena receives is valid Trino too.
    (tree,) = parse_trino(to_trino(f"CREATE OR REPLACE VIEW {name} AS {sql}"))
    assert isinstance(tree, exp.Create) and tree.kind == "VIEW"
    # Nothing DuckDB-only survives the transpilation.
    trino = to_trino(sql).upper()
    for fn in ("MODE(", "ARG_MAX(", "ARG_MIN(", "GROUP BY ALL", "STRFTIME(", "LIST(", "::"):
        assert fn not in trino, f"{name}: {fn} is not Trino"
    # Integer division differs (DuckDB: double, Trino: truncated): every division divides doubles.
    for div in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Div):
        assert isinstance(div.this, exp.Cast) and div.this.to.is_type("double"), f"{name}: {div.sql()}"


@pytest.mark.parametrize("name", VIEWS)
def test_each_view_reads_what_its_asset_depends_on(name):
    assert relations_read(view_sql(name)) == set(READS[name])
    expected = ["clean_parquet"] if name == "sale_lines" else ["sale_lines"]
    assert view_deps(name) == expected
    assert view_description(name) and not view_description(name).startswith(name)


@pytest.mark.parametrize("name", VIEWS)
def test_views_use_the_one_sales_definition(name):
    sql = view_sql(name)
    assert "THE definition of a sale" in sql
    body = _body(sql)
    if name == "sale_lines":
        assert "is_sale" in body and "is_return" in body
        # no re-derivation of the definition from raw columns
        assert "quantity >" not in body and "unit_price" not in body and "STARTS_WITH" not in body
    else:
        assert "FROM sale_lines" in body and "FROM transactions" not in body


def test_daily_sales_has_no_limit():
    tree = sqlglot.parse_one(view_sql("daily_sales"), read="duckdb")
    assert not list(tree.find_all(exp.Limit))


def test_unspecified_is_the_clean_zones_placeholder_and_no_country():
    # what the clean transform writes for a line without a country (schema.UNSPECIFIED_COUNTRY, rendered in)
    from ecommerce_platform.lake.clean import typed_lines_sql

    typed = typed_lines_sql("SELECT * FROM raw_lines")
    assert f"COALESCE(NULLIF(TRIM(country), ''), '{UNSPECIFIED_COUNTRY}')" in typed
    for name in ("sales_kpis", "sales_by_country", "top_customers", "daily_sales_by_country"):
        sql = view_sql(name)
        comments = "\n".join(line for line in sql.splitlines() if line.startswith("--"))
        assert f"'{UNSPECIFIED_COUNTRY}'" in comments, f"{name}: say how 'Unspecified' is handled"
    assert f"country <> '{UNSPECIFIED_COUNTRY}'" in _body(view_sql("sales_kpis"))
    assert f"WHEN country = '{UNSPECIFIED_COUNTRY}' THEN NULL" in _body(view_sql("sales_by_country"))


def _deps(name: str, column: str) -> set[tuple[str, str]]:
    return set(view_lineage(name)[column])


def test_column_lineage_follows_the_sql():
    # sale_lines on the clean table
    assert _deps("sale_lines", "sale_amount") == {("transactions", "is_sale"), ("transactions", "line_total")}
    assert _deps("sale_lines", "units_returned") == {("transactions", "is_return"), ("transactions", "quantity")}
    assert _deps("sale_lines", "sale_month") == {("transactions", "invoice_date")}
    # through a subquery and an expression
    assert _deps("daily_sales", "net_revenue") == {("sale_lines", "sale_amount"), ("sale_lines", "return_amount")}
    assert _deps("daily_sales", "sale_date") == {("sale_lines", "invoice_date")}
    assert _deps("daily_sales", "avg_order_value") == {
        ("sale_lines", "sale_amount"), ("sale_lines", "is_sale"), ("sale_lines", "invoice_no")}
    # through CTEs and a join
    assert _deps("popular_products", "description") == {("sale_lines", "description")}
    assert _deps("top_customers", "country") == {("sale_lines", "country")}
    assert _deps("top_customers", "first_purchase") == {("sale_lines", "is_sale"), ("sale_lines", "invoice_ts")}
    # a window function: the rank is computed from net revenue and the tie-breaker
    assert _deps("sales_by_country", "revenue_rank") == {
        ("sale_lines", "country"), ("sale_lines", "sale_amount"), ("sale_lines", "return_amount")}
    assert _deps("sales_kpis", "countries") == {("sale_lines", "country"), ("sale_lines", "is_sale")}
    # a count of rows is computed from no column: no lineage is claimed
    assert "new_customers" not in view_lineage("monthly_sales")


@pytest.mark.parametrize("name", VIEWS)
def test_lineage_covers_the_view_and_only_its_inputs(name):
    from ecommerce_platform.analytics.lineage import output_columns

    lineage = view_lineage(name)
    assert set(lineage) <= set(output_columns(view_sql(name)))
    assert {rel for deps in lineage.values() for rel, _ in deps} == set(READS[name])
    if name != "sale_lines":
        base = set(output_columns(view_sql("sale_lines")))
        assert {c for deps in lineage.values() for _, c in deps} <= base
