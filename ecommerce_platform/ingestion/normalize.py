"""Every landed batch gets a canonical Parquet copy: what the engines read, and where its records are
counted, independently of the SQL that types them.

Why a copy instead of letting the engine parse the source: an engine's CSV sniffer guesses the quote,
escape and delimiter characters, and a wrong guess loses rows silently (a description starting with an
apostrophe taken for a quote swallows the lines after it); one long field or an unusual encoding makes
the whole file unreadable; a user's file name ends up inside SQL. Here each format is read by a strict,
streaming reader that accounts for every record:

- CSV: RFC 4180 (quote and escape ``"``), the delimiter chosen among ``,`` ``;`` tab ``|`` from the
  header, a header required; UTF-8 (with or without BOM), UTF-16 LE/BE (with BOM, or recognised by its
  zero bytes), else Windows-1252, else Latin-1; CRLF, LF and CR line ends, mixed; fields of any length
  (a field over ``MAX_FIELD_CHARS`` quarantines its record, the rest of the file loads); NUL bytes
  removed and counted. A record the reader cannot read (bad quoting, a wrong number of fields) is kept
  as a row marked ``malformed`` with its line number and text, which the clean transform quarantines:
  nothing vanishes.
- Excel ``.xlsx``: the first worksheet, streamed; every value as text.
- Parquet: the mapped columns with their own types, re-chunked in row groups of ``ROW_GROUP_ROWS`` so
  that an engine reads a batch on every core.

Layout: ``raw/normalized/batch/<sha12>/part-<month>-00000.parquet``, a file per invoice month (see
``source.finalize_copy``); columns ``source_row`` (1-based number of the
record among the file's data records), ``source_line`` (CSV: the physical line where the record
starts; xlsx: the sheet row), the eight canonical source columns, ``malformed`` (reason, or null) and
``malformed_detail`` (what was wrong and the record's text, cut short). Blank lines are not records;
they are counted apart.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ecommerce_platform.ingestion.source import SourceError, SourceSpec
from ecommerce_platform.schema import SOURCE_COLUMNS

ROW_GROUP_ROWS = 100_000
MAX_FIELD_CHARS = 65_536  # longer fields quarantine their record (no description is this long)
READER_FIELD_LIMIT = 64 << 20  # the reader's own cap: one field is never held beyond this
DETAIL_CHARS = 2_000  # of a malformed record's text kept in the quarantine
DELIMITERS = (",", ";", "\t", "|")
MALFORMED = "malformed_record"
TOO_LONG = "field_too_long"
TEXT_SNIFF_BYTES = 1 << 16


@dataclass
class Normalized:
    """What the reader saw: the record count is the batch's ``rows_in``."""

    records: int = 0
    blank_lines: int = 0
    malformed: int = 0
    too_long: int = 0
    nul_chars_removed: int = 0
    files: list[str] = field(default_factory=list)  # local paths written, in order

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "files"}


# ------------------------------------------------------------------------------------ encodings
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)


def bom_encoding(head: bytes) -> str | None:
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    return None


def utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 text without a BOM shows zero bytes at every other position (ASCII letters)."""
    sample = head[: len(head) - len(head) % 2][:4096]
    if len(sample) < 8:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(4 << 20):
                decoder.decode(block)
        decoder.decode(b"", final=True)
        return True
    except UnicodeDecodeError:
        return False


def detect_encoding(path: str | Path) -> str:
    """A BOM names it; else UTF-16 by its zero bytes; else UTF-8 if the whole file decodes; else
    Windows-1252 (Excel's "CSV" on Windows: '£' is 0xA3, '€' 0x80); else Latin-1 (decodes any byte)."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(TEXT_SNIFF_BYTES)
    found = bom_encoding(head) or utf16_without_bom(head)
    if found:
        return found
    for encoding in ("utf-8", "cp1252"):
        if _decodes(path, encoding):
            return encoding
    return "latin-1"


def looks_like_text(head: bytes) -> bool:
    """Text (in any of the encodings above) rather than binary content. A few NUL bytes in a CSV are
    tolerated (they are removed and counted); a high share of control bytes is not text."""
    if bom_encoding(head) or utf16_without_bom(head):
        return True
    if not head:
        return True
    control = sum(1 for b in head if b < 9 or 13 < b < 32)
    return control / len(head) <= 0.05


# ------------------------------------------------------------------------------------ CSV
class _Lines:
    """Physical lines of the decoded text for the csv reader, remembering where the current record
    started and its text (for the quarantine), and removing NUL characters."""

    def __init__(self, text: io.TextIOBase):
        self._it = iter(text)
        self.lineno = 0
        self.buffer: list[str] = []
        self.buffered_chars = 0
        self.nul_removed = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self._it)
        self.lineno += 1
        if "\x00" in line:
            self.nul_removed += line.count("\x00")
            line = line.replace("\x00", "")
        if self.buffered_chars < DETAIL_CHARS:
            self.buffer.append(line)
            self.buffered_chars += len(line)
        return line

    def start_record(self) -> int:
        self.buffer.clear()
        self.buffered_chars = 0
        return self.lineno + 1

    def record_text(self) -> str:
        return "".join(self.buffer)[:DETAIL_CHARS]


