"""Source files: find the one to use, recognise its format, and map its columns to the canonical schema.

Accepted: Parquet, CSV (UTF-8 or Latin-1; ISO, day-first ``dd/mm/yyyy hh:mm`` or month-first dates,
the order detected from the data), and Excel ``.xlsx`` (the seed's ``Online Retail.xlsx``), with the
column names of "Online Retail" (InvoiceNo, UnitPrice, CustomerID) or "Online Retail II" (Invoice,
Price, Customer ID). Anything else gets a ``SourceError`` that names the file and the problem.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ecommerce_platform.lake.schema import SOURCE_COLUMNS

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
    if b"\x00" in head or _looks_binary(head):
        raise SourceError(path, "binary content that is not Parquet, CSV or .xlsx")
    return "csv"


def _looks_binary(head: bytes) -> bool:
    if not head:
        return False
    control = sum(1 for b in head if b < 9 or 13 < b < 32)
    return control / len(head) > 0.05


def detect_encoding(path: str | Path) -> str:
    """UTF-8 if the whole file decodes as UTF-8, else Latin-1 (which decodes any byte)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as fh:
        try:
            while block := fh.read(4 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
            return "utf-8"
        except UnicodeDecodeError:
            return "latin-1"


def inspect_source(path: str | Path, con=None) -> SourceSpec:  # noqa: ANN001
    """Recognise the file, map its columns, count its rows, detect the date order. Raises SourceError."""
    import duckdb

    path = Path(path)
    fmt = sniff_format(path)
    own = con is None
    con = con or duckdb.connect()
    try:
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
        elif fmt == "csv":
            spec.encoding = detect_encoding(path)
            names = _csv_header(path, spec, con)
        else:  # xlsx: read the header row only
            names = _xlsx_header(path)
        spec.columns = map_columns(path, names)
        spec.header = [str(n) for n in names]
        if fmt == "csv":
            spec.rows = _count_rows(con, source_select_sql(str(path), spec))
        elif fmt == "xlsx":
            spec.rows = -1  # known after conversion
        if spec.rows == 0:
            raise SourceError(path, "has a header but no data rows")
        if fmt != "xlsx":
            spec.slash_date_order = _date_order(con, source_select_sql(str(path), spec))
        spec.sha256 = file_sha256(path)
        return spec
    finally:
        if own:
            con.close()


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
    return "string"


def _csv_options(spec: SourceSpec) -> str:
    opts = ["header=true", "all_varchar=true", "strict_mode=false", "null_padding=true"]
    if spec.encoding != "utf-8":
        opts.append(f"encoding='{spec.encoding}'")
    if spec.delimiter:
        opts.append("delim=" + _sql_str(spec.delimiter))
    return ", ".join(opts)


def _sql_str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _csv_header(path: Path, spec: SourceSpec, con) -> list[str]:  # noqa: ANN001
    import duckdb

    try:
        sniff = con.execute(
            f"SELECT Delimiter, Columns FROM sniff_csv({_sql_str(str(path))}, "
            f"{_csv_options(spec)}, sample_size=20000)"
        ).fetchone()
    except duckdb.Error as exc:
        raise SourceError(path, f"not a readable CSV file ({_short(exc)})") from None
    spec.delimiter = sniff[0]
    names = [c["name"] for c in sniff[1]]
    if len(names) < 2:
        raise SourceError(
            path, f"not a transactions CSV: found {len(names)} column(s) ({', '.join(names)})"
        )
    return names


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


def source_select_sql(uri: str, spec: SourceSpec, route: str = "batch") -> str:
    """A DuckDB SELECT giving the canonical text columns + source_file + source_row for one file."""
    cols = []
    for canonical in SOURCE_COLUMNS:
        original = spec.columns.get(canonical)
        if original is None:
            cols.append(f"CAST(NULL AS VARCHAR) AS {canonical}")
        else:
            quoted = '"' + original.replace('"', '""') + '"'
            cols.append(f"CAST({quoted} AS VARCHAR) AS {canonical}")
    if spec.format in ("parquet", "xlsx"):  # xlsx is read from its Parquet conversion
        scan = f"read_parquet({_sql_str(uri)}, file_row_number=true)"
        row = "file_row_number + 1"
    else:
        scan = f"read_csv({_sql_str(uri)}, {_csv_options(spec)})"
        row = "row_number() OVER ()"
    return (
        f"SELECT {', '.join(cols)}, {_sql_str(uri)} AS source_file, "
        f"CAST({row} AS BIGINT) AS source_row, '{route}' AS route, "
        f"'{spec.slash_date_order}' AS date_order FROM {scan}"
    )


def _count_rows(con, select_sql: str) -> int:  # noqa: ANN001
    import duckdb

    try:
        return con.execute(f"SELECT count(*) FROM ({select_sql})").fetchone()[0]
    except duckdb.Error as exc:
        raise SourceError(select_sql.split("'")[1], f"cannot be read ({_short(exc)})") from None


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


def convert_xlsx_to_parquet(path: str | Path, spec: SourceSpec, out: str | Path) -> int:
    """Stream the workbook's first sheet into a text-typed Parquet file; returns the row count."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header = [str(v) if v is not None else "" for v in next(rows)]
        wanted = list(dict.fromkeys(spec.columns.values()))
        idx = [header.index(name) for name in wanted]
        schema = pa.schema([(name, pa.string()) for name in wanted])

        def text(v):  # noqa: ANN001, ANN202
            if v is None:
                return None
            if isinstance(v, dt.datetime):
                return v.strftime("%Y-%m-%d %H:%M:%S")
            if isinstance(v, float) and v.is_integer():
                return str(int(v))
            return str(v)

        n = 0
        tmp = Path(str(out) + ".tmp")
        with pq.ParquetWriter(tmp, schema) as writer:
            batch: list[list] = [[] for _ in wanted]
            for r in rows:
                if r is None or all(v is None for v in r):
                    continue
                for j, i in enumerate(idx):
                    batch[j].append(text(r[i]) if i < len(r) else None)
                n += 1
                if len(batch[0]) >= 100_000:
                    writer.write_table(pa.table(batch, schema=schema))
                    batch = [[] for _ in wanted]
            if batch[0]:
                writer.write_table(pa.table(batch, schema=schema))
        Path(tmp).replace(out)
    finally:
        wb.close()
    if n == 0:
        raise SourceError(path, "has a header but no data rows")
    return n
