"""The clean transform: the canonical copies of the landed batches and stream days -> typed, validated,
deduplicated Parquet partitioned by invoice month, with a quarantine of what was rejected.

One SQL transform run by the warehouse engine over the months it is asked for (Dagster partitions of
``invoice_months``): ``sql/typed_lines.sql`` judges every line of those months (the first rule of
``rules.py`` it breaks is its quarantine reason); ``line_groups.sql`` folds exact duplicates of valid
lines together; ``clean_transactions.sql`` writes the groups (each clean row says how many input lines it
stands for: ``source_lines``), ``quarantine.sql`` the rejected lines. Only the months of the run are
replaced, each with one atomic publish.

A month that only gained batches since it was cleaned (the inputs it holds unchanged, the transform the
same) is not cleaned again: the same SQL runs over the new batches' lines only, and their rows are added
to the month as new files beside the ones it holds (``Output.append``), once a join with the month's rows
has shown that no new row is a line the month already holds. If one is, that month is cleaned again whole
(the line folds into its row). A stream day's copy is rebuilt whole when the day grows, so its months are
cleaned again whole too; so are all months in a forced run (``incremental=False``).

Every line is accounted for, with counts measured, not derived: ``rows_in`` of a month is what the source
readers counted when the copies were made (ingestion/months.py); before anything is published the run
checks that the engine read exactly that many lines and that rows_in = clean rows + quarantined rows +
duplicates folded (SUM(source_lines) - clean rows, measured on the written files; for an addition: on the
new files, added to the month's counts). A month's counts are kept in ``clean/_months/<month>.json`` beside
its data, with the inputs and the version of the transform it was made from.

How the engine runs it is its own business (``Warehouse.shares_intermediates``): Athena materialises
``line_groups`` once and reads it for the clean output and the reconciliation; DuckDB streams each
output straight from the copies (the grouping feeds the Parquet writer directly).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass, field

from ecommerce_platform.config import Settings, load_settings
from ecommerce_platform.faults import crash_point
from ecommerce_platform.ingestion.months import MonthInputs, month_inputs
from ecommerce_platform.ingestion.source import COPY_TYPES, copy_file_month
from ecommerce_platform.lake import rules
from ecommerce_platform.partitions import UNDATED, month_bounds
from ecommerce_platform.resources.sql_dialect import Sql, literal, read_sql, render
from ecommerce_platform.resources.warehouse import Output, Warehouse
from ecommerce_platform.schema import (
    CLEAN_COLUMNS,
    CLEAN_KEY,
    CLEAN_NULLABLE,
    CLEAN_PARTITIONS,
    CLEAN_PREFIX,
    CLEAN_TABLE,
    NON_PRODUCT_CODES,
    NON_PRODUCT_PREFIXES,
    QUARANTINE_COLUMNS,
    QUARANTINE_PARTITIONS,
    QUARANTINE_PREFIX,
    QUARANTINE_TABLE,
    RAW_NORMALIZED_PREFIX,
    UNSPECIFIED_COUNTRY,
)

SQL_PACKAGE = "ecommerce_platform.lake"
MONTHS_PREFIX = "clean/_months"
COPIES_TABLE = "raw_lines"  # the engine's name for the canonical copies (Athena: a Glue table)
SQL_FILES = (
    "typed_lines.sql", "line_groups.sql", "clean_transactions.sql", "quarantine.sql", "reconciliation.sql",
)


class NoSourceDataError(RuntimeError):
    pass


class ReconciliationError(RuntimeError):
    """The engine did not account for every line the source readers counted."""


@dataclass
class MonthResult:
    month: str
    version: str  # of the inputs it was made from (ingestion/months.py)
    rows_in: int
    rows_clean: int
    rows_quarantined: int
    rows_duplicate: int
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)
    cleaned_at: str = ""
    parts: list[str] = field(default_factory=list)  # the inputs it holds (MonthInputs.parts)
    code: str = ""  # the transform's version it was made with (transform_version)
    mode: str = "full"  # how the last run made it: "full" (cleaned again) or "append" (new batches added)

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.rows_clean + self.rows_quarantined + self.rows_duplicate


@dataclass
class CleanResult:
    months: list[MonthResult]
    engine_seconds: float = 0.0
    rows_read: int = 0

    def total(self, name: str) -> int:
        return sum(getattr(m, name) for m in self.months)

    @property
    def rows_in(self) -> int:
        return self.total("rows_in")

    @property
    def rows_clean(self) -> int:
        return self.total("rows_clean")

    @property
    def rows_quarantined(self) -> int:
        return self.total("rows_quarantined")

    @property
    def rows_duplicate(self) -> int:
        return self.total("rows_duplicate")

    @property
    def quarantine_by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in self.months:
            for reason, n in m.quarantine_by_reason.items():
                out[reason] = out.get(reason, 0) + n
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def non_product_params() -> dict:
    prefix = " OR ".join(f"STARTS_WITH(stock_code, {literal(p)})" for p in NON_PRODUCT_PREFIXES)
    return {"non_product_codes": tuple(NON_PRODUCT_CODES),
            "non_product_prefix_test": Sql(f"({prefix})" if prefix else "FALSE")}


def clean_part(month: str) -> str | None:
    """The clean table's partition folder of a month (``year=2011/month=3``); None for ``undated``."""
    bounds = month_bounds(month)
    return None if bounds is None else f"year={bounds[0]}/month={bounds[1]}"


