"""Landing the stream like Firehose: exactly once through crashes, malformed records to the error
prefix, sensors, and the stream's records reaching clean_parquet (alone and next to the batch)."""

import gzip
import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from ecommerce_platform.ingestion.landing import CONSUMER, FAULT_ENV, land_stream
from ecommerce_platform.ingestion.producer import produce, source_records
from ecommerce_platform.resources.lake import LocalLake
from ecommerce_platform.resources.stream import LocalStream
from ecommerce_platform_tests.conftest import REPO_ROOT, platform_environment
from ecommerce_platform_tests.ingestion.test_producer import write_csv


def landed_lines(lake_dir, prefix="raw/stream"):
    out = []
    for p in sorted((lake_dir / prefix).rglob("*.gz")):
        out += [json.loads(line) for line in gzip.decompress(p.read_bytes()).splitlines()]
    return out


def _setup(tmp_path, shards=2):
    stream = LocalStream(path=str(tmp_path / "data" / "stream"), name="ecommerce-transactions", shards=shards)
    stream.ensure()
    return stream, LocalLake(path=str(tmp_path / "data" / "lake"))


def test_landing_layout_checkpoint_and_idempotence(tmp_path):
    stream, lake = _setup(tmp_path)
    src = write_csv(tmp_path / "t.csv", 1000)
    produce(stream, source_records(src))
    result = land_stream(stream, lake, batch_records=300)
    assert result.records_landed == 1000 and result.records_failed == 0
    keys = lake.list("raw/stream")
    assert keys and all(
        k.split("/")[2].startswith("year=") and k.split("/")[3].startswith("month=")
        and k.split("/")[4].startswith("day=") and k.endswith(".ndjson.gz") for k in keys)
    name = keys[0].rsplit("/", 1)[1]
    assert name.startswith("shard-00000") and len(name.split("-")) == 4
    ids = [r["line_id"] for r in landed_lines(tmp_path / "data" / "lake")]
    assert len(ids) == 1000 == len(set(ids))
    assert set(stream.read_checkpoint(CONSUMER)["shards"]) == set(stream.shard_ids())
    again = land_stream(stream, lake)
    assert again.records_read == 0 and lake.list("raw/stream") == keys


def test_malformed_records_go_to_the_error_prefix_with_their_reason(tmp_path):
    stream, lake = _setup(tmp_path, shards=1)
    good = b'{"InvoiceNo":"1","StockCode":"A","Quantity":"2","InvoiceDate":"2011-01-01 10:00:00","UnitPrice":"1.5"}\n'
    stream.put_records([(good, "1"), (b"this is not json\n", "2"),
                        (b'{"InvoiceNo":"3","StockCode":"B"}\n', "3")])
    result = land_stream(stream, lake)
    assert result.records_landed == 1 and result.records_failed == 2
    errors = landed_lines(tmp_path / "data" / "lake", "raw/stream_errors")
    assert all(k.startswith("raw/stream_errors/processing-failed/year=") for k in lake.list("raw/stream_errors"))
    reasons = sorted(e["errorMessage"] for e in errors)
    assert reasons[0].startswith("invalid JSON") and reasons[1].startswith("missing or empty required keys: Quantity")
    import base64

    assert b"this is not json\n" in [base64.b64decode(e["rawData"]) for e in errors]
    assert [r["InvoiceNo"] for r in landed_lines(tmp_path / "data" / "lake")] == ["1"]


