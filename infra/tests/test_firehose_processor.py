"""The Firehose transformation Lambda: valid records pass as NDJSON lines, bad ones fail."""

from __future__ import annotations

import base64
import json

import pytest
from conftest import load_lambda

proc = load_lambda("firehose_processor")

GOOD = {
    "InvoiceNo": "536365",
    "StockCode": "85123A",
    "Description": "WHITE HANGING HEART T-LIGHT HOLDER",
    "Quantity": 6,
    "InvoiceDate": "2010-12-01 08:26:00",
    "UnitPrice": 2.55,
    "CustomerID": "17850",
    "Country": "United Kingdom",
}


def _record(payload, record_id="r1"):
    data = payload if isinstance(payload, bytes) else payload.encode("utf-8")
    return {"recordId": record_id, "approximateArrivalTimestamp": 1, "data": base64.b64encode(data).decode()}


def _run(*payloads):
    event = {"invocationId": "inv", "records": [_record(p, f"r{i}") for i, p in enumerate(payloads)]}
    return proc.handler(event, None)["records"]


def _decoded(out) -> str:
    return base64.b64decode(out["data"]).decode("utf-8")


def test_valid_record_passes_unchanged_with_one_newline():
    line = json.dumps(GOOD)
    for payload in (line, line + "\n", line + "\r\n", "\ufeff" + line):
        (out,) = _run(payload)
        assert out["result"] == "Ok"
        assert _decoded(out) == line + "\n"


def test_every_output_line_ends_with_a_newline_and_concatenates_to_ndjson():
    lines = [json.dumps({**GOOD, "line_id": f"id-{i}", "Quantity": i + 1}) for i in range(3)]
    outs = _run(*lines)
    blob = "".join(_decoded(o) for o in outs)  # what Firehose concatenates into one S3 object
    assert blob.endswith("\n")
    assert [json.loads(x)["line_id"] for x in blob.splitlines()] == ["id-0", "id-1", "id-2"]


def test_record_with_several_lines():
    a = json.dumps(GOOD)
    b = json.dumps({**GOOD, "StockCode": "71053"})
    (out,) = _run(f"{a}\n{b}\n")
    assert out["result"] == "Ok"
    assert _decoded(out) == f"{a}\n{b}\n"


def test_pretty_printed_object_becomes_one_line():
    (out,) = _run(json.dumps(GOOD, indent=2))
    assert out["result"] == "Ok"
    text = _decoded(out)
    assert text.count("\n") == 1 and text.endswith("\n")
    assert json.loads(text) == GOOD


def test_line_separator_inside_a_string_does_not_split_the_record():
    line = json.dumps({**GOOD, "Description": "A\u2028B"}, ensure_ascii=False)
    (out,) = _run(line)
    assert out["result"] == "Ok"
    assert json.loads(_decoded(out))["Description"] == "A\u2028B"


def test_optional_keys_may_be_missing():
    minimal = {k: GOOD[k] for k in proc.REQUIRED_KEYS}
    (out,) = _run(json.dumps(minimal))
    assert out["result"] == "Ok"


@pytest.mark.parametrize("quantity", [6, -3, "6", " -12 ", 6.0, "6.0"])
def test_integer_like_quantities(quantity):
    (out,) = _run(json.dumps({**GOOD, "Quantity": quantity}))
    assert out["result"] == "Ok"


@pytest.mark.parametrize("price", [2.55, 0, "2.55", "-11062.06", 3, "1e2"])
def test_numeric_prices(price):
    (out,) = _run(json.dumps({**GOOD, "UnitPrice": price}))
    assert out["result"] == "Ok"


MALFORMED = {
    "not json": "InvoiceNo=536365",
    "truncated json": json.dumps(GOOD)[:-5],
    "array": json.dumps([GOOD]),
    "string": json.dumps("536365"),
    "number": "42",
    "empty": "",
    "blank": "  \n \n",
    "missing InvoiceNo": json.dumps({k: v for k, v in GOOD.items() if k != "InvoiceNo"}),
    "missing UnitPrice": json.dumps({k: v for k, v in GOOD.items() if k != "UnitPrice"}),
    "null StockCode": json.dumps({**GOOD, "StockCode": None}),
    "empty InvoiceDate": json.dumps({**GOOD, "InvoiceDate": "  "}),
    "fractional Quantity": json.dumps({**GOOD, "Quantity": 1.5}),
    "text Quantity": json.dumps({**GOOD, "Quantity": "six"}),
    "decimal text Quantity": json.dumps({**GOOD, "Quantity": "6.5"}),
    "boolean Quantity": json.dumps({**GOOD, "Quantity": True}),
    "list Quantity": json.dumps({**GOOD, "Quantity": [6]}),
    "text UnitPrice": json.dumps({**GOOD, "UnitPrice": "two"}),
    "NaN UnitPrice": '{"InvoiceNo":"1","StockCode":"A","Quantity":1,"InvoiceDate":"d","UnitPrice":NaN}',
    "Infinity UnitPrice": json.dumps({**GOOD, "UnitPrice": "Infinity"}),
    "boolean UnitPrice": json.dumps({**GOOD, "UnitPrice": False}),
    "one bad line of two": json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "Quantity": "x"}),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_records_fail_with_their_original_data(name):
    payload = MALFORMED[name]
    record = _record(payload)
    out, reason = proc.process_record(record)
    assert out == {"recordId": "r1", "result": "ProcessingFailed", "data": record["data"]}
    assert reason


def test_undecodable_records_fail():
    bad_base64 = {"recordId": "x", "data": "%%%not-base64%%%"}
    out, reason = proc.process_record(bad_base64)
    assert out["result"] == "ProcessingFailed" and out["data"] == bad_base64["data"]
    assert "base64" in reason
    out, reason = proc.process_record(_record(b"\xff\xfe{\"InvoiceNo\": 1}"))
    assert out["result"] == "ProcessingFailed" and "UTF-8" in reason


def test_batch_keeps_ids_and_order_and_mixes_results(capsys):
    outs = _run(json.dumps(GOOD), "garbage", json.dumps({**GOOD, "UnitPrice": "x"}), json.dumps(GOOD))
    assert [o["recordId"] for o in outs] == ["r0", "r1", "r2", "r3"]
    assert [o["result"] for o in outs] == ["Ok", "ProcessingFailed", "ProcessingFailed", "Ok"]
    log = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert log["records"] == 4 and log["ok"] == 2 and log["processing_failed"] == 2
    assert [f["recordId"] for f in log["failures"]] == ["r1", "r2"]


def test_empty_batch():
    assert proc.handler({"records": []}) == {"records": []}
