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
from ecommerce_platform.ingestion.stream_copy import stream_days
from ecommerce_platform.resources.lake import Lake


@dataclass
class MonthInputs:
    month: str
    copies: list[str] = field(default_factory=list)  # keys of canonical copies holding lines of the month
    rows: int = 0  # lines of the month, as the readers counted them
    parts: list[str] = field(default_factory=list)  # identities of the inputs (batch hashes, stream days)

    @property
    def version(self) -> str:
        h = hashlib.sha256()
        for part in sorted(self.parts):
            h.update(part.encode() + b"\n")
        return h.hexdigest()[:16]


def month_inputs(lake: Lake) -> dict[str, MonthInputs]:
    out: dict[str, MonthInputs] = {}
    for batch in landed_batches(lake):
        for month, rows in batch.months.items():
            m = out.setdefault(month, MonthInputs(month))
            m.copies += batch.normalized
            m.rows += int(rows)
            m.parts.append(f"batch:{batch.sha256}:{rows}")
    for day in stream_days(lake):
        for month, rows in day.months.items():
            m = out.setdefault(month, MonthInputs(month))
            m.copies += day.copy
            m.rows += int(rows)
            m.parts.append(f"stream:{day.day}:{len(day.objects)}:{day.records}:{rows}")
    return dict(sorted(out.items()))


def month_versions(lake: Lake) -> dict[str, str]:
    return {m: inputs.version for m, inputs in month_inputs(lake).items()}