def _open_text(path: Path, encoding: str) -> io.TextIOWrapper:
    # newline="" keeps line ends inside quoted fields as they are, and lets csv see \r\n, \n and \r
    return open(path, encoding=encoding, newline="")


def split_header(line: str) -> tuple[str, list[str]]:
    """The delimiter (among DELIMITERS) that splits the header line into the most fields, and the fields."""
    best = (",", [line])
    for delim in DELIMITERS:
        try:
            fields = next(csv.reader([line], delimiter=delim, quotechar='"', doublequote=True))
        except (csv.Error, StopIteration):
            continue
        if len(fields) > len(best[1]):
            best = (delim, fields)
    return best


def read_csv_header(path: str | Path, spec: SourceSpec) -> list[str]:
    """Fill the spec's encoding and delimiter from the file; returns the header's column names."""
    path = Path(path)
    spec.encoding = detect_encoding(path)
    with _open_text(path, spec.encoding) as fh:
        first = ""
        for raw in fh:
            if raw.replace("\x00", "").strip():
                first = raw.replace("\x00", "")
                break
    if not first:
        raise SourceError(path, "holds no header line (only blank lines)")
    delim, names = split_header(first.rstrip("\r\n"))
    names = [n.strip().lstrip("\ufeff") for n in names]
    if len(names) < 2:
        raise SourceError(
            path, f"not a transactions CSV: found {len(names)} column(s) ({', '.join(names)}); the delimiter "
            "must be one of , ; tab |")
    spec.delimiter = delim
    return names


def _csv_records(path: Path, spec: SourceSpec, stats: Normalized):
    """Yield (source_row, source_line, values of the 8 canonical columns, malformed, detail)."""
    positions = [spec.header.index(spec.columns[c]) if c in spec.columns else None for c in SOURCE_COLUMNS]
    width = len(spec.header)
    previous_limit = csv.field_size_limit(READER_FIELD_LIMIT)
    try:
        with _open_text(path, spec.encoding) as fh:
            lines = _Lines(fh)
            reader = csv.reader(lines, delimiter=spec.delimiter or ",", quotechar='"', doublequote=True,
                                strict=True)
            header_seen = False
            record = 0
            while True:
                start = lines.start_record()
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    if not header_seen:
                        raise SourceError(path, f"the header line cannot be read ({exc})") from None
                    record += 1
                    message = str(exc)
                    if "unexpected end of data" in message:
                        message = (f"an unterminated quoted field runs from line {start} to the end of the file "
                                   f"(line {lines.lineno})")
                    yield (record, start, [None] * len(SOURCE_COLUMNS), MALFORMED,
                           f"line {start}: {message}: {lines.record_text()}")
                    continue
                if not row or all(not f.strip() for f in row):
                    if header_seen:
                        stats.blank_lines += 1
                    continue
                if not header_seen:
                    header_seen = True  # the header (read by read_csv_header): not a record
                    continue
                record += 1
                if len(row) != width and not (len(row) > width and not any(f.strip() for f in row[width:])):
                    yield (record, start, [row[p] if p is not None and p < len(row) else None for p in positions],
                           MALFORMED, f"line {start}: {len(row)} fields, the header has {width}: "
                           f"{lines.record_text()}")
                    continue
                values = [row[p] if p is not None else None for p in positions]
                long = [(SOURCE_COLUMNS[i], len(v)) for i, v in enumerate(values) if v and len(v) > MAX_FIELD_CHARS]
                if long:
                    name, size = long[0]
                    yield (record, start, [v if not v or len(v) <= MAX_FIELD_CHARS else v[:DETAIL_CHARS] for v in values],
                           TOO_LONG, f"line {start}: {name} has {size:,} characters (at most {MAX_FIELD_CHARS:,})")
                    continue
                yield record, start, values, None, None
            stats.nul_chars_removed += lines.nul_removed
    except UnicodeDecodeError as exc:  # detect_encoding read the whole file: only a changed file gets here
        raise SourceError(path, f"cannot be decoded as {spec.encoding} ({exc})") from None
    finally:
        csv.field_size_limit(previous_limit)


# ------------------------------------------------------------------------------------ writing
def _text_schema():
    import pyarrow as pa

    return pa.schema(
        [("source_row", pa.int64()), ("source_line", pa.int64())]
        + [(c, pa.string()) for c in SOURCE_COLUMNS]
        + [("malformed", pa.string()), ("malformed_detail", pa.string())]
    )


