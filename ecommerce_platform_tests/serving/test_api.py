"""The HTTP API through real HTTP on 127.0.0.1: `ecommerce serve` started as a subprocess on the session's
real lake (the real reference file, with the views, models and index materialized), each answer compared
with what the platform gives outside the server: `ecommerce ask` in-process (``answer_question`` with
the CLI's backends) and as a command, `ecommerce recommend/similar/predict-high-value/forecast --json` in
new processes, and the model files read directly. Then bad input, limits, the access log, and
read-only serving (the warehouse file stays openable for writing; nothing in the lake changes)."""

import json
import os
import socket
import uuid

import pandas as pd
import pytest
import requests

from ecommerce_platform_tests.conftest import platform_environment
from ecommerce_platform_tests.serving.conftest import (
    clean_customers,
    clean_stock_codes,
    cli,
    cli_json,
    model_dir,
)

pytestmark = [pytest.mark.graph, pytest.mark.serving]

QUESTIONS = [  # (question, kind)
    ("total revenue in 2011", "analytics"),
    ("best-selling product in Germany", "analytics"),
    ("which countries ordered 84077", "analytics"),
    ("what is product 84077?", "product"),
    ("medium ceramic top storage", "product"),
    ("red spotty lunch box", "product"),
    ("what is our profit margin on mugs", "not_answerable"),
]
CONTRACT = ["answer", "kind", "sources", "sql", "rows", "definition"]
INVOICES = [
    {"customer_id": "14646", "country": "Netherlands", "invoice_ts": "2011-12-01T10:00:00", "basket_lines": 40},
    {"customer_id": 17850, "country": "United Kingdom", "invoice_ts": "2011-06-01T09:30:00", "lines": [{}, {}, {}]},
    {"country": "France", "invoice_ts": "2011-11-20T15:00:00", "basket_lines": 3},
]


def get(server, path: str, **kw):  # noqa: ANN001, ANN003, ANN201
    return requests.get(server.base + path, timeout=60, **kw)


def post(server, path: str, **kw):  # noqa: ANN001, ANN003, ANN201
    return requests.post(server.base + path, timeout=60, **kw)


def assert_error(resp, status: int, *words: str) -> dict:  # noqa: ANN001
    """A JSON error with the status, a message holding ``words``, a request id; never a stack trace."""
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["status"] == status and body["request_id"] == resp.headers["x-request-id"]
    for w in words:
        assert w.lower() in body["error"].lower(), (w, body["error"])
    for trace in ("Traceback", 'File "', "site-packages", ".py:", "Error:"):
        assert trace not in resp.text, (trace, resp.text)
    return body


# ------------------------------------------------------------------------------------------ health
def test_health_names_the_deployment_and_the_versions_served(server, served_lake):
    data_dir, _, _ = served_lake
    h = get(server, "/api/health").json()
    assert h["status"] == "ok" and h["deployment"] == "local" and h["warehouse"] == "duckdb"
    assert h["lake"] == str((data_dir / "lake").resolve())
    for model, key in (("als_model", "als_model"), ("classifier", "classifier"), ("sales_forecast", "sales_forecast")):
        meta = json.loads((model_dir(data_dir, model) / "model.json").read_text())
        assert h["models"][key]["served"] and h["models"][key]["run_id"] == meta["run_id"], key
    index = json.loads((data_dir / "lake" / "rag" / "index" / "meta.json").read_text())
    assert h["models"]["product_index"]["build_id"] == index["build_id"]
    assert h["models"]["product_index"]["backend"] == "lite" and h["models"]["product_index"]["answered_by"] == "offline"
    months = sorted(p.stem for p in (data_dir / "lake" / "clean" / "_months").glob("*.json"))
    assert h["data"]["version"] and h["data"]["catalog_version"]
    assert h["data"]["first_day"].startswith(months[0]) and h["data"]["last_day"].startswith(months[-1])
    assert h["worker"]["pid"] != os.getpid() and h["worker"]["reload_seconds"] == 5.0


