"""The clean zone can be trusted: the counts are measured, not derived (rows lost or invented inside the
SQL make the run fail and publish nothing, and the reconciliation check fail), both ways an engine can run
the transform give the same result (the Athena way is executed on DuckDB here), and a clean run killed
with SIGKILL at any point leaves no debris: the next run gives exactly the output of an uninterrupted one."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from ecommerce_platform.faults import FAULT_ENV
from ecommerce_platform.lake import clean as clean_mod
from ecommerce_platform.lake.clean import ReconciliationError, month_results, run_clean
from ecommerce_platform_tests.conftest import REPO_ROOT
from ecommerce_platform_tests.ingestion.test_hostile_csv import good_rows, write_csv
from ecommerce_platform_tests.ingestion.test_source_formats import clean_file


def _lake_files(lake_dir: Path) -> dict[str, bytes]:
    return {p.relative_to(lake_dir).as_posix(): p.read_bytes() for p in lake_dir.rglob("*") if p.is_file()}


def _clean_digest(lake_dir: Path) -> tuple:
    """What the clean zone holds, independent of file layout and row order."""
    con = duckdb.connect()
    clean = con.execute(
        f"SELECT count(*), sum(source_lines), sum(hash(invoice_no, stock_code, description, quantity, invoice_ts, unit_price, customer_id, country)), sum(CAST(line_total AS DECIMAL(18, 2))) FROM read_parquet("
        f"'{lake_dir}/clean/transactions/**/*.parquet', hive_partitioning=true)").fetchone()
    q = con.execute(f"SELECT count(*), sum(hash(reason || source_row)) FROM read_parquet("
                    f"'{lake_dir}/quarantine/transactions/**/*.parquet', hive_partitioning=true)").fetchone()
    return clean, q


def _mixed_file(path: Path) -> Path:
    """Sales over three months, guests, exact duplicates and a few rejected lines."""
    rows = good_rows(3000, seed=5)
    for r in rows[::7]:
        r[6] = ""  # guests
    rows[10][3] = "abc"
    rows[11][5] = "-3"
    rows += [list(rows[i]) for i in range(0, 60, 3)]  # 20 exact duplicates
    return write_csv(path, rows)


@pytest.mark.parametrize("intermediates", [False, True], ids=["streaming", "athena-shape"])
def test_rows_lost_inside_the_sql_fail_the_run_and_publish_nothing(tmp_path, monkeypatch, intermediates):
    src = _mixed_file(tmp_path / "mixed.csv")
    result, lake, warehouse = clean_file(src, tmp_path / "work", materialize_intermediates=intermediates)
    assert result.rows_in == 3020 == result.rows_clean + result.rows_quarantined + result.rows_duplicate
    before = _lake_files(Path(lake.root))
    real = clean_mod.render_file

    def losing_guests(name, *args, **kwargs):  # a defect: the clean output drops every guest line
        sql = real(name, *args, **kwargs)
        return f"SELECT * FROM ({sql}) AS s WHERE customer_id IS NOT NULL" if name == "clean_transactions.sql" else sql

    monkeypatch.setattr(clean_mod, "render_file", losing_guests)
    # streaming: the per-month balance fails; Athena's shape: its reconciliation query disagrees first
    with pytest.raises(ReconciliationError, match="not accounted for|reconciliation query counts"):
        run_clean(warehouse)
    assert _lake_files(Path(lake.root)) == before  # nothing published, no debris


@pytest.mark.parametrize("defect", ["drop_guests", "invent_rows"])
def test_the_reconciliation_check_sees_rows_lost_or_invented(tmp_path, defect):
    """Published tables altered behind the transform's back: the blocking check recounts and fails."""
    from ecommerce_platform.lake.assets import clean_reconciliation

    src = _mixed_file(tmp_path / "mixed.csv")
    _, lake, warehouse = clean_file(src, tmp_path / "work")
    assert clean_reconciliation(dg.build_asset_check_context(), warehouse).passed
    part = next((Path(lake.root) / "clean" / "transactions").rglob("*.parquet"))
    df = pd.read_parquet(part)
    df = df[df["customer_id"].notna()] if defect == "drop_guests" else pd.concat([df, df.head(3)])
    df.to_parquet(part, index=False)
    result = clean_reconciliation(dg.build_asset_check_context(), warehouse)
    assert not result.passed
    assert result.metadata["unbalanced_months"].value
    # three rows copied: three rows whose identity (schema.CLEAN_KEY) is already in the table
    assert result.metadata["duplicates_left_in_clean"].value == (3 if defect == "invent_rows" else 0)


@pytest.mark.parametrize("column, allowed", [("description", True), ("customer_id", True), ("is_sale", False),
                                             ("source", False), ("unit_price", False)])