@pytest.mark.parametrize("point", ["before_write", "after_write"])
def test_landing_killed_mid_batch_then_restarted_lands_each_record_once(tmp_path, point):
    stream, lake = _setup(tmp_path)
    src = write_csv(tmp_path / "t.csv", 2000)
    produce(stream, source_records(src, count=1200))
    with platform_environment(tmp_path / "data"):
        env = dict(os.environ)
    cmd = [sys.executable, "-m", "ecommerce_platform.cli", "land", "--batch-records", "400"]
    crashed = subprocess.run(cmd, cwd=REPO_ROOT, env={**env, FAULT_ENV: f"landing:{point}"}, capture_output=True,
                             text=True)
    assert crashed.returncode == -9, crashed.stderr  # SIGKILL at the injected point
    assert stream.read_checkpoint(CONSUMER)["pending"]  # the batch's intent survived the crash
    if point == "after_write":
        assert lake.list("raw/stream")  # the object was written, the checkpoint was not moved
    # more records arrive before the restart: the redone batch must keep its range (no duplicate)
    more = list(source_records(src))[1200:]
    produce(stream, iter(more))
    restarted = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert restarted.returncode == 0, restarted.stderr
    assert "1 interrupted batch(es) redone" in restarted.stdout
    ids = [r["line_id"] for r in landed_lines(tmp_path / "data" / "lake")]
    assert len(ids) == 2000 and len(set(ids)) == 2000  # none lost, none twice
    assert stream.read_checkpoint(CONSUMER)["pending"] == {}


def test_source_files_sensor_requests_each_new_file_once(tmp_path):
    from ecommerce_platform.ingestion.sensors import source_files_sensor

    inbox = tmp_path / "in"
    inbox.mkdir()
    with platform_environment(tmp_path / "data", ECOMMERCE_SOURCE=str(inbox)), \
            dg.DagsterInstance.ephemeral() as instance:
        assert isinstance(source_files_sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)
        write_csv(inbox / "a.csv", 10)
        result = source_files_sensor(dg.build_sensor_context(instance=instance))
        (request,) = result.run_requests
        assert request.partition_key.startswith("a.csv~")
        (add,) = result.dynamic_partitions_requests
        assert list(add.partition_keys) == [request.partition_key]
        instance.add_dynamic_partitions("raw_batches", list(add.partition_keys))  # what the daemon does
        assert isinstance(source_files_sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)
        write_csv(inbox / "b.csv", 5)
        os.utime(inbox / "a.csv", ns=(1, 1))  # a.csv changed (a new version): a new partition too
        again = source_files_sensor(dg.build_sensor_context(instance=instance))
        assert sorted(r.partition_key.split("~")[0] for r in again.run_requests) == ["a.csv", "b.csv"]


def test_stream_landing_sensor(tmp_path):
    from ecommerce_platform.ingestion.sensors import stream_landing_sensor

    stream, lake = _setup(tmp_path)
    resources = {"stream": stream, "lake": lake}
    assert isinstance(stream_landing_sensor(dg.build_sensor_context(resources=resources)), dg.SkipReason)
    produce(stream, source_records(write_csv(tmp_path / "t.csv", 20)))
    request = stream_landing_sensor(dg.build_sensor_context(resources=resources))
    assert isinstance(request, dg.RunRequest) and request.partition_key
    land_stream(stream, lake)
    assert isinstance(stream_landing_sensor(dg.build_sensor_context(resources=resources)), dg.SkipReason)


def test_job_and_sensor_definitions():
    from ecommerce_platform.definitions import defs

    job = defs.resolve_job_def("raw_s3_job")
    assert set(job.asset_layer.executable_asset_keys) == {dg.AssetKey("raw_s3")}
    for name in ("source_files_sensor", "stream_landing_sensor"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.STOPPED
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("clean_parquet")).parent_keys == {dg.AssetKey("raw_months")}
    assert graph.get(dg.AssetKey("raw_s3")).partitions_def.name == "raw_batches"


def _meta(result, key):
    for event in reversed(result.get_asset_materialization_events()):
        if event.asset_key.to_user_string() == key:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"no materialization of {key}")


def _stream_then_clean(instance):
    from ecommerce_platform.definitions import build_definitions
    from ecommerce_platform.runner import rebuild

    return rebuild(instance, build_definitions(layers=("ingestion", "lake")), select="raw_stream*",
                   log=lambda _m: None)


