"""How the lake is partitioned in Dagster: partitions follow the data.

- ``raw_batches`` (dynamic): one partition per source file, ``<file name>~<signature>`` (the signature
  changes when the file's size or time changes). Added when the file is found (the arrival sensor, or
  ``make run``); ``raw_s3`` lands it.
- ``stream_days`` (daily): the stream lands by arrival day (like Firehose's prefixes); ``raw_stream``.
- ``invoice_months`` (dynamic): ``YYYY-MM`` of the invoice, plus ``undated`` for lines whose invoice date
  cannot be read or is implausible (they can only be quarantined). Added by the landings for every month
  a batch or a stream day holds. ``raw_months`` (what the raw zone holds per month, observed) and the
  clean zone (``clean_parquet``, ``quarantine``) use it, so exact duplicates (same line, same timestamp)
  always meet in one partition.

The mapping from a landed batch to the months it touches is data: the landing counts the lines of each
month in the batch's canonical copy and reports a new data version for those months only (an
observation of ``raw_months``). Dagster then sees exactly those clean months as stale; nothing else is
recomputed. Inside a stale month, a new batch costs its own lines only: they are added to the month's
files (lake/clean.py).
"""

from __future__ import annotations

import re

import dagster as dg

RAW_BATCHES = dg.DynamicPartitionsDefinition(name="raw_batches")
INVOICE_MONTHS = dg.DynamicPartitionsDefinition(name="invoice_months")
STREAM_DAYS = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_offset=1)
UNDATED = "undated"
SINGLE_RUN = dg.BackfillPolicy.single_run()

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()&+=@-]")


def batch_partition_key(name: str, signature: str) -> str:
    """A partition key for a source file: its name (made safe for a key) and a short signature."""
    safe = _KEY_UNSAFE.sub("_", name).strip() or "file"
    return f"{safe[:120]}~{signature[:10]}"


def month_key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def month_bounds(key: str) -> tuple[int, int] | None:
    """(year, month) of a month key; None for ``undated``."""
    if key == UNDATED:
        return None
    year, month = key.split("-")
    return int(year), int(month)
