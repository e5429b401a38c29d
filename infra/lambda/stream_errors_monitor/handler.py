"""S3-notification Lambda: reports the records Firehose wrote to the stream's error prefix.

Firehose writes every record the processing Lambda rejected (and every record it could not deliver)
as one JSON line under ``<prefix>/raw/stream_errors/<error-output-type>/...``, with the fields
``errorCode``, ``errorMessage``, ``attemptsMade``, ``arrivalTimestamp`` and ``rawData`` (the base64
of the original record). This function reads each new error object, counts its records by error
code and logs one JSON summary line per object; the stack turns ``failed_records`` into the
CloudWatch metric behind the stream-errors alarm.

Object keys in S3 event notifications are URL-encoded (``year%3D2024``, ``+`` for a space), so they
are decoded with ``urllib.parse.unquote_plus`` before use.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
from collections import Counter
from urllib.parse import unquote_plus

SAMPLE_BYTES = 300  # how much of a rejected record to show in the log


def _s3_client():
    import boto3  # provided by the Lambda runtime

    return boto3.client("s3")


def object_refs(event: dict) -> list[tuple[str, str]]:
    """(bucket, decoded key) of each S3 ObjectCreated record in an S3 notification event."""
    refs = []
    for record in event.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3", {})
        bucket = s3.get("bucket", {}).get("name")
        key = s3.get("object", {}).get("key")
        if bucket and key is not None:
            refs.append((bucket, unquote_plus(key)))
    return refs


def _decompress(body: bytes) -> bytes:
    return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body


def summarize_errors(body: bytes) -> dict:
    """Counts of the error lines in one error object (gzip or plain newline-delimited JSON)."""
    codes: Counter[str] = Counter()
    samples = []
    unreadable = 0
    for line in _decompress(body).split(b"\n"):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("not an object")
        except ValueError:
            unreadable += 1
            continue
        codes[str(item.get("errorCode", "unknown"))] += 1
        if len(samples) < 5:
            try:
                raw = base64.b64decode(item.get("rawData", ""), validate=True)
                sample = raw[:SAMPLE_BYTES].decode("utf-8", errors="replace")
            except (binascii.Error, ValueError, TypeError):
                sample = None
            samples.append({"errorCode": item.get("errorCode"), "rawData": sample})
    return {
        "failed_records": sum(codes.values()) + unreadable,
        "error_codes": dict(codes),
        "unreadable_lines": unreadable,
        "samples": samples,
    }


def handler(event, context=None, s3=None):  # noqa: ARG001 - Lambda signature
    errors_prefix = os.environ.get("ERRORS_PREFIX", "")
    summaries = []
    for bucket, key in object_refs(event):
        if errors_prefix and not key.startswith(errors_prefix):
            print(json.dumps({"event": "firehose_error_object_skipped", "bucket": bucket, "key": key}))
            continue
        s3 = s3 or _s3_client()
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        summary = {"event": "firehose_error_object", "bucket": bucket, "key": key, **summarize_errors(body)}
        print(json.dumps(summary))
        summaries.append(summary)
    return {"objects": len(summaries), "failed_records": sum(s["failed_records"] for s in summaries)}
