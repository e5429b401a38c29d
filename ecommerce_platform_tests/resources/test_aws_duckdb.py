"""The aws deployment with DuckDB as the engine (ECOMMERCE_WAREHOUSE=duckdb) against moto's S3 over
real HTTP: raw_s3 + clean_parquet on the real file, DuckDB reading and writing s3:// through the
httpfs extension shipped by the duckdb-extension-httpfs package, with the local figures."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from ecommerce_platform.resources.aws import duckdb_s3_secret_sql
from ecommerce_platform_tests.conftest import REAL_ROWS

pytestmark = [pytest.mark.aws, pytest.mark.graph]


def test_secret_points_duckdb_at_the_endpoint_path_style_without_ssl(aws_env):
    sql = duckdb_s3_secret_sql(region="eu-west-1", endpoint_url=aws_env["endpoint"])
    host = aws_env["endpoint"].split("://", 1)[1]
    assert f"ENDPOINT '{host}'" in sql and "URL_STYLE 'path'" in sql and "USE_SSL false" in sql
    assert "KEY_ID 'testing'" in sql
    https = duckdb_s3_secret_sql(region="eu-west-1", endpoint_url="https://s3.example.com:9000")
    assert "ENDPOINT 's3.example.com:9000'" in https and "USE_SSL true" in https


def test_raw_and_clean_over_s3_with_duckdb(aws_env, real_source):
    import boto3

    from ecommerce_platform.definitions import build_definitions
    from ecommerce_platform.resources import build_resources
    from ecommerce_platform_tests.conftest import build_lake

    os.environ["ECOMMERCE_WAREHOUSE"] = "duckdb"
    os.environ["ECOMMERCE_SOURCE"] = str(real_source)
    resources = build_resources()
    assert resources["lake"].root == f"s3://{aws_env['bucket']}/lake"
    with dg.DagsterInstance.ephemeral() as instance:
        land, clean = build_lake(instance)
    meta = {k: v.value for e in clean.get_asset_materialization_events()
            if e.asset_key.to_user_string() == "clean_parquet" for k, v in e.materialization.metadata.items()}
    assert meta["rows_in"] == REAL_ROWS
    assert (meta["rows_quarantined"], meta["rows_duplicate"]) == (2, 5_268)
    assert meta["rows_in"] == meta["rows_clean"] + meta["rows_quarantined"] + meta["rows_duplicate"]
    assert meta["dagster/uri"] == f"s3://{aws_env['bucket']}/lake/clean/transactions"
    evaluations = clean.get_asset_check_evaluations()
    assert len(evaluations) == 4 and all(e.passed for e in evaluations)

    s3 = boto3.client("s3", region_name="eu-west-1")
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=aws_env["bucket"], Prefix="lake/"):
        keys += [o["Key"] for o in page.get("Contents", [])]
    raw = [k for k in keys if k.startswith("lake/raw/batch/ingest_date=") and k.endswith("online_retail.parquet")]
    assert len(raw) == 1
    body = s3.get_object(Bucket=aws_env["bucket"], Key=raw[0])["Body"].read()
    assert body == real_source.read_bytes()
    assert any(k.startswith("lake/clean/transactions/year=2011/month=12/") for k in keys)
    assert any(k.startswith("lake/quarantine/transactions/") for k in keys)
    assert not [k for k in keys if "/_staging/" in k]  # published, staging removed

    # the warehouse computes over S3 through the catalog's views
    wh = resources["warehouse"]
    n = wh.query_df("SELECT count(*) AS n, count(DISTINCT country) AS c FROM transactions")
    assert int(n["n"][0]) == meta["rows_clean"] and int(n["c"][0]) == 38
    # whatever the engine, the aws deployment registers its tables in Glue (Athena users see them)
    glue = boto3.client("glue", region_name="eu-west-1")
    t = glue.get_table(DatabaseName="ecommerce", Name="transactions")["Table"]
    assert t["StorageDescriptor"]["Location"] == f"s3://{aws_env['bucket']}/lake/clean/transactions/"
    assert [k["Name"] for k in t["PartitionKeys"]] == ["year", "month"]
    assert glue.get_table(DatabaseName="ecommerce", Name="quarantine")["Table"]
    assert build_definitions() is not None  # the definitions load in the aws deployment
