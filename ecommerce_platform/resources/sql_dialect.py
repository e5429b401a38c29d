"""One SQL dialect for the whole platform: DuckDB's, restricted to what also runs on Trino (Athena).

``to_trino`` transpiles with sqlglot and rewrites the few functions sqlglot leaves untranslated, so the
same SQL file is executed by DuckDB locally and by Athena in aws. Tests run every SQL file of the
package through ``to_trino`` and parse the result as Trino.
"""

from __future__ import annotations

from importlib import resources


def _rewrite_for_trino(node):  # noqa: ANN001, ANN202
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        name = node.name.upper()
        args = node.expressions
        if name == "TRY_STRPTIME" and len(args) == 2:
            return exp.Try(this=exp.StrToTime(this=args[0], format=args[1]))
        if name == "ISFINITE" and len(args) == 1:
            return exp.Anonymous(this="IS_FINITE", expressions=args)
    return node


def to_trino(sql: str) -> str:
    """Transpile one or more DuckDB statements to Trino; raises sqlglot.ParseError on bad SQL."""
    import sqlglot

    out = []
    for tree in sqlglot.parse(sql, read="duckdb"):
        if tree is None:
            continue
        out.append(tree.transform(_rewrite_for_trino).sql(dialect="trino"))
    return ";\n".join(out)


def parse_trino(sql: str) -> list:
    import sqlglot

    return [t for t in sqlglot.parse(sql, read="trino") if t is not None]


def read_sql(package: str, name: str) -> str:
    """The text of a SQL file shipped in ``<package>/sql/<name>``."""
    return resources.files(package).joinpath("sql", name).read_text(encoding="utf-8")


def split_statements(sql: str) -> list[str]:
    import sqlglot

    return [t.sql(dialect="duckdb") for t in sqlglot.parse(sql, read="duckdb") if t is not None]
