"""The S3-notification Lambda on the stream error prefix: URL-encoded keys, gzip, bad lines."""

from __future__ import annotations

import base64
import gzip
import io
import json

import pytest
from conftest import load_lambda

mon = load_lambda("stream_errors_monitor")

PREFIX = "lake/raw/stream_errors/"


class FakeS3:
    def __init__(self, objects: dict[tuple[str, str], bytes]):
        self.objects = objects
        self.calls: list[tuple[str, str]] = []

    def get_object(self, Bucket, Key):  # noqa: N803 - boto3's names
        self.calls.append((Bucket, Key))
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}


def _event(*keys, event_name="ObjectCreated:Put", bucket="lake-bucket"):
    return {
        "Records": [
            {"eventName": event_name, "s3": {"bucket": {"name": bucket}, "object": {"key": k, "size": 1}}}
            for k in keys
        ]
    }


def _error_line(raw: str, code="Lambda.ProcessingFailedStatus") -> str:
    return json.dumps(
        {
            "attemptsMade": 1,
            "arrivalTimestamp": 1700000000000,
            "errorCode": code,
            "errorMessage": "The record was marked as ProcessingFailed",
            "rawData": base64.b64encode(raw.encode()).decode(),
        }
    )


@pytest.mark.parametrize(
    "encoded, decoded",
    [
        (
            "lake/raw/stream_errors/processing-failed/year%3D2024/month%3D01/day%3D05/obj-1.gz",
            "lake/raw/stream_errors/processing-failed/year=2024/month=01/day=05/obj-1.gz",
        ),
        ("lake/raw/stream_errors/a+b%2Bc.gz", "lake/raw/stream_errors/a b+c.gz"),
        ("lake/raw/stream_errors/caf%C3%A9", "lake/raw/stream_errors/café"),
    ],
)
def test_object_keys_are_url_decoded(encoded, decoded):
    assert mon.object_refs(_event(encoded)) == [("lake-bucket", decoded)]


def test_non_create_events_and_test_events_are_ignored():
    assert mon.object_refs(_event("k", event_name="ObjectRemoved:Delete")) == []
    assert mon.object_refs({"Service": "Amazon S3", "Event": "s3:TestEvent"}) == []


def test_handler_reads_the_decoded_key_and_counts_gzipped_errors(monkeypatch, capsys):
    monkeypatch.setenv("ERRORS_PREFIX", PREFIX)
    key = "lake/raw/stream_errors/processing-failed/year=2024/month=01/day=05/ecommerce-1.gz"
    body = gzip.compress(
        "\n".join([_error_line("not json"), _error_line('{"InvoiceNo": 1}'), _error_line("x", "S3.AccessDenied")]).encode()
        + b"\n"
    )
    s3 = FakeS3({("lake-bucket", key): body})
    result = mon.handler(_event(key.replace("=", "%3D")), None, s3=s3)
    assert s3.calls == [("lake-bucket", key)]
    assert result == {"objects": 1, "failed_records": 3}
    summary = json.loads(capsys.readouterr().out.strip())
    assert summary["event"] == "firehose_error_object"
    assert summary["key"] == key
    assert summary["error_codes"] == {"Lambda.ProcessingFailedStatus": 2, "S3.AccessDenied": 1}
    assert summary["samples"][0]["rawData"] == "not json"


def test_plain_objects_and_unreadable_lines():
    body = (_error_line("a") + "\n{broken\n[1,2]\n\n").encode()
    summary = mon.summarize_errors(body)
    assert summary["failed_records"] == 3
    assert summary["unreadable_lines"] == 2
    assert summary["error_codes"] == {"Lambda.ProcessingFailedStatus": 1}


def test_bad_raw_data_does_not_break_the_summary():
    line = json.dumps({"errorCode": "X", "rawData": "%%%"})
    summary = mon.summarize_errors(line.encode())
    assert summary["samples"] == [{"errorCode": "X", "rawData": None}]


def test_keys_outside_the_error_prefix_are_skipped(monkeypatch):
    monkeypatch.setenv("ERRORS_PREFIX", PREFIX)
    s3 = FakeS3({})
    assert mon.handler(_event("lake/raw/stream/year%3D2024/x.gz"), None, s3=s3) == {"objects": 0, "failed_records": 0}
    assert s3.calls == []
