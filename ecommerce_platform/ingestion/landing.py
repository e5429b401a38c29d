"""Firehose-style landing of the stream into the raw zone, exactly once (the local deployment).

For each shard: read from the consumer's checkpoint, split the batch by arrival date (UTC, like
Firehose's ``!{timestamp:...}`` prefix), and write

  raw/stream/year=YYYY/month=MM/day=DD/shard-NNNNNN-<first seq>-<last seq>.ndjson.gz
  raw/stream_errors/processing-failed/year=YYYY/month=MM/day=DD/shard-NNNNNN-<first>-<last>.ndjson.gz

(the second for malformed records, one JSON line each with the reason and the original bytes in
base64, like Firehose's error output). Exactly once, with a small write-ahead intent in the consumer
state: (1) the batch's sequence range is recorded as ``pending`` (durably), (2) the objects are written
(atomically, deterministic bytes), (3) the checkpoint moves past the batch and ``pending`` is cleared
in one atomic write. A crash before (1) redoes nothing; between (1) and (3) the next run re-reads
exactly the pending range and rewrites the same object names (an overwrite, never a duplicate).

Validation is the one of the Firehose processor Lambda (``infra/lambda/firehose_processor``): a record
is one or more newline-delimited JSON objects, each with InvoiceNo, StockCode, Quantity, InvoiceDate
and UnitPrice present and not empty, Quantity integer-like and UnitPrice a finite number (a contract
test holds both landings to the same verdicts). Other value checks (dates, negative prices, ...) are
the clean transform's, which quarantines with a reason.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import math
import operator
import re
import time
from dataclasses import asdict, dataclass, field

from ecommerce_platform.schema import RAW_STREAM_ERROR_PREFIX, RAW_STREAM_PREFIX
from ecommerce_platform.faults import FAULT_ENV, crash_point  # noqa: F401  (crash points for the tests)
from ecommerce_platform.ingestion.producer import REQUIRED_KEYS
from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.stream import Stream, StreamRecord

CONSUMER = "raw_stream_landing"
ERROR_OUTPUT_TYPE = "processing-failed"
OBJECT_SUFFIX = ".ndjson.gz"


@dataclass
class LandingResult:
    records_read: int = 0
    records_landed: int = 0
    records_failed: int = 0
    objects: list[str] = field(default_factory=list)
    error_objects: list[str] = field(default_factory=list)
    redone_batches: int = 0
    checkpoints: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    error_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.records_read / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "records_per_second": round(self.rate, 1)}


def _fault(point: str) -> None:
    crash_point(f"landing:{point}")


_decode = json.JSONDecoder().decode
_required = operator.itemgetter(*REQUIRED_KEYS)


def _blank(value) -> bool:  # noqa: ANN001
    return value.__class__ is str and value.isspace()


_INT_TEXT = re.compile(r"^[+-]?\d+(\.0*)?$")


def _integer_like(value) -> bool:  # noqa: ANN001
    if value.__class__ is bool:
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value) and value.is_integer()
    return isinstance(value, str) and bool(_INT_TEXT.match(value.strip()))


def _finite_number(value) -> bool:  # noqa: ANN001
    if value.__class__ is bool:
        return False
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            return math.isfinite(float(value.strip()))
        except ValueError:
            return False
    return False


def _value_problem(obj: dict) -> str | None:
    """The Firehose processor's value rules (infra/lambda/firehose_processor), so that a record is
    accepted or rejected alike by both deployments' landings."""
    if not _integer_like(obj["Quantity"]):
        return f"Quantity {obj['Quantity']!r} is not an integer"
    if not _finite_number(obj["UnitPrice"]):
        return f"UnitPrice {obj['UnitPrice']!r} is not a number"
    return None


def _missing_keys(obj: dict) -> list[str]:
    return [k for k in REQUIRED_KEYS
            if (v := obj.get(k)) is None or (v.__class__ is str and not v.strip())]


def validate_record(data: bytes) -> tuple[list[bytes], str | None]:
    """(the NDJSON lines to land, None) or ([], reason) - the Firehose processor's rules."""
    line = data.strip()
    if line and b"\n" not in line:  # fast path: one object per record (what our producer sends)
        try:
            obj = _decode(line.decode("utf-8"))
            values = _required(obj)
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            pass  # the slow path below says why
        else:
            if (None not in values and "" not in values and not any(map(_blank, values))
                    and _value_problem(obj) is None):
                return [line + b"\n"], None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [], "payload is not UTF-8"
    lines = [ln.strip() for ln in text.lstrip("\ufeff").split("\n") if ln.strip()]
    if not lines:
        return [], "empty record"
    out = []
    for number, line_text in enumerate(lines, start=1):
        where = f"line {number}: " if len(lines) > 1 else ""
        try:
            obj = json.loads(line_text)
        except json.JSONDecodeError as exc:
            return [], f"{where}invalid JSON: {exc.msg} at position {exc.pos}"
        if not isinstance(obj, dict):
            return [], f"{where}not a JSON object but {type(obj).__name__}"
        missing = _missing_keys(obj)
        if missing:
            return [], f"{where}missing or empty required keys: {', '.join(missing)}"
        problem = _value_problem(obj)
        if problem:
            return [], f"{where}{problem}"
        out.append(line_text.encode("utf-8") + b"\n")
    return out, None


def shard_label(shard_id: str) -> str:
    digits = "".join(c for c in shard_id if c.isdigit())
    return f"shard-{int(digits or 0):06d}"


