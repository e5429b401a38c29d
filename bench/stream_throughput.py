"""Stream throughput: producer and landing (records/s), embedded stream and Kinesis on moto, with the
seed's way (one put_record per record, no sleep) as the baseline measured in the same run.

    .venv/bin/python bench/stream_throughput.py [--records 100000] [--moto-records 20000]

Targets: producer -> embedded >= 20,000/s; producer -> Kinesis on moto >= 2,000/s;
landing embedded -> raw zone >= 50,000/s. moto's server is started here on 127.0.0.1 and stopped by pid.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecommerce_platform.ingestion.landing import land_stream  # noqa: E402
from ecommerce_platform.ingestion.producer import produce, source_records  # noqa: E402
from ecommerce_platform.resources.lake import LocalLake  # noqa: E402
from ecommerce_platform.resources.stream import KinesisStream, LocalStream  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_way(stream, records) -> float:  # noqa: ANN001
    """The seed producer without its sleep: one put_record call per record."""
    t0 = time.perf_counter()
    for rec in records:
        stream.put_record(rec.data, rec.key)
    return len(records) / (time.perf_counter() - t0)


def row(name: str, n: int, rate: float, target: float | None = None) -> None:
    verdict = "" if target is None else ("  PASS" if rate >= target else "  BELOW TARGET") + f" (target {target:,.0f})"
    print(f"  {name:<58} {n:>8,} records {rate:>12,.0f} records/s{verdict}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default=os.environ.get("ECOMMERCE_SOURCE", str(ROOT / "data" / "reference" / "online_retail.parquet")))
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--moto-records", type=int, default=20_000)
    ap.add_argument("--baseline-records", type=int, default=3_000)
    ap.add_argument("--shards", type=int, default=4)
    args = ap.parse_args()

    print(f"stream throughput benchmark  (cpus={os.cpu_count()}, load average {os.getloadavg()[0]:.1f})")
    t0 = time.perf_counter()
    records = list(source_records(args.source, count=args.records))
    read_rate = len(records) / (time.perf_counter() - t0)
    print(f"source: {args.source}")
    row("read source -> JSON records (DuckDB + json)", len(records), read_rate)

    with tempfile.TemporaryDirectory() as tmp:
        print("embedded stream (local):")
        stream = LocalStream(path=f"{tmp}/stream", name="bench", shards=args.shards)
        stream.ensure()
        base = LocalStream(path=f"{tmp}/stream", name="bench-seed", shards=args.shards)
        base.ensure()
        row("baseline: seed way, 1 put_record/record (fsync each)", args.baseline_records,
            seed_way(base, records[: args.baseline_records]))
        result = produce(stream, iter(records))
        row("producer: PutRecords batches of 500", result.sent, result.rate, 20_000)
        lake = LocalLake(path=f"{tmp}/lake")
        landed = land_stream(stream, lake)
        assert landed.records_landed == len(records), landed
        row("landing: stream -> raw/stream/ NDJSON.gz (+checkpoint)", landed.records_read, landed.rate, 50_000)
        t0 = time.perf_counter()
        result = produce(stream, source_records(args.source, count=args.records))
        row("producer end to end (incl. reading the source)", result.sent, result.sent / (time.perf_counter() - t0))

        print("Kinesis on moto (127.0.0.1):")
        port = free_port()
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.1)
            endpoint = f"http://127.0.0.1:{port}"
            import boto3

            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1").create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
            kinesis = boto3.client("kinesis", endpoint_url=endpoint, region_name="eu-west-1")
            for name in ("bench", "bench-seed"):  # provisioned outside the platform (the CDK app does it)
                kinesis.create_stream(StreamName=name, ShardCount=args.shards)
                kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
            kin = KinesisStream(name="bench", region="eu-west-1", endpoint_url=endpoint, checkpoint_bucket=bucket)
            kin.ensure()
            kin_seed = KinesisStream(name="bench-seed", region="eu-west-1", endpoint_url=endpoint, checkpoint_bucket=bucket)
            kin_seed.ensure()
            n_base = min(args.baseline_records, 1_000)
            row("baseline: seed way, 1 put_record/record", n_base, seed_way(kin_seed, records[:n_base]))
            result = produce(kin, iter(records[: args.moto_records]))
            row("producer: PutRecords batches of 500", result.sent, result.rate, 2_000)
            landed = land_stream(kin, LocalLake(path=f"{tmp}/lake-kinesis"))
            assert landed.records_landed == result.sent, landed
            row("(extra) landing read from Kinesis -> local raw zone", landed.records_read, landed.rate)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
