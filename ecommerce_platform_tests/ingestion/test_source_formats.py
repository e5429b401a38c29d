"""The source loader on every accepted format (xlsx, CSV UTF-8/Latin-1 with ISO, day-first and
month-first dates, Parquet, "Online Retail II" names), each landed and cleaned end to end; and a slice
of the real file converted to every format cleans to exactly what its Parquet gives."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ecommerce_platform.ingestion.raw import ResolvedSource, land_source
from ecommerce_platform.ingestion.source import inspect_source, read_source
from ecommerce_platform.lake.clean import run_clean
from ecommerce_platform.resources.lake import LocalLake
from ecommerce_platform.resources.warehouse import DuckDBWarehouse
from ecommerce_platform.schema import CLEAN_PREFIX, QUARANTINE_PREFIX

CANONICAL = ["invoice_no", "stock_code", "description", "quantity", "invoice_ts", "unit_price",
             "customer_id", "country"]

# Small hand-made lines with accents (Latin-1 encodable) and a guest checkout.
ROWS = [
    # InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country
    ("536365", "85123A", "CRÈME BRÛLÉE SET", 6, dt.datetime(2010, 12, 1, 8, 26), 2.55, 17850.0, "United Kingdom"),
    ("536366", "22633", "PÂTÉ DISH ÉTOILE", 2, dt.datetime(2011, 1, 13, 9, 5), 1.85, None, "France"),
    ("C536379", "D", "Discount", -1, dt.datetime(2011, 2, 25, 17, 40), 27.5, 14527.0, "España"),
    ("536370", "POST", "POSTAGE", 3, dt.datetime(2011, 11, 30, 23, 59), 18.0, 12583.0, "Österreich"),
]
EXPECTED = pd.DataFrame(
    [
        (r[0], r[1], r[2], r[3], pd.Timestamp(r[4]), r[5], None if r[6] is None else str(int(r[6])), r[7])
        for r in ROWS
    ],
    columns=CANONICAL,
)
CLASSIC = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
RETAIL_II = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"]


def clean_file(path: Path, work: Path, **warehouse_options):
    """Land one file in a local lake (fresh, or the one already in ``work``) and clean every month it
    holds; returns (result, lake, warehouse)."""
    lake = LocalLake(path=str(work / "lake"))
    warehouse = DuckDBWarehouse(lake=lake, path=str(work / "warehouse.duckdb"), memory_limit="1GB",
                                **warehouse_options)
    land_source(lake, ResolvedSource(Path(path), "env", "test"), ingest_date=dt.date(2024, 5, 6))
    result = run_clean(warehouse)
    return result, lake, warehouse


def clean_frame(lake: LocalLake, columns=CANONICAL) -> pd.DataFrame:
    glob = Path(lake.uri(CLEAN_PREFIX)) / "**" / "*.parquet"
    con = duckdb.connect()
    df = con.execute(
        f"SELECT {', '.join(columns)} FROM read_parquet('{glob}', hive_partitioning=true)"
    ).df()
    con.close()
    return df.sort_values(columns).reset_index(drop=True)


def quarantine_frame(lake: LocalLake) -> pd.DataFrame:
    files = list(Path(lake.uri(QUARANTINE_PREFIX)).rglob("*.parquet"))
    if not files:
        return pd.DataFrame(columns=["source_row", "source_line", "reason", "detail", "source_file"])
    con = duckdb.connect()
    df = con.execute(f"SELECT * FROM read_parquet({[str(f) for f in files]!r}, hive_partitioning=true, "
                     "hive_types={'partition_month': VARCHAR})").df()
    con.close()
    return df.sort_values("source_row").reset_index(drop=True)


def _frame(names=CLASSIC, date_fmt: str | None = None) -> pd.DataFrame:
    df = pd.DataFrame(ROWS, columns=names)
    if date_fmt:
        df[names[4]] = df[names[4]].dt.strftime(date_fmt)
    return df


def _write_xlsx(path: Path, df: pd.DataFrame) -> Path:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Online Retail")
    ws.append(list(df.columns))
    for row in df.itertuples(index=False):
        ws.append([None if (isinstance(v, float) and pd.isna(v)) else
                   (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v) for v in row])
    wb.save(path)
    return path


def _assert_expected(result, lake):
    assert result.rows_in == len(ROWS)
    assert (result.rows_clean, result.rows_quarantined, result.rows_duplicate) == (len(ROWS), 0, 0)
    got = clean_frame(lake)
    want = EXPECTED.sort_values(CANONICAL).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


@pytest.mark.parametrize(
    "name, writer",
    [
        ("xlsx", lambda p: _write_xlsx(p.with_suffix(".xlsx"), _frame())),
        ("csv_utf8_iso", lambda p: _to_csv(_frame(date_fmt="%Y-%m-%d %H:%M:%S"), p, "utf-8")),
        ("csv_latin1_dayfirst", lambda p: _to_csv(_frame(date_fmt="%d/%m/%Y %H:%M"), p, "latin-1")),
        ("csv_utf8_monthfirst", lambda p: _to_csv(_frame(date_fmt="%m/%d/%Y %H:%M"), p, "utf-8")),
        ("csv_semicolon", lambda p: _to_csv(_frame(date_fmt="%Y-%m-%d %H:%M"), p, "utf-8", sep=";")),
        ("parquet", lambda p: _to_parquet(_frame(date_fmt="%Y-%m-%d %H:%M:%S"), p)),
        ("parquet_timestamps", lambda p: _to_parquet(_frame(), p)),
        ("retail_ii_csv", lambda p: _to_csv(_frame(RETAIL_II, "%d/%m/%Y %H:%M"), p, "utf-8")),
        ("retail_ii_xlsx", lambda p: _write_xlsx(p.with_suffix(".xlsx"), _frame(RETAIL_II))),
    ],
)
def test_every_accepted_format_cleans_to_the_canonical_rows(tmp_path, name, writer):
    path = writer(tmp_path / f"{name}.csv")
    spec = inspect_source(path)
    assert set(spec.columns) == set(CANONICAL) - {"invoice_ts"} | {"invoice_date"}
    result, lake, _ = clean_file(path, tmp_path / "work")
    _assert_expected(result, lake)


def _to_csv(df: pd.DataFrame, path: Path, encoding: str, sep: str = ",") -> Path:
    path = path.with_suffix(".csv")
    df.to_csv(path, index=False, encoding=encoding, sep=sep)
    return path


def _to_parquet(df: pd.DataFrame, path: Path) -> Path:
    path = path.with_suffix(".parquet")
    df.to_parquet(path, index=False)
    return path


def test_encoding_and_date_order_are_detected(tmp_path):
    latin = _to_csv(_frame(date_fmt="%d/%m/%Y %H:%M"), tmp_path / "latin", "latin-1")
    assert b"CR\xc8ME" in latin.read_bytes()  # really Latin-1 on disk (which Windows-1252 reads alike)
    spec, _, _ = read_source(latin, tmp_path / "copy1")
    assert (spec.encoding, spec.slash_date_order, spec.rows) == ("cp1252", "dmy", len(ROWS))
    mdy, _, _ = read_source(_to_csv(_frame(date_fmt="%m/%d/%Y %H:%M"), tmp_path / "mdy", "utf-8"), tmp_path / "copy2")
    assert (mdy.encoding, mdy.slash_date_order) == ("utf-8", "mdy")
    ii = inspect_source(_to_csv(_frame(RETAIL_II), tmp_path / "ii", "utf-8"))
    assert ii.columns["invoice_no"] == "Invoice" and ii.columns["customer_id"] == "Customer ID"
    assert ii.header == RETAIL_II


# --- a slice of the real file, converted to every format, cleans to what its Parquet gives --------

SLICE_ROWS = 4000


@pytest.fixture(scope="module")
def real_slice(tmp_path_factory, real_source) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("real_slice")
    df = pd.read_parquet(real_source).iloc[:SLICE_ROWS].copy()
    files = {"parquet": base / "slice.parquet"}
    df.to_parquet(files["parquet"], index=False)
    files["csv_utf8"] = base / "slice_utf8.csv"
    df.to_csv(files["csv_utf8"], index=False, encoding="utf-8")
    dayfirst = df.copy()
    dayfirst["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"]).dt.strftime("%d/%m/%Y %H:%M")
    files["csv_latin1_dayfirst"] = base / "slice_latin1.csv"
    dayfirst.to_csv(files["csv_latin1_dayfirst"], index=False, encoding="latin-1")
    files["retail_ii_csv"] = base / "slice_ii.csv"
    df.rename(columns={"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}).to_csv(
        files["retail_ii_csv"], index=False
    )
    xl = df.copy()
    xl["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"])
    files["xlsx"] = _write_xlsx(base / "slice.xlsx", xl)
    return files


@pytest.fixture(scope="module")
def slice_reference(real_slice, tmp_path_factory):
    result, lake, _ = clean_file(real_slice["parquet"], tmp_path_factory.mktemp("ref"))
    assert result.rows_in == SLICE_ROWS
    assert result.rows_in == result.rows_clean + result.rows_quarantined + result.rows_duplicate
    assert result.rows_duplicate > 0  # the slice has real duplicates: dedup is exercised
    return result, clean_frame(lake, CANONICAL + ["source_lines", "is_sale", "year", "month"])


@pytest.mark.parametrize("fmt", ["csv_utf8", "csv_latin1_dayfirst", "retail_ii_csv", "xlsx"])
def test_real_slice_in_every_format_cleans_like_its_parquet(real_slice, slice_reference, fmt, tmp_path):
    ref_result, ref = slice_reference
    result, lake, _ = clean_file(real_slice[fmt], tmp_path)
    assert (result.rows_in, result.rows_clean, result.rows_quarantined, result.rows_duplicate) == (
        ref_result.rows_in, ref_result.rows_clean, ref_result.rows_quarantined, ref_result.rows_duplicate
    )
    got = clean_frame(lake, CANONICAL + ["source_lines", "is_sale", "year", "month"])
    pd.testing.assert_frame_equal(got, ref, check_dtype=False)


def test_scratch_files_are_not_left_behind(real_slice, tmp_path):
    with tempfile.TemporaryDirectory(dir=tmp_path) as work:
        clean_file(real_slice["xlsx"], Path(work))
        leftovers = [p for p in Path(work, "lake").rglob("*") if "_staging" in p.parts or p.name.endswith(".tmp")]
        assert leftovers == []
