"""The Athena warehouse against moto's server (which accepts queries but does not execute SQL): the SQL
and DDL it generates and its call flow, through awswrangler. Every statement submitted is valid Trino;
the Glue tables exist with the right columns and partition projection; CTAS statements carry
external_location and partitioned_by; a FAILED query becomes a WarehouseError with Athena's reason. (What
the Athena path computes is proven on DuckDB: lake/test_clean_trust.py runs the same shape there.)"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import boto3
import pytest
import requests
import sqlglot

from ecommerce_platform.ingestion.raw import ResolvedSource, land_source
from ecommerce_platform.lake.clean import run_clean
from ecommerce_platform.resources import build_resources
from ecommerce_platform.resources.warehouse import AthenaWarehouse, WarehouseError
from ecommerce_platform.schema import CLEAN_COLUMNS, CLEAN_PARTITIONS, QUARANTINE_COLUMNS
from ecommerce_platform_tests.ingestion.test_source_formats import RETAIL_II, _frame

pytestmark = pytest.mark.aws


def _queue_results(endpoint: str, *tables: list[list[str]]) -> None:
    """Queue result sets for the next get_query_results calls (moto does not run SQL)."""
    results = []
    for table in tables:
        results.append({
            "rows": [{"Data": [{"VarCharValue": v} for v in row]} for row in table],
            "column_info": [{"Name": n, "Label": n, "Type": "varchar"} for n in table[0]],
        })
    resp = requests.post(
        f"{endpoint}/moto-api/static/athena/query-results",
        json={"account_id": "123456789012", "region": "eu-west-1", "results": results},
        timeout=10,
    )
    assert resp.status_code == 201


@pytest.fixture
def athena_env(aws_env, monkeypatch):
    
    monkeypatch.setitem(os.environ, "ECOMMERCE_WAREHOUSE", "athena")
    submitted: list[str] = []
    answers: list[tuple[str, list[list[str]]]] = []  # (text in the statement, result incl. header)
    real_run = AthenaWarehouse.run

    def recording_run(self, trino_sql):
        submitted.append(trino_sql)
        # moto assigns queued results to the next query started: queue the answer just before it
        for i, (text, table) in enumerate(answers):
            if text in trino_sql:  # each answer is used once, in order
                _queue_results(aws_env["endpoint"], answers.pop(i)[1])
                break
        return real_run(self, trino_sql)

    monkeypatch.setattr(AthenaWarehouse, "run", recording_run)
    workgroup = f"wg-{uuid.uuid4().hex[:8]}"  # unique: moto's server is shared by the session
    boto3.client("athena", region_name="eu-west-1").create_work_group(Name=workgroup)
    monkeypatch.setitem(os.environ, "ECOMMERCE_ATHENA_WORKGROUP", workgroup)
    return {**aws_env, "submitted": submitted, "answers": answers, "workgroup": workgroup}


def test_clean_transform_through_athena(athena_env, tmp_path):
    resources = build_resources()
    lake, warehouse = resources["lake"], resources["warehouse"]
    assert isinstance(warehouse, AthenaWarehouse) and warehouse.workgroup == athena_env["workgroup"]
    src = tmp_path / "retail ii.csv"
    _frame(RETAIL_II, "%d/%m/%Y %H:%M").to_csv(src, index=False)
    landed = land_source(lake, ResolvedSource(src, "env", "t"), ingest_date=dt.date(2024, 1, 2))
    months = sorted(landed.months)
    per_month = [[m, "1"] for m in months]  # one line per month in the file
    # the answers the transform reads (moto runs no SQL): the lines the engine read per month, the
    # reconciliation, each CTAS output's row count and measure
    athena_env["answers"].extend([
        ("SELECT COUNT(*) AS n FROM tmp_", [["n"], ["4"]]),  # the clean output
        ("SUM(source_lines) - COUNT(*) AS folded", [["year", "month", "n", "folded"],
                                                    *[[m[:4], str(int(m[5:])), "1", "0"] for m in months]]),
        ("SELECT COUNT(*) AS n FROM tmp_", [["n"], ["0"]]),  # the quarantine output
        ("SELECT partition_month, reason, COUNT(*) AS n", [["partition_month", "reason", "n"]]),
        ("AS month, COUNT(*) AS n", [["month", "n"], *per_month]),
        ("COUNT(*) AS rows_in", [["rows_in", "rows_quarantined", "rows_duplicate", "rows_clean"], ["4", "0", "0", "4"]]),
    ])
    result = run_clean(warehouse)
    assert (result.rows_in, result.rows_clean, result.rows_quarantined, result.rows_duplicate) == (4, 4, 0, 0)

    submitted = athena_env["submitted"]
    for stmt in submitted:
        trees = sqlglot.parse(stmt, read="trino")
        assert len(trees) == 1 and trees[0] is not None, stmt
    ctas = [s for s in submitted if s.startswith("CREATE TABLE")]
    assert len(ctas) == 3  # line_groups (scratch), clean output, quarantine output
    assert all("external_location = 's3://" in s for s in ctas)
    scratch, clean, quarantine = ctas
    assert "/lake/_scratch/" in scratch and "COUNT(*) AS copies" in scratch
    assert "/lake/clean/_staging/transactions--" in clean
    assert "partitioned_by = ARRAY['year', 'month']" in clean and "write_compression = 'ZSTD'" in clean
    assert "partitioned_by = ARRAY['partition_month']" in quarantine
    assert "/lake/quarantine/_staging/transactions--" in quarantine
    assert scratch.split()[2] in clean  # the clean output reads the materialised groups
    assert "WHERE NOT reject_reason IS NULL" in quarantine
    # the canonical copies are read through one Glue table, restricted to this batch's files
    assert "FROM raw_lines WHERE \"$path\" IN" in scratch and landed.normalized[0] in scratch
    created = {s.split()[2] for s in ctas}
    dropped = {s.split()[-1] for s in submitted if s.startswith("DROP TABLE IF EXISTS")}
    assert created <= dropped  # every temporary table is dropped

    glue = boto3.client("glue", region_name="eu-west-1")
    t = glue.get_table(DatabaseName="ecommerce", Name="transactions")["Table"]
    assert [c["Name"] for c in t["StorageDescriptor"]["Columns"]] == [c for c, _, _ in CLEAN_COLUMNS]
    assert [(k["Name"], k["Type"]) for k in t["PartitionKeys"]] == [(n, "int") for n, _, _ in CLEAN_PARTITIONS]
    params = t["Parameters"]
    bucket = athena_env["bucket"]
    assert params["projection.enabled"] == "true"
    assert params["projection.year.type"] == "integer" and params["projection.year.range"] == "1990,2100"
    assert params["projection.month.type"] == "integer" and params["projection.month.range"] == "1,12"
    assert params["storage.location.template"] == (
        f"s3://{bucket}/lake/clean/transactions/year=${{year}}/month=${{month}}/")
    q = glue.get_table(DatabaseName="ecommerce", Name="quarantine")["Table"]
    assert [c["Name"] for c in q["StorageDescriptor"]["Columns"]] == [c for c, _, _ in QUARANTINE_COLUMNS]
    assert q["Parameters"]["projection.partition_month.type"] == "enum"
    assert q["Parameters"]["projection.partition_month.values"] == ",".join(months)
    copies = glue.get_table(DatabaseName="ecommerce", Name="raw_lines")["Table"]
    assert copies["StorageDescriptor"]["Location"] == f"s3://{bucket}/lake/raw/normalized/"
    # nothing left in the scratch or staging prefixes
    s3 = boto3.client("s3", region_name="eu-west-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="lake/").get("Contents", [])]
    assert not [k for k in keys if "/_scratch/" in k or "/_staging/" in k]


def _clean_answers(months: list[str], clean_rows: int) -> list:
    """What the transform reads back from Athena for a file of one line per month (moto runs no SQL)."""
    return [
        ("SELECT COUNT(*) AS n FROM tmp_", [["n"], [str(clean_rows)]]),  # the clean output
        ("SUM(source_lines) - COUNT(*) AS folded", [["year", "month", "n", "folded"],
                                                    *[[m[:4], str(int(m[5:])), "1", "0"] for m in months]]),
        ("SELECT COUNT(*) AS n FROM tmp_", [["n"], ["0"]]),  # the quarantine output
        ("SELECT partition_month, reason, COUNT(*) AS n", [["partition_month", "reason", "n"]]),
        ("AS month, COUNT(*) AS n", [["month", "n"], *[[m, "1"] for m in months]]),
    ]


def test_a_new_batch_is_added_through_athena(athena_env, tmp_path):
    """A second batch in the same months: one Athena query joins its rows with the months' partitions of
    the table (no new Glue table), then its rows are written to staging and added beside the files."""
    resources = build_resources()
    lake, warehouse = resources["lake"], resources["warehouse"]
    first = tmp_path / "first.csv"
    _frame(RETAIL_II, "%d/%m/%Y %H:%M").to_csv(first, index=False)
    months = sorted(land_source(lake, ResolvedSource(first, "env", "t"), ingest_date=dt.date(2024, 1, 2)).months)
    athena_env["answers"].extend([*_clean_answers(months, 4), (
        "COUNT(*) AS rows_in", [["rows_in", "rows_quarantined", "rows_duplicate", "rows_clean"], ["4", "0", "0", "4"]])])
    assert {m.mode for m in run_clean(warehouse).months} == {"full"}

    second = tmp_path / "second.csv"
    df = _frame(RETAIL_II, "%d/%m/%Y %H:%M")
    df["Invoice"] = df["Invoice"].str.replace("536", "936")
    df.to_csv(second, index=False)
    assert sorted(land_source(lake, ResolvedSource(second, "env", "t"), ingest_date=dt.date(2024, 1, 3)).months) == months
    glue = boto3.client("glue", region_name="eu-west-1")
    tables = {t["Name"] for t in glue.get_tables(DatabaseName="ecommerce")["TableList"]}
    athena_env["submitted"].clear()
    athena_env["answers"].extend([("FROM transactions LIMIT 0", [["invoice_no"]]),  # the table answers
                                  ("JOIN transactions AS e", [["year", "month", "n"]]),  # no line held already
                                  *_clean_answers(months, 4)])
    result = run_clean(warehouse, months)
    assert {m.mode for m in result.months} == {"append"}
    assert [(m.rows_in, m.rows_clean) for m in result.months] == [(2, 2)] * len(months)

    submitted = athena_env["submitted"]
    for stmt in submitted:
        assert len(sqlglot.parse(stmt, read="trino")) == 1, stmt
    join = [s for s in submitted if "JOIN transactions AS e" in s]
    assert len(join) == 1 and "e.year = 2011 AND e.month = 11" in join[0]
    assert "IS NOT DISTINCT FROM" in join[0] and "\"$path\" IN" in join[0]  # the new batch's copy only
    ctas = [s for s in submitted if s.startswith("CREATE TABLE")]
    assert len(ctas) == 2 and not [s for s in ctas if "/_scratch/" in s]  # no materialised groups
    assert "/lake/clean/_staging/transactions--" in ctas[0] and "/lake/quarantine/_staging/" in ctas[1]
    assert {t["Name"] for t in glue.get_tables(DatabaseName="ecommerce")["TableList"]} == tables


def test_failed_query_raises_a_clear_warehouse_error(aws_env, monkeypatch):
    import awswrangler as wr

    warehouse = AthenaWarehouse(lake=build_resources()["lake"], region="eu-west-1", output_location="s3://x/athena/",
                                poll_seconds=0.0)
    monkeypatch.setattr(wr.athena, "start_query_execution", lambda *a, **k: "q-1")

    def failed(qid, **kwargs):
        raise wr.exceptions.QueryFailed("SYNTAX_ERROR: line 1:8: Column 'nope' cannot be resolved")

    monkeypatch.setattr(wr.athena, "wait_query", failed)
    with pytest.raises(WarehouseError, match="Column 'nope' cannot be resolved"):
        warehouse.run("SELECT nope FROM transactions")
