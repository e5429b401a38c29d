"""One contract, two implementations: the embedded durable stream and Kinesis (moto's server)."""

import uuid

import pytest

from ecommerce_platform.resources.stream import (
    KinesisStream,
    LocalStream,
    hash_key,
    shard_id_of,
    shard_index,
)


@pytest.fixture(params=["local", "kinesis"])
def stream(request, tmp_path):
    if request.param == "local":
        s = LocalStream(path=str(tmp_path / "stream"), name="contract", shards=2)
        s.ensure()
        return s
    endpoint = request.getfixturevalue("moto_server")
    import os

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    import boto3

    bucket = f"ckpt-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    name = f"contract-{uuid.uuid4().hex[:8]}"
    # the stream exists before the platform uses it (the CDK app provisions it; never the platform)
    kinesis = boto3.client("kinesis", endpoint_url=endpoint, region_name="eu-west-1")
    kinesis.create_stream(StreamName=name, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    s = KinesisStream(name=name, region="eu-west-1", endpoint_url=endpoint, checkpoint_bucket=bucket)
    s.ensure()
    return s


@pytest.mark.aws
def test_a_mistyped_kinesis_stream_is_an_error_never_created(moto_server, monkeypatch):
    """`produce` with ECOMMERCE_STREAM_NAME misspelt: a clear error naming the stream and the setting,
    and no stream appears (records sent there would never reach the lake)."""
    import boto3

    from ecommerce_platform.resources.stream import StreamError

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    name = f"ecommerce-transactons-{uuid.uuid4().hex[:6]}"
    s = KinesisStream(name=name, region="eu-west-1", endpoint_url=moto_server, checkpoint_bucket="x")
    with pytest.raises(StreamError, match=f"{name}.*does not exist.*ECOMMERCE_STREAM_NAME"):
        s.ensure(1)
    kinesis = boto3.client("kinesis", endpoint_url=moto_server, region_name="eu-west-1")
    assert name not in kinesis.list_streams()["StreamNames"]


def _entries(n, keys=("A", "B", "C", "D", "E")):
    return [(f'{{"i":{i}}}\n'.encode(), keys[i % len(keys)]) for i in range(n)]


def _drain(stream, shard, it_type="TRIM_HORIZON", seq=None):
    it = stream.shard_iterator(shard, it_type, seq)
    out = []
    while True:
        recs, it = stream.get_records(it, 100)
        if not recs:
            return out
        out += recs


def test_put_records_per_entry_results_and_ordering(stream):
    results = stream.put_records(_entries(50))
    assert len(results) == 50 and all(r.ok and r.sequence_number and r.shard_id for r in results)
    shards = stream.shard_ids()
    assert len(shards) == 2
    by_key: dict = {}
    for (data, key), r in zip(_entries(50), results):
        by_key.setdefault(key, set()).add(r.shard_id)
    assert all(len(v) == 1 for v in by_key.values())  # a key always maps to one shard
    got = [r for s in shards for r in _drain(stream, s)]
    assert sorted(r.data for r in got) == sorted(d for d, _ in _entries(50))
    for s in shards:
        seqs = [int(r.sequence_number) for r in _drain(stream, s)]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # within a key, records come back in the order they were put
    per_key = {}
    for s in shards:
        for r in _drain(stream, s):
            per_key.setdefault(r.partition_key, []).append(int(r.data[5:-2]))
    assert all(v == sorted(v) for v in per_key.values())
    assert all(r.arrival > 1.6e9 for r in got)


def test_iterator_types(stream):
    results = stream.put_records([(f"{i}".encode(), "same-key") for i in range(10)])
    shard = results[0].shard_id
    seqs = [r.sequence_number for r in results]
    assert [r.data for r in _drain(stream, shard, "AT_SEQUENCE_NUMBER", seqs[3])] == [f"{i}".encode() for i in range(3, 10)]
    assert [r.data for r in _drain(stream, shard, "AFTER_SEQUENCE_NUMBER", seqs[3])] == [f"{i}".encode() for i in range(4, 10)]
    latest = stream.shard_iterator(shard, "LATEST")
    recs, latest = stream.get_records(latest, 100)
    assert recs == []
    stream.put_records([(b"new", "same-key")])
    recs, _ = stream.get_records(latest, 100)
    assert [r.data for r in recs] == [b"new"]


def test_checkpoints_are_durable(stream):
    assert stream.read_checkpoint("landing") == {}
    stream.write_checkpoint("landing", {"shards": {"s": "42"}})
    assert stream.read_checkpoint("landing") == {"shards": {"s": "42"}}
    assert stream.read_checkpoint("other") == {}


def test_shard_choice_is_kinesis_md5_hash_range(stream, moto_server):
    """Both implementations put a key in the shard whose hash-key range holds MD5(key)."""
    keys = [f"inv-{i}" for i in range(40)]
    results = stream.put_records([(b"x", k) for k in keys])
    if isinstance(stream, LocalStream):
        expected = [shard_id_of(shard_index(k, 2)) for k in keys]
    else:
        import boto3

        desc = boto3.client("kinesis", endpoint_url=moto_server, region_name="eu-west-1").list_shards(
            StreamName=stream.stream_name)["Shards"]
        ranges = [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]), s["ShardId"]) for s in desc]
        expected = [next(sid for lo, hi, sid in ranges if lo <= hash_key(k) <= hi) for k in keys]
    assert [r.shard_id for r in results] == expected