def quarantine_part(month: str) -> str:
    return f"partition_month={month}"


def copies_relation(warehouse: Warehouse, inputs: list[MonthInputs]) -> str:
    """The rows of the given months from the canonical copies that hold them (an engine's own way to
    read raw objects: ``Warehouse.external_relation``)."""
    keys = sorted({k for m in inputs for k in m.copies})
    months = tuple(sorted(m.month for m in inputs))
    relation = warehouse.external_relation(COPIES_TABLE, keys, COPY_TYPES, fmt="parquet",
                                           location=RAW_NORMALIZED_PREFIX)
    if all(copy_file_month(k) in months for k in keys):  # files of these months only: nothing to filter
        return f"SELECT * FROM {relation} AS copies"
    return f"SELECT * FROM {relation} AS copies WHERE partition_month IN {literal(months)}"


def typed_lines_sql(sources: str, settings: Settings | None = None) -> str:
    return render(read_sql(SQL_PACKAGE, "typed_lines.sql"), sources=Sql(sources),
                  unspecified_country=UNSPECIFIED_COUNTRY, **rules.sql_params(settings or load_settings()))


def render_file(name: str, typed: str = "typed_lines", groups: str = "line_groups") -> str:
    """A SQL file with its relations (names of temporary tables, or subqueries) and parameters filled in."""
    return render(read_sql(SQL_PACKAGE, name), typed_lines=Sql(typed), line_groups=Sql(groups),
                  **non_product_params())


def code_params(settings: Settings) -> dict:
    """What the transform's code version depends on besides its files."""
    return {"rules": rules.sql_params(settings), "tolerance_hours": settings.future_tolerance_hours,
            "non_products": [list(NON_PRODUCT_CODES), list(NON_PRODUCT_PREFIXES)]}


def transform_version(settings: Settings | None = None) -> str:
    """The version of the transform: its code, its SQL and the rules' parameters (the asset's code version)."""
    from ecommerce_platform.recompute import code_version

    return code_version(SQL_PACKAGE, "clean.py", "rules.py", *(f"sql/{f}" for f in SQL_FILES),
                        params=code_params(settings or load_settings()))


