"""The embedded stream's durability: torn tails, corruption, retention, segments, writer + reader processes."""

import subprocess
import sys
import time

import pytest

from ecommerce_platform.resources import stream as stream_mod
from ecommerce_platform.resources.stream import LocalStream, StreamError


def _all(s):
    return [r for sid in s.shard_ids() for page in s.read_shard(sid) for r in page]


def _new(tmp_path, **kw):
    stream_mod._LOGS.clear()  # a new process' view (no cached writer state)
    s = LocalStream(path=str(tmp_path), name="t", shards=1, **kw)
    s.ensure()
    return s


def test_torn_tail_is_truncated_on_open_and_earlier_records_survive(tmp_path):
    s = _new(tmp_path)
    s.put_records([(f"r{i}".encode(), "k") for i in range(5)])
    seg = next((tmp_path / "t" / "shardId-000000000000").glob("seg-*.log"))
    good_size = seg.stat().st_size
    with open(seg, "ab") as fh:  # a crash mid-append: a frame header promising more than was written
        fh.write(b"\x40\x00\x00\x00\x12\x34\x56\x78partial-body")
    s = _new(tmp_path)
    assert [r.data for r in _all(s)] == [f"r{i}".encode() for i in range(5)]  # readers stop at the tail
    res = s.put_records([(b"after", "k")])  # the writer truncates the torn tail, then appends
    assert res[0].sequence_number == "%020d" % 6
    assert seg.stat().st_size > good_size
    assert [r.data for r in _all(s)] == [*(f"r{i}".encode() for i in range(5)), b"after"]


def test_corrupt_record_is_detected_by_crc(tmp_path):
    s = _new(tmp_path)
    s.put_records([(f"r{i}".encode(), "k") for i in range(3)])
    seg = next((tmp_path / "t" / "shardId-000000000000").glob("seg-*.log"))
    data = bytearray(seg.read_bytes())
    data[-1] ^= 0xFF  # flip a bit of the last record's payload
    seg.write_bytes(bytes(data))
    s = _new(tmp_path)
    assert [r.data for r in _all(s)] == [b"r0", b"r1"]
    s.put_records([(b"r2-again", "k")])
    assert [r.data for r in _all(s)] == [b"r0", b"r1", b"r2-again"]


def test_retention_hides_and_trims_old_records(tmp_path, monkeypatch):
    monkeypatch.setattr(stream_mod, "_SEGMENT_BYTES", 200)  # tiny segments so whole ones can expire
    s = _new(tmp_path, retention_hours=1.0)
    real = time.time
    monkeypatch.setattr(stream_mod.time, "time", lambda: real() - 7200)  # written two hours ago
    s.put_records([(b"old-%d" % i, "k") for i in range(20)])
    monkeypatch.setattr(stream_mod.time, "time", real)
    s.put_records([(b"new", "k")])
    assert [r.data for r in _all(s)] == [b"new"]  # expired records are invisible
    shard_dir = tmp_path / "t" / "shardId-000000000000"
    before = len(list(shard_dir.glob("seg-*.log")))
    assert s.trim() >= 1
    assert len(list(shard_dir.glob("seg-*.log"))) < before
    s = _new(tmp_path, retention_hours=1.0)
    assert s.put_records([(b"next", "k")])[0].sequence_number == "%020d" % 22  # numbering continues
    assert [r.data for r in _all(s)] == [b"new", b"next"]


def test_segments_roll_and_iterators_cross_them(tmp_path, monkeypatch):
    monkeypatch.setattr(stream_mod, "_SEGMENT_BYTES", 300)
    s = _new(tmp_path)
    for i in range(30):
        s.put_records([(b"rec-%03d" % i, "k")])
    assert len(list((tmp_path / "t" / "shardId-000000000000").glob("seg-*.log"))) > 3
    assert [r.data for r in _all(s)] == [b"rec-%03d" % i for i in range(30)]
    it = s.shard_iterator("shardId-000000000000", "AT_SEQUENCE_NUMBER", "17")
    recs, it = s.get_records(it, 5)
    assert [r.data for r in recs] == [b"rec-%03d" % i for i in range(16, 21)]


def test_bad_arguments_are_clear(tmp_path):
    s = _new(tmp_path)
    with pytest.raises(StreamError, match="at most 500"):
        s.put_records([(b"x", "k")] * 501)
    with pytest.raises(StreamError, match="no shard"):
        s.shard_iterator("shardId-000000000009", "TRIM_HORIZON")
    assert s.put_records([(b"x", "")])[0].error_code == "InvalidArgumentException"


WRITER = """
import sys
from ecommerce_platform.resources.stream import LocalStream
s = LocalStream(path=sys.argv[1], name="t", shards=2)
s.ensure()
for b in range(40):
    s.put_records([(b"%d" % (b * 50 + i), "key-%d" % (i % 7)) for i in range(50)])
"""


def test_one_writer_process_and_one_reader_process(tmp_path):
    LocalStream(path=str(tmp_path), name="t", shards=2).ensure()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)])
    s = LocalStream(path=str(tmp_path), name="t", shards=2)
    seen, positions = [], {sid: None for sid in s.shard_ids()}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = writer.poll() is not None
        for sid in positions:
            for page in s.read_shard(sid, after=positions[sid]):
                seen += page
                positions[sid] = page[-1].sequence_number
        if done and len(seen) >= 2000:
            break
    assert writer.returncode == 0
    assert sorted(int(r.data) for r in seen) == list(range(2000))  # each once, none torn
