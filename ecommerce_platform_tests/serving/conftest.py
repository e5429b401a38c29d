"""Fixtures of the serving tests: what the server serves materialized once per session on the session's
real lake (``clean_lake``), a server started as a subprocess on a free port and stopped by its process
group, and the CLI run in new processes (the expectations the API is compared with)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ecommerce_platform_tests.conftest import REPO_ROOT, free_port, platform_environment
from ecommerce_platform_tests.processes import start_group, stop_group

SERVED_KEYS = ("sale_lines", "daily_sales", "daily_sales_by_country", "invoice_features", "customer_features",
               "user_item_interactions", "classifier", "als_model", "sales_forecast", "product_knowledge",
               "faiss_index")


def served_assets():
    from ecommerce_platform.analytics.assets import analytics_views
    from ecommerce_platform.ml import assets as ml
    from ecommerce_platform.rag import assets as rag

    return [analytics_views, *ml.ASSETS, rag.product_knowledge, rag.faiss_index]


def materialize_served(resources: dict, instance, keys=SERVED_KEYS, tags: dict | None = None):  # noqa: ANN001, ANN201
    import dagster as dg

    return dg.materialize(served_assets(), resources=resources, instance=instance, tags=tags,
                          selection=dg.AssetSelection.assets(*[dg.AssetKey(k) for k in keys]))


@pytest.fixture(scope="session")
def served_lake(clean_lake):
    """(data_dir, resources, instance): the session's real lake with everything the server serves: the
    analytics views, the ML feature tables and models (classifier, als_model, sales_forecast) and the
    product index (product_knowledge, faiss_index), materialized once (upstream is not re-run)."""
    import dagster as dg

    data_dir, resources = clean_lake
    with platform_environment(data_dir):
        from ecommerce_platform.resources.embeddings import build_embeddings
        from ecommerce_platform.resources.llm import build_llm

        resources = {**resources, "embeddings": resources.get("embeddings") or build_embeddings(),
                     "llm": resources.get("llm") or build_llm()}
        instance = dg.DagsterInstance.ephemeral()
        result = materialize_served(resources, instance)
    assert result.success
    return data_dir, resources, instance


def child_env(data_dir: Path, **extra: str) -> dict:
    """The environment of a server or CLI process on ``data_dir``: no setting of the caller's leaks in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ECOMMERCE_", "DAGSTER_")) and k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env.update(ECOMMERCE_DATA_DIR=str(data_dir), PYTHONPATH=str(REPO_ROOT), HF_HUB_OFFLINE="1",
               OPENBLAS_NUM_THREADS="1", **extra)
    return env


def cli(data_dir: Path, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``ecommerce ARGS`` in a new process on ``data_dir``."""
    out = subprocess.run([sys.executable, "-m", "ecommerce_platform.cli", *args], env=child_env(data_dir),
                         cwd=str(data_dir.parent), input=stdin, capture_output=True, text=True, timeout=180)
    if check:
        assert out.returncode == 0, (args, out.stderr[-3000:])
    return out


def cli_json(data_dir: Path, *args: str, stdin: str | None = None):  # noqa: ANN201
    return json.loads(cli(data_dir, *args, stdin=stdin).stdout)


@dataclass
class Server:
    base: str
    proc: subprocess.Popen
    log_path: Path

    def log_lines(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out


@contextlib.contextmanager
def running_server(data_dir: Path, log_path: Path, *args: str, ready=None, timeout: float = 240, **env: str):  # noqa: ANN001
    """``ecommerce serve`` on 127.0.0.1 and a free port, as a subprocess in its own process group (stopped
    by it); ready once /api/health answers and ``ready(health)`` (default: every model served) holds."""
    import requests

    port = free_port()
    proc = start_group([sys.executable, "-m", "ecommerce_platform.cli", "serve", "--host", "127.0.0.1",
                        "--port", str(port), *args], log_path, env=child_env(data_dir, **env), cwd=log_path.parent)
    base = f"http://127.0.0.1:{port}"
    ready = ready or (lambda h: all(m["served"] for m in h["models"].values()))
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited ({proc.returncode}): {log_path.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException, ValueError):
                health = requests.get(f"{base}/api/health", timeout=10).json()
                if ready(health):
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"the server was not ready within {timeout:.0f} s: {log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield Server(base, proc, log_path)
    finally:
        stop_group(proc)


@pytest.fixture(scope="module")
def server(served_lake, tmp_path_factory):
    """A server on the session's served lake, for one test module."""
    data_dir, _, _ = served_lake
    log_path = tmp_path_factory.mktemp("server") / "serve.log"
    with running_server(data_dir, log_path) as srv:
        yield srv


def model_dir(data_dir: Path, model: str) -> Path:
    return data_dir / "lake" / "models" / model / "current"


def clean_customers(data_dir: Path) -> set[str]:
    """Every customer id in the clean table, read from its Parquet files with DuckDB (not the platform)."""
    import duckdb

    glob = str(data_dir / "lake" / "clean" / "transactions" / "**" / "*.parquet")
    rows = duckdb.sql(f"SELECT DISTINCT customer_id FROM read_parquet('{glob}', hive_partitioning = true) "
                      "WHERE customer_id IS NOT NULL").fetchall()
    return {str(r[0]) for r in rows}


def clean_stock_codes(data_dir: Path) -> set[str]:
    import duckdb

    glob = str(data_dir / "lake" / "clean" / "transactions" / "**" / "*.parquet")
    rows = duckdb.sql(f"SELECT DISTINCT upper(stock_code) FROM read_parquet('{glob}', hive_partitioning = true)").fetchall()
    return {str(r[0]) for r in rows}


@pytest.fixture(scope="session")
def unknown_customer(served_lake) -> str:
    """A customer id that is not in the clean data (checked on the clean table's files)."""
    data_dir, _, _ = served_lake
    known = clean_customers(data_dir)
    unknown = str(max(int(c) for c in known if c.isdigit()) + 1)
    assert unknown not in known
    return unknown
