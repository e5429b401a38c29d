"""A new batch is added to the months it touches without cleaning them again: only its lines are read,
typed and folded, and the files the months held are left as they were. Whatever path a month takes, the
clean zone must hold exactly what cleaning everything again from nothing gives (the reference here: a
second lake where the same batches are cleaned with ``incremental=False``), and a month whose new lines
include a line it already holds is cleaned again whole (the duplicate folds into the row it repeats)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import pytest

from ecommerce_platform.ingestion.raw import ResolvedSource, land_source
from ecommerce_platform.lake import clean as clean_mod
from ecommerce_platform.lake.clean import month_results, run_clean
from ecommerce_platform.resources.lake import LocalLake
from ecommerce_platform.resources.warehouse import DuckDBWarehouse
from ecommerce_platform_tests.ingestion.test_hostile_csv import good_rows, write_csv

KEY = "invoice_no, stock_code, description, quantity, invoice_ts, unit_price, customer_id, country"


def _batch_a(path: Path) -> Path:
    """3,000 lines over 12 months of 2011, with 20 exact duplicates and 2 rejected lines."""
    rows = good_rows(3000, seed=5)
    rows[10][3] = "abc"
    rows[11][5] = "-3"
    rows += [list(rows[i]) for i in range(0, 60, 3)]
    return write_csv(path, rows)


def _batch_b(path: Path) -> Path:
    """A day's export: 400 new invoices on 2011-11-30 and 2011-12-01, 10 of them twice, 1 rejected."""
    rows = []
    for i, r in enumerate(good_rows(400, seed=9)):
        r[0] = str(700000 + i // 4)
        r[4] = "2011-11-30 10:00:00" if i % 2 else "2011-12-01 09:30:00"
        rows.append(r)
    rows[5][3] = "1.5"  # non-integer quantity
    rows += [list(rows[i]) for i in range(20, 40, 2)]
    return write_csv(path, rows)


def _lake(work: Path) -> tuple[LocalLake, DuckDBWarehouse]:
    lake = LocalLake(path=str(work / "lake"))
    return lake, DuckDBWarehouse(lake=lake, path=str(work / "warehouse.duckdb"), memory_limit="1GB")


def _land(lake, path: Path, day: int):  # noqa: ANN001, ANN202
    return land_source(lake, ResolvedSource(path, "env", "test"), ingest_date=dt.date(2024, 5, day))


def _digest(root: str) -> tuple:
    """What the clean zone and the quarantine hold, independent of files and row order."""
    con = duckdb.connect()
    clean = con.execute(
        f"SELECT count(*), sum(source_lines), sum(hash({KEY})), count(DISTINCT ({KEY})), "
        f"sum(CAST(line_total AS DECIMAL(18, 2))), count_if(is_sale) "
        f"FROM read_parquet('{root}/clean/transactions/**/*.parquet', hive_partitioning=true)").fetchone()
    q = con.execute(f"SELECT count(*), sum(hash(reason, regexp_replace(source_file, '^.*/raw/', ''), source_row)) "
                    f"FROM read_parquet("
                    f"'{root}/quarantine/transactions/**/*.parquet', hive_partitioning=true)").fetchone()
    return clean, q


def _files(root: str) -> dict[str, tuple[int, int]]:
    """Clean and quarantine files by path -> (inode, size)."""
    out = {}
    for zone in ("clean", "quarantine"):
        for p in Path(root, zone).rglob("*.parquet"):
            st = p.stat()
            out[p.relative_to(root).as_posix()] = (st.st_ino, st.st_size)
    return out


def _reference(tmp_path: Path, *files: Path) -> tuple:
    """The same batches landed in a new lake and every month cleaned from nothing."""
    lake, warehouse = _lake(tmp_path / "reference")
    for day, f in enumerate(files, start=1):
        _land(lake, f, day)
    result = run_clean(warehouse, incremental=False)
    return _digest(lake.root), result


def test_a_new_batch_is_added_to_its_months_and_the_rest_is_left_as_it_was(tmp_path):
    a, b = _batch_a(tmp_path / "a.csv"), _batch_b(tmp_path / "b.csv")
    lake, warehouse = _lake(tmp_path / "work")
    _land(lake, a, 1)
    run_clean(warehouse)
    before = _files(lake.root)
    landed = _land(lake, b, 2)
    assert sorted(landed.months) == ["2011-11", "2011-12"]

    result = run_clean(warehouse, sorted(landed.months))
    assert {m.month: m.mode for m in result.months} == {"2011-11": "append", "2011-12": "append"}
    # the run read the new batch only: 410 lines, 10 of them copies of another, 1 rejected
    assert result.rows_read == 410
    after = _files(lake.root)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing it held was rewritten
    new = sorted(set(after) - set(before))
    assert len([k for k in new if k.startswith("clean/")]) == 2 and len(new) == 3

    reference, ref_result = _reference(tmp_path, a, b)
    assert _digest(lake.root) == reference
    recorded = month_results(lake)
    for m in ref_result.months:
        got = recorded[m.month]
        assert (got.rows_in, got.rows_clean, got.rows_quarantined, got.rows_duplicate,
                got.quarantine_by_reason) == (m.rows_in, m.rows_clean, m.rows_quarantined, m.rows_duplicate,
                                              m.quarantine_by_reason), m.month
    assert sum(recorded[m].rows_duplicate for m in ("2011-11", "2011-12")) == (
        sum(m.rows_duplicate for m in ref_result.months if m.month in ("2011-11", "2011-12")))

    import dagster as dg

    from ecommerce_platform.lake.assets import clean_reconciliation

    check = clean_reconciliation(dg.build_asset_check_context(), warehouse)
    assert check.passed and check.metadata["duplicates_left_in_clean"].value == 0


def test_a_line_the_month_already_holds_makes_the_month_clean_again_whole(tmp_path):
    a = _batch_a(tmp_path / "a.csv")
    lake, warehouse = _lake(tmp_path / "work")
    _land(lake, a, 1)
    run_clean(warehouse)
    march = [r for r in good_rows(3000, seed=5) if r[4].startswith("2011-03")]
    repeat = [list(r) for r in march[:5]]  # already in the lake: each must fold into its clean row
    fresh = []
    for i, r in enumerate(good_rows(50, seed=11)):
        r[0], r[4] = str(800000 + i), "2011-04-15 12:00:00"
        fresh.append(r)
    c = write_csv(tmp_path / "c.csv", repeat + fresh)
    landed = _land(lake, c, 2)
    result = run_clean(warehouse, sorted(landed.months))
    assert {m.month: m.mode for m in result.months} == {"2011-03": "full", "2011-04": "append"}

    reference, _ = _reference(tmp_path, a, c)
    assert _digest(lake.root) == reference
    con = duckdb.connect()
    folded = con.execute(
        f"SELECT count(*) FROM read_parquet('{lake.root}/clean/transactions/**/*.parquet', hive_partitioning=true) "
        f"WHERE invoice_no IN {tuple(r[0] for r in repeat)} AND source_lines = 2").fetchone()[0]
    assert folded == 5


def test_a_changed_transform_or_a_forced_run_cleans_the_months_again(tmp_path, monkeypatch):
    a, b = _batch_a(tmp_path / "a.csv"), _batch_b(tmp_path / "b.csv")
    lake, warehouse = _lake(tmp_path / "work")
    _land(lake, a, 1)
    run_clean(warehouse)
    months = sorted(_land(lake, b, 2).months)
    forced = run_clean(warehouse, months, incremental=False)
    assert {m.mode for m in forced.months} == {"full"}
    # one more batch: the rules changed since the months were cleaned
    d = _batch_b(tmp_path / "d.csv")
    rows = d.read_text().replace("7000", "7100")
    d.write_text(rows)
    months = sorted(_land(lake, d, 3).months)
    real = clean_mod.transform_version
    monkeypatch.setattr(clean_mod, "transform_version", lambda settings=None: "changed-" + real(settings))
    changed = run_clean(warehouse, months)
    assert {m.mode for m in changed.months} == {"full"}
    reference, _ = _reference(tmp_path, a, b, d)
    assert _digest(lake.root) == reference


@pytest.mark.aws
def test_a_new_batch_is_added_on_s3(aws_env, tmp_path):
    """The same addition in the aws deployment (S3 on moto, DuckDB over httpfs)."""
    from ecommerce_platform.resources import build_resources

    os.environ["ECOMMERCE_WAREHOUSE"] = "duckdb"
    a, b = _batch_a(tmp_path / "a.csv"), _batch_b(tmp_path / "b.csv")
    resources = build_resources()
    lake, warehouse = resources["lake"], resources["warehouse"]
    _land(lake, a, 1)
    run_clean(warehouse)
    held = set(lake.list("clean/transactions"))
    months = sorted(_land(lake, b, 2).months)
    result = run_clean(warehouse, months)
    assert {m.mode for m in result.months} == {"append"}
    now = set(lake.list("clean/transactions"))
    assert held < now and len(now - held) == 2 and not [k for k in lake.list("clean") if "/_staging/" in k]
    counts = warehouse.query_df(f"SELECT count(*) AS n, sum(source_lines) AS s, count(DISTINCT ({KEY})) AS d "
                                "FROM transactions").iloc[0]
    ref = _reference(tmp_path, a, b)[1]
    assert (int(counts["n"]), int(counts["s"]), int(counts["d"])) == (
        ref.rows_clean, ref.rows_clean + ref.rows_duplicate, ref.rows_clean)


def test_a_month_reads_only_its_own_file_of_a_batch_and_older_unsplit_copies_still_clean(tmp_path):
    """A batch's copy is one file per invoice month, so cleaning some months reads only their lines
    (at 100x, a pass per month read the whole 54 M-line copy while DuckDB's filter pushdown was off).
    A lake landed before copies were split (one file for every month) still cleans to the same zone."""
    import json

    import pyarrow.parquet as pq

    from ecommerce_platform.ingestion.months import month_inputs
    from ecommerce_platform.ingestion.raw import MANIFEST_PREFIX

    a = _batch_a(tmp_path / "a.csv")
    lake, warehouse = _lake(tmp_path / "split")
    landed = _land(lake, a, 1)
    inputs = month_inputs(lake)
    assert sorted(inputs) == sorted(landed.months) and len(inputs) == 12
    for month, inp in inputs.items():
        assert len(inp.copies) == 1
        rows = pq.read_table(Path(lake.root) / inp.copies[0], columns=["partition_month"]).column(0).to_pylist()
        assert rows == [month] * landed.months[month] == [month] * inp.rows
    run_clean(warehouse, incremental=False)

    # the same batch as an older lake holds it: one copy file with every month's lines
    old_lake, old_warehouse = _lake(tmp_path / "unsplit")
    old = _land(old_lake, a, 1)
    merged = pq.ParquetDataset([str(Path(old_lake.root) / k) for k in old.normalized]).read()
    for k in old.normalized:
        os.remove(Path(old_lake.root) / k)
    single = old.normalized[0].rsplit("/", 1)[0] + "/part-00000.parquet"
    pq.write_table(merged, Path(old_lake.root) / single)
    key = f"{MANIFEST_PREFIX}/{old.sha256}.json"
    manifest = json.loads(old_lake.get_text(key))
    manifest["normalized"] = [single]
    old_lake.put_text(key, json.dumps(manifest))
    assert all(inp.copies == [single] for inp in month_inputs(old_lake).values())
    run_clean(old_warehouse, incremental=False)
    assert _digest(old_lake.root) == _digest(lake.root)

    # an old unsplit copy beside a new split one: the months they share are read from both, filtered
    b = _batch_b(tmp_path / "b.csv")
    _land(old_lake, b, 2)
    nov = month_inputs(old_lake)["2011-11"]
    assert single in nov.copies and len(nov.copies) == 2
    assert "partition_month IN" in clean_mod.copies_relation(old_warehouse, [nov])
    run_clean(old_warehouse, incremental=False)
    assert _digest(old_lake.root) == _reference(tmp_path, a, b)[0]
