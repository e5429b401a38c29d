"""Both deployments' landings accept and reject the same stream records: the local landing
(`ingestion/landing.py`) and the Firehose processor Lambda of the aws deployment
(`infra/lambda/firehose_processor/handler.py`, loaded by path: it ships without the platform)."""

import base64
import importlib.util
import json

import pytest

from ecommerce_platform.ingestion.landing import validate_record
from ecommerce_platform_tests.conftest import REPO_ROOT

GOOD = {"InvoiceNo": "536365", "StockCode": "85123A", "Description": "WHITE HANGING HEART",
        "Quantity": "6", "InvoiceDate": "2010-12-01 08:26:00", "UnitPrice": "2.55",
        "CustomerID": "17850", "Country": "United Kingdom", "line_id": "0a3bc1acf506:1"}

RECORDS = {
    "good": json.dumps(GOOD),
    "good with numbers": json.dumps({**GOOD, "Quantity": 6, "UnitPrice": 2.55}),
    "integral float quantity": json.dumps({**GOOD, "Quantity": 6.0}),
    "negative quantity (a return)": json.dumps({**GOOD, "InvoiceNo": "C536379", "Quantity": "-1"}),
    "two objects": json.dumps(GOOD) + "\n" + json.dumps(GOOD),
    "no customer": json.dumps({k: v for k, v in GOOD.items() if k != "CustomerID"}),
    "not json": "InvoiceNo=536365",
    "a list": json.dumps([GOOD]),
    "missing quantity": json.dumps({k: v for k, v in GOOD.items() if k != "Quantity"}),
    "blank stock code": json.dumps({**GOOD, "StockCode": "  "}),
    "fractional quantity": json.dumps({**GOOD, "Quantity": "6.5"}),
    "text quantity": json.dumps({**GOOD, "Quantity": "six"}),
    "boolean quantity": json.dumps({**GOOD, "Quantity": True}),
    "text price": json.dumps({**GOOD, "UnitPrice": "two"}),
    "infinite price": json.dumps({**GOOD, "UnitPrice": "Infinity"}),
    "one bad line of two": json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "Quantity": "x"}),
}


@pytest.fixture(scope="module")
def lambda_handler():
    path = REPO_ROOT / "infra" / "lambda" / "firehose_processor" / "handler.py"
    spec = importlib.util.spec_from_file_location("firehose_processor_handler", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_local_landing_and_firehose_lambda_agree(name, lambda_handler):
    data = RECORDS[name].encode()
    _, local_reason = validate_record(data)
    event = {"records": [{"recordId": "1", "data": base64.b64encode(data).decode()}]}
    (out,) = lambda_handler.handler(event)["records"]
    assert (local_reason is None) == (out["result"] == "Ok"), (name, local_reason, out["result"])
    if local_reason is None:
        landed = base64.b64decode(out["data"]).decode()
        assert landed.endswith("\n") and all(json.loads(line) for line in landed.splitlines())
