"""Source files: find the one to use, recognise its format, and map its columns to the canonical schema.

Accepted: Parquet, CSV (RFC 4180; UTF-8, UTF-16, Windows-1252 or Latin-1; ISO, day-first
``dd/mm/yyyy hh:mm`` or month-first dates, the order detected from the data), and Excel ``.xlsx`` (the
seed's ``Online Retail.xlsx``), with the column names of "Online Retail" (InvoiceNo, UnitPrice,
CustomerID) or "Online Retail II" (Invoice, Price, Customer ID). Anything else gets a ``SourceError``
that names the file and the problem. ``read_source`` reads a whole file into its canonical Parquet copy
(``ingestion/normalize.py``), counting its records; engines only ever read that copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ecommerce_platform.schema import SOURCE_COLUMNS

log = logging.getLogger(__name__)

FORMATS = ("parquet", "csv", "xlsx")

# normalised header -> canonical column
COLUMN_ALIASES: dict[str, str] = {
    "invoiceno": "invoice_no", "invoice": "invoice_no", "invoicenumber": "invoice_no",
    "stockcode": "stock_code", "stock": "stock_code", "productcode": "stock_code",
    "description": "description", "productdescription": "description",
    "quantity": "quantity", "qty": "quantity",
    "invoicedate": "invoice_date", "invoicedatetime": "invoice_date", "date": "invoice_date",
    "unitprice": "unit_price", "price": "unit_price",
    "customerid": "customer_id", "customer": "customer_id",
    "country": "country",
}
REQUIRED = ("invoice_no", "stock_code", "quantity", "invoice_date", "unit_price")


class SourceError(ValueError):
    """A source file that cannot be read as transactions; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass
