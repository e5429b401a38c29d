"""What the raw zone holds per invoice month: the ingestion layer's published view of its data, read by
the lake (never the raw files themselves).

Each landed batch and each stream day has a canonical copy and a manifest that counts its lines per
invoice month (``undated`` for lines without a plausible date). For a month this gives the copies that
hold its lines, how many lines they are (``rows_in`` of the month, counted by the source readers) and a
data version: the hash of those copies' identities and counts. That version is what ``raw_months``
reports to Dagster, so a clean month is stale exactly when a landing added or changed its lines.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ecommerce_platform.ingestion.raw import landed_batches
from ecommerce_platform.ingestion.source import copy_files_of_month
from ecommerce_platform.ingestion.stream_copy import stream_days
from ecommerce_platform.resources.lake import Lake


@dataclass
class MonthInputs:
    month: str
    copies: list[str] = field(default_factory=list)  # keys of canonical copies holding lines of the month
    rows: int = 0  # lines of the month, as the readers counted them
    parts: list[str] = field(default_factory=list)  # identities of the inputs (batch hashes, stream days)
    part_copies: dict[str, list[str]] = field(default_factory=dict)  # identity -> its copies' keys
    part_rows: dict[str, int] = field(default_factory=dict)  # identity -> its lines in the month

    @property
    def version(self) -> str:
        h = hashlib.sha256()
        for part in sorted(self.parts):
            h.update(part.encode() + b"\n")
        return h.hexdigest()[:16]


def month_inputs(lake: Lake) -> dict[str, MonthInputs]:
    out: dict[str, MonthInputs] = {}

    def add(months: dict, copy: list[str], identity: str) -> None:
        """A canonical copy (its keys, its identity) that holds ``months``: month -> lines. A month gets
        the copy's files that hold its lines (one per month since copies are split by month)."""
        for month, rows in months.items():
            m = out.setdefault(month, MonthInputs(month))
            files = copy_files_of_month(copy, month)
            m.copies += files
            m.rows += int(rows)
            part = f"{identity}:{rows}"
            m.parts.append(part)
            m.part_copies[part] = files
            m.part_rows[part] = int(rows)

    for batch in landed_batches(lake):
        add(batch.months, batch.normalized, f"batch:{batch.sha256}")
    for day in stream_days(lake):
        add(day.months, day.copy, f"stream:{day.day}:{len(day.objects)}:{day.records}")
    return dict(sorted(out.items()))


def month_versions(lake: Lake) -> dict[str, str]:
    return {m: inputs.version for m, inputs in month_inputs(lake).items()}