def run_clean(warehouse: Warehouse, months: list[str] | None = None, settings: Settings | None = None,
              incremental: bool = True) -> CleanResult:
    """Clean the given invoice months (all months the raw zone holds when None).

    A month whose inputs only grew since it was cleaned (new batches landed; the ones it holds unchanged,
    the transform the same) is cleaned incrementally when ``incremental``: only the new lines are read,
    typed and folded, and their rows are added to the month beside the ones it holds, provided that none
    of them is already there (an exact duplicate of a clean row must fold into that row: such a month,
    like any other, is cleaned again whole)."""
    settings = settings or load_settings()
    lake = warehouse.lake
    available = month_inputs(lake)
    months = sorted(available) if months is None else sorted(set(months))
    if not available:
        raise NoSourceDataError("no source data in the raw zone: materialize raw_s3 first")
    version = transform_version(settings)
    t0 = time.perf_counter()
    results: dict[str, MonthResult] = {
        m: MonthResult(month=m, version=available[m].version if m in available else "", rows_in=0, rows_clean=0,
                       rows_quarantined=0, rows_duplicate=0, parts=list(available[m].parts) if m in available else [],
                       code=version) for m in months}
    rows_read = 0
    growing = _grown_months(lake, available, months, version) if incremental else {}
    if growing:
        added, rows = _append(warehouse, growing, settings, results)
        rows_read += rows
    else:
        added = set()
    full = [m for m in months if m not in added]
    inputs = [available[m] for m in full if m in available]
    if inputs:
        rows_read += _transform(warehouse, inputs, full, settings, results)
    else:  # the months hold no lines any more: their outputs go
        for m in full:
            part = clean_part(m)
            if part:
                lake.delete_prefix(f"{CLEAN_PREFIX}/{part}")
            lake.delete_prefix(f"{QUARANTINE_PREFIX}/{quarantine_part(m)}")
    crash_point("clean:published")
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    for r in results.values():
        r.cleaned_at = now
        lake.put_text(f"{MONTHS_PREFIX}/{r.month}.json", json.dumps(asdict(r), sort_keys=True))
    register_tables(warehouse)
    return CleanResult(months=[results[m] for m in months], engine_seconds=round(time.perf_counter() - t0, 3),
                       rows_read=rows_read)


def _grown_months(lake, available: dict[str, MonthInputs], months: list[str], version: str) -> dict:  # noqa: ANN001
    """The months whose inputs only grew since they were cleaned by this version of the transform:
    month -> (its record, the new inputs' lines as a MonthInputs)."""
    previous = month_results(lake)
    out = {}
    for m in months:
        prev, cur = previous.get(m), available.get(m)
        if prev is None or cur is None or prev.code != version or not prev.parts or not prev.balanced:
            continue
        old, now = set(prev.parts), set(cur.parts)
        if not old < now:
            continue
        new = sorted(now - old)
        out[m] = (prev, MonthInputs(m, copies=sorted({k for p in new for k in cur.part_copies[p]}),
                                    rows=sum(cur.part_rows[p] for p in new), parts=new))
    return out


def _same_line(a: str, b: str) -> str:
    """Two clean rows are the same line: equal in every column of schema.CLEAN_KEY (nulls equal)."""
    return " AND ".join(f"{a}.{c} IS NOT DISTINCT FROM {b}.{c}" if c in CLEAN_NULLABLE
                        else f"{a}.{c} = {b}.{c}" for c in CLEAN_KEY)


