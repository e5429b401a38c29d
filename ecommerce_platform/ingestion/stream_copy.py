"""The canonical copy of a stream day: every record landed under ``raw/stream/year=/month=/day=`` (by the
platform's landing locally, by Firehose in aws) read, counted and written in the same shape as a batch's
copy, with its invoice time read and its invoice month.

  raw/normalized/stream/<YYYY-MM-DD>/part-<month>-00000.parquet   the copy, a file per invoice month
                                                                  (rebuilt whole when the day changes)
  raw/normalized/stream/_manifests/<YYYY-MM-DD>.json       objects read, records counted, lines per month

A stream record is one JSON object per line (the landing and the Firehose processor let only such records
through; a line that is not a JSON object is kept as a malformed record, never dropped). Records arrive
with ISO times from the platform's producer; other producers' 'a/b/yyyy' dates are read day-first.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ecommerce_platform.config import Settings
from ecommerce_platform.ingestion.producer import UCI_NAMES
from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.schema import RAW_NORMALIZED_PREFIX, RAW_STREAM_PREFIX, SOURCE_COLUMNS

STREAM_COPY_PREFIX = f"{RAW_NORMALIZED_PREFIX}/stream"
STREAM_MANIFESTS = f"{STREAM_COPY_PREFIX}/_manifests"
STREAM_DATE_ORDER = "dmy"
DATA_SUFFIXES = (".ndjson", ".ndjson.gz", ".json", ".json.gz", ".gz")


@dataclass
class StreamDay:
    day: str
    objects: list[str] = field(default_factory=list)
    records: int = 0
    malformed: int = 0
    months: dict = field(default_factory=dict)
    copy: list[str] = field(default_factory=list)
    built_at: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def day_prefix(day: dt.date) -> str:
    return f"{RAW_STREAM_PREFIX}/year={day.year:04d}/month={day.month:02d}/day={day.day:02d}"


def day_objects(lake: Lake, day: dt.date) -> list[str]:
    return [k for k in lake.list(day_prefix(day))
            if not k.rsplit("/", 1)[-1].startswith((".", "_")) and k.endswith(DATA_SUFFIXES)]


def landed_days(lake: Lake) -> list[dt.date]:
    """Arrival days that hold landed stream objects."""
    days = set()
    for key in lake.list(RAW_STREAM_PREFIX):
        parts = dict(p.split("=", 1) for p in key.split("/") if "=" in p)
        if {"year", "month", "day"} <= set(parts):
            days.add(dt.date(int(parts["year"]), int(parts["month"]), int(parts["day"])))
    return sorted(days)


def _lines(data: bytes, key: str) -> list[bytes]:
    if key.endswith(".gz"):
        data = gzip.decompress(data)
    return [line for line in data.splitlines() if line.strip()]


def build_day_copy(lake: Lake, day: dt.date, settings: Settings) -> StreamDay:
    """Read every object of ``day`` and (re)write the day's copy and manifest."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ecommerce_platform.ingestion.source import finalize_copy

    objects = day_objects(lake, day)
    out = StreamDay(day=day.isoformat(), objects=objects)
    names = [UCI_NAMES[c] for c in SOURCE_COLUMNS]
    schema = pa.schema([("source_file", pa.string()), ("source_row", pa.int64()), ("source_line", pa.int64())]
                       + [(c, pa.string()) for c in SOURCE_COLUMNS]
                       + [("malformed", pa.string()), ("malformed_detail", pa.string())])
    cols: dict[str, list] = {n: [] for n in schema.names}
    for key in objects:
        uri = lake.uri(key)
        for row, line in enumerate(_lines(lake.get_bytes(key), key), start=1):
            out.records += 1
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
                values = [None if obj.get(n) is None else str(obj.get(n)) for n in names]
                bad, detail = None, None
            except ValueError as exc:
                values, bad = [None] * len(names), "malformed_record"
                detail = f"record {row}: {exc}: {line[:500].decode('utf-8', 'replace')}"
                out.malformed += 1
            cols["source_file"].append(uri)
            cols["source_row"].append(row)
            cols["source_line"].append(row)
            for c, v in zip(SOURCE_COLUMNS, values):
                cols[c].append(v)
            cols["malformed"].append(bad)
            cols["malformed_detail"].append(detail)
    end_of_day = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    final_prefix = f"{STREAM_COPY_PREFIX}/{day.isoformat()}"
    manifest_key = f"{STREAM_MANIFESTS}/{day.isoformat()}.json"
    if not objects:
        lake.delete_prefix(final_prefix)
        if lake.exists(manifest_key):
            lake.delete_prefix(manifest_key)
        return out
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "stage.parquet"
        pq.write_table(pa.table(cols, schema=schema), stage)
        files, months = finalize_copy([str(stage)], Path(tmp) / "copy", STREAM_DATE_ORDER,
                                      settings.latest_valid_ts(end_of_day), settings, source_file=None,
                                      route="stream")
        staging = lake.staging_prefix(final_prefix)
        for path in files:
            lake.upload_file(path, f"{staging}/{Path(path).name}")
        lake.publish_prefix(staging, final_prefix)
    if sum(months.values()) != out.records:
        raise RuntimeError(f"stream day {day}: {out.records} records read but the copy holds {sum(months.values())}")
    out.months = months
    out.copy = [f"{final_prefix}/{Path(path).name}" for path in files]
    out.built_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    lake.put_text(manifest_key, out.to_json())
    return out


def stream_days(lake: Lake) -> list[StreamDay]:
    """The manifests of every stream day with a copy."""
    out = []
    for key in lake.list(STREAM_MANIFESTS):
        if key.endswith(".json"):
            out.append(StreamDay(**json.loads(lake.get_text(key))))
    return sorted(out, key=lambda d: d.day)


def read_day(lake: Lake, day: dt.date) -> StreamDay | None:
    key = f"{STREAM_MANIFESTS}/{day.isoformat()}.json"
    return StreamDay(**json.loads(lake.get_text(key))) if lake.exists(key) else None


def stale_days(lake: Lake) -> list[dt.date]:
    """Arrival days whose landed objects changed since their copy was built (or that have none yet)."""
    out = []
    for day in landed_days(lake):
        built = read_day(lake, day)
        if built is None or built.objects != day_objects(lake, day):
            out.append(day)
    return out
