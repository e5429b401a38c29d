"""Unit tests of the serving layer's plain parts: the middleware (no stack trace on an unhandled error,
body limits, request ids), the answer cache, the reload logic on a fake lake (a component swapped when its
signal changes, the previous one kept when a load fails, a load retried when the signal moved during it),
the JSON log lines and the settings."""

import asyncio
import json
import logging

import pytest

from ecommerce_platform.config import ConfigError, load_settings
from ecommerce_platform.serving import state as st
from ecommerce_platform.serving.logs import JsonFormatter
from ecommerce_platform.serving.middleware import ServingMiddleware


def call(app, method: str = "GET", path: str = "/api/x", body: bytes = b"", headers=None, chunks=None):  # noqa: ANN001, ANN201
    """Run an ASGI app on one request; returns (status, headers, body)."""
    sent: list[dict] = []
    pending = list(chunks) if chunks is not None else [body]
    hdrs = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if chunks is None and not any(k == b"content-length" for k, _ in hdrs):
        hdrs.append((b"content-length", str(len(body)).encode()))

    async def receive():  # noqa: ANN202
        chunk = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message):  # noqa: ANN001, ANN202
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "query_string": b"", "headers": hdrs,
             "client": ("127.0.0.1", 5000)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def failing_app(scope, receive, send):  # noqa: ANN001
    raise RuntimeError("secret detail of a bug at /srv/app.py line 12")


async def reading_app(scope, receive, send):  # noqa: ANN001
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def test_an_unhandled_error_is_a_plain_500_and_a_logged_traceback(caplog):
    app = ServingMiddleware(failing_app, max_body_bytes=1000)
    with caplog.at_level(logging.ERROR, logger="ecommerce_platform.serving"):
        status, headers, body = call(app, headers={"X-Request-ID": "abc-123"})
    assert status == 500
    assert json.loads(body) == {"error": "internal error", "status": 500, "request_id": "abc-123"}
    assert b"secret" not in body and b"Traceback" not in body and headers[b"x-request-id"] == b"abc-123"
    record = next(r for r in caplog.records if r.name == "ecommerce_platform.serving")
    assert record.exc_info and "secret detail" in str(record.exc_info[1])
    assert record.fields["request_id"] == "abc-123"


def test_body_limits_declared_and_streamed():
    app = ServingMiddleware(reading_app, max_body_bytes=100)
    assert call(app, "POST", body=b"x" * 100)[0] == 200
    status, _, body = call(app, "POST", body=b"x" * 101)
    assert status == 413 and "larger than 100 bytes" in json.loads(body)["error"]
    status, _, body = call(app, "POST", chunks=[b"x" * 60, b"x" * 60])  # no Content-Length
    assert status == 413
    assert call(app, "POST", chunks=[b"x" * 50, b"x" * 50])[0] == 200
    status, _, body = call(app, "POST", body=b"", headers={"Content-Length": "abc"})
    assert status in (400, 413)


def test_request_ids_are_kept_only_when_they_are_plain_tokens():
    app = ServingMiddleware(reading_app, max_body_bytes=100)
    assert call(app, headers={"X-Request-ID": "run-42.a_b"})[1][b"x-request-id"] == b"run-42.a_b"
    other = call(app, headers={"X-Request-ID": "a b\r\nx"})[1][b"x-request-id"]
    assert other != b"a b\r\nx" and len(other) == 16
    page = call(app, path="/")[1]
    assert b"default-src 'self'" in page[b"content-security-policy"] and page[b"x-content-type-options"] == b"nosniff"


def test_answer_cache_is_bounded_in_bytes_and_least_recently_used_goes_first():
    cache = st.AnswerCache(max_bytes=800)
    for i in range(10):
        cache.put(("q", i), b"x" * 100)
    # 800 bytes hold 8 answers: the first two went out
    assert cache.size == 800 and cache.get(("q", 0)) is None and cache.get(("q", 1)) is None
    assert cache.get(("q", 2)) == b"x" * 100  # now the most recently used
    cache.put(("q", 10), b"x" * 100)  # evicts q3, the least recently used, not q2
    assert cache.get(("q", 3)) is None and cache.get(("q", 2)) is not None
    cache.put(("big", 0), b"y" * 101)  # over an eighth of the budget: not kept
    assert cache.get(("big", 0)) is None
    assert cache.stats() == {"answers": 8, "bytes": 800, "hits": 2, "misses": 4}


class FakeLake:
    """Objects with versions (what list_versions returns); ``bump`` publishes a new version."""

    root = "/fake/lake"

    def __init__(self):
        self.versions: dict[str, str] = {}

    def list_versions(self, key: str) -> dict[str, str]:
        return {k: v for k, v in self.versions.items() if k == key or k.startswith(key + "/")}

    def bump(self, key: str) -> None:
        self.versions[key] = str(int(self.versions.get(key, "0")) + 1)


