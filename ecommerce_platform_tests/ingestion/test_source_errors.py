"""Bad source files: each gives a SourceError naming the file and the problem, or a counted quarantine
with the reason; and never leaves partial output in the lake (no raw object without its manifest,
no staging folder, the clean zone of a previous good run intact)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from ecommerce_platform.ingestion.source import SourceError, inspect_source
from ecommerce_platform.lake import clean as clean_mod
from ecommerce_platform.lake.clean import run_clean
from ecommerce_platform.resources.warehouse import WarehouseError
from ecommerce_platform.schema import CLEAN_PREFIX
from ecommerce_platform_tests.conftest import build_lake, platform_environment
from ecommerce_platform_tests.ingestion.test_source_formats import (
    CLASSIC,
    ROWS,
    _frame,
    _write_xlsx,
    clean_file,
    quarantine_frame,
)

HEADER = ",".join(CLASSIC)
GOOD_LINE = "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom"


def _write(path: Path, content: bytes | str) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def _truncated_parquet(path: Path) -> Path:
    _frame(date_fmt="%Y-%m-%d %H:%M:%S").to_parquet(path, index=False)
    data = path.read_bytes()
    return _write(path, data[: len(data) // 2])


BAD_FILES = {
    "empty.csv": (lambda p: _write(p, b""), "empty"),
    "header_only.csv": (lambda p: _write(p, HEADER + "\n"), "no data rows"),
    "missing_column.csv": (
        lambda p: _write(p, "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,CustomerID,Country\n"
                            "536365,85123A,X,6,2010-12-01 08:26:00,17850,United Kingdom\n"),
        "missing required column(s) unit_price",
    ),
    "garbage.csv": (lambda p: _write(p, bytes(range(256)) * 64), "binary content"),
    "garbage.parquet": (lambda p: _write(p, b"PAR1" + os.urandom(4096)), "truncated Parquet"),
    "truncated.parquet": (_truncated_parquet, "truncated Parquet"),
    "wrong_delimiter.csv": (
        lambda p: _write(p, HEADER.replace(",", "#") + "\n" + GOOD_LINE.replace(",", "#") + "\n"),
        "not a transactions CSV: found 1 column(s)",
    ),
    "header_only.xlsx": (lambda p: _write_xlsx(p, _frame().iloc[:0]), "no data rows"),
    "not_a_workbook.xlsx": (lambda p: _write(p, b"PK\x03\x04" + b"\x00" * 200), "damaged or truncated"),
    "legacy.xls": (lambda p: _write(p, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500), "legacy Excel"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_gets_a_clear_error_and_leaves_no_trace(tmp_path, name):
    make, problem = BAD_FILES[name]
    path = make(tmp_path / name)
    lake_dir = tmp_path / "work" / "lake"
    with pytest.raises(SourceError) as info:
        clean_file(path, tmp_path / "work")
    message = str(info.value)
    assert str(path) in message and problem in message, message
    assert info.value.path == str(path)
    # nothing landed: no raw object, no manifest, no converted workbook, no temporary file
    assert not lake_dir.exists() or [p for p in lake_dir.rglob("*") if p.is_file()] == []


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SourceError, match="does not exist") as info:
        inspect_source(tmp_path / "nope.csv")
    assert str(tmp_path / "nope.csv") in str(info.value)


def test_unparsable_values_are_quarantined_with_their_reason(tmp_path):
    lines = [
        GOOD_LINE,
        "536366,22633,BAD QUANTITY,abc,2010-12-01 08:28:00,1.85,17850,United Kingdom",
        "536367,22634,BAD PRICE,2,2010-12-01 08:28:00,£1.85,17850,United Kingdom",
        "536368,22635,BAD DATE,2,not a date,1.85,17850,United Kingdom",
        "536369,22636,IMPOSSIBLE DATE,2,2011-02-31 10:00:00,1.85,17850,United Kingdom",
        "536370,22637,FRACTIONAL,2.5,2010-12-01 08:28:00,1.85,17850,United Kingdom",
        ",22638,NO INVOICE,2,2010-12-01 08:28:00,1.85,17850,United Kingdom",
        "536371,22639,NEGATIVE PRICE,2,2010-12-01 08:28:00,-1.85,17850,United Kingdom",
        "536372,22640,ANCIENT,2,1900-01-01 00:00:00,1.85,17850,United Kingdom",
        "536373,22641,NO PRICE,2,2010-12-01 08:28:00,,17850,United Kingdom",
        GOOD_LINE,  # an exact duplicate of the first line
    ]
    path = _write(tmp_path / "unparsable.csv", HEADER + "\n" + "\n".join(lines) + "\n")
    result, lake, _ = clean_file(path, tmp_path / "work")
    assert result.rows_in == len(lines)
    assert result.rows_in == result.rows_clean + result.rows_quarantined + result.rows_duplicate
    assert (result.rows_clean, result.rows_quarantined, result.rows_duplicate) == (1, 9, 1)
    q = quarantine_frame(lake)
    assert list(zip(q["source_row"], q["reason"])) == [
        (2, "unparsable quantity"), (3, "unparsable unit_price"), (4, "unparsable invoice_date"),
        (5, "unparsable invoice_date"), (6, "non-integer quantity"), (7, "missing invoice_no"),
        (8, "negative unit_price"), (9, "invoice_date before earliest date"), (10, "missing unit_price"),
    ]
    # the quarantine keeps the source text as it was, and the file it came from
    assert q.loc[0, "quantity"] == "abc" and q.loc[1, "unit_price"] == "£1.85"
    from ecommerce_platform.ingestion.source import file_sha256

    sha12 = file_sha256(path)[:12]
    assert set(q["source_file"]) == {lake.uri(f"raw/batch/ingest_date=2024-05-06/{sha12}/unparsable.csv")}
    assert result.quarantine_by_reason["unparsable invoice_date"] == 2


def test_ragged_csv_lines_are_quarantined_not_dropped(tmp_path):
    lines = [
        GOOD_LINE,
        "536366,22633,SHORT LINE,2,2010-12-01 08:28:00",  # 3 fields missing
        "536367,22634,LONG LINE,2,2010-12-01 08:28:00,1.85,17850,United Kingdom,extra,fields",
        "536368,22635,FINE,2,2010-12-01 08:28:00,1.85,17850,France",
    ]
    path = _write(tmp_path / "ragged.csv", HEADER + "\n" + "\n".join(lines) + "\n")
    result, lake, _ = clean_file(path, tmp_path / "work")
    assert result.rows_in == len(lines)
    assert result.rows_in == result.rows_clean + result.rows_quarantined + result.rows_duplicate
    q = quarantine_frame(lake)
    assert list(zip(q["source_row"], q["source_line"], q["reason"])) == [
        (2, 3, "malformed_record"), (3, 4, "malformed_record")]
    assert "5 fields, the header has 8" in q.loc[0, "detail"] and "SHORT LINE" in q.loc[0, "detail"]
    assert "10 fields, the header has 8" in q.loc[1, "detail"]
    assert (result.rows_clean, result.rows_quarantined, result.rows_duplicate) == (2, 2, 0)


def test_source_row_numbers_point_at_the_line_in_a_large_csv(tmp_path):
    """Rejected lines deep in a multi-chunk CSV carry their true 1-based data row number."""
    n = 120_000
    df = pd.DataFrame({
        "InvoiceNo": [str(500000 + i) for i in range(n)], "StockCode": "85123A", "Description": "X",
        "Quantity": "1", "InvoiceDate": "2011-01-02 10:00:00", "UnitPrice": "1.5", "CustomerID": "17850",
        "Country": "United Kingdom",
    })
    bad_rows = [7, 65_537, 119_999]
    for r in bad_rows:
        df.loc[r - 1, "Quantity"] = f"bad{r}"
    path = tmp_path / "big.csv"
    df.to_csv(path, index=False)
    result, lake, _ = clean_file(path, tmp_path / "work")
    q = quarantine_frame(lake)
    assert list(q["source_row"]) == bad_rows
    assert list(q["quantity"]) == [f"bad{r}" for r in bad_rows]
    assert result.rows_clean == n - len(bad_rows)


def _lake_snapshot(lake_dir: Path) -> dict[str, bytes]:
    return {p.relative_to(lake_dir).as_posix(): p.read_bytes() for p in lake_dir.rglob("*") if p.is_file()}


def _good_csv(tmp_path: Path) -> Path:
    """tmp_path/good.csv: the rows of ROWS, well formed."""
    good = tmp_path / "good.csv"
    _frame(date_fmt="%Y-%m-%d %H:%M:%S").to_csv(good, index=False)
    return good


def _cleaned_good_csv(tmp_path: Path):
    """good.csv landed and cleaned under tmp_path/work: (warehouse, the lake's folder, its files now)."""
    _, lake, warehouse = clean_file(_good_csv(tmp_path), tmp_path / "work")
    lake_dir = Path(lake.root)
    return warehouse, lake_dir, _lake_snapshot(lake_dir)


def _assert_nothing_published(lake_dir: Path, before: dict[str, bytes]) -> None:
    """The lake's files are byte-identical to ``before`` and no staging folder is left."""
    assert _lake_snapshot(lake_dir) == before
    assert [p for p in lake_dir.rglob("*") if "_staging" in p.name or "_staging" in p.parts] == []


def test_an_unreadable_file_is_set_aside_and_leaves_the_lake_intact(tmp_path):
    """A bad file beside good ones: its landing run succeeds, the file is set aside in raw/rejected/ with
    the reason (and the check says so), the good files land and clean, nothing else in the lake changes."""
    inbox = tmp_path / "in"
    inbox.mkdir()
    _frame(date_fmt="%Y-%m-%d %H:%M:%S").to_csv(inbox / "a_good.csv", index=False)
    data_dir = tmp_path / "data"
    with platform_environment(data_dir, ECOMMERCE_SOURCE=str(inbox)), dg.DagsterInstance.ephemeral() as instance:
        assert all(r.success for r in build_lake(instance))
        before = _lake_snapshot(data_dir / "lake")
        assert any(k.startswith(CLEAN_PREFIX) for k in before)
        bad = _truncated_parquet(inbox / "b_bad.parquet")
        _frame(date_fmt="%Y-%m-%d %H:%M:%S").iloc[:2].assign(InvoiceNo="777777").to_csv(inbox / "c_good.csv", index=False)
        runs = build_lake(instance)
        assert all(r.success for r in runs)
        land = runs[0]
        meta = {k: v.value for e in land.get_asset_materialization_events() for k, v in e.materialization.metadata.items()}
        assert meta["rejected"] == 1 and meta["newly_landed"] == 1
        check = {e.check_name: e for e in land.get_asset_check_evaluations()}["raw_files_readable"]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
        (rejected,) = check.metadata["rejected_files"].value
        assert rejected["file"] == str(bad) and "truncated Parquet" in rejected["problem"]
        after = _lake_snapshot(data_dir / "lake")
        assert [k for k in after if k.startswith("raw/rejected/")] == [f"raw/rejected/{[p for p in instance.get_dynamic_partitions('raw_batches') if p.startswith('b_bad')][0]}.json"]
        assert not [k for k in after if "b_bad" in k and not k.startswith("raw/rejected/")]
        # the next run does not try the bad file again (its partition is done), the good one stays landed
        (only_clean,) = build_lake(instance)
        assert only_clean.success


def test_a_transform_failing_midway_publishes_nothing(tmp_path, monkeypatch):
    """The engine fails while computing (a runtime error in a source's rows): no staging folder is
    left and the previous clean zone, quarantine and manifest are byte-identical."""
    warehouse, lake_dir, before = _cleaned_good_csv(tmp_path)

    # the copies' rows fail at run time (an engine error in the middle of the transform), in a column
    # every line's typing reads (the source text of valid lines is never evaluated: the quarantine
    # computes it for rejected lines only)
    real = clean_mod.copies_relation

    def failing(warehouse_, inputs):
        return (f"SELECT * REPLACE (CAST(error('engine failure injected by the test') AS DOUBLE) AS "
                f"quantity_num) FROM ({real(warehouse_, inputs)}) AS x")

    monkeypatch.setattr(clean_mod, "copies_relation", failing)
    with pytest.raises(WarehouseError, match="engine failure injected"):
        run_clean(warehouse)
    _assert_nothing_published(lake_dir, before)


def test_xlsx_failing_conversion_leaves_no_raw_object(tmp_path):
    """A workbook whose header is fine but which has no rows fails during conversion, after the
    header check: the raw object must not stay behind without its manifest."""
    path = _write_xlsx(tmp_path / "empty_rows.xlsx", _frame().iloc[:0])
    with pytest.raises(SourceError, match="no data rows"):
        clean_file(path, tmp_path / "work")
    lake_dir = tmp_path / "work" / "lake"
    assert not lake_dir.exists() or [p for p in lake_dir.rglob("*") if p.is_file()] == []


def test_landing_a_good_file_after_a_bad_one_works(tmp_path):
    bad = _write(tmp_path / "empty.csv", b"")
    with pytest.raises(SourceError):
        clean_file(bad, tmp_path / "work")
    good = _good_csv(tmp_path)
    result, lake, _ = clean_file(good, tmp_path / "work")
    assert result.rows_clean == len(ROWS)
    from ecommerce_platform.ingestion.source import file_sha256

    assert [k for k in lake.list("raw/batch") if k.endswith("good.csv")] == [
        f"raw/batch/ingest_date={dt.date(2024, 5, 6).isoformat()}/{file_sha256(good)[:12]}/good.csv"
    ]


def test_a_crash_between_the_two_outputs_publishes_neither(tmp_path, monkeypatch):
    """The clean output is written to staging, then writing the quarantine fails: neither output is
    published, no staging folder is left, the previous run's files are byte-identical."""
    import duckdb

    from ecommerce_platform.resources.warehouse import DuckDBWarehouse

    warehouse, lake_dir, before = _cleaned_good_csv(tmp_path)
    real_copy = DuckDBWarehouse._copy
    calls = []

    def copy_then_crash(self, con, select, staging, partition_by, part_rows=None):
        calls.append(staging)
        if len(calls) == 2:
            assert [p for p in (lake_dir / "clean" / "_staging").rglob("*.parquet")], "clean staged"
            raise duckdb.IOException("disk full (injected by the test)")
        return real_copy(self, con, select, staging, partition_by, part_rows)

    monkeypatch.setattr(DuckDBWarehouse, "_copy", copy_then_crash)
    with pytest.raises(WarehouseError, match="disk full"):
        run_clean(warehouse)
    assert len(calls) == 2
    _assert_nothing_published(lake_dir, before)
