"""Benchmark: S3 round trips of the aws deployment with DuckDB as the engine, counted at moto's server
on 127.0.0.1 (every HTTP request it answers): the warehouse's one DuckDB connection per resource lifetime
(a run step) against a new connection per query (the original project's way, the baseline), in the
same run over the same lake.

    .venv/bin/python bench/s3_round_trips.py [--source data/reference/online_retail.parquet] [--reads 2]

The workload is what a step that reads the analytics layer does: read every view in full ``--reads``
times. Landing, the clean zone and the views are built first (not counted), so both modes find the same
lake and catalog. DuckDB's own settings are left at their defaults (its external file cache is on);
turning on ``enable_http_metadata_cache`` and ``parquet_metadata_cache`` as well was measured here and
changed nothing on this workload, so the platform does not set them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REQUEST = re.compile(r'"(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP/[\d.]+" (\d{3})')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _requests(log: Path, start: int) -> tuple[Counter, int]:
    """Requests logged after byte ``start`` of moto's log: by method (206 = a ranged GET), and the end."""
    text = log.read_bytes()
    counts: Counter = Counter()
    for method, _path, status in REQUEST.findall(text[start:].decode(errors="replace")):
        counts["ranged GET" if status == "206" else method] += 1
    return counts, len(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default=str(ROOT / "data" / "reference" / "online_retail.parquet"))
    ap.add_argument("--reads", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_s3_"))
    log = tmp / "moto.log"
    port = _free_port()
    with open(log, "wb") as out:
        moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _run(args, tmp, log, f"http://127.0.0.1:{port}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(moto.pid, signal.SIGTERM)
        moto.wait(timeout=10)


def _run(args, tmp: Path, log: Path, endpoint: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and b"Running on" not in log.read_bytes():
        time.sleep(0.2)
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    os.environ.update({
        "ECOMMERCE_DEPLOYMENT": "aws", "ECOMMERCE_WAREHOUSE": "duckdb", "ECOMMERCE_S3_BUCKET": bucket,
        "ECOMMERCE_S3_PREFIX": "lake", "ECOMMERCE_DATA_DIR": str(tmp / "data"), "ECOMMERCE_SOURCE": args.source,
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-west-1",
    })
    import boto3
    import dagster as dg

    from ecommerce_platform.analytics.assets import analytics_views
    from ecommerce_platform.definitions import build_definitions
    from ecommerce_platform.resources import build_resources
    from ecommerce_platform.runner import rebuild

    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    views = [k.to_user_string() for k in analytics_views.keys]
    with dg.DagsterInstance.ephemeral() as instance:
        t = time.perf_counter()
        runs = rebuild(instance, build_definitions(layers=("ingestion", "lake")), log=lambda _m: None)
        assert runs and all(r.success for r in runs)
        assert dg.materialize([analytics_views], resources=build_resources(), instance=instance).success
        print(f"setup: landing, clean zone and views on moto in {time.perf_counter() - t:.1f}s (not counted)")
        figures = {}
        for per_query in (True, False):
            warehouse = build_resources()["warehouse"]
            _, start = _requests(log, 0)
            t = time.perf_counter()
            rows = {}
            for _ in range(args.reads):
                for v in views:
                    if per_query:
                        warehouse.close()  # the next query opens a new connection, as the original did
                    rows[v] = len(warehouse.query_df(f"SELECT * FROM {v}"))
            seconds = time.perf_counter() - t
            counts, _ = _requests(log, start)
            warehouse.close()
            figures[per_query] = (counts, seconds, rows)
    (base, base_s, base_rows), (one, one_s, one_rows) = figures[True], figures[False]
    assert base_rows == one_rows, "the two ways read different rows"
    print(f"workload: read each of the {len(views)} views in full x{args.reads}")
    for name, counts, seconds in (("connection per query (baseline)", base, base_s),
                                  ("one connection per step", one, one_s)):
        detail = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
        print(f"  {name:32s} {sum(counts.values()):6,} requests ({detail}); {seconds:.1f}s")
    print(f"  ratio: {sum(base.values()) / max(1, sum(one.values())):.2f}x fewer requests, "
          f"{base_s / one_s:.2f}x faster; same rows in every view")


if __name__ == "__main__":
    main()