def _append(warehouse: Warehouse, growing: dict, settings: Settings, results: dict[str, MonthResult]) -> tuple[set, int]:
    """Add the new lines of the growing months to the clean zone (see run_clean). Returns the months done
    this way and the lines read; the others are left to the full transform."""
    new_inputs = [inp for _, inp in growing.values()]
    typed = f"({typed_lines_sql(copies_relation(warehouse, new_inputs), settings)})"
    new_rows = f"({render_file('clean_transactions.sql', typed, '(' + render_file('line_groups.sql', typed) + ')')})"
    # the new rows that are lines their month already holds (read from the table, its partitions of these
    # months only): those months are cleaned again whole
    dated = [b for b in (month_bounds(m) for m in growing) if b]
    overlap: set[str] = set()
    if dated:
        if not warehouse.queryable(CLEAN_TABLE):
            return set(), 0
        held = " OR ".join(f"(e.year = {y} AND e.month = {mo})" for y, mo in dated)
        seen = warehouse.query_df(
            f"SELECT n.year, n.month, COUNT(*) AS n FROM {new_rows} AS n JOIN {CLEAN_TABLE} AS e "
            f"ON {_same_line('n', 'e')} WHERE {held} GROUP BY n.year, n.month")
        overlap = {f"{int(r['year']):04d}-{int(r['month']):02d}" for r in seen.to_dict("records")}
    months = sorted(m for m in growing if m not in overlap)
    if not months:
        return set(), 0
    inputs = [growing[m][1] for m in months]
    typed = f"({typed_lines_sql(copies_relation(warehouse, inputs), settings)})"
    groups = f"({render_file('line_groups.sql', typed)})"
    expected = {i.month: i.rows for i in inputs}

    def account(counts, stats, measures) -> None:  # noqa: ANN001
        crash_point("clean:staged")
        _check_read(stats[0], expected)
        _balance(expected, _measured(*measures), results, previous={m: growing[m][0] for m in expected})

    warehouse.run_transform(
        temps=[],
        outputs=[_clean_output(typed, groups, months, append=True), _quarantine_output(typed, months, append=True)],
        stats_sql=(_read_sql(warehouse, inputs),),
        push_filters=False,
        validate=account,
    )
    return set(months), sum(expected.values())


