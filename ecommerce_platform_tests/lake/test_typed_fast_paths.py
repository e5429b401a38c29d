"""The cheap common-case branches of the SQL give exactly what the general rules give.

The canonical copy (ingestion/sql/canonical_copy.sql) reads an ISO 'YYYY-MM-DD HH:MM:SS' date (trimmed:
``d``) with a cast, accepted only when the value prints back as the same text, before the strptime
patterns; typed_lines.sql strips a customer id's '.0' ending without a regex. Both must agree with the
general expressions on every input, odd ones included.
"""

from __future__ import annotations

import random

import duckdb
import pytest

from ecommerce_platform.lake import clean
from ecommerce_platform.resources.sql_dialect import read_sql

DATE_FAST = "CASE WHEN LENGTH(d) = 19 AND CAST(TRY_CAST(d AS TIMESTAMP) AS VARCHAR) = d THEN TRY_CAST(d AS TIMESTAMP) END"
DATE_PATTERN = "TRY_STRPTIME(d, '%Y-%m-%d %H:%M:%S')"
CUSTOMER_FAST = (
    "NULLIF(CASE WHEN TRIM(d) LIKE '%.0' THEN SUBSTRING(TRIM(d), 1, LENGTH(TRIM(d)) - 2) "
    "ELSE REGEXP_REPLACE(TRIM(d), '\\.0+$', '') END, '')"
)
CUSTOMER_REGEX = "NULLIF(REGEXP_REPLACE(TRIM(d), '\\.0+$', ''), '')"


def test_the_sql_uses_the_expressions_tested_here():
    copy = "".join(read_sql("ecommerce_platform.ingestion", "canonical_copy.sql").split())
    assert "".join(DATE_FAST.split()) in copy and "".join(DATE_PATTERN.split()) in copy
    sql = "".join(read_sql(clean.SQL_PACKAGE, "typed_lines.sql").split())
    assert "".join(CUSTOMER_FAST.replace("(d)", "(customer_id)").split()) in sql


def _con(values: list[str | None]):
    con = duckdb.connect()
    con.execute("CREATE TABLE v (d VARCHAR)")
    con.executemany("INSERT INTO v VALUES (?)", [[x] for x in values])
    return con


def _mutations(base: str, alphabet: str, n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        s = list(base)
        for _ in range(rnd.randint(1, 3)):
            s[rnd.randrange(len(s))] = rnd.choice(alphabet)
        out.append("".join(s))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_iso_date_cast_agrees_with_the_pattern(seed):
    odd = ["2010-12-01 08:26:00", "2010-12-1 08:26:00", "2010-12-01 24:00:00", "2010-12-01 23:59:60",
           "2010-02-30 10:00:00", "0999-01-01 00:00:00", "2010-12-01T08:26:00", "2010-12-01 08:26",
           "  2010-12-01 08:26:00 ", "2010-12-01 08:26:00.5", "+2010-12-01 08:26:00", "2010-12-01 8:26:00 ",
           "2010-12-01 08:26:00+01", "9999-12-31 23:59:59", "2010-12-01 08:26:00Z", "", None]
    values = odd + _mutations("2010-12-01 08:26:00", "0123456789-: T.+Z", 50_000, seed)
    con = _con(values)
    accepted, wrong = con.execute(
        f"SELECT count(*) FILTER (WHERE f IS NOT NULL), "
        f"count(*) FILTER (WHERE f IS NOT NULL AND f IS DISTINCT FROM p) "
        f"FROM (SELECT {DATE_FAST} AS f, {DATE_PATTERN} AS p FROM (SELECT TRIM(d) AS d FROM v))"
    ).fetchone()
    assert accepted > 1_000  # the fast branch is exercised
    assert wrong == 0  # and when it answers, it answers what the pattern answers (else the chain runs)


def test_customer_id_suffix_strip_agrees_with_the_regex():
    rnd = random.Random(3)
    values = ["17850.0", ".0", "0.0", "1.00.0", "100.00", "12.0 ", " 12.0", ".", "0", "", None, "12345"]
    values += ["".join(rnd.choice("0.15 ") for _ in range(rnd.randint(0, 8))) for _ in range(50_000)]
    con = _con(values)
    differ = con.execute(
        f"SELECT count(*) FROM v WHERE ({CUSTOMER_FAST}) IS DISTINCT FROM ({CUSTOMER_REGEX})"
    ).fetchone()[0]
    assert differ == 0