class SourceSpec:
    """What the platform learned about a source file: enough to read it again with any engine."""

    path: str
    format: str
    encoding: str = "utf-8"
    delimiter: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # canonical -> column name in the file
    header: list[str] = field(default_factory=list)  # every column of the file, in file order
    column_types: dict[str, str] = field(default_factory=dict)  # file column -> Glue type (Parquet)
    slash_date_order: str = "dmy"  # for 'a/b/yyyy' dates: dmy (day-first) or mdy
    rows: int = 0
    sha256: str = ""
    size_bytes: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "SourceSpec":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def file_sha256(path: str | Path, chunk: int = 4 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def normalise_header(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def map_columns(path: str | Path, names: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for name in names:
        canonical = COLUMN_ALIASES.get(normalise_header(name))
        if canonical and canonical not in mapping:
            mapping[canonical] = name
    missing = [c for c in REQUIRED if c not in mapping]
    if missing:
        raise SourceError(
            path,
            f"missing required column(s) {', '.join(missing)}; found columns: "
            f"{', '.join(map(str, names)) or '(none)'}",
        )
    return mapping


def sniff_format(path: str | Path) -> str:
    from ecommerce_platform.ingestion.normalize import looks_like_text

    path = Path(path)
    if not path.exists():
        raise SourceError(path, "file does not exist")
    if path.is_dir():
        raise SourceError(path, "is a folder, not a file")
    size = path.stat().st_size
    if size == 0:
        raise SourceError(path, "file is empty (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(8192)
        fh.seek(max(0, size - 4))
        tail = fh.read(4)
    if head[:4] == b"PAR1":
        if size < 12 or tail != b"PAR1":
            raise SourceError(path, "truncated Parquet file (no footer: the file was cut short)")
        return "parquet"
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile as exc:
            raise SourceError(path, f"damaged or truncated .xlsx/zip file ({exc})") from None
        if any(n.startswith("xl/") for n in names):
            return "xlsx"
        raise SourceError(path, "a zip archive that is not an Excel workbook; unzip it first")
    if head[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise SourceError(path, "legacy Excel .xls is not supported; save it as .xlsx or CSV")
    if not looks_like_text(head):
        raise SourceError(path, "binary content that is not Parquet, CSV or .xlsx")
    return "csv"


def inspect_source(path: str | Path) -> SourceSpec:
    """Recognise the file and map its columns (the header only; cheap). Raises SourceError."""
    path = Path(path)
    fmt = sniff_format(path)
    spec = SourceSpec(path=str(path), format=fmt, size_bytes=path.stat().st_size)
    if fmt == "parquet":
        try:
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(path)
            names = meta.schema_arrow.names
            spec.column_types = {f.name: _glue_type(f.type) for f in meta.schema_arrow}
            spec.rows = meta.metadata.num_rows
        except Exception as exc:  # noqa: BLE001 - any reader error is a bad file
            raise SourceError(path, f"unreadable Parquet file ({exc})") from None
        if spec.rows == 0:
            raise SourceError(path, "has a header but no data rows")
    elif fmt == "csv":
        from ecommerce_platform.ingestion.normalize import read_csv_header

        names = read_csv_header(path, spec)
    else:  # xlsx: read the header row only
        names = _xlsx_header(path)
    spec.columns = map_columns(path, names)
    spec.header = [str(n) for n in names]
    return spec


def read_source(path: str | Path, out_dir: str | Path, settings=None, ingested_at=None,  # noqa: ANN001
                source_file: str | None = None):
    """Read the whole file into its canonical Parquet copy in ``out_dir`` (normalize.py, then
    ``finalize_copy``: invoice times read, lines routed to their invoice month). Returns
    (spec, Normalized, months): ``spec.rows`` is the number of records the reader counted, ``months`` the
    lines of each invoice month (their sum is ``spec.rows``). ``source_file``: where the copy says its
    lines come from (the landed object's URI; the path by default)."""
    import datetime as dt
    import tempfile

    from ecommerce_platform.config import load_settings
    from ecommerce_platform.ingestion.normalize import normalize

    settings = settings or load_settings()
    ingested_at = ingested_at or dt.datetime.now(dt.timezone.utc)
    path = Path(path)
    source_file = source_file or str(path)
    spec = inspect_source(path)
    with tempfile.TemporaryDirectory(dir=str(out_dir) if Path(out_dir).exists() else None) as stage:
        stats = normalize(path, spec, stage)
        spec.rows = stats.records
        spec.slash_date_order = date_order_of(stats.files)
        files, months = finalize_copy(stats.files, out_dir, spec.slash_date_order,
                                      settings.latest_valid_ts(ingested_at), settings, source_file=source_file)
    stats.files = files
    spec.column_types = copy_column_types(files[0])
    spec.sha256 = file_sha256(path)
    if sum(months.values()) != spec.rows:
        raise SourceError(path, f"the reader counted {spec.rows:,} records but its copy holds "
                                f"{sum(months.values()):,}")
    return spec, stats, months


def date_order_of(files: list[str]) -> str:
    """'dmy' or 'mdy' for the 'a/b/yyyy' dates of a reader's stage files (text dates only)."""
    import duckdb

    with duckdb.connect() as con:
        typ = con.execute(
            f"SELECT typeof(invoice_date) FROM read_parquet({sql_list(files)}) LIMIT 1").fetchone()
        if not typ or typ[0] != "VARCHAR":
            return "dmy"
        return _date_order(con, f"SELECT invoice_date FROM read_parquet({sql_list(files)})")


def finalize_copy(stage_files: list[str], out_dir: str | Path, date_order: str, latest_valid_ts, settings,  # noqa: ANN001
                  source_file: str | None = None, route: str = "batch") -> tuple[list[str], dict[str, int]]:
    """Write the canonical copy (``ingestion/sql/canonical_copy.sql``) of the reader's stage files into
    ``out_dir``, one file (or more) per invoice month named by ``copy_file_name``; returns (files, lines
    per invoice month). A transform of some months then reads only their files, whatever the engine
    does with filters. ``source_file`` None: the stage files carry a ``source_file`` column (a stream
    day's objects)."""
    import duckdb

    from ecommerce_platform.resources.sql_dialect import Sql, read_sql, render

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_month = out / "by_month"
    source = f"read_parquet({sql_list(stage_files)})"
    with duckdb.connect() as con:
        con.execute("SET preserve_insertion_order=true")
        sql = render(read_sql("ecommerce_platform.ingestion", "canonical_copy.sql"),
                     source=Sql(source), date_order=date_order, earliest_ts=settings.earliest_ts(),
                     latest_valid_ts=latest_valid_ts, route=route,
                     source_file=Sql("source_file") if source_file is None else source_file,
                     **_reading_expressions(con, source))
        con.execute(f"COPY ({sql}) TO {_sql_str(str(by_month))} "
                    "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000, PARTITION_BY (partition_month), "
                    "WRITE_PARTITION_COLUMNS true, FILENAME_PATTERN 'part_{i}')")
        files = []
        for folder in sorted(by_month.iterdir()):
            month = folder.name.split("=", 1)[1]
            for i, written in enumerate(sorted(folder.glob("*.parquet"), key=lambda f: int(f.stem.split("_")[-1]))):
                files.append(str(written.rename(out / copy_file_name(month, i))))
        months = dict(con.execute(
            f"SELECT partition_month, count(*) FROM read_parquet({sql_list(files)}) GROUP BY 1 ORDER BY 1").fetchall()
        ) if files else {}
    return files, {str(k): int(v) for k, v in months.items()}


def copy_file_name(month: str, i: int = 0) -> str:
    """The name of a canonical copy's file of one invoice month ('YYYY-MM' or 'undated')."""
    return f"part-{month}-{i:05d}.parquet"


_COPY_FILE = re.compile(r"part-(\d{4}-\d{2}|undated)-\d{5}\.parquet$")


def copy_file_month(key: str) -> str | None:
    """The invoice month a canonical copy's file holds, None for a file not split by month."""
    m = _COPY_FILE.search(key)
    return m.group(1) if m else None


def copy_files_of_month(keys: list[str], month: str) -> list[str]:
    """The files of a canonical copy (``keys``) that hold lines of ``month``: the ones named for it, or
    all of them for a copy whose files are not all split by month (written before they were, or by a
    route that does not split): reading more files is slower, never wrong."""
    months = [copy_file_month(k) for k in keys]
    if None in months:
        return list(keys)
    return [k for k, m in zip(keys, months) if m == month]


_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
            "UBIGINT", "FLOAT", "DOUBLE", "REAL")


def _reading_expressions(con, source: str) -> dict:  # noqa: ANN001
    """How the copy reads the numbers and the date of this stage: a cast where the source column is
    already a number or a time (no text round trip), a parse where it is text."""
    from ecommerce_platform.resources.sql_dialect import Sql

    types = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}

    def number(col: str) -> Sql:
        typ = types.get(col, "VARCHAR").upper()
        if typ in _NUMERIC or typ.startswith("DECIMAL"):
            return Sql(f"CAST({col} AS DOUBLE)")
        return Sql(f"TRY_CAST(TRIM(CAST({col} AS VARCHAR)) AS DOUBLE)")

    date_type = types.get("invoice_date", "VARCHAR").upper()
    if date_type.startswith("TIMESTAMP") or date_type == "DATE":
        text = Sql("strftime(CAST(invoice_date AS TIMESTAMP), '%Y-%m-%d %H:%M:%S')")
    else:
        text = Sql("TRIM(CAST(invoice_date AS VARCHAR))")
    return {"quantity_num": number("quantity"), "price_num": number("unit_price"), "invoice_text": text}


def _glue_type(arrow_type) -> str:  # noqa: ANN001
    import pyarrow.types as t

    if t.is_integer(arrow_type):
        return "bigint"
    if t.is_floating(arrow_type):
        return "double"
    if t.is_boolean(arrow_type):
        return "boolean"
    if t.is_timestamp(arrow_type):
        return "timestamp"
    if t.is_date(arrow_type):
        return "date"
    if t.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    return "string"


# Glue types of the canonical copy's own columns (the eight source columns keep the source's types).
COPY_TYPES = {"source_file": "string", "route": "string", "source_row": "bigint", "source_line": "bigint",
              **{c: "string" for c in SOURCE_COLUMNS}, "malformed": "string", "malformed_detail": "string",
              "quantity_num": "double", "price_num": "double", "invoice_ts": "timestamp",
              "latest_valid_ts": "timestamp", "partition_month": "string"}
# The canonical copy's columns, in order.
COPY_COLUMNS = tuple(COPY_TYPES)


def copy_column_types(path: str) -> dict[str, str]:
    """Glue types of the eight source columns in a canonical copy."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    return {c: _glue_type(schema.field(c).type) for c in SOURCE_COLUMNS}


def _sql_str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values: list[str]) -> str:
    return "[" + ", ".join(_sql_str(v) for v in values) + "]"


def _xlsx_header(path: Path) -> list[str]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001
        raise SourceError(path, f"unreadable .xlsx workbook ({exc})") from None
    try:
        ws = wb.worksheets[0]
        for row in ws.iter_rows(min_row=1, max_row=1, values_only=True):
            return [str(v) if v is not None else "" for v in row]
        raise SourceError(path, "the first worksheet is empty")
    finally:
        wb.close()


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300]


def _date_order(con, select_sql: str) -> str:  # noqa: ANN001
    """Day-first unless some 'a/b/yyyy' date has a > 12 impossible for a month... or b > 12."""
    row = con.execute(
        f"""
        SELECT max(TRY_CAST(split_part(d, '/', 1) AS INTEGER)), max(TRY_CAST(split_part(d, '/', 2) AS INTEGER))
        FROM (SELECT trim(invoice_date) AS d FROM ({select_sql})) WHERE d LIKE '%/%/%'
        """
    ).fetchone()
    first, second = row
    if first is None:
        return "dmy"
    if second is not None and second > 12 and (first or 0) <= 12:
        return "mdy"
    return "dmy"


