"""The aws deployment against moto's server on 127.0.0.1: the Athena path (CREATE VIEW statements,
valid Trino, submitted to Athena in the view order) and the same view assets run by DuckDB over an S3 lake
give the same figures as over the local lake."""

from __future__ import annotations

from pathlib import Path

import boto3
import dagster as dg
import pandas as pd
import pytest

from ecommerce_platform.analytics.views import VIEWS, create_view, view_sql
from ecommerce_platform.lake.clean import register_tables
from ecommerce_platform.resources.sql_dialect import parse_trino, to_trino
from ecommerce_platform.schema import CLEAN_PREFIX

pytestmark = pytest.mark.aws


def _copy_clean_zone(local_lake_dir: Path, s3_lake) -> int:  # noqa: ANN001
    """Put the session's clean zone (built from the real file) into the S3 lake, key for key."""
    n = 0
    for path in sorted((local_lake_dir / CLEAN_PREFIX).rglob("*.parquet")):
        s3_lake.upload_file(path, path.relative_to(local_lake_dir).as_posix())
        n += 1
    return n


def test_athena_views_call_flow_on_moto(aws_env):
    from ecommerce_platform.resources import build_resources

    warehouse = build_resources()["warehouse"]
    assert warehouse.engine == "athena" and warehouse.lake.is_remote
    warehouse = warehouse.model_copy(update={"poll_seconds": 0.05})  # moto answers at once

    endpoint, region = aws_env["endpoint"], "eu-west-1"
    athena = boto3.client("athena", endpoint_url=endpoint, region_name=region)
    # the workgroup is provisioned by the CDK app (infra/) in a real account
    athena.create_work_group(Name=warehouse.workgroup)

    # the views reference the Glue table `transactions` that clean_parquet registers (the lake layer's
    # tests cover it); Athena checks a view's SQL when it is created, moto records it
    for name in VIEWS:  # what analytics_views does, in its order
        create_view(warehouse, name)
    assert warehouse.table_name("daily_sales") == f"{warehouse.database}.daily_sales"

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
    submitted = sorted(executions, key=lambda e: e["Status"]["SubmissionDateTime"])
    order = [parse_trino(e["Query"])[0].this.name for e in submitted if parse_trino(e["Query"])[0].kind == "VIEW"]
    assert order[0] == "sale_lines"  # created before the views that read it
    for name, query in statements.items():
        assert query.startswith(f"CREATE OR REPLACE VIEW {name} AS ")
        assert "FROM sale_lines" in query or name == "sale_lines"
        # exactly the view's SQL file, transpiled
        assert query == f"CREATE OR REPLACE VIEW {name} AS {to_trino(view_sql(name))}"


def _previews(result) -> dict:
    out = {}
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() not in VIEWS:
            continue
        md = event.materialization.metadata
        out[event.asset_key.to_user_string()] = (md["dagster/row_count"].value, md["preview"].value.records,
                                                 md.get("net_revenue_gbp").value if "net_revenue_gbp" in md else None)
    return out


@pytest.mark.graph  # on the real file (the session's clean lake)
def test_same_figures_from_s3_lake_and_local_lake(aws_env, analytics_run, monkeypatch):
    from ecommerce_platform.analytics import assets
    from ecommerce_platform.resources import build_resources

    data_dir, local_resources, local_result, _ = analytics_run
    monkeypatch.setenv("ECOMMERCE_WAREHOUSE", "duckdb")
    s3_wh = build_resources()["warehouse"]
    assert s3_wh.engine == "duckdb" and s3_wh.lake.is_remote
    assert _copy_clean_zone(data_dir / "lake", s3_wh.lake) > 0
    register_tables(s3_wh)  # the catalog entries of the S3 lake

    # DuckDB reads s3:// (httpfs, through moto: slow, so four of the views)
    chosen = ["sale_lines", "daily_sales", "sales_by_country", "sales_kpis"]
    remote = dg.materialize([assets.analytics_views], resources={"warehouse": s3_wh}, selection=chosen)
    assert remote.success
    local = {k: v for k, v in _previews(local_result).items() if k in chosen}
    assert _previews(remote) == local and len(local) == 4

    local_wh = local_resources["warehouse"]
    for view, order in (("daily_sales", "sale_date"), ("sales_by_country", "revenue_rank NULLS LAST, country")):
        sql = f"SELECT * FROM {view} ORDER BY {order}"
        pd.testing.assert_frame_equal(s3_wh.query_df(sql), local_wh.query_df(sql))
