"""Graph test: the real file landed (one raw_batches partition) and cleaned month by month (one run over
the invoice_months partitions), reconciled against the facts of the data set (data/reference/README.md);
then a new batch that touches one month: exactly that month is stale and rebuilt, nothing else."""


import dagster as dg
import duckdb
import pandas as pd
import pytest

from ecommerce_platform_tests.conftest import REAL_ROWS, build_lake, platform_environment

pytestmark = pytest.mark.graph


def _meta(result, key, partition=None):
    for event in reversed(result.get_asset_materialization_events()):
        if event.asset_key.to_user_string() == key and (partition is None or event.partition == partition):
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"no materialization of {key}")


def _stale_months(instance, defs) -> dict:
    from ecommerce_platform.recompute import stale_resolver

    resolver = stale_resolver(instance, defs.resolve_asset_graph())
    return {m: resolver.get_status(dg.AssetKey("clean_parquet"), m).name
            for m in instance.get_dynamic_partitions("invoice_months")}


def test_raw_and_clean_on_real_file_then_one_new_month(tmp_path, real_source):
    from ecommerce_platform.definitions import build_definitions

    data_dir = tmp_path / "data"
    with platform_environment(data_dir, ECOMMERCE_SOURCE=str(tmp_path / "in")), \
            dg.DagsterInstance.ephemeral() as instance:
        (tmp_path / "in").mkdir()
        (tmp_path / "in" / "online_retail.parquet").write_bytes(real_source.read_bytes())
        land, clean = build_lake(instance)
        raw = _meta(land, "raw_s3")
        assert raw["records"] == REAL_ROWS and raw["newly_landed"] == 1 and raw["rejected"] == 0
        months = instance.get_dynamic_partitions("invoice_months")
        assert sorted(months) == ["2010-12", *(f"2011-{m:02d}" for m in range(1, 13))]
        meta = _meta(clean, "clean_parquet")
        assert meta["rows_in"] == REAL_ROWS
        assert meta["rows_duplicate"] == 5_268
        assert meta["rows_quarantined"] == 2  # the two negative-price bad-debt adjustments
        assert meta["rows_in"] == meta["rows_clean"] + meta["rows_quarantined"] + meta["rows_duplicate"]
        assert meta["months_rebuilt"] == 13
        evaluations = clean.get_asset_check_evaluations()
        assert {e.check_name for e in evaluations} == {
            "clean_schema", "clean_reconciliation", "clean_required_not_null", "clean_row_count_bounds"}
        assert all(e.passed for e in evaluations), [(e.check_name, e.metadata) for e in evaluations]

        # The landed file is byte-identical to the source, under an ingest-date partition.
        landed = list((data_dir / "lake" / "raw" / "batch").glob("ingest_date=*/*/online_retail.parquet"))
        assert len(landed) == 1 and landed[0].read_bytes() == real_source.read_bytes()

        # The clean zone is partitioned by invoice year/month and readable by any DuckDB.
        con = duckdb.connect()
        root = data_dir / "lake" / "clean" / "transactions"
        parts = sorted(p.relative_to(root).parts[:2] for p in root.rglob("*.parquet"))
        assert ("year=2010", "month=12") in parts and ("year=2011", "month=12") in parts
        glob = str(root / "**" / "*.parquet")
        facts = con.execute(
            f"""SELECT count(DISTINCT invoice_no), count(DISTINCT invoice_no) FILTER (WHERE is_cancellation),
                       count(DISTINCT customer_id), count(DISTINCT country), sum(source_lines)
                FROM read_parquet('{glob}', hive_partitioning=true)""").fetchone()
        # the 2 quarantined rows are whole invoices (A563186, A563187: bad-debt adjustments)
        assert facts == (25_900 - 2, 3_836, 4_372, 38, REAL_ROWS - 2)

        # The published warehouse file answers a plain query.
        wh = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
        assert wh.execute("SELECT count(*) FROM transactions").fetchone()[0] == meta["rows_clean"]
        wh.close()

        # Nothing changed: no month is stale, a second run recomputes nothing.
        defs = build_definitions(layers=("ingestion", "lake"))
        assert set(_stale_months(instance, defs).values()) == {"FRESH"}
        (again,) = build_lake(instance)  # nothing new to land: only the clean run
        assert _meta(again, "clean_parquet")["months_rebuilt"] == 0

        # A new batch with lines of March 2011 only (and one exact duplicate of a line already landed)
        df = pd.read_parquet(real_source)
        march = df[df["InvoiceDate"].str.startswith("2011-03-15")].copy()
        extra = march.head(50).copy()
        extra["InvoiceNo"] = "999" + extra["InvoiceNo"].str[-3:]
        batch = pd.concat([extra, march.head(1)])
        batch.to_csv(tmp_path / "in" / "late_march.csv", index=False)
        from ecommerce_platform.definitions import build_definitions as bd
        from ecommerce_platform.runner import rebuild

        rebuild(instance, bd(layers=("ingestion", "lake")), select="raw_s3", log=lambda _m: None)
        stale = _stale_months(instance, defs)
        assert {m for m, s in stale.items() if s != "FRESH"} == {"2011-03"}, stale  # what the UI shows
        runs = build_lake(instance)
        assert set(_stale_months(instance, defs).values()) == {"FRESH"}
        meta2 = _meta(runs[-1], "clean_parquet")
        assert meta2["months_rebuilt"] == 1
        rebuilt = [r for r in meta2["months"].records if r.data["rebuilt"]]
        assert [r.data["month"] for r in rebuilt] == ["2011-03"]
        march_counts = rebuilt[0].data
        assert march_counts["rows_in"] == int((df["InvoiceDate"].str.startswith("2011-03")).sum()) + 51
        assert march_counts["rows_in"] == march_counts["clean"] + march_counts["quarantined"] + march_counts["duplicates"]
        assert all(e.passed for e in runs[-1].get_asset_check_evaluations())