def _transform(warehouse: Warehouse, inputs: list[MonthInputs], months: list[str], settings: Settings,
               results: dict[str, MonthResult]) -> int:
    typed = f"({typed_lines_sql(copies_relation(warehouse, inputs), settings)})"
    expected = {m.month: m.rows for m in inputs}
    read_sql_ = _read_sql(warehouse, inputs)
    if warehouse.shares_intermediates:
        # line_groups is materialised once; the clean output and the reconciliation read it.
        groups = "line_groups"
        temps = [("line_groups", render_file("line_groups.sql", typed))]
        stats_sql = (read_sql_, render_file("reconciliation.sql", typed, groups))
    else:
        # Every output straight from the copies: the grouping streams into the Parquet writer.
        groups = f"({render_file('line_groups.sql', typed)})"
        temps = []
        stats_sql = (read_sql_,)
    # The clean output in passes of whole months (one when the engine materialises the groups): each pass
    # folds the duplicates of its months only, so its GROUP BY stays in memory (at 100x: 56 s in 13 passes
    # against 76 s in one pass that spills). A pass reads only its months' row groups of the copies.
    passes = [inputs] if warehouse.shares_intermediates else _passes(inputs, warehouse.pass_rows)
    without_inputs = [m for m in months if m not in expected]  # their clean partitions go
    clean_outputs = []
    for i, chunk in enumerate(passes):
        if len(passes) > 1:
            chunk_typed = f"({typed_lines_sql(copies_relation(warehouse, chunk), settings)})"
            chunk_groups = f"({render_file('line_groups.sql', chunk_typed)})"
        else:
            chunk_typed, chunk_groups = typed, groups
        owned = [m.month for m in chunk] + (without_inputs if i == 0 else [])
        clean_outputs.append(_clean_output(chunk_typed, chunk_groups, owned,
                                           part_rows=sum(m.rows for m in chunk) // max(1, len(chunk))))

    def account(counts, stats, measures) -> None:  # noqa: ANN001
        """Before anything is published: the engine read every line the readers counted, and the outputs
        account for each one as clean, quarantined or a duplicate folded into a clean row."""
        crash_point("clean:staged")
        _check_read(stats[0], expected)
        *clean_measures, quarantine_measure = measures
        measured = _measured(_concat(clean_measures), quarantine_measure)
        counts = [sum(counts[:-1]), counts[-1]]
        if warehouse.shares_intermediates:
            rec = stats[1].iloc[0]
            if (int(rec["rows_clean"]), int(rec["rows_quarantined"])) != (int(counts[0]), int(counts[1])):
                raise ReconciliationError(
                    f"the reconciliation query counts {int(rec['rows_clean']):,} clean and "
                    f"{int(rec['rows_quarantined']):,} quarantined rows, the outputs hold {int(counts[0]):,} and "
                    f"{int(counts[1]):,}")
            if int(rec["rows_duplicate"]) != sum(m["rows_duplicate"] for m in measured.values()):
                raise ReconciliationError("the reconciliation query and the written files disagree on duplicates")
        _balance(expected, measured, results)

    warehouse.run_transform(
        temps=temps,
        outputs=[*clean_outputs, _quarantine_output(typed, months)],
        stats_sql=stats_sql,
        # the filters on reject_reason test computed columns: inlined, the typing would run twice
        push_filters=False,
        validate=account,
    )
    return sum(expected.values())


def _clean_output(typed: str, groups: str, months: list[str], **options) -> Output:  # noqa: ANN003
    """The clean rows of ``months`` (the partitions it owns), from the typed lines and their groups."""
    cols = ", ".join(c for c, _, _ in (*CLEAN_COLUMNS, *CLEAN_PARTITIONS))
    return Output(f"SELECT {cols} FROM ({render_file('clean_transactions.sql', typed, groups)}) AS c",
                  CLEAN_PREFIX, ("year", "month"), [p for p in (clean_part(m) for m in sorted(months)) if p],
                  measure=CLEAN_MEASURE, **options)


def _quarantine_output(typed: str, months: list[str], **options) -> Output:  # noqa: ANN003
    """The rejected lines of ``months``. Its filter keeps almost no line: inlined (push_filters), the
    quarantine's columns are computed for those lines only."""
    cols = ", ".join(c for c, _, _ in (*QUARANTINE_COLUMNS, *QUARANTINE_PARTITIONS))
    return Output(f"SELECT {cols} FROM ({render_file('quarantine.sql', typed)}) AS q", QUARANTINE_PREFIX,
                  ("partition_month",), [quarantine_part(m) for m in months], measure=QUARANTINE_MEASURE,
                  push_filters=True, **options)


def _read_sql(warehouse: Warehouse, inputs: list[MonthInputs]) -> str:
    """The lines the engine reads per month from the copies (checked against the readers' counts)."""
    return (f"SELECT partition_month AS month, COUNT(*) AS n FROM ({copies_relation(warehouse, inputs)}) AS r "
            "GROUP BY 1")


def _check_read(read_counts, expected: dict[str, int]) -> None:  # noqa: ANN001
    read = {str(r["month"]): int(r["n"]) for r in read_counts.to_dict("records")}
    if read != expected:
        raise ReconciliationError(f"the engine read {read} lines per month, the source readers counted {expected}")


def _balance(expected: dict[str, int], measured: dict[str, dict], results: dict[str, MonthResult],
             previous: dict[str, MonthResult] | None = None) -> None:
    """Before anything is published: each month's lines (``expected``: the new lines of an addition) are
    its clean rows + quarantined rows + duplicates folded as measured on the written files, and no month
    was written that the run was not given. Sets the months' results: the measured counts, added to the
    ``previous`` ones for an addition."""
    problems = []
    for month, rows in expected.items():
        got = measured.get(month, {"rows_clean": 0, "rows_quarantined": 0, "rows_duplicate": 0, "reasons": {}})
        if got["rows_clean"] + got["rows_quarantined"] + got["rows_duplicate"] != rows:
            problems.append(f"{month}: {rows:,} {'new ' if previous else ''}lines in, {got['rows_clean']:,} clean + "
                            f"{got['rows_quarantined']:,} quarantined + {got['rows_duplicate']:,} duplicates")
        prev = (previous or {}).get(month) or MonthResult(month, "", 0, 0, 0, 0)
        r = results[month]
        r.rows_in = prev.rows_in + rows
        r.rows_clean = prev.rows_clean + got["rows_clean"]
        r.rows_quarantined = prev.rows_quarantined + got["rows_quarantined"]
        r.rows_duplicate = prev.rows_duplicate + got["rows_duplicate"]
        reasons = dict(prev.quarantine_by_reason)
        for reason, n in got["reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + n
        r.quarantine_by_reason = reasons
        r.mode = "append" if previous else "full"
    extra = sorted(set(measured) - set(expected))
    if extra:
        problems.append(f"rows written for months the run was not given: {extra}")
    if problems:
        raise ReconciliationError(f"{'new ' if previous else ''}lines not accounted for, nothing was published: "
                                  + "; ".join(problems))


def _passes(inputs: list[MonthInputs], max_rows: int | None) -> list[list[MonthInputs]]:
    """The months in order, in consecutive groups of at most ``max_rows`` lines (a bigger month alone)."""
    if not max_rows:
        return [inputs]
    out: list[list[MonthInputs]] = [[]]
    rows = 0
    for m in inputs:
        if out[-1] and rows + m.rows > max_rows:
            out.append([])
            rows = 0
        out[-1].append(m)
        rows += m.rows
    return out


def _concat(frames: list):  # noqa: ANN001, ANN202
    import pandas as pd

    frames = [f for f in frames if f is not None and not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else None


# Measured on the rows each output wrote, before it is published (the engine runs them: on the Parquet in
# staging for DuckDB, on the CTAS table for Athena).
CLEAN_MEASURE = ("SELECT year, month, COUNT(*) AS n, SUM(source_lines) - COUNT(*) AS folded "
                 "FROM {output} GROUP BY year, month")
QUARANTINE_MEASURE = "SELECT partition_month, reason, COUNT(*) AS n FROM {output} GROUP BY partition_month, reason"


def _measured(clean, quarantine) -> dict[str, dict]:  # noqa: ANN001
    """Per month: clean rows, duplicates folded (SUM(source_lines) - rows), quarantined rows and reasons."""
    out: dict[str, dict] = {}

    def month(key: str) -> dict:
        return out.setdefault(key, {"rows_clean": 0, "rows_quarantined": 0, "rows_duplicate": 0, "reasons": {}})

    for r in ([] if clean is None or clean.empty else clean.to_dict("records")):
        m = month(f"{int(r['year']):04d}-{int(r['month']):02d}")
        m["rows_clean"] += int(r["n"])
        m["rows_duplicate"] += int(r["folded"])
    for r in ([] if quarantine is None or quarantine.empty else quarantine.to_dict("records")):
        m = month(str(r["partition_month"]))
        m["rows_quarantined"] += int(r["n"])
        m["reasons"][str(r["reason"])] = int(r["n"])
    return out


def register_tables(warehouse: Warehouse) -> None:
    warehouse.register_table(CLEAN_TABLE, CLEAN_PREFIX, CLEAN_COLUMNS, CLEAN_PARTITIONS)
    months = sorted(month_results(warehouse.lake))
    warehouse.register_table(QUARANTINE_TABLE, QUARANTINE_PREFIX, QUARANTINE_COLUMNS, QUARANTINE_PARTITIONS,
                             partition_values={"partition_month": months})


def month_results(lake) -> dict[str, MonthResult]:  # noqa: ANN001
    """The counts of every cleaned month, as recorded when it was cleaned."""
    out = {}
    for key in lake.list(MONTHS_PREFIX):
        if key.endswith(".json"):
            data = json.loads(lake.get_text(key))
            out[data["month"]] = MonthResult(**data)
    return dict(sorted(out.items()))


__all__ = ["CleanResult", "MonthResult", "run_clean", "register_tables", "month_results", "UNDATED"]
