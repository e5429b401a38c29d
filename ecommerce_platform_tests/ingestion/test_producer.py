"""The stream producer: record shape, batching, retries of throttled entries, pacing, replay, Ctrl-C."""

import json
import os
import re
import signal
import subprocess
import sys
import time

from ecommerce_platform.ingestion.producer import produce, source_records
from ecommerce_platform.resources.stream import LocalStream, ThrottlingStream
from ecommerce_platform_tests.conftest import REPO_ROOT, platform_environment

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def write_csv(path, n, shuffle_time=False):
    lines = [HEADER]
    for i in range(n):
        minute = (n - i) if shuffle_time else i
        day, m = divmod(minute, 60 * 24)
        hh, mm = divmod(m, 60)
        lines.append(f"{536000 + i // 3},{85000 + i % 11},ITEM {i % 11},{1 + i % 5},"
                     f"{1 + day:02d}/12/2010 {hh:02d}:{mm:02d},{1 + i % 7}.25,{17000 + i % 13},United Kingdom\n")
    path.write_text("".join(lines))
    return path


def read_all(stream):
    return [r for sid in stream.shard_ids() for page in stream.read_shard(sid) for r in page]


def test_records_are_ndjson_with_uci_names_and_line_id(tmp_path, real_source):
    recs = list(source_records(real_source, count=3))
    assert len(recs) == 3
    for i, rec in enumerate(recs, start=1):
        assert rec.data.endswith(b"\n") and rec.data.count(b"\n") == 1
        obj = json.loads(rec.data)
        assert list(obj) == ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
                             "UnitPrice", "CustomerID", "Country", "line_id"]
        assert obj["line_id"] == f"0a3bc1acf506:{i}"
        assert rec.key == obj["InvoiceNo"] == "536365"
    assert json.loads(recs[0].data)["InvoiceDate"] == "2010-12-01 08:26:00"


def test_throttled_entries_are_retried_until_every_record_is_delivered_once(tmp_path):
    src = write_csv(tmp_path / "t.csv", 3000)
    stream = LocalStream(path=str(tmp_path / "stream"), shards=3)
    stream.ensure()
    throttled = ThrottlingStream(stream, fraction=0.3, seed=1)
    result = produce(throttled, source_records(src), base_delay=0.001, max_delay=0.01, seed=1)
    assert result.sent == 3000 and result.rejected == 0
    assert throttled.throttled > 900 and result.retried_entries == throttled.throttled
    assert result.batches == 6 and result.put_calls > 6
    ids = [json.loads(r.data)["line_id"] for r in read_all(stream)]
    assert len(ids) == 3000 and len(set(ids)) == 3000


def test_rate_paces_the_producer(tmp_path):
    src = write_csv(tmp_path / "t.csv", 120)
    stream = LocalStream(path=str(tmp_path / "stream"), shards=1)
    t0 = time.monotonic()
    result = produce(stream, source_records(src), rate=400)
    assert result.sent == 120 and time.monotonic() - t0 >= 119 / 400
    assert result.batches > 1  # sent as records became due, not in one burst


def test_replay_sends_in_invoice_time_order(tmp_path):
    src = write_csv(tmp_path / "t.csv", 50, shuffle_time=True)  # file order is reverse time order
    stream = LocalStream(path=str(tmp_path / "stream"), shards=1)
    result = produce(stream, source_records(src, replay=True), replay_speed=60 * 60 * 24 * 30)
    assert result.sent == 50
    rows = [int(json.loads(r.data)["line_id"].split(":")[1]) for r in read_all(stream)]
    assert rows == list(range(50, 0, -1))


def test_ctrl_c_stops_cleanly_and_reports_what_was_sent(tmp_path):
    src = write_csv(tmp_path / "t.csv", 5000)
    data_dir = tmp_path / "data"
    with platform_environment(data_dir, ECOMMERCE_SOURCE=str(src)):
        env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecommerce_platform.cli", "produce", "--rate", "300", "--no-progress"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    stream = LocalStream(path=str(data_dir / "stream"), name="ecommerce-transactions")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (data_dir / "stream" / "ecommerce-transactions" / "stream.json").exists() and len(read_all(stream)) >= 100:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    m = re.search(r"interrupted \(Ctrl-C\): sent ([\d,]+) records", out)
    assert m, out
    sent = int(m.group(1).replace(",", ""))
    records = read_all(stream)
    assert 100 <= sent < 5000 and len(records) == sent
    rows = sorted(int(json.loads(r.data)["line_id"].split(":")[1]) for r in records)
    assert rows == list(range(1, sent + 1))  # the first `sent` lines, each once