# ------------------------------------------------------------------------------------------ ask
def test_ask_is_the_cli_contract_and_answer_question_in_process(server, served_lake):
    """Each answer equals ``answer_question`` called in this process with the CLI's own backends
    (``ask_backends``), offline, through JSON as ``ask --json`` prints it; one also equals the command."""
    from ecommerce_platform.rag.cli import ask_backends
    from ecommerce_platform.rag.qa import LazyRetriever, answer_question

    data_dir, _, _ = served_lake
    with platform_environment(data_dir):
        warehouse, load, _, how, facts = ask_backends(offline=True)
        retriever = LazyRetriever(load, facts)
        assert how == "lite"
        for question, kind in QUESTIONS:
            expected = answer_question(question, warehouse, retriever, None, offline=True, warn=lambda _m: None)
            expected = json.loads(json.dumps({k: expected.get(k) for k in CONTRACT}, default=str))
            resp = post(server, "/api/ask", json={"question": question})
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert list(body) == CONTRACT
            assert body == expected, question
            assert body["kind"] == kind, (question, body["kind"])
            if kind == "analytics":
                assert body["sql"] and body["rows"] and body["definition"]
    # the same question again: the same answer (from the worker's answer cache)
    again = post(server, "/api/ask", json={"question": "  total revenue in 2011  "})
    assert again.headers.get("x-answer-cache") == "hit"
    first = post(server, "/api/ask", json={"question": "total revenue in 2011", "top_k": 3})
    assert first.headers.get("x-answer-cache") == "miss" and first.json() == again.json()
    command = cli_json(data_dir, "ask", "--json", "--offline", "total revenue in 2011")
    assert again.json() == command


def test_ask_rejects_bad_questions_with_a_clear_message(server):
    assert_error(post(server, "/api/ask", json={"question": ""}), 422, "question is empty")
    assert_error(post(server, "/api/ask", json={"question": " \n\t "}), 422, "question is empty")
    body = assert_error(post(server, "/api/ask", json={"question": "a" * 10_000}), 422, "at most 1000 characters")
    assert body["details"] == [{"field": "body.question", "message": "String should have at most 1000 characters"}]
    assert "aaaa" not in json.dumps(body)  # the input is not echoed
    assert_error(post(server, "/api/ask", json={}), 422, "body.question", "required")
    assert_error(post(server, "/api/ask", json={"question": 42}), 422, "valid string")
    assert_error(post(server, "/api/ask", json={"question": "x", "q": "y"}), 422, "body.q", "not permitted")
    assert_error(post(server, "/api/ask", json={"question": "x", "top_k": 0}), 422, "top_k")
    assert_error(post(server, "/api/ask", json=["what is product 84077?"]), 422, "body")
    headers = {"Content-Type": "application/json"}
    assert_error(post(server, "/api/ask", data='{"question": "x",}', headers=headers), 400, "malformed JSON")
    assert_error(post(server, "/api/ask", data='{"question": ', headers=headers), 400, "malformed JSON")
    assert_error(post(server, "/api/ask", data="", headers=headers), 422, "JSON body is required")
    assert_error(post(server, "/api/ask", data="what is product 84077?", headers={"Content-Type": "text/plain"}),
                 415, "must be JSON")
    assert_error(get(server, "/api/ask"), 405, "GET is not allowed")


