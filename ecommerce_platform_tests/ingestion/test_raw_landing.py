"""The raw zone: byte-for-byte landing under the ingest-date partition, the manifest, and idempotency
by content hash (the same content under another name is a no-op)."""

from __future__ import annotations

import datetime as dt
import json
import shutil

from ecommerce_platform.ingestion.raw import MANIFEST_PREFIX, ResolvedSource, land_source, landed_batches
from ecommerce_platform.ingestion.source import file_sha256
from ecommerce_platform.resources.lake import LocalLake
from ecommerce_platform_tests.ingestion.test_source_formats import ROWS, _frame, _write_xlsx


def _csv(path):
    _frame(date_fmt="%Y-%m-%d %H:%M:%S").to_csv(path, index=False)
    return path


def test_landing_path_is_partitioned_by_ingest_date_and_byte_identical(tmp_path):
    src = _csv(tmp_path / "orders.csv")
    lake = LocalLake(path=str(tmp_path / "lake"))
    landed = land_source(lake, ResolvedSource(src, "env", "t"), ingest_date=dt.date(2023, 2, 28))
    sha = file_sha256(src)
    assert landed.key == f"raw/batch/ingest_date=2023-02-28/{sha[:12]}/orders.csv"
    assert landed.uri == str((tmp_path / "lake" / landed.key).resolve())
    assert (tmp_path / "lake" / landed.key).read_bytes() == src.read_bytes()
    assert (landed.noop, landed.rows, landed.format, landed.sha256) == (False, len(ROWS), "csv", sha)
    manifest = json.loads(lake.get_text(f"{MANIFEST_PREFIX}/{sha}.json"))
    assert manifest["key"] == landed.key and manifest["spec"]["rows"] == len(ROWS)
    assert [b.key for b in landed_batches(lake)] == [landed.key]


def test_same_content_under_another_name_is_a_noop(tmp_path):
    src = _csv(tmp_path / "orders.csv")
    copy = tmp_path / "renamed copy.csv"
    shutil.copyfile(src, copy)
    lake = LocalLake(path=str(tmp_path / "lake"))
    first = land_source(lake, ResolvedSource(src, "env", "t"), ingest_date=dt.date(2023, 2, 28))
    files_before = sorted(lake.list("raw"))
    again = land_source(lake, ResolvedSource(copy, "env", "t"), ingest_date=dt.date(2024, 1, 1))
    assert again.noop is True
    assert (again.key, again.sha256) == (first.key, first.sha256)  # the first landing stands
    assert sorted(lake.list("raw")) == files_before
    assert len(landed_batches(lake)) == 1


def test_different_content_lands_as_a_second_batch(tmp_path):
    lake = LocalLake(path=str(tmp_path / "lake"))
    a = land_source(lake, ResolvedSource(_csv(tmp_path / "a.csv"), "env", "t"), ingest_date=dt.date(2023, 1, 1))
    other = tmp_path / "b.csv"
    _frame(date_fmt="%Y-%m-%d %H:%M:%S").iloc[:2].to_csv(other, index=False)
    b = land_source(lake, ResolvedSource(other, "env", "t"), ingest_date=dt.date(2023, 1, 2))
    assert not b.noop and a.sha256 != b.sha256
    assert [x.ingest_date for x in landed_batches(lake)] == ["2023-01-01", "2023-01-02"]


def test_every_batch_gets_a_canonical_parquet_copy_the_engines_read(tmp_path):
    src = _csv(tmp_path / "orders.csv")
    lake = LocalLake(path=str(tmp_path / "lake"))
    landed = land_source(lake, ResolvedSource(src, "env", "t"), ingest_date=dt.date(2023, 2, 28))
    sha = file_sha256(src)
    months = sorted({r[4].strftime("%Y-%m") for r in ROWS})
    # one file per invoice month, so that cleaning some months reads only their lines
    assert landed.normalized == [f"raw/normalized/batch/{sha[:12]}/part-{m}-00000.parquet" for m in months]
    import pyarrow.parquet as pq

    per_file = {k: pq.read_table(tmp_path / "lake" / k).to_pylist() for k in landed.normalized}
    for key, rows in per_file.items():
        assert {r["partition_month"] for r in rows} == {key.rsplit("/part-", 1)[1][:7]}
    copy = sorted((r for rows in per_file.values() for r in rows), key=lambda r: r["source_row"])
    assert [r["source_row"] for r in copy] == list(range(1, len(ROWS) + 1))
    assert [r["source_line"] for r in copy] == list(range(2, len(ROWS) + 2))  # the header is line 1
    assert [r["invoice_no"] for r in copy] == [r[0] for r in ROWS]
    assert all(r["malformed"] is None for r in copy)
    assert [r["quantity_num"] for r in copy] == [float(r[3]) for r in ROWS]
    assert [r["invoice_ts"] for r in copy] == [r[4] for r in ROWS]
    assert [r["partition_month"] for r in copy] == [r[4].strftime("%Y-%m") for r in ROWS]
    assert landed.months == {r[4].strftime("%Y-%m"): 1 for r in ROWS}
    assert landed.reader == {"records": len(ROWS), "blank_lines": 0, "malformed": 0, "too_long": 0,
                             "nul_chars_removed": 0}


def test_xlsx_lands_as_is_plus_a_text_parquet_conversion(tmp_path):
    src = _write_xlsx(tmp_path / "Online Retail.xlsx", _frame())
    lake = LocalLake(path=str(tmp_path / "lake"))
    landed = land_source(lake, ResolvedSource(src, "env", "t"), ingest_date=dt.date(2023, 5, 1))
    sha = file_sha256(src)
    assert landed.key == f"raw/batch/ingest_date=2023-05-01/{sha[:12]}/Online Retail.xlsx"
    assert (tmp_path / "lake" / landed.key).read_bytes() == src.read_bytes()
    assert landed.normalized == [f"raw/normalized/batch/{sha[:12]}/part-{m}-00000.parquet"
                                 for m in sorted({r[4].strftime("%Y-%m") for r in ROWS})]
    assert landed.rows == len(ROWS) and all(lake.exists(k) for k in landed.normalized)
    assert land_source(lake, ResolvedSource(src, "env", "t")).noop is True