def fake_state(loads: dict) -> tuple[st.ServingState, FakeLake]:  # noqa: ANN001
    lake = FakeLake()
    state = st.ServingState(load_settings(), lake=lake)
    state.specs = {name: (signals, fn) for name, (signals, fn) in loads.items()}
    return state, lake


def test_reload_swaps_what_changed_and_keeps_the_previous_on_failure(monkeypatch):
    calls = {"n": 0, "fail": True}

    def load_model():  # noqa: ANN202
        calls["n"] += 1
        if calls["fail"]:
            raise FileNotFoundError("no model at /fake/lake/models/m/current: materialize `m` first")
        return f"model-{calls['n']}", {"run_id": str(calls["n"])}

    state, lake = fake_state({"recommender": (("als_model",), load_model)})
    key = state.keys["als_model"]
    assert state.check() == [] and "materialize `m` first" in state.snapshot.errors["recommender"]
    assert state.check() == []  # unchanged signal, failed recently: not tried again every check
    assert calls["n"] == 1
    calls["fail"] = False
    monkeypatch.setattr(st, "RETRY_SECONDS", 0.0)
    assert state.check() == ["recommender"] and state.snapshot.value("recommender") == "model-2"
    first = state.snapshot
    assert state.check() == [] and state.snapshot.value("recommender") == "model-2"  # no change, no load
    lake.bump(key)
    assert state.check() == ["recommender"] and state.snapshot.value("recommender") == "model-3"
    assert first.value("recommender") == "model-2"  # a request holding the old snapshot keeps its model
    assert state.reloads == 1
    calls["fail"] = True
    lake.bump(key)
    assert state.check() == [] and state.snapshot.value("recommender") == "model-3"  # kept serving
    assert "materialize" in state.snapshot.errors["recommender"]
    health = state.health()
    assert health["status"] == "degraded" and health["models"]["als_model"]["served"] is True


def test_a_load_during_a_publish_is_done_again():
    state, lake = fake_state({})
    key = state.keys["als_model"]
    lake.bump(key)
    loads = []

    def load_model():  # noqa: ANN202
        loads.append(1)
        if len(loads) == 1:
            lake.bump(key)  # published again while this load read the files
        return f"model-{len(loads)}", {}

    state.specs = {"recommender": (("als_model",), load_model)}
    state.check()
    assert len(loads) == 2 and state.snapshot.value("recommender") == "model-2"
    assert state.snapshot.components["recommender"].version == (st.version_of({key: lake.versions[key]}),)


def test_signals_are_the_versions_of_the_published_markers():
    keys = st.signal_keys()
    assert keys["als_model"] == "models/als_model/current/model.json"
    assert keys["index"] == "rag/index/meta.json" and keys["data"] == "clean/_months"
    assert st.version_of({}) is None
    assert st.version_of({"a": "1", "b": "2"}) == st.version_of({"b": "2", "a": "1"}) != st.version_of({"a": "1"})


def test_json_log_lines():
    record = logging.LogRecord("ecommerce_platform.serving.access", logging.INFO, __file__, 1, "", None, None)
    record.fields = {"event": "request", "status": 200, "path": "/api/health"}
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "request" and line["status"] == 200 and line["level"] == "info"
    assert line["ts"].endswith("Z") and line["pid"] > 0 and "message" not in line


def test_serve_settings(monkeypatch):
    s = load_settings()
    assert (s.serve_host, s.serve_port, s.serve_workers, s.serve_reload_seconds) == ("127.0.0.1", 8000, 1, 5.0)
    monkeypatch.setenv("ECOMMERCE_SERVE_PORT", "9001")
    monkeypatch.setenv("ECOMMERCE_SERVE_ACCESS_LOG", "off")
    assert load_settings().serve_port == 9001 and load_settings().serve_access_log is False
    for name, bad in (("ECOMMERCE_SERVE_PORT", "70000"), ("ECOMMERCE_SERVE_WORKERS", "0"),
                      ("ECOMMERCE_SERVE_RELOAD_SECONDS", "soon"), ("ECOMMERCE_SERVE_ACCESS_LOG", "maybe")):
        monkeypatch.setenv(name, bad)
        with pytest.raises(ConfigError, match=name):
            load_settings()
        monkeypatch.delenv(name)


def test_serve_configuration_error_is_one_line(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ECOMMERCE_", "DAGSTER_"))}
    env["ECOMMERCE_SERVE_WORKERS"] = "many"
    out = subprocess.run([sys.executable, "-m", "ecommerce_platform.cli", "serve"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == "configuration error: ECOMMERCE_SERVE_WORKERS='many' is not a number between 1 and 64"
