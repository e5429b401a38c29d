"""Glue database, the clean table (partition projection), the raw crawler; the Athena workgroup."""

from __future__ import annotations

import json

from conftest import BUCKET, as_list, flatten, one, policy_statements, resources_of, synthesize

from ecommerce_infra import contract


def _raw(synth):
    return synth.raw[synth.built.catalog.stack_name]


def test_database(synth):
    db = one(_raw(synth), "AWS::Glue::Database")["Properties"]
    assert db["DatabaseInput"]["Name"] == contract.DEFAULT_GLUE_DATABASE
    assert db["CatalogId"] == "123456789012"
    assert flatten(db["DatabaseInput"]["LocationUri"]).endswith("/lake/")


def test_clean_table_matches_the_platform_schema(synth):
    table = one(_raw(synth), "AWS::Glue::Table")
    props = table["Properties"]
    assert props["DatabaseName"] == contract.DEFAULT_GLUE_DATABASE
    assert table["DependsOn"] == [next(iter(resources_of(_raw(synth), "AWS::Glue::Database")))]
    ti = props["TableInput"]
    assert ti["Name"] == "transactions" and ti["TableType"] == "EXTERNAL_TABLE"
    sd = ti["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == [
        (name, contract.GLUE_TYPES[t]) for name, t, _ in contract.CLEAN_COLUMNS
    ]
    assert all(c["Comment"] for c in sd["Columns"])
    assert [(c["Name"], c["Type"]) for c in ti["PartitionKeys"]] == [("year", "int"), ("month", "int")]
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert sd["InputFormat"].endswith("MapredParquetInputFormat")
    assert flatten(sd["Location"]).endswith("/lake/clean/transactions/")


def test_clean_table_uses_partition_projection_without_padding(synth):
    params = one(_raw(synth), "AWS::Glue::Table")["Properties"]["TableInput"]["Parameters"]
    assert params["projection.enabled"] == "true"
    assert params["projection.year.type"] == "integer"
    assert params["projection.year.range"] == "2009,2030"
    assert params["projection.month.type"] == "integer"
    assert params["projection.month.range"] == "1,12"
    # DuckDB writes month=1..12: no zero padding may be projected
    assert "projection.month.digits" not in params and "projection.year.digits" not in params
    template = flatten(params["storage.location.template"])
    assert template.startswith("s3://<import:")
    assert template.endswith("/lake/clean/transactions/year=${year}/month=${month}/")
    assert params["classification"] == "parquet"


def test_year_range_from_context(tmp_path):
    s = synthesize(tmp_path, {"clean_year_range": "2015,2040", "bucket_name": "b-1-lake"})
    params = one(s.raw[s.built.catalog.stack_name], "AWS::Glue::Table")["Properties"]["TableInput"]["Parameters"]
    assert params["projection.year.range"] == "2015,2040"


def test_crawler_covers_only_the_raw_zone(synth):
    raw = _raw(synth)
    crawler = one(raw, "AWS::Glue::Crawler")["Properties"]
    paths = sorted(flatten(t["Path"]).split("/", 3)[3] for t in crawler["Targets"]["S3Targets"])
    assert paths == ["lake/raw/batch/", "lake/raw/stream/"]
    assert crawler["DatabaseName"] == contract.DEFAULT_GLUE_DATABASE
    assert crawler["TablePrefix"] == "raw_"
    assert crawler["Schedule"] == {"ScheduleExpression": "cron(30 0 * * ? *)"}
    sec = one(raw, "AWS::Glue::SecurityConfiguration")["Properties"]
    assert crawler["CrawlerSecurityConfiguration"] == sec["Name"]
    enc = sec["EncryptionConfiguration"]
    assert enc["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    key = one(raw, "AWS::KMS::Key")["Properties"]
    assert key["EnableKeyRotation"] is True
    assert json.loads(crawler["Configuration"])["Version"] == 1.0


def test_crawler_role_is_least_privilege(synth):
    raw = _raw(synth)
    roles = resources_of(raw, "AWS::IAM::Role")
    (role,) = roles.values()
    assert "ManagedPolicyArns" not in role["Properties"]
    statements = {s["Sid"]: s for s in policy_statements(raw, "CrawlerPolicy")}
    assert set(statements) == {"ReadRawZone", "ListRawZone", "ReadDatabase", "MaintainRawTables", "CrawlerLogs"}
    reads = sorted(flatten(r).split("/", 1)[1] for r in statements["ReadRawZone"]["Resource"])
    assert reads == ["lake/raw/batch/*", "lake/raw/stream/*"]
    assert statements["ListRawZone"]["Condition"] == {
        "StringLike": {"s3:prefix": ["lake/raw/stream/*", "lake/raw/batch/*"]}
    }
    tables = [flatten(r) for r in as_list(statements["MaintainRawTables"]["Resource"])]
    assert any(t.endswith(":table/ecommerce/raw_*") for t in tables)
    assert not any(t.endswith(":table/ecommerce/*") for t in tables)  # never the clean tables
    for s in statements.values():
        for action in as_list(s["Action"]):
            assert not action.endswith(":*") and "Delete" not in action


def test_athena_workgroup(synth):
    wg = one(synth.raw[synth.built.query.stack_name], "AWS::Athena::WorkGroup")["Properties"]
    assert wg["Name"] == contract.DEFAULT_ATHENA_WORKGROUP
    conf = wg["WorkGroupConfiguration"]
    assert conf["EnforceWorkGroupConfiguration"] is True
    assert conf["BytesScannedCutoffPerQuery"] == 10 * 1024**3
    assert conf["PublishCloudWatchMetricsEnabled"] is True
    result = conf["ResultConfiguration"]
    assert flatten(result["OutputLocation"]).startswith("s3://<import:")
    assert flatten(result["OutputLocation"]).endswith("/athena-results/")
    assert result["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}
    assert result["ExpectedBucketOwner"] == "123456789012"


def test_athena_limit_from_context(tmp_path):
    s = synthesize(tmp_path, {"athena_bytes_scanned_cutoff": 50_000_000, "bucket_name": BUCKET})
    wg = one(s.raw[s.built.query.stack_name], "AWS::Athena::WorkGroup")["Properties"]
    assert wg["WorkGroupConfiguration"]["BytesScannedCutoffPerQuery"] == 50_000_000
