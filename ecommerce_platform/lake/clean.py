"""The clean transform: raw batch files (and stream records) -> typed, deduplicated, partitioned Parquet.

One SQL transform run by the warehouse engine: ``sql/typed_lines.sql`` types every input line and
gives the reason it is rejected; ``line_groups.sql`` folds exact duplicates of valid lines together;
``clean_transactions.sql`` reads the groups, ``quarantine.sql`` the rejected typed lines, and
``reconciliation.sql`` counts both. Every input row ends up in exactly one of: clean, quarantine (with
a reason), or duplicate (an exact repeat of a clean row).

How the engine runs it is its own business (``Warehouse.shares_intermediates``): Athena materialises
``line_groups`` once and reads it for the clean output and the reconciliation; DuckDB streams each
output straight from the source files (the grouping feeds the Parquet writer directly, nothing the
size of the input is materialised) and takes the clean and quarantined counts from the rows it wrote
plus one count of the input lines.
"""

from __future__ import annotations

import hashlib
import re
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from ecommerce_platform.ingestion.raw import Landed, landed_batches
from ecommerce_platform.ingestion.source import source_select_sql
from ecommerce_platform.lake.schema import (
    CLEAN_COLUMNS,
    CLEAN_PARTITIONS,
    NON_PRODUCT_CODES,
    NON_PRODUCT_PREFIXES,
    QUARANTINE_COLUMNS,
)
from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.sql_dialect import read_sql
from ecommerce_platform.resources.warehouse import Warehouse, sql_str

CLEAN_PREFIX = "clean/transactions"
QUARANTINE_PREFIX = "quarantine/transactions"
CLEAN_MANIFEST = "clean/_manifests/transactions.json"
CLEAN_TABLE = "transactions"
QUARANTINE_TABLE = "quarantine"
SQL_PACKAGE = "ecommerce_platform.lake"

# Other routes into the lake (the stream landing) register a function here that returns
# (fingerprint parts, DuckDB-dialect SELECTs in the canonical source shape).
EXTRA_SOURCES: list[Callable[[Lake, Warehouse], tuple[list[str], list[str]]]] = []


class NoSourceDataError(RuntimeError):
    pass


@dataclass
class CleanResult:
    rows_in: int
    rows_clean: int
    rows_quarantined: int
    rows_duplicate: int
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)
    partitions: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    engine_seconds: float = 0.0
    fingerprint: str = ""
    reused: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def non_product_sql() -> tuple[str, str]:
    codes = ", ".join(sql_str(c) for c in NON_PRODUCT_CODES)
    prefix = " OR ".join(f"STARTS_WITH(stock_code, {sql_str(p)})" for p in NON_PRODUCT_PREFIXES)
    return codes, f"({prefix})" if prefix else "FALSE"


def batch_source_select(warehouse: Warehouse, lake: Lake, batch: Landed) -> str:
    if hasattr(warehouse, "source_select"):
        return warehouse.source_select(lake, batch)  # engines that must register the file first
    return source_select_sql(lake.uri(batch.read_key), batch.spec)


def typed_lines_sql(sources: list[str]) -> str:
    if not sources:
        raise NoSourceDataError("no source data in the raw zone: materialize raw_s3 first")
    union = "\n    UNION ALL\n    ".join(f"SELECT * FROM ({s}) AS s{i}" for i, s in enumerate(sources))
    # the placeholder stands alone on its line: a mention of it in a comment is left alone
    template = read_sql(SQL_PACKAGE, "typed_lines.sql")
    rendered, n = re.subn(r"(?m)^[ \t]*\{sources\}[ \t]*$", lambda _: "    " + union, template)
    if n != 1:
        raise ValueError("typed_lines.sql must hold the {sources} placeholder alone on one line")
    return rendered


SQL_FILES = (
    "typed_lines.sql", "line_groups.sql", "clean_transactions.sql", "quarantine.sql", "reconciliation.sql",
)


def render(name: str, typed: str = "typed_lines", groups: str = "line_groups") -> str:
    """The SQL file with its relations substituted (names of temporary tables, or subqueries)."""
    codes, prefix_test = non_product_sql()
    return (
        read_sql(SQL_PACKAGE, name)
        .replace("{typed_lines}", typed)
        .replace("{line_groups}", groups)
        .replace("{non_product_codes}", codes)
        .replace("{non_product_prefix_test}", prefix_test)
    )


def gather_sources(warehouse: Warehouse, lake: Lake) -> tuple[list[str], list[str]]:
    batches = landed_batches(lake)
    parts = [f"batch:{b.sha256}" for b in batches]
    selects = [batch_source_select(warehouse, lake, b) for b in batches]
    for extra in EXTRA_SOURCES:
        more_parts, more_selects = extra(lake, warehouse)
        parts += more_parts
        selects += more_selects
    return parts, selects


