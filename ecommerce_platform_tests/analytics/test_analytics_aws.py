"""The aws deployment against moto's server on 127.0.0.1: the Athena path (Glue table + CREATE VIEW
statements, valid Trino, submitted to Athena) and the same views run by DuckDB over an S3 lake give
the same figures as over the local lake."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pandas as pd
import pytest

from ecommerce_platform.analytics.views import VIEWS, build_views, create_views, view_sql
from ecommerce_platform.lake.clean import CLEAN_MANIFEST, CLEAN_PREFIX, register_tables
from ecommerce_platform.resources.sql_dialect import parse_trino, to_trino

pytestmark = pytest.mark.aws


def _copy_clean_zone(local_lake_dir: Path, s3_lake) -> int:
    """Put the session's clean zone (built from the real file) into the S3 lake, key for key."""
    n = 0
    for path in sorted((local_lake_dir / CLEAN_PREFIX).rglob("*.parquet")):
        s3_lake.upload_file(path, path.relative_to(local_lake_dir).as_posix())
        n += 1
    s3_lake.put_bytes(CLEAN_MANIFEST, (local_lake_dir / CLEAN_MANIFEST).read_bytes())
    return n


def test_athena_views_call_flow_on_moto(aws_env):
    from ecommerce_platform.resources import build_resources

    resources = build_resources()
    lake, warehouse = resources["lake"], resources["warehouse"]
    assert warehouse.engine == "athena" and lake.is_remote
    warehouse = warehouse.model_copy(update={"poll_seconds": 0.05})  # moto answers at once

    endpoint, region = aws_env["endpoint"], "eu-west-1"
    athena = boto3.client("athena", endpoint_url=endpoint, region_name=region)
    # the workgroup is provisioned by the CDK app (infra/) in a real account
    athena.create_work_group(Name=warehouse.workgroup)

    register_tables(warehouse, lake)  # what clean_parquet does in aws: the Glue tables
    create_views(warehouse, lake)

    glue = boto3.client("glue", endpoint_url=endpoint, region_name=region)
    table = glue.get_table(DatabaseName=warehouse.database, Name="transactions")["Table"]
    bucket = aws_env["bucket"]
    assert table["StorageDescriptor"]["Location"] == f"s3://{bucket}/lake/{CLEAN_PREFIX}/"
    assert [k["Name"] for k in table["PartitionKeys"]] == ["year", "month"]
    assert table["Parameters"]["projection.enabled"] == "true"
    assert "is_sale" in [c["Name"] for c in table["StorageDescriptor"]["Columns"]]

    ids = athena.list_query_executions(WorkGroup=warehouse.workgroup)["QueryExecutionIds"]
    executions = [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
    statements = {}
    for e in executions:
        assert e["Status"]["State"] == "SUCCEEDED"
        assert e["QueryExecutionContext"]["Database"] == warehouse.database
        (tree,) = parse_trino(e["Query"])  # what Athena received is valid Trino
        if tree.kind == "VIEW":
            statements[tree.this.name] = e["Query"]
    assert set(statements) == set(VIEWS)
    for name, query in statements.items():
        assert query.startswith(f"CREATE OR REPLACE VIEW {name} AS ")
        assert "FROM sale_lines" in query or name == "sale_lines"
        # exactly the view's SQL file, transpiled
        assert query == f"CREATE OR REPLACE VIEW {name} AS {to_trino(view_sql(name))}"


def test_same_figures_from_s3_lake_and_local_lake(aws_env, analytics_run, monkeypatch):
    from ecommerce_platform.resources import build_resources

    data_dir, local_resources, _ = analytics_run
    monkeypatch.setenv("ECOMMERCE_WAREHOUSE", "duckdb")
    resources = build_resources()
    s3_lake, s3_wh = resources["lake"], resources["warehouse"]
    assert s3_wh.engine == "duckdb" and s3_lake.is_remote
    _copy_clean_zone(data_dir / "lake", s3_lake)

    remote = build_views(s3_wh, s3_lake, force=True)  # DuckDB reads s3:// through httpfs
    local = json.loads((data_dir / "lake" / "analytics" / "_manifests" / "athena_views.json").read_text())
    assert remote.row_counts == local["row_counts"]
    assert remote.headline == local["headline"]
    assert remote.totals == local["totals"]

    local_wh, local_lake = local_resources["warehouse"], local_resources["lake"]
    for view, order in (("daily_sales", "sale_date"), ("sales_by_country", "revenue_rank"),
                        ("popular_products", "revenue_rank"), ("top_customers", "revenue_rank")):
        sql = f"SELECT * FROM {view} ORDER BY {order}"
        pd.testing.assert_frame_equal(s3_wh.query_df(sql, s3_lake), local_wh.query_df(sql, local_lake))
