"""Firehose data-transformation Lambda for the transaction stream.

Each Kinesis record carries one transaction as a JSON object (a trailing newline is optional; a
record may also hold several newline-delimited objects). A record is passed on (``Ok``) with every
object on its own line, each ending in ``\\n``, so the S3 objects Firehose writes under
``raw/stream/`` are newline-delimited JSON. A record that fails validation is returned as
``ProcessingFailed`` with its original data, so Firehose writes it under the error prefix
(``raw/stream_errors/processing-failed/...``) instead of the data prefix.

A transaction is valid when it is a JSON object with the keys InvoiceNo, StockCode, Quantity,
InvoiceDate and UnitPrice present and not empty, Quantity integer-like (an integer, an integral
float, or a string of either) and UnitPrice a finite number (or a string of one). Description,
CustomerID, Country and line_id are optional.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re

REQUIRED_KEYS = ("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice")
OPTIONAL_KEYS = ("Description", "CustomerID", "Country", "line_id")

OK = "Ok"
FAILED = "ProcessingFailed"

_INT_TEXT = re.compile(r"^[+-]?\d+(\.0*)?$")


class InvalidRecord(ValueError):
    """Why a record was rejected (logged; Firehose itself records only the status)."""


def _is_integer_like(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value) and value.is_integer()
    if isinstance(value, str):
        return bool(_INT_TEXT.match(value.strip()))
    return False


def _is_numeric(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            return math.isfinite(float(value.strip()))
        except ValueError:
            return False
    return False


def validate_transaction(obj) -> None:
    """Raise InvalidRecord unless ``obj`` is an acceptable transaction."""
    if not isinstance(obj, dict):
        raise InvalidRecord(f"not a JSON object but {type(obj).__name__}")
    missing = [
        k for k in REQUIRED_KEYS if obj.get(k) is None or (isinstance(obj[k], str) and not obj[k].strip())
    ]
    if missing:
        raise InvalidRecord(f"missing or empty required keys: {', '.join(missing)}")
    if not _is_integer_like(obj["Quantity"]):
        raise InvalidRecord(f"Quantity {obj['Quantity']!r} is not an integer")
    if not _is_numeric(obj["UnitPrice"]):
        raise InvalidRecord(f"UnitPrice {obj['UnitPrice']!r} is not a number")


def _parse_object(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRecord(f"invalid JSON: {exc.msg} at position {exc.pos}") from None


def transform_payload(payload: bytes) -> bytes:
    """The newline-delimited output for one record's payload, or InvalidRecord."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRecord("payload is not UTF-8") from None
    text = text.lstrip("\ufeff")
    # split on '\n' only: str.splitlines would also cut inside JSON strings holding U+2028 etc.
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if not lines:
        raise InvalidRecord("empty record")
    if len(lines) == 1:
        validate_transaction(_parse_object(lines[0]))
        return (lines[0] + "\n").encode("utf-8")
    # Several lines: either one pretty-printed object, or several one-line objects.
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if whole is not None:
        validate_transaction(whole)
        return (json.dumps(whole, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    out = []
    for number, line in enumerate(lines, start=1):
        try:
            validate_transaction(_parse_object(line))
        except InvalidRecord as exc:
            raise InvalidRecord(f"line {number}: {exc}") from None
        out.append(line + "\n")
    return "".join(out).encode("utf-8")


def process_record(record: dict) -> tuple[dict, str | None]:
    """One Firehose output record, and the rejection reason (None when accepted)."""
    record_id = record["recordId"]
    raw_b64 = record.get("data", "")
    try:
        payload = base64.b64decode(raw_b64, validate=True)
        out = transform_payload(payload)
    except (binascii.Error, ValueError) as exc:  # InvalidRecord is a ValueError
        reason = str(exc) if isinstance(exc, InvalidRecord) else "data is not valid base64"
        return {"recordId": record_id, "result": FAILED, "data": raw_b64}, reason
    return {"recordId": record_id, "result": OK, "data": base64.b64encode(out).decode("ascii")}, None


def handler(event, context=None):  # noqa: ARG001 - Lambda signature
    records = event.get("records", [])
    output = []
    failures = []
    for record in records:
        result, reason = process_record(record)
        output.append(result)
        if reason is not None:
            failures.append({"recordId": record["recordId"], "reason": reason})
    print(
        json.dumps(
            {
                "message": "firehose batch processed",
                "invocationId": event.get("invocationId"),
                "records": len(records),
                "ok": len(records) - len(failures),
                "processing_failed": len(failures),
                "failures": failures[:20],
            }
        )
    )
    return {"records": output}
