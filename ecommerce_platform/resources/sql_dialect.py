"""One SQL dialect for the whole platform: DuckDB's, restricted to what also runs on Trino (Athena).

``to_trino`` transpiles with sqlglot and rewrites the few functions sqlglot leaves untranslated, so the
same SQL file is executed by DuckDB locally and by Athena in aws. Tests run every SQL file of the
package through ``to_trino`` and parse the result as Trino.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
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
    return resources.files(package).joinpath("sql").joinpath(name).read_text(encoding="utf-8")


def split_statements(sql: str) -> list[str]:
    import sqlglot

    return [t.sql(dialect="duckdb") for t in sqlglot.parse(sql, read="duckdb") if t is not None]


# ----------------------------------------------------------------------------- safe rendering
class Sql(str):
    """A fragment of SQL written by the platform itself (a relation, a subquery, an expression): placed
    into a template as it is. Every other value given to ``render`` becomes a literal."""


def literal(value) -> str:  # noqa: ANN001
    """The one quoting function: a Python value as a SQL literal (DuckDB and Trino alike)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no SQL literal")
        return repr(value)
    if isinstance(value, _dt.datetime):
        return "TIMESTAMP '" + value.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds") + "'"
    if isinstance(value, _dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(literal(v) for v in value) + ")"
    return "'" + str(value).replace("'", "''") + "'"


def string_list(values) -> str:  # noqa: ANN001
    """A DuckDB list of string literals: ``['a', 'b']`` (file lists of read_parquet, read_json)."""
    return "[" + ", ".join(literal(str(v)) for v in values) + "]"


_TOKENS = re.compile(
    r"--[^\n]*"  # a line comment: left as it is
    r"|/\*.*?\*/"  # a block comment
    r"|'(?:[^']|'')*'"  # a string literal
    r'|"(?:[^"]|"")*"'  # a quoted identifier
    r"|\{([A-Za-z_][A-Za-z0-9_]*)\}",  # a placeholder
    re.S,
)


def render(template: str, **params) -> str:  # noqa: ANN003
    """Fill ``{name}`` placeholders of a SQL template in one pass: nothing a value contains is ever read
    as a placeholder or as SQL. ``Sql`` values go in as written, any other value as a literal
    (``literal``). Placeholders inside comments and string literals are left alone; a placeholder with
    no value is an error."""
    missing: list[str] = []

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name is None:
            return m.group(0)
        if name not in params:
            missing.append(name)
            return m.group(0)
        value = params[name]
        return str(value) if isinstance(value, Sql) else literal(value)

    out = _TOKENS.sub(sub, template)
    if missing:
        raise KeyError(f"SQL template placeholders without a value: {', '.join(sorted(set(missing)))}")
    return out