def _day_prefix(prefix: str, day: dt.date) -> str:
    return f"{prefix}/year={day.year:04d}/month={day.month:02d}/day={day.day:02d}"


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)  # mtime=0: a rewrite is byte-identical


def land_records(lake: Lake, shard_id: str, records: list[StreamRecord], result: LandingResult) -> None:
    """Write one batch of a shard (split by arrival day) to the data and error prefixes."""
    by_day: dict[dt.date, list[StreamRecord]] = {}
    epoch = dt.date(1970, 1, 1)
    last_n, last_list = None, None
    for r in records:
        n = int(r.arrival // 86400)  # UTC day number (records of one put share it)
        if n != last_n:
            last_n = n
            last_list = by_day.setdefault(epoch + dt.timedelta(days=n), [])
        last_list.append(r)
    label = shard_label(shard_id)
    for day, recs in sorted(by_day.items()):
        name = f"{label}-{recs[0].sequence_number}-{recs[-1].sequence_number}{OBJECT_SUFFIX}"
        good: list[bytes] = []
        bad: list[bytes] = []
        landed = 0
        for r in recs:
            lines, reason = validate_record(r.data)
            if reason is None:
                good += lines
                landed += 1
            else:
                result.records_failed += 1
                result.error_reasons[reason.split(":")[0]] = result.error_reasons.get(reason.split(":")[0], 0) + 1
                bad.append(json.dumps({
                    "attemptsMade": 1,
                    "arrivalTimestamp": int(r.arrival * 1000),
                    "errorCode": "ProcessingFailed",
                    "errorMessage": reason,
                    "shardId": r.shard_id,
                    "sequenceNumber": r.sequence_number,
                    "partitionKey": r.partition_key,
                    "rawData": base64.b64encode(r.data).decode("ascii"),
                }, sort_keys=True).encode() + b"\n")
        result.records_landed += landed
        if good:
            key = f"{_day_prefix(RAW_STREAM_PREFIX, day)}/{name}"
            lake.put_bytes(key, _gzip(b"".join(good)))
            result.objects.append(key)
        if bad:
            key = f"{_day_prefix(f'{RAW_STREAM_ERROR_PREFIX}/{ERROR_OUTPUT_TYPE}', day)}/{name}"
            lake.put_bytes(key, _gzip(b"".join(bad)))
            result.error_objects.append(key)


def _read_range(stream: Stream, shard_id: str, after: str | None, last: str) -> list[StreamRecord]:
    out: list[StreamRecord] = []
    for page in stream.read_shard(shard_id, after=after):
        for r in page:
            if int(r.sequence_number) > int(last):
                return out
            out.append(r)
        if out and out[-1].sequence_number == last:
            break
    return out


def land_stream(stream: Stream, lake: Lake, consumer: str = CONSUMER, batch_records: int = 100_000,
                max_batches: int | None = None) -> LandingResult:
    """Drain the stream from the consumer's checkpoint into the raw zone (see the module docstring).
    One landing per consumer at a time (a second one gets a StreamError)."""
    with stream.consumer_lock(consumer):
        return _land(stream, lake, consumer, batch_records, max_batches)


def _land(stream: Stream, lake: Lake, consumer: str, batch_records: int,
          max_batches: int | None) -> LandingResult:
    t0 = time.perf_counter()
    result = LandingResult()
    state = stream.read_checkpoint(consumer) or {}
    state.setdefault("shards", {})
    state.setdefault("pending", {})
    batches = 0
    for shard_id in stream.shard_ids():
        # 1. a batch a crashed run had started: land exactly the same range again (overwrite)
        pending = state["pending"].get(shard_id)
        if pending:
            records = _read_range(stream, shard_id, pending.get("after"), pending["last"])
            result.records_read += len(records)
            if records:
                land_records(lake, shard_id, records, result)
            result.redone_batches += 1
            state["shards"][shard_id] = pending["last"]
            del state["pending"][shard_id]
            stream.write_checkpoint(consumer, state)
        # 2. new batches
        while max_batches is None or batches < max_batches:
            after = state["shards"].get(shard_id)
            records: list[StreamRecord] = []
            for page in stream.read_shard(shard_id, after=after, limit=batch_records):
                records.extend(page)
            if not records:
                break
            last = records[-1].sequence_number
            state["pending"][shard_id] = {"after": after, "last": last}
            stream.write_checkpoint(consumer, state)  # the intent, durable before any object
            _fault("before_write")
            result.records_read += len(records)
            land_records(lake, shard_id, records, result)
            _fault("after_write")
            state["shards"][shard_id] = last
            del state["pending"][shard_id]
            stream.write_checkpoint(consumer, state)  # the batch is done
            batches += 1
            if len(records) < batch_records:
                break
    result.checkpoints = dict(state["shards"])
    result.seconds = time.perf_counter() - t0
    return result


def stream_lag(stream: Stream, consumer: str = CONSUMER) -> int:
    """Records waiting after the consumer's checkpoint (counted up to 1 per shard: 0 = nothing new)."""
    state = stream.read_checkpoint(consumer) or {}
    shards = state.get("shards", {})
    waiting = len(state.get("pending", {}))
    for shard_id in stream.shard_ids():
        for page in stream.read_shard(shard_id, after=shards.get(shard_id), limit=1):
            waiting += len(page)
    return waiting


def landed_objects(lake: Lake) -> list[str]:
    """Every data object under raw/stream/ (landed here or by Firehose), sorted."""
    return [k for k in lake.list(RAW_STREAM_PREFIX) if not k.rsplit("/", 1)[-1].startswith((".", "_"))]
