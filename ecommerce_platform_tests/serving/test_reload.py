"""A running server picks up what lands in the lake, without a restart: a new materialization of als_model
(forced, on the session's real lake) is served within the reload interval while clients keep asking
(every answer meanwhile a 200 from the old model or the new one, never an error); and a server started on
a lake with only a classifier serves what it has, says what it lacks (503 with the reason, health
'degraded'), and serves the recommender as soon as its files are published there."""

import json
import shutil
import threading

import pytest
import requests

from ecommerce_platform_tests.conftest import platform_environment
from ecommerce_platform_tests.processes import wait_for
from ecommerce_platform_tests.serving.conftest import cli_json, materialize_served, model_dir, running_server

pytestmark = [pytest.mark.graph, pytest.mark.serving]


def test_a_new_materialization_is_served_without_a_restart(served_lake, tmp_path):
    from ecommerce_platform.recompute import FORCE_TAG

    data_dir, resources, instance = served_lake
    with running_server(data_dir, tmp_path / "serve.log", ECOMMERCE_SERVE_RELOAD_SECONDS="1") as srv:
        before = requests.get(f"{srv.base}/api/health", timeout=30).json()
        old_run = before["models"]["als_model"]["run_id"]
        pid = before["worker"]["pid"]
        seen: list[tuple[int, str | None]] = []
        stop = threading.Event()

        def clients() -> None:  # keep asking while the model is replaced
            with requests.Session() as s:
                while not stop.is_set():
                    r = s.get(f"{srv.base}/api/recommend/14646", params={"n": 5}, timeout=30)
                    seen.append((r.status_code, r.json().get("model_run_id")))

        thread = threading.Thread(target=clients)
        thread.start()
        try:
            with platform_environment(data_dir):
                result = materialize_served(resources, instance, keys=("als_model",), tags={FORCE_TAG: "true"})
            assert result.success
            new_run = json.loads((model_dir(data_dir, "als_model") / "model.json").read_text())["run_id"]
            assert new_run != old_run
            after = wait_for(lambda: (h := requests.get(f"{srv.base}/api/health", timeout=30).json())
                             ["models"]["als_model"]["run_id"] == new_run and h, 30, "the new model to be served",
                             interval=0.2)
            wait_for(lambda: any(run == new_run for _, run in seen[-5:]), 10, "a client to get the new model", interval=0.2)
        finally:
            stop.set()
            thread.join(timeout=60)
        assert after["worker"]["pid"] == pid and after["worker"]["reloads"] >= 1  # the same process
        assert seen and all(status == 200 for status, _ in seen), {s for s, _ in seen}
        assert {run for _, run in seen} <= {old_run, new_run}
        # once switched, never back
        first_new = next(i for i, (_, run) in enumerate(seen) if run == new_run)
        assert all(run == new_run for _, run in seen[first_new:])
        body = requests.get(f"{srv.base}/api/recommend/14646", params={"n": 5}, timeout=30).json()
        assert body == cli_json(data_dir, "recommend", "14646", "-n", "5", "--json")
        assert any(e.get("event") == "reloaded" and e.get("component") == "recommender" and e.get("run_id") == new_run
                   for e in srv.log_lines())


def test_a_partial_lake_is_served_as_far_as_it_goes(served_lake, tmp_path):
    data_dir, _, _ = served_lake
    partial = tmp_path / "data"
    shutil.copytree(model_dir(data_dir, "classifier"), model_dir(partial, "classifier"))
    ready = lambda h: h["models"]["classifier"]["served"]  # noqa: E731
    with running_server(partial, tmp_path / "serve.log", ready=ready, ECOMMERCE_SERVE_RELOAD_SECONDS="1") as srv:
        health = requests.get(f"{srv.base}/api/health", timeout=30).json()
        assert health["status"] == "degraded"
        assert health["models"]["classifier"]["served"] is True
        als = health["models"]["als_model"]
        assert als["served"] is False and "materialize `als_model` first" in als["error"]
        assert health["models"]["product_index"]["served"] is False
        assert "materialize the rag assets first" in health["models"]["product_index"]["error"]
        resp = requests.get(f"{srv.base}/api/recommend/14646", timeout=30)
        assert resp.status_code == 503 and "the recommender (als_model) is not served" in resp.json()["error"]
        resp = requests.post(f"{srv.base}/api/ask", json={"question": "what is product 84077?"}, timeout=30)
        assert resp.status_code == 503 and "not served" in resp.json()["error"]
        # the classifier is there, the clean table is not: the history cannot be read, and it says so
        resp = requests.post(f"{srv.base}/api/predict-high-value", json={
            "customer_id": "14646", "country": "Netherlands", "invoice_ts": "2011-12-01T10:00:00", "basket_lines": 4},
            timeout=60)
        assert resp.status_code == 503 and "history cannot be read" in resp.json()["error"], resp.text
        assert "Traceback" not in resp.text
        # the recommender published into this lake (one rename, as the lake publishes a prefix): served
        staging = partial / "lake" / "models" / "als_model" / "_staging" / "current"
        shutil.copytree(model_dir(data_dir, "als_model"), staging)
        staging.rename(model_dir(partial, "als_model"))
        wait_for(lambda: requests.get(f"{srv.base}/api/recommend/14646", timeout=30).status_code == 200, 30,
                 "the published recommender to be served", interval=0.2)
        body = requests.get(f"{srv.base}/api/recommend/14646", params={"n": 4}, timeout=30).json()
        assert body == cli_json(data_dir, "recommend", "14646", "-n", "4", "--json")
