"""Shared fixtures: the real reference data, isolated platform environments, a session-wide lake
with the clean zone built once from the real file, and moto's server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from ecommerce_platform_tests.processes import start_group, stop_group

REPO_ROOT = Path(__file__).resolve().parents[1]
# The reference data set shipped in the repository (data/reference/README.md): the tests' real data.
REAL_SOURCE = REPO_ROOT / "data" / "reference" / "online_retail.parquet"
REAL_SHA256 = "0a3bc1acf50608cb76604364a49626e1a9b9b8bb7f7bdb95b05ce72427b2187f"
REAL_ROWS = 541_909
ENV_KEYS = (
    "ECOMMERCE_DEPLOYMENT", "ECOMMERCE_DATA_DIR", "ECOMMERCE_SOURCE", "ECOMMERCE_WAREHOUSE",
    "ECOMMERCE_S3_BUCKET", "ECOMMERCE_S3_PREFIX", "AWS_ENDPOINT_URL", "ECOMMERCE_REFERENCE_SOURCE",
    "OPENAI_API_KEY", "OPENAI_BASE_URL",
)


@pytest.fixture(scope="session")
def real_source() -> Path:
    assert REAL_SOURCE.is_file(), f"the repository's reference data set is missing: {REAL_SOURCE}"
    return REAL_SOURCE


@contextlib.contextmanager
def platform_environment(data_dir: Path, **extra: str):
    """Set the platform's environment variables for a block and restore them afterwards."""
    saved = {k: os.environ.get(k) for k in (*ENV_KEYS, *extra)}
    try:
        for k in ENV_KEYS:
            os.environ.pop(k, None)
        os.environ["ECOMMERCE_DATA_DIR"] = str(data_dir)
        os.environ.update(extra)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def platform_env(tmp_path, real_source):
    """A fresh local deployment in a temporary folder, reading the real file."""
    with platform_environment(tmp_path / "data", ECOMMERCE_SOURCE=str(real_source)):
        yield tmp_path / "data"


def build_lake(instance, **kwargs):  # noqa: ANN001, ANN003
    """Land the sources of the current environment and clean every month they hold, as `make run` does
    for the first two layers (runner.rebuild over the ingestion and lake definitions). Returns the runs."""
    from ecommerce_platform.definitions import build_definitions
    from ecommerce_platform.runner import rebuild

    return rebuild(instance, build_definitions(layers=("ingestion", "lake")), log=lambda _m: None, **kwargs)


@pytest.fixture(scope="session")
def clean_lake(tmp_path_factory, real_source):
    """A local deployment whose raw and clean zones are built once per session from the real file.
    Yields (data_dir, resources). Tests may add zones to it; they must not change the clean zone."""
    import dagster as dg

    from ecommerce_platform.resources import build_resources

    data_dir = tmp_path_factory.mktemp("session_lake") / "data"
    with platform_environment(data_dir, ECOMMERCE_SOURCE=str(real_source)):
        with dg.DagsterInstance.ephemeral() as instance:
            runs = build_lake(instance)
            assert runs and all(r.success for r in runs)
        yield data_dir, build_resources()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture(scope="session")
def moto_server():
    """moto's server mode on 127.0.0.1 (S3, Glue, Athena, Kinesis over real HTTP); yields its URL."""
    port = free_port()
    proc = start_group([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], None)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(proc, grace=10)


@pytest.fixture
def aws_env(moto_server, tmp_path):
    """Environment of the aws deployment against moto (fresh bucket per test)."""
    import uuid

    bucket = f"lake-{uuid.uuid4().hex[:10]}"
    extra = {
        "ECOMMERCE_DEPLOYMENT": "aws", "ECOMMERCE_S3_BUCKET": bucket, "ECOMMERCE_S3_PREFIX": "lake",
        "AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-west-1",
    }
    with platform_environment(tmp_path / "data", **extra):
        import boto3

        boto3.client("s3", endpoint_url=moto_server, region_name="eu-west-1").create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield {"bucket": bucket, "endpoint": moto_server, "data_dir": tmp_path / "data"}


def pytest_terminal_summary(terminalreporter, config) -> None:  # noqa: ANN001
    """The random order's seed, printed even with -q (pytest-randomly's own line is in the header -q hides)."""
    seed = getattr(config.option, "randomly_seed", None)
    if seed is not None and config.pluginmanager.hasplugin("randomly"):
        terminalreporter.write_line(f"tests ran in a random order, seed {seed}: rerun this order with "
                                    f".venv/bin/python -m pytest --randomly-seed={seed}")
