"""The Athena warehouse against moto's server (which accepts queries but does not execute SQL): the
SQL and DDL it generates and its call flow. Every statement submitted is valid Trino; the Glue tables
exist with the right columns and partition projection; CTAS statements carry external_location and
partitioned_by; a FAILED query becomes a WarehouseError with Athena's reason."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
import sqlglot
from botocore.stub import Stubber

from ecommerce_platform.ingestion.raw import ResolvedSource, land_source
from ecommerce_platform.lake.clean import run_clean
from ecommerce_platform.schema import CLEAN_COLUMNS, CLEAN_PARTITIONS, QUARANTINE_COLUMNS
from ecommerce_platform.resources import build_resources
from ecommerce_platform.resources.aws import boto_client
from ecommerce_platform.resources.warehouse import AthenaWarehouse, WarehouseError
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
    import os

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
    monkeypatch.setattr(AthenaWarehouse, "poll_seconds", 0.0, raising=False)
    athena = boto_client("athena", region="eu-west-1")
    if not any(w["Name"] == "ecommerce" for w in athena.list_work_groups()["WorkGroups"]):
        athena.create_work_group(Name="ecommerce")  # moto's server is shared by the session
    return {**aws_env, "submitted": submitted, "answers": answers}


def test_clean_transform_through_athena(athena_env, tmp_path):
    resources = build_resources()
    lake, warehouse = resources["lake"], resources["warehouse"]
    assert isinstance(warehouse, AthenaWarehouse)
    # a Retail-II CSV whose "Customer ID" is not a valid Athena identifier
    src = tmp_path / "retail ii.csv"
    _frame(RETAIL_II, "%d/%m/%Y %H:%M").to_csv(src, index=False)
    landed = land_source(lake, ResolvedSource(src, "env", "t"), ingest_date=dt.date(2024, 1, 2))
    # results of the four queries whose answers the transform reads: the two row counts of the
    # written outputs, the reconciliation, the quarantine reasons
    athena_env["answers"].extend([
        ("SELECT COUNT(*) AS n FROM tmp_", [["n"], ["4"]]),  # clean output
        ("SELECT COUNT(*) AS n FROM tmp_", [["n"], ["0"]]),  # quarantine output
        ("COUNT(*) AS rows_in",
         [["rows_in", "rows_quarantined", "rows_duplicate", "rows_clean"], ["4", "0", "0", "4"]]),
        ("SELECT reject_reason AS reason", [["reason", "n"]]),
    ])
    result = run_clean(warehouse, lake, force=True)
    assert (result.rows_in, result.rows_clean, result.rows_quarantined, result.rows_duplicate) == (4, 4, 0, 0)

    submitted = athena_env["submitted"]
    assert submitted, "nothing was sent to Athena"
    for stmt in submitted:
        trees = sqlglot.parse(stmt, read="trino")
        assert len(trees) == 1 and trees[0] is not None, stmt
    ctas = [s for s in submitted if s.startswith("CREATE TABLE")]
    assert len(ctas) == 3  # line_groups (scratch), clean output, quarantine output
    assert all("external_location = 's3://" in s for s in ctas)
    scratch, clean, quarantine = ctas
    assert "/lake/_scratch/" in scratch
    assert "/lake/clean/_staging/transactions-" in clean
    assert "partitioned_by = ARRAY['year', 'month']" in clean and "write_compression = 'ZSTD'" in clean
    assert "partitioned_by" not in quarantine and "/lake/quarantine/_staging/" in quarantine
    # the clean output reads the materialised groups; the quarantine its rejected typed lines
    scratch_table = scratch.split()[2]
    assert scratch_table in clean and "COUNT(*) AS copies" in scratch
    assert "WHERE NOT reject_reason IS NULL" in quarantine and "DATE_PARSE" in quarantine
    # the raw file is read through its Glue table; date parsing uses Trino's functions
    raw_table = f"raw_batch_{landed.sha256[:12]}"
    assert raw_table in scratch and "DATE_PARSE" in scratch and "TRY(" in scratch
    # every temporary table is dropped
    created = {s.split()[2] for s in ctas}
    dropped = {s.split()[-1] for s in submitted if s.startswith("DROP TABLE IF EXISTS")}
    assert created <= dropped

    glue = boto_client("glue", region="eu-west-1")
    t = glue.get_table(DatabaseName="ecommerce", Name="transactions")["Table"]
    assert [c["Name"] for c in t["StorageDescriptor"]["Columns"]] == [c for c, _, _ in CLEAN_COLUMNS]
    assert [(k["Name"], k["Type"]) for k in t["PartitionKeys"]] == [(n, "int") for n, _, _ in CLEAN_PARTITIONS]
    params = t["Parameters"]
    bucket = athena_env["bucket"]
    assert params["projection.enabled"] == "true"
    assert params["projection.year.type"] == "integer" and params["projection.year.range"] == "1990,2100"
    assert params["projection.month.type"] == "integer" and params["projection.month.range"] == "1,12"
    assert params["storage.location.template"] == (
        f"s3://{bucket}/lake/clean/transactions/year=${{year}}/month=${{month}}/"
    )
    assert t["StorageDescriptor"]["Location"] == f"s3://{bucket}/lake/clean/transactions/"
    q = glue.get_table(DatabaseName="ecommerce", Name="quarantine")["Table"]
    assert [c["Name"] for c in q["StorageDescriptor"]["Columns"]] == [c for c, _, _ in QUARANTINE_COLUMNS]
    raw = glue.get_table(DatabaseName="ecommerce", Name=raw_table)["Table"]
    assert [c["Name"] for c in raw["StorageDescriptor"]["Columns"]] == [f"c{i}" for i in range(len(RETAIL_II))]
    serde = raw["StorageDescriptor"]["SerdeInfo"]
    assert serde["SerializationLibrary"].endswith("OpenCSVSerde")
    assert serde["Parameters"]["separatorChar"] == ","
    assert raw["Parameters"]["skip.header.line.count"] == "1"
    assert raw["StorageDescriptor"]["Location"] == landed.uri.rsplit("/", 1)[0] + "/"
    # "Customer ID" is column 6 of the file: selected by position
    assert "CAST(c6 AS VARCHAR) AS customer_id" in scratch
    # nothing left in the scratch or staging prefixes
    s3 = boto_client("s3", region="eu-west-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="lake/").get("Contents", [])]
    assert not [k for k in keys if "/_scratch/" in k or "/_staging/" in k]


def test_parquet_source_table_reads_columns_by_index(athena_env, tmp_path):
    resources = build_resources()
    lake, warehouse = resources["lake"], resources["warehouse"]
    src = tmp_path / "ii.parquet"
    _frame(RETAIL_II, "%Y-%m-%d %H:%M:%S").to_parquet(src, index=False)
    landed = land_source(lake, ResolvedSource(src, "env", "t"))
    sql = warehouse.source_select(lake, landed)
    assert sqlglot.parse_one(sql, read="trino") is not None
    raw = boto_client("glue", region="eu-west-1").get_table(
        DatabaseName="ecommerce", Name=f"raw_batch_{landed.sha256[:12]}"
    )["Table"]
    sd = raw["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == [
        ("c0", "string"), ("c1", "string"), ("c2", "string"), ("c3", "bigint"), ("c4", "string"),
        ("c5", "double"), ("c6", "double"), ("c7", "string"),
    ]
    assert sd["SerdeInfo"]["Parameters"]["parquet.column.index.access"] == "true"
    assert "CAST(c6 AS VARCHAR) AS customer_id" in sql and "CAST(c5 AS VARCHAR) AS unit_price" in sql


def _execution(state: str, reason: str | None = None) -> dict:
    status = {"State": state}
    if reason:
        status["StateChangeReason"] = reason
    return {"QueryExecution": {"QueryExecutionId": "q-1", "Status": status}}


def test_failed_query_raises_a_clear_warehouse_error(aws_env):
    warehouse = AthenaWarehouse(region="eu-west-1", output_location="s3://x/athena/", poll_seconds=0.0)
    client = warehouse._client("athena")
    with Stubber(client) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"})
        stub.add_response("get_query_execution", _execution("QUEUED"))
        stub.add_response("get_query_execution", _execution("RUNNING"))
        stub.add_response(
            "get_query_execution",
            _execution("FAILED", "SYNTAX_ERROR: line 1:8: Column 'nope' cannot be resolved"),
        )
        with pytest.raises(WarehouseError) as info:
            warehouse.run("SELECT nope FROM transactions")
        stub.assert_no_pending_responses()
    message = str(info.value)
    assert "q-1" in message and "failed" in message and "Column 'nope' cannot be resolved" in message


def test_polling_waits_until_succeeded_and_times_out(aws_env):
    warehouse = AthenaWarehouse(region="eu-west-1", poll_seconds=0.0)
    client = warehouse._client("athena")
    with Stubber(client) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"})
        stub.add_response("get_query_execution", _execution("RUNNING"))
        stub.add_response("get_query_execution", _execution("SUCCEEDED"))
        assert warehouse.run("SELECT 1") == "q-1"
        stub.assert_no_pending_responses()
    slow = AthenaWarehouse(region="eu-west-1", poll_seconds=0.0, timeout_seconds=0.0)
    with Stubber(slow._client("athena")) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-2"})
        stub.add_response("get_query_execution", _execution("RUNNING"))
        stub.add_response("stop_query_execution", {})
        with pytest.raises(WarehouseError, match="q-2 timed out"):
            slow.run("SELECT 1")