def test_the_not_null_check_allows_nulls_only_where_a_line_may_lack_them(tmp_path, column, allowed):
    """A null written behind the transform's back: a product name or a customer id may be missing (the
    data set has such lines); a flag, the route or a price may not, and the blocking check names it."""
    from ecommerce_platform.lake.assets import clean_required_not_null

    _, lake, warehouse = clean_file(_mixed_file(tmp_path / "mixed.csv"), tmp_path / "work")
    assert clean_required_not_null(warehouse).passed
    part = next((Path(lake.root) / "clean" / "transactions").rglob("*.parquet"))
    df = pd.read_parquet(part)
    df[column] = df[column].astype(object)
    df.loc[df.index[:2], column] = None
    df.to_parquet(part, index=False)
    result = clean_required_not_null(warehouse)
    assert result.passed is allowed
    assert result.metadata["null_counts"].value == ({} if allowed else {column: 2})


def test_the_athena_shape_gives_what_the_streaming_shape_gives_on_the_real_file(tmp_path, real_source):
    """The shared-intermediate path (what Athena runs: line_groups materialised, reconciliation.sql) is
    executed on DuckDB and gives the same counts, month by month, and the same rows."""
    streaming, lake_a, _ = clean_file(real_source, tmp_path / "a")
    athena, lake_b, _ = clean_file(real_source, tmp_path / "b", materialize_intermediates=True)
    counts = lambda r: [(m.month, m.rows_in, m.rows_clean, m.rows_quarantined, m.rows_duplicate) for m in r.months]  # noqa: E731
    assert counts(streaming) == counts(athena)
    assert (athena.rows_in, athena.rows_clean, athena.rows_quarantined, athena.rows_duplicate) == (
        541_909, 536_639, 2, 5_268)
    assert _clean_digest(Path(lake_a.root)) == _clean_digest(Path(lake_b.root))


def test_passes_of_whole_months_give_what_one_pass_gives_on_the_real_file(tmp_path, real_source):
    """A big rebuild folds duplicates in passes of whole months (DuckDBWarehouse.transform_pass_rows): the
    same counts, month by month, and the same rows as one pass."""
    one, lake_a, _ = clean_file(real_source, tmp_path / "a", transform_pass_rows=0)
    passes, lake_b, warehouse = clean_file(real_source, tmp_path / "b", transform_pass_rows=100_000)
    assert len(clean_mod._passes(list(clean_mod.month_inputs(lake_b).values()), warehouse.pass_rows)) >= 5
    counts = lambda r: [(m.month, m.rows_in, m.rows_clean, m.rows_quarantined, m.rows_duplicate) for m in r.months]  # noqa: E731
    assert counts(one) == counts(passes)
    assert _clean_digest(Path(lake_a.root)) == _clean_digest(Path(lake_b.root))


CLEAN_SCRIPT = """
import sys
from pathlib import Path
from ecommerce_platform.lake.clean import run_clean
from ecommerce_platform.resources.lake import LocalLake
from ecommerce_platform.resources.warehouse import DuckDBWarehouse
work = Path(sys.argv[1])
lake = LocalLake(path=str(work / "lake"))
run_clean(DuckDBWarehouse(lake=lake, path=str(work / "warehouse.duckdb"), memory_limit="1GB"))
"""


@pytest.mark.parametrize("point", ["clean:staged", "publish:part", "clean:published"])
def test_a_clean_run_killed_anywhere_then_run_again_gives_the_same_output(tmp_path, point):
    src = _mixed_file(tmp_path / "mixed.csv")
    reference, ref_lake, _ = clean_file(src, tmp_path / "reference")
    expected = _clean_digest(Path(ref_lake.root))
    # the same lake, cleaned once, then a new batch in another month so that the rerun has work to do
    _, lake, warehouse = clean_file(src, tmp_path / "work")
    env = {**os.environ, FAULT_ENV: point}
    killed = subprocess.run([sys.executable, "-c", CLEAN_SCRIPT, str(tmp_path / "work")], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr  # SIGKILL at the point
    again = subprocess.run([sys.executable, "-c", CLEAN_SCRIPT, str(tmp_path / "work")], cwd=REPO_ROOT,
                           env={k: v for k, v in os.environ.items() if k != FAULT_ENV},
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    root = Path(lake.root)
    assert _clean_digest(root) == expected
    debris = [p for p in root.rglob("*") if "_staging" in p.parts or ".old-" in p.name or p.name.endswith(".tmp")]
    assert debris == []
    assert {m: (r.rows_in, r.rows_clean, r.rows_quarantined, r.rows_duplicate) for m, r in month_results(lake).items()} == {
        m.month: (m.rows_in, m.rows_clean, m.rows_quarantined, m.rows_duplicate) for m in reference.months}