# ------------------------------------------------------------------------------------------ recommendations
def test_recommend_equals_the_cli(server, served_lake):
    data_dir, _, _ = served_lake
    users = pd.read_parquet(model_dir(data_dir, "als_model") / "users.parquet")
    purchased = pd.read_parquet(model_dir(data_dir, "als_model") / "purchased.parquet")
    items = pd.read_parquet(model_dir(data_dir, "als_model") / "items.parquet")
    chosen = [str(users["customer_id"].iloc[i]) for i in (0, len(users) // 2)]
    for cid in chosen:
        resp = get(server, f"/api/recommend/{cid}", params={"n": 7})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body == cli_json(data_dir, "recommend", cid, "-n", "7", "--json")
        assert body["known_customer"] and len(body["items"]) == 7
        # discovery: nothing the customer already bought (the model's files, read here)
        row = int(users.loc[users["customer_id"] == cid, "row"].iloc[0])
        bought = set(items.set_index("col").loc[purchased.loc[purchased["row"] == row, "col"], "stock_code"])
        assert not bought & {it["stock_code"] for it in body["items"]}
        assert body["model_run_id"] == json.loads((model_dir(data_dir, "als_model") / "model.json").read_text())["run_id"]
    resp = get(server, f"/api/recommend/{chosen[0]}", params={"n": 5, "mode": "next-basket"})
    assert resp.json() == cli_json(data_dir, "recommend", chosen[0], "-n", "5", "--mode", "next-basket", "--json")


def test_unknown_customer_is_404_or_cold_start_when_asked(server, served_lake, unknown_customer):
    data_dir, _, _ = served_lake
    unknown = unknown_customer
    assert unknown not in clean_customers(data_dir)
    body = assert_error(get(server, f"/api/recommend/{unknown}"), 404, f"unknown customer '{unknown}'", "cold_start=true")
    assert "items" not in body
    cold = get(server, f"/api/recommend/{unknown}", params={"cold_start": "true", "n": 5})
    assert cold.status_code == 200 and cold.json() == cli_json(data_dir, "recommend", unknown, "-n", "5", "--json")
    assert cold.json()["known_customer"] is False
    assert_error(get(server, "/api/recommend/14646", params={"n": 0}), 422, "query.n", "greater than or equal to 1")
    assert_error(get(server, "/api/recommend/14646", params={"n": 501}), 422, "query.n")
    assert_error(get(server, "/api/recommend/14646", params={"n": "ten"}), 422, "query.n", "integer")
    assert_error(get(server, "/api/recommend/14646", params={"mode": "random"}), 422, "query.mode")
    assert_error(get(server, "/api/recommend/" + "9" * 40), 422, "path.customer_id")
    assert_error(get(server, "/api/recommend/14646%20OR%201=1"), 422, "path.customer_id")
    assert_error(get(server, "/api/recommend/"), 404, "no such path")


def test_similar_equals_the_cli_and_unknown_stock_codes_are_404(server, served_lake):
    data_dir, _, _ = served_lake
    resp = get(server, "/api/similar/85123A", params={"n": 6})
    assert resp.status_code == 200, resp.text
    assert resp.json() == cli_json(data_dir, "similar", "85123A", "-n", "6", "--json")
    lower = get(server, "/api/similar/85123a", params={"n": 6, "min_shared_buyers": 50})
    assert lower.json() == cli_json(data_dir, "similar", "85123a", "-n", "6", "--min-shared-buyers", "50", "--json")
    assert all(it["shared_buyers"] >= 50 for it in lower.json()["items"])
    codes = clean_stock_codes(data_dir)
    unknown = next(f"ZZ{i:04d}" for i in range(10_000) if f"ZZ{i:04d}" not in codes)
    assert_error(get(server, f"/api/similar/{unknown}"), 404, f"unknown stock code '{unknown}'")
    assert_error(get(server, "/api/similar/85123A", params={"min_shared_buyers": 0}), 422, "min_shared_buyers")
    assert_error(get(server, "/api/similar/%3Cscript%3E"), 422, "path.stock_code")


# ------------------------------------------------------------------------------------------ predictions
def test_predict_high_value_equals_the_cli(server, served_lake):
    data_dir, _, _ = served_lake
    resp = post(server, "/api/predict-high-value", json=INVOICES)
    assert resp.status_code == 200, resp.text
    assert resp.json() == cli_json(data_dir, "predict-high-value", stdin=json.dumps(INVOICES))
    one = post(server, "/api/predict-high-value", json=INVOICES[0])
    assert one.json() == cli_json(data_dir, "predict-high-value", stdin=json.dumps(INVOICES[0]))
    assert isinstance(one.json(), dict) and one.json()["known_customer"] is True
    # the CLI's own validation, with its message
    bad = {"country": "France", "invoice_ts": "yesterday", "basket_lines": 3}
    out = cli(data_dir, "predict-high-value", stdin=json.dumps(bad), check=False)
    assert out.returncode == 2
    message = out.stderr.strip().removeprefix("error: ")
    assert assert_error(post(server, "/api/predict-high-value", json=bad), 422)["error"] == message
    assert_error(post(server, "/api/predict-high-value", json=[]), 422, "no request")
    assert_error(post(server, "/api/predict-high-value", json={"country": "France", "invoice_ts": "2011-01-01T10:00"}),
                 422, "basket")
    assert_error(post(server, "/api/predict-high-value", json=[INVOICES[0]] * 1001), 422, "at most 1,000")
    assert_error(post(server, "/api/predict-high-value", data="{'customer_id': 1}",
                      headers={"Content-Type": "application/json"}), 400, "malformed JSON", "line 1, column 2")
    assert_error(post(server, "/api/predict-high-value", data="x", headers={"Content-Type": "text/csv"}), 415)


def test_forecast_equals_the_cli(server, served_lake):
    data_dir, _, _ = served_lake
    resp = get(server, "/api/forecast", params={"horizon": 4})
    assert resp.status_code == 200, resp.text
    assert resp.json() == cli_json(data_dir, "forecast", "--weeks", "4", "--json")
    assert len(resp.json()["rows"]) == 4
    daily = get(server, "/api/forecast", params={"horizon": 7, "granularity": "day"})
    assert daily.json() == cli_json(data_dir, "forecast", "--daily", "--weeks", "1", "--json")
    assert get(server, "/api/forecast").json() == cli_json(data_dir, "forecast", "--json")
    served = pd.read_parquet(model_dir(data_dir, "sales_forecast") / "forecast.parquet")
    country = next(s for s in served["series"].unique() if s != "all")
    by_country = get(server, "/api/forecast", params={"country": country.upper(), "horizon": 2})
    assert by_country.json() == cli_json(data_dir, "forecast", "--country", country, "--weeks", "2", "--json")
    assert_error(get(server, "/api/forecast", params={"country": "Atlantis"}), 404, "no forecast for 'Atlantis'", country)
    assert_error(get(server, "/api/forecast", params={"horizon": 0}), 422, "query.horizon")
    assert_error(get(server, "/api/forecast", params={"granularity": "month"}), 422, "query.granularity")


# ------------------------------------------------------------------------------------------ limits, logs, docs
def test_request_size_limits(server):
    big = {"question": "x" * 300_000}  # over the default 256 KiB
    assert_error(post(server, "/api/ask", json=big), 413, "larger than 262,144 bytes")
    # a body streamed without a Content-Length (chunked) is cut off as soon as it passes the limit
    chunks = (b'{"question": "' + b"y" * 65_536 for _ in range(8))
    resp = requests.post(server.base + "/api/ask", data=chunks, headers={"Content-Type": "application/json"}, timeout=60)
    assert_error(resp, 413, "larger than 262,144 bytes")
    # a Content-Length that is not a number
    with socket.create_connection(("127.0.0.1", int(server.base.rsplit(":", 1)[1])), timeout=30) as s:
        s.sendall(b"POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -5\r\n\r\n")
        head = s.recv(4096).decode("latin-1")
    assert head.split(" ", 2)[1] in ("400", "413"), head[:200]
    # the server still answers
    assert get(server, "/api/health").status_code == 200


def test_unknown_paths_and_methods_are_json_errors(server):
    assert_error(get(server, "/api/nothing"), 404, "no such path: /api/nothing")
    assert_error(requests.delete(server.base + "/api/health", timeout=30), 405, "DELETE is not allowed")
    assert_error(post(server, "/api/recommend/14646"), 405)


def test_access_log_is_one_json_line_per_request(server):
    rid = f"test-{uuid.uuid4().hex[:12]}"
    resp = get(server, "/api/recommend/14646", params={"n": 3}, headers={"X-Request-ID": rid})
    assert resp.headers["x-request-id"] == rid
    bad = get(server, "/api/recommend/14646", params={"n": 0}, headers={"X-Request-ID": rid + "-bad"})
    ignored = get(server, "/api/health", headers={"X-Request-ID": "not a token; <script>"})
    assert ignored.headers["x-request-id"] != "not a token; <script>"
    import time

    deadline = time.monotonic() + 10
    while True:
        lines = {entry.get("request_id"): entry for entry in server.log_lines() if entry.get("event") == "request"}
        if rid in lines and rid + "-bad" in lines or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    ok = lines[rid]
    assert ok["method"] == "GET" and ok["path"] == "/api/recommend/14646" and ok["query"] == "n=3"
    assert ok["status"] == 200 and ok["bytes_out"] == len(resp.content) and ok["ms"] > 0
    assert ok["client"] == "127.0.0.1" and ok["logger"] == "ecommerce_platform.serving.access" and ok["pid"]
    assert lines[rid + "-bad"]["status"] == 422 and bad.status_code == 422
    # every line of the log is JSON: uvicorn's own lines too
    raw = [ln for ln in server.log_path.read_text().splitlines() if ln.strip()]
    assert raw and all(ln.startswith("{") for ln in raw), [ln for ln in raw if not ln.startswith("{")][:3]


def test_openapi_schema_and_docs_are_served_locally(server):
    schema = get(server, "/openapi.json").json()
    assert {"/api/health", "/api/ask", "/api/recommend/{customer_id}", "/api/similar/{stock_code}",
            "/api/predict-high-value", "/api/forecast"} <= set(schema["paths"])
    assert schema["components"]["schemas"]["Answer"]["required"] == CONTRACT
    docs = get(server, "/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "http://" not in docs.text and "https://" not in docs.text  # every asset from this server
    assert get(server, "/static/swagger/swagger-ui-bundle.js").status_code == 200
    assert get(server, "/static/swagger/swagger-ui.css").status_code == 200
    page = get(server, "/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("/static/app/app.js", "/static/app/app.css", "/static/app/favicon.svg"):
        assert get(server, asset).status_code == 200, asset


# ------------------------------------------------------------------------------------------ read-only
def test_serving_is_read_only_and_never_locks_the_warehouse(server, served_lake):
    """While the server serves, another process can open the warehouse file for writing (the server holds
    no lock on it, nor any handle), and nothing in the lake changes because of the requests."""
    import duckdb
    import psutil

    data_dir, _, _ = served_lake
    lake = data_dir / "lake"

    def listing() -> dict:
        return {str(p.relative_to(lake)): (p.stat().st_size, p.stat().st_mtime_ns) for p in lake.rglob("*") if p.is_file()}

    before = listing()
    for question, _ in QUESTIONS:
        assert post(server, "/api/ask", json={"question": question, "top_k": 4}).status_code == 200
    assert post(server, "/api/predict-high-value", json=INVOICES).status_code == 200
    assert get(server, "/api/recommend/14646").status_code == 200
    assert listing() == before
    warehouse = data_dir / "warehouse.duckdb"
    assert warehouse.is_file()
    pid = get(server, "/api/health").json()["worker"]["pid"]
    open_files = {f.path for f in psutil.Process(pid).open_files()}
    assert not {p for p in open_files if p.startswith(str(warehouse))}, open_files
    con = duckdb.connect(str(warehouse))  # read-write: would fail if any process held it
    try:
        assert con.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchone()[0] > 0
    finally:
        con.close()
