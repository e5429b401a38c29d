"""Column lineage of the analytics views, derived from their SQL with sqlglot's lineage module.

For every output column of a view: the columns of the relations it reads (``transactions``, or the
base view ``sale_lines``) that its expression is computed from (through CTEs, subqueries, aggregates,
CASE and window functions). Columns computed from no column (``COUNT(*)``) have no entry: only what
the SQL makes plain is claimed.
"""

from __future__ import annotations

from ecommerce_platform.analytics.views import BASE_VIEW, READS, view_sql
from ecommerce_platform.schema import CLEAN_COLUMNS, CLEAN_PARTITIONS, CLEAN_TABLE


def output_columns(sql: str) -> list[str]:
    import sqlglot

    return [s.alias_or_name for s in sqlglot.parse_one(sql, read="duckdb").selects]


def relations_read(sql: str) -> set[str]:
    """The tables and views a query reads (its CTEs left out)."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    return {t.name for t in tree.find_all(exp.Table)} - ctes


def _schema() -> dict[str, dict[str, str]]:
    clean = {c: t for c, t, _ in (*CLEAN_COLUMNS, *CLEAN_PARTITIONS)}
    return {CLEAN_TABLE: clean, BASE_VIEW: {c: "unknown" for c in output_columns(view_sql(BASE_VIEW))}}


def view_lineage(name: str) -> dict[str, list[tuple[str, str]]]:
    """column -> sorted (relation, column) pairs it is computed from."""
    from sqlglot import exp
    from sqlglot.lineage import lineage

    sql = view_sql(name)
    schema = _schema()
    known = set(READS[name])
    out: dict[str, list[tuple[str, str]]] = {}
    for column in output_columns(sql):
        node = lineage(column, sql, schema=schema, dialect="duckdb")
        sources = set()
        for n in node.walk():
            if n.downstream or not isinstance(n.expression, exp.Table):
                continue
            relation = n.expression.name
            if relation not in known:
                raise ValueError(f"{name}.{column}: lineage reached {relation!r}, which the view is not "
                                 f"declared to read ({', '.join(sorted(known))})")
            sources.add((relation, n.name.split(".")[-1]))
        if sources:
            out[column] = sorted(sources)
    return out
