"""The validation rules of the clean transform, in one place.

What makes a line valid is decided by ``sql/typed_lines.sql`` (the first rule a line breaks is its
quarantine reason); the bounds it applies are defined here and enter the SQL as parameters. The rules
that only flag lines (kept in the clean zone, shown in the data quality report) are here too.

A line is quarantined when (in this order):
- the source reader could not read its record (``malformed_record``, ``field_too_long``: see
  ingestion/normalize.py), with the record's line number and text;
- an identifier is missing, a number cannot be read, a quantity is not whole, a price is negative;
- its invoice date cannot be read, is earlier than the earliest plausible date
  (``ECOMMERCE_EARLIEST_INVOICE_DATE``), or is later than the time its batch or stream record was
  ingested plus a tolerance (``ECOMMERCE_FUTURE_TOLERANCE_HOURS``): an invoice cannot be dated after the
  file that holds it arrived.
Flagged, not rejected (data quality report): quantities of ``EXTREME_QUANTITY`` units or more either
way, unit prices of ``EXTREME_UNIT_PRICE`` GBP or more, text with mojibake (UTF-8 read as Windows-1252,
e.g. ``Â£``).
"""

from __future__ import annotations

from ecommerce_platform.config import Settings

# Beyond these a number is not a quantity or a price (an overflow, a code typed into the wrong column).
MAX_ABS_QUANTITY = 1e9
MAX_UNIT_PRICE = 1e9
# Flagged in the data quality report, kept in the clean zone.
EXTREME_QUANTITY = 10_000
EXTREME_UNIT_PRICE = 5_000.0
# Two-character sequences that UTF-8 text shows once it was decoded as Windows-1252 ("mojibake").
MOJIBAKE_PATTERN = "(Â[\u00a0-\u00bf]|Ã[\u0080-\u00bf]|â€)"

REASONS: tuple[str, ...] = (
    "malformed_record", "field_too_long", "missing invoice_no", "missing stock_code", "missing quantity",
    "unparsable quantity", "non-integer quantity", "missing unit_price", "unparsable unit_price",
    "negative unit_price", "missing invoice_date", "unparsable invoice_date",
    "invoice_date before earliest date", "invoice_date after ingest",
)


def sql_params(settings: Settings) -> dict:
    """The bounds typed_lines.sql takes as parameters (the latest plausible time of each line comes with
    the line: its ingest time plus the tolerance, see Settings.latest_valid_ts)."""
    return {
        "earliest_ts": settings.earliest_ts(),
        "max_abs_quantity": MAX_ABS_QUANTITY,
        "max_unit_price": MAX_UNIT_PRICE,
    }
