"""Every SQL file of the lake layer transpiles to Trino (``to_trino``) and parses as Trino, both as
written and as rendered by the clean transform (relations and the non-product list substituted)."""

from __future__ import annotations

from importlib import resources

import pytest
import sqlglot

from ecommerce_platform.lake import clean
from ecommerce_platform.resources.sql_dialect import parse_trino, to_trino

SQL_DIR = resources.files("ecommerce_platform.lake").joinpath("sql")
SQL_FILES = sorted(p.name for p in SQL_DIR.iterdir() if p.name.endswith(".sql"))


def test_the_transform_fingerprints_every_sql_file():
    assert sorted(clean.SQL_FILES) == SQL_FILES


def _rendered(name: str) -> str:
    select = "SELECT * FROM raw_lines WHERE partition_month IN ('2011-01')"
    typed = clean.typed_lines_sql(select)
    if name == "typed_lines.sql":
        return typed
    return clean.render_file(name, f"({typed})")


@pytest.mark.parametrize("name", SQL_FILES)
def test_sql_file_transpiles_to_valid_trino(name):
    rendered = _rendered(name)
    trino = to_trino(rendered)
    trees = parse_trino(trino)
    assert len(trees) == 1
    assert isinstance(trees[0], sqlglot.exp.Query), type(trees[0])
    # DuckDB-only functions must not survive transpilation
    upper = trino.upper()
    for duckdb_only in ("TRY_STRPTIME", "STRPTIME(", "ISFINITE(", "::"):
        assert duckdb_only not in upper, (name, duckdb_only)


def test_the_profile_sample_shuffles_by_an_md5_in_trino_too():
    """The clean table stores no hash of its rows; the EDA sample computes one, the same way on Athena."""
    sql = resources.files("ecommerce_platform.eda").joinpath("sql", "profile_sample.sql").read_text()
    trino = to_trino(sql.replace("{limit}", "100"))
    assert len(parse_trino(trino)) == 1
    assert "LOWER(TO_HEX(MD5(TO_UTF8(" in trino