def fingerprint(parts: list[str]) -> str:
    h = hashlib.sha256()
    for name in SQL_FILES:
        h.update(read_sql(SQL_PACKAGE, name).encode())
    h.update(repr(non_product_sql()).encode())
    for p in sorted(parts):
        h.update(p.encode())
    return h.hexdigest()


def run_clean(warehouse: Warehouse, lake: Lake, force: bool = False) -> CleanResult:
    """Run the clean transform unless its inputs and SQL are unchanged since the last run."""
    parts, selects = gather_sources(warehouse, lake)
    fp = fingerprint(parts)
    if not force and lake.exists(CLEAN_MANIFEST):
        previous = CleanResult(**json.loads(lake.get_text(CLEAN_MANIFEST)))
        if previous.fingerprint == fp and lake.list(CLEAN_PREFIX):
            previous.reused = True
            register_tables(warehouse, lake)
            return previous
    typed = f"({typed_lines_sql(selects)})"
    t0 = time.perf_counter()
    clean_cols = ", ".join(c for c, _, _ in (*CLEAN_COLUMNS, *CLEAN_PARTITIONS))
    reasons_sql = (
        f"SELECT reject_reason AS reason, COUNT(*) AS n FROM {typed} AS typed "
        "WHERE reject_reason IS NOT NULL GROUP BY reject_reason ORDER BY n DESC, reason"
    )
    if warehouse.shares_intermediates:
        # line_groups is materialised once; the clean output and the reconciliation read it.
        groups = "line_groups"
        temps = [("line_groups", render("line_groups.sql", typed))]
        stats_sql = (render("reconciliation.sql", typed, groups), reasons_sql)
    else:
        # Every output straight from the sources: the grouping streams into the Parquet writer.
        groups = f"({render('line_groups.sql', typed)})"
        temps = []
        stats_sql = (f"SELECT COUNT(*) AS rows_in FROM {typed} AS typed",)
    (rows_clean, rows_quarantined), stats = warehouse.run_transform(
        lake,
        temps=temps,
        outputs=[
            (f"SELECT {clean_cols} FROM ({render('clean_transactions.sql', typed, groups)}) AS c",
             CLEAN_PREFIX, ("year", "month")),
            (render("quarantine.sql", typed, groups), QUARANTINE_PREFIX, ()),
        ],
        stats_sql=stats_sql,
        # the filters on reject_reason test computed columns: inlined, the typing would run twice
        push_filters=False,
    )
    rows_in = int(stats[0].iloc[0]["rows_in"])
    if warehouse.shares_intermediates:
        rows_clean = int(stats[0].iloc[0]["rows_clean"])
        rows_duplicate = int(stats[0].iloc[0]["rows_duplicate"])
        reasons = stats[1]
    else:
        # the input lines neither written as clean nor quarantined are the folded copies of clean lines
        rows_duplicate = rows_in - rows_clean - rows_quarantined
        # the reasons are recounted from the written quarantine (small: rejected lines only)
        reasons = warehouse.query_df(
            "SELECT reason, COUNT(*) AS n FROM read_parquet("
            f"{sql_str(warehouse.table_uri_glob(lake, QUARANTINE_PREFIX, False))}) "
            "GROUP BY reason ORDER BY n DESC, reason",
            lake,
        )
    by_reason = {str(r): int(n) for r, n in zip(reasons["reason"], reasons["n"])}
    seconds = time.perf_counter() - t0
    if rows_duplicate < 0:
        raise RuntimeError(
            f"clean transform: {rows_in} input rows but {rows_clean} clean + {rows_quarantined} quarantined"
        )
    partitions = sorted(
        {"/".join(k.split("/")[2:4]) for k in lake.list(CLEAN_PREFIX) if k.endswith(".parquet")}
    )
    result = CleanResult(
        rows_in=rows_in,
        rows_clean=int(rows_clean),
        rows_quarantined=int(rows_quarantined),
        rows_duplicate=rows_duplicate,
        quarantine_by_reason=by_reason,
        partitions=partitions,
        sources=parts,
        engine_seconds=round(seconds, 3),
        fingerprint=fp,
    )
    register_tables(warehouse, lake)
    lake.put_text(CLEAN_MANIFEST, result.to_json())
    return result


def register_tables(warehouse: Warehouse, lake: Lake) -> None:
    warehouse.register_table(CLEAN_TABLE, lake, CLEAN_PREFIX, CLEAN_COLUMNS, CLEAN_PARTITIONS)
    warehouse.register_table(QUARANTINE_TABLE, lake, QUARANTINE_PREFIX, QUARANTINE_COLUMNS)


def read_result(lake: Lake) -> CleanResult | None:
    if not lake.exists(CLEAN_MANIFEST):
        return None
    return CleanResult(**json.loads(lake.get_text(CLEAN_MANIFEST)))


# The stream route registers itself in EXTRA_SOURCES (ingestion/stream_source.py).
import ecommerce_platform.ingestion.stream_source  # noqa: E402,F401
