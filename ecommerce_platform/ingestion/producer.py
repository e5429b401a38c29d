"""The stream producer: source transactions -> the stream, as newline-delimited JSON records.

Each record is one JSON object + ``"\\n"`` with the UCI names (InvoiceNo, StockCode, Description,
Quantity, InvoiceDate, UnitPrice, CustomerID, Country; values as the source's text) plus ``line_id`` =
``<source sha256[:12]>:<source row>``. Records go out in PutRecords batches (<= 500 records, <= 5 MiB)
with the invoice number as partition key (an invoice's lines land on one shard, in order). Failed
entries of a partial failure (throttling) are retried alone, with exponential backoff and full jitter.
``rate`` paces records/s; ``replay`` sends in invoice-time order, compressed by ``speed``. A stop event
(set by SIGINT in the CLI) ends the run between batches: what was sent is always reported exactly.

Note on order: a retried entry lands after the entries of its batch that succeeded, so a partial
failure can reorder lines of one invoice (Kinesis has the same property); ``line_id`` and the invoice
timestamp keep every line identifiable and sortable.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ecommerce_platform.resources.stream import MAX_BYTES_PER_PUT, MAX_RECORDS_PER_PUT, THROTTLED

log = logging.getLogger(__name__)

# canonical column -> UCI name in the JSON record
UCI_NAMES: dict[str, str] = {
    "invoice_no": "InvoiceNo",
    "stock_code": "StockCode",
    "description": "Description",
    "quantity": "Quantity",
    "invoice_date": "InvoiceDate",
    "unit_price": "UnitPrice",
    "customer_id": "CustomerID",
    "country": "Country",
}
REQUIRED_KEYS = ("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice")
RETRYABLE = {THROTTLED, "InternalFailure", "ServiceUnavailable", "KMSThrottlingException"}


class ProduceError(RuntimeError):
    """The producer could not deliver records (the message says how many and why)."""


@dataclass
class OutRecord:
    data: bytes
    key: str
    line_id: str
    ts: float | None = None  # invoice time (epoch s), for replay


@dataclass
class ProduceResult:
    sent: int = 0
    batches: int = 0
    put_calls: int = 0
    retried_entries: int = 0
    rejected: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    first_line_id: str | None = None
    last_line_id: str | None = None
    rejected_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "records_per_second": round(self.rate, 1)}


# ---------------------------------------------------------------------------------------- source


def source_records(path: str | Path, count: int | None = None, replay: bool = False,
                   chunk: int = 20_000) -> Iterator[OutRecord]:
    """The transactions of one source file (Parquet, CSV, xlsx) as stream records, read with the
    platform's source reader (``read_source``: the canonical copy, invoice times already read) through
    DuckDB. Records the reader found malformed are not sent (the batch route quarantines them)."""
    import datetime as dt

    import duckdb

    from ecommerce_platform.ingestion.source import read_source, sql_list

    path = Path(path)
    with duckdb.connect() as con, tempfile.TemporaryDirectory() as tmp:
        # the plausibility window does not matter here (the clean transform judges every line again)
        spec, stats, _ = read_source(path, tmp, ingested_at=dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc))
        cols = ", ".join(UCI_NAMES)
        order = "ORDER BY ts NULLS LAST, source_row" if replay else "ORDER BY source_row"
        limit = f" LIMIT {int(count)}" if count is not None else ""
        sql = (f"SELECT {cols}, source_row, epoch(invoice_ts) AS ts FROM read_parquet({sql_list(stats.files)}) "
               f"WHERE malformed IS NULL {order}{limit}")
        prefix = spec.sha256[:12]
        reader = con.execute(sql).fetch_record_batch(chunk)
        names = list(UCI_NAMES.values())
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        for batch in reader:
            columns = [batch.column(i).to_pylist() for i in range(len(UCI_NAMES))]
            rows = batch.column(len(UCI_NAMES)).to_pylist()
            tss = batch.column(len(UCI_NAMES) + 1).to_pylist()
            for j, row in enumerate(rows):
                obj = {name: columns[k][j] for k, name in enumerate(names)}
                line_id = f"{prefix}:{row}"
                obj["line_id"] = line_id
                key = obj["InvoiceNo"] or line_id
                ts = tss[j]
                yield OutRecord((dumps(obj) + "\n").encode("utf-8"), str(key)[:256], line_id,
                                float(ts) if ts is not None else None)


# -------------------------------------------------------------------------------------- producer


def _send_batch(stream, batch: list[OutRecord], result: ProduceResult, max_attempts: int,
                base_delay: float, max_delay: float, sleep, rng: random.Random) -> None:  # noqa: ANN001
    """PutRecords with retry of only the failed entries (exponential backoff, full jitter)."""
    pending = batch
    attempt = 0
    while pending:
        result.put_calls += 1
        try:
            results = stream.put_records([(r.data, r.key) for r in pending])
        except Exception as exc:  # noqa: BLE001 - whole-call failure: retry the whole call
            code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
            if code not in RETRYABLE and not isinstance(exc, (ConnectionError, TimeoutError)):
                raise ProduceError(
                    f"PutRecords failed ({exc}); {result.sent:,} records were delivered before it"
                ) from exc
            results = None
        failed: list[OutRecord] = []
        if results is None:
            failed = pending
        else:
            for rec, res in zip(pending, results):
                if res.ok:
                    result.sent += 1
                    if result.first_line_id is None:
                        result.first_line_id = rec.line_id
                    result.last_line_id = rec.line_id
                elif res.error_code in RETRYABLE:
                    failed.append(rec)
                else:
                    result.rejected += 1
                    reason = f"{res.error_code}: {res.error_message}"
                    result.rejected_reasons[reason] = result.rejected_reasons.get(reason, 0) + 1
        if not failed:
            return
        attempt += 1
        result.retried_entries += len(failed)
        if attempt >= max_attempts:
            raise ProduceError(
                f"{len(failed):,} records still throttled after {max_attempts} attempts; "
                f"{result.sent:,} records were delivered"
            )
        sleep(rng.uniform(0, min(max_delay, base_delay * (2 ** attempt))))
        pending = failed


def produce(
    stream,  # noqa: ANN001 - a Stream (or a wrapper with put_records)
    records: Iterator[OutRecord],
    rate: float | None = None,
    replay_speed: float | None = None,
    stop: threading.Event | None = None,
    progress: bool = False,
    total: int | None = None,
    max_attempts: int = 15,
    base_delay: float = 0.02,
    max_delay: float = 2.0,
    seed: int | None = None,
) -> ProduceResult:
    """Send ``records`` to the stream in PutRecords batches; see the module docstring."""
    result = ProduceResult()
    stop = stop or threading.Event()
    rng = random.Random(seed)
    bar = None
    if progress:
        import sys

        from tqdm import tqdm

        bar = tqdm(total=total, unit="rec", file=sys.stderr, desc="produce", smoothing=0.1)

    def sleep(seconds: float) -> None:
        # interruptible only between batches: a retry sleep still finishes the batch
        time.sleep(seconds)

    batch: list[OutRecord] = []
    batch_bytes = 0
    t0 = time.monotonic()
    ts0: float | None = None

    def flush() -> None:
        nonlocal batch, batch_bytes
        if not batch:
            return
        before = result.sent + result.rejected
        _send_batch(stream, batch, result, max_attempts, base_delay, max_delay, sleep, rng)
        result.batches += 1
        if bar is not None:
            bar.update(result.sent + result.rejected - before)
        batch, batch_bytes = [], 0

    try:
        for i, rec in enumerate(records):
            if stop.is_set():
                result.interrupted = True
                break
            due = None
            if replay_speed:
                if rec.ts is not None:
                    ts0 = rec.ts if ts0 is None else ts0
                    due = t0 + (rec.ts - ts0) / replay_speed
            elif rate:
                due = t0 + i / rate
            if due is not None:
                wait = due - time.monotonic()
                if wait > 0:
                    flush()  # send what is due before waiting
                    wait = due - time.monotonic()
                    if wait > 0 and stop.wait(wait):
                        result.interrupted = True
                        break
            size = len(rec.data) + len(rec.key)
            if len(batch) >= MAX_RECORDS_PER_PUT or batch_bytes + size > MAX_BYTES_PER_PUT:
                flush()
                if stop.is_set():
                    result.interrupted = True
                    break
            batch.append(rec)
            batch_bytes += size
        else:
            flush()
        if result.interrupted:
            flush()  # records already taken from the source are delivered, then we stop
    finally:
        result.seconds = time.monotonic() - t0
        if bar is not None:
            bar.close()
    return result