def _write_text_records(records, out_dir: Path, stats: Normalized) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _text_schema()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "part-00000.parquet"
    writer = pq.ParquetWriter(target, schema, compression="zstd")
    try:
        cols: list[list] = [[] for _ in schema.names]

        def flush() -> None:
            if cols[0]:
                writer.write_table(pa.table(cols, schema=schema), row_group_size=ROW_GROUP_ROWS)
                for c in cols:
                    c.clear()

        for row, line, values, malformed, detail in records:
            cols[0].append(row)
            cols[1].append(line)
            for j, v in enumerate(values):
                cols[2 + j].append(v)
            cols[-2].append(malformed)
            cols[-1].append(detail)
            stats.records += 1
            if malformed == TOO_LONG:
                stats.too_long += 1
            elif malformed:
                stats.malformed += 1
            if len(cols[0]) >= ROW_GROUP_ROWS:
                flush()
        flush()
    finally:
        writer.close()
    stats.files.append(str(target))


def _xlsx_records(path: Path, spec: SourceSpec, stats: Normalized):
    import datetime as dt

    from openpyxl import load_workbook

    def text(v):  # noqa: ANN001, ANN202
        if v is None:
            return None
        if isinstance(v, dt.datetime):
            return v.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        rows = wb.worksheets[0].iter_rows(values_only=True)
        header = [str(v) if v is not None else "" for v in next(rows)]
        positions = [header.index(spec.columns[c]) if c in spec.columns else None for c in SOURCE_COLUMNS]
        record = 0
        for sheet_row, r in enumerate(rows, start=2):
            if r is None or all(v is None or (isinstance(v, str) and not v.strip()) for v in r):
                stats.blank_lines += 1
                continue
            record += 1
            values = [text(r[p]) if p is not None and p < len(r) else None for p in positions]
            yield record, sheet_row, values, None, None
    finally:
        wb.close()


def _normalize_parquet(path: Path, spec: SourceSpec, out_dir: Path, stats: Normalized) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    file_schema = pf.schema_arrow
    fields = []
    for canonical in SOURCE_COLUMNS:
        name = spec.columns.get(canonical)
        if name is None:
            fields.append(pa.field(canonical, pa.string()))
            continue
        typ = file_schema.field(name).type
        if pa.types.is_dictionary(typ):
            typ = typ.value_type
        if pa.types.is_large_string(typ):
            typ = pa.string()
        if not (pa.types.is_string(typ) or pa.types.is_integer(typ) or pa.types.is_floating(typ)
                or pa.types.is_boolean(typ) or pa.types.is_timestamp(typ) or pa.types.is_date(typ)
                or pa.types.is_decimal(typ)):
            raise SourceError(path, f"column {name!r} has type {typ}, not a scalar (text, number, date or time)")
        fields.append(pa.field(canonical, typ))
    schema = pa.schema([("source_row", pa.int64()), ("source_line", pa.int64()), *fields,
                        ("malformed", pa.string()), ("malformed_detail", pa.string())])
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "part-00000.parquet"
    wanted = list(dict.fromkeys(spec.columns.values()))
    with pq.ParquetWriter(target, schema, compression="zstd") as writer:
        start = 0
        for batch in pf.iter_batches(batch_size=ROW_GROUP_ROWS, columns=wanted):
            n = batch.num_rows
            arrays = [pa.array(range(start + 1, start + n + 1), pa.int64()), pa.nulls(n, pa.int64())]
            for f in fields:
                name = spec.columns.get(f.name)
                if name is None:
                    arrays.append(pa.nulls(n, f.type))
                else:
                    arrays.append(batch.column(batch.schema.get_field_index(name)).cast(f.type))
            arrays += [pa.nulls(n, pa.string()), pa.nulls(n, pa.string())]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=ROW_GROUP_ROWS)
            start += n
    stats.records = start
    if start != pf.metadata.num_rows:
        raise SourceError(path, f"the Parquet footer says {pf.metadata.num_rows:,} rows but {start:,} were read")
    stats.files.append(str(target))


def normalize(path: str | Path, spec: SourceSpec, out_dir: str | Path) -> Normalized:
    """Write the canonical copy of the source ``path`` (described by ``spec``) into ``out_dir``."""
    path, out_dir = Path(path), Path(out_dir)
    stats = Normalized()
    if spec.format == "csv":
        _write_text_records(_csv_records(path, spec, stats), out_dir, stats)
    elif spec.format == "xlsx":
        _write_text_records(_xlsx_records(path, spec, stats), out_dir, stats)
    elif spec.format == "parquet":
        _normalize_parquet(path, spec, out_dir, stats)
    else:  # pragma: no cover - sniff_format returns one of the three
        raise SourceError(path, f"unknown format {spec.format}")
    if stats.records == 0:
        raise SourceError(path, "has a header but no data rows")
    return stats