@pytest.mark.graph
def test_produce_20000_then_land_reaches_clean_parquet(tmp_path, real_source):
    """`ecommerce produce --count 20000`, then the landing: exactly 20,000 records in the raw zone,
    and the clean zone takes them (the stream as its only source)."""
    data_dir = tmp_path / "data"
    with platform_environment(data_dir, ECOMMERCE_SOURCE=str(real_source)), \
            dg.DagsterInstance.ephemeral() as instance:
        env = dict(os.environ)
        out = subprocess.run([sys.executable, "-m", "ecommerce_platform.cli", "produce", "--count", "20000"],
                             cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "sent 20,000 records" in out.stdout
        land, clean_run = _stream_then_clean(instance)
        assert _meta(land, "raw_stream")["records_landed"] == 20_000
        lines = landed_lines(data_dir / "lake")
        assert len(lines) == 20_000 and len({r["line_id"] for r in lines}) == 20_000
        assert {int(r["line_id"].split(":")[1]) for r in lines} == set(range(1, 20_001))
        clean = _meta(clean_run, "clean_parquet")
        assert clean["rows_in"] == 20_000
        assert clean["rows_in"] == clean["rows_clean"] + clean["rows_quarantined"] + clean["rows_duplicate"]
        import duckdb

        glob = str(data_dir / "lake" / "clean" / "transactions" / "**" / "*.parquet")
        sources = duckdb.sql(f"SELECT DISTINCT source FROM read_parquet('{glob}', hive_partitioning=true)").fetchall()
        assert sources == [("stream",)]
        # nothing new: no landing run, and the clean zone is reused
        (again,) = _stream_then_clean(instance)
        assert _meta(again, "clean_parquet")["months_rebuilt"] == 0


def test_a_line_arriving_by_both_routes_is_counted_once(tmp_path):
    from ecommerce_platform.resources import build_resources
    from ecommerce_platform_tests.conftest import build_lake

    src = write_csv(tmp_path / "t.csv", 600)
    data_dir = tmp_path / "data"
    with platform_environment(data_dir, ECOMMERCE_SOURCE=str(src)), dg.DagsterInstance.ephemeral() as instance:
        produce(build_resources()["stream"], source_records(src, count=250))  # the first 250 lines also stream in
        runs = build_lake(instance)
        assert [r.dagster_run.job_name for r in runs] == ["raw_s3_job", "raw_stream_job", "rebuild_from_clean"]
        clean = _meta(runs[-1], "clean_parquet")
        assert clean["rows_in"] == 850
        assert clean["rows_clean"] == 600 and clean["rows_duplicate"] == 250 and clean["rows_quarantined"] == 0
        import duckdb

        glob = str(data_dir / "lake" / "clean" / "transactions" / "**" / "*.parquet")
        assert duckdb.sql(f"SELECT count(*), count(DISTINCT (invoice_no, stock_code, description, quantity, "
                          f"invoice_ts, unit_price, customer_id, country)) FROM read_parquet('{glob}', hive_partitioning=true)"
                          ).fetchone() == (600, 600)
        for check in runs[-1].get_asset_check_evaluations():
            assert check.passed, check.check_name


@pytest.mark.aws
def test_aws_firehose_objects_reach_clean_and_raw_stream_only_reads_them(aws_env):
    """aws: Firehose's gzipped NDJSON objects (its own names) in S3: raw_stream does not drain Kinesis
    (Firehose does), it builds each day's copy; the clean zone takes them."""
    import gzip as gz

    from ecommerce_platform.resources import build_resources

    os.environ["ECOMMERCE_WAREHOUSE"] = "duckdb"
    try:
        lake = build_resources()["lake"]
        lines = [json.dumps({"InvoiceNo": f"9{i:05d}", "StockCode": "85123A", "Description": "X",
                             "Quantity": 2 + i, "InvoiceDate": "2011-03-01 10:00:00", "UnitPrice": 1.25,
                             "CustomerID": "17850", "Country": "France"}) for i in range(30)]
        lake.put_bytes("raw/stream/year=2026/month=01/day=02/ecommerce-transactions-to-s3-1-2026-01-02-10-00-00-abc.gz",
                       gz.compress(("\n".join(lines[:20]) + "\n").encode()))
        lake.put_bytes("raw/stream/year=2026/month=01/day=03/ecommerce-transactions-to-s3-1-2026-01-03-10-00-00-def.gz",
                       gz.compress(("\n".join(lines[20:]) + "\n").encode()))
        with dg.DagsterInstance.ephemeral() as instance:
            land, clean_run = _stream_then_clean(instance)
            meta = _meta(land, "raw_stream")
            assert meta["records"] == 30 and "records_landed" not in meta
            assert meta["days"] == {"2026-01-02": 20, "2026-01-03": 10}
            clean = _meta(clean_run, "clean_parquet")
            assert clean["rows_in"] == 30 and clean["rows_clean"] == 30
    finally:
        os.environ.pop("ECOMMERCE_WAREHOUSE", None)


def test_a_second_concurrent_landing_is_refused(tmp_path):
    from ecommerce_platform.resources.stream import StreamError

    stream, lake = _setup(tmp_path)
    with stream.consumer_lock(CONSUMER):
        with pytest.raises(StreamError, match="already running"):
            land_stream(stream, lake)
    assert land_stream(stream, lake).records_read == 0


@pytest.mark.aws
@pytest.mark.parametrize("firehose", [False, True], ids=["no-firehose", "firehose-not-delivering"])
def test_aws_raw_stream_reports_what_waits_in_kinesis(aws_env, firehose):
    """Kinesis without a Firehose delivering it is a dead end: raw_stream says what waits in the stream,
    names the delivery stream it expects, and warns (never a silent success with 0 objects)."""
    import logging
    import uuid

    import boto3

    from ecommerce_platform.ingestion.assets import raw_stream
    from ecommerce_platform.resources import build_resources

    name = f"tx-{uuid.uuid4().hex[:8]}"
    kinesis = boto3.client("kinesis", endpoint_url=aws_env["endpoint"], region_name="eu-west-1")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    fh_name = f"{name}-to-s3"
    if firehose:
        arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
        boto3.client("firehose", endpoint_url=aws_env["endpoint"], region_name="eu-west-1").create_delivery_stream(
            DeliveryStreamName=fh_name, DeliveryStreamType="KinesisStreamAsSource",
            KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": "arn:aws:iam::123456789012:role/x"},
            ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/x",
                                                "BucketARN": f"arn:aws:s3:::{aws_env['bucket']}",
                                                "BufferingHints": {"IntervalInSeconds": 60, "SizeInMBs": 5}})
    os.environ.update(ECOMMERCE_STREAM_NAME=name, ECOMMERCE_FIREHOSE_NAME=fh_name, ECOMMERCE_WAREHOUSE="duckdb")
    try:
        produce(build_resources()["stream"], source_records(write_csv(aws_env["data_dir"].parent / "t.csv", 30)))
        with dg.DagsterInstance.ephemeral() as instance:
            import datetime as dt

            today = dt.datetime.now(dt.timezone.utc).date().isoformat()
            result = dg.materialize([raw_stream], resources=build_resources(), instance=instance, partition_key=today)
            assert result.success
            meta = _meta(result, "raw_stream")
            assert meta["records_waiting"] == 30
            assert meta["firehose"]["status"] == ("MISSING" if not firehose else meta["firehose"]["status"])
            warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
            expected = "never reach the lake" if not firehose else "is " + repr(fh_name) + " delivering"
            assert any(expected in w for w in warnings), warnings
    finally:
        for k in ("ECOMMERCE_STREAM_NAME", "ECOMMERCE_FIREHOSE_NAME", "ECOMMERCE_WAREHOUSE"):
            os.environ.pop(k, None)
