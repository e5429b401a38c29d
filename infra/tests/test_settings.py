"""Configuration: CDK context over environment over the platform's defaults, validated."""

from __future__ import annotations

import pytest

from ecommerce_infra import contract
from ecommerce_infra.settings import InfraConfigError, load_infra_settings


def _load(context=None):
    context = context or {}
    return load_infra_settings(context.get)


def test_defaults_are_the_platforms(monkeypatch):
    s = _load()
    assert s.account is None and s.bucket_name is None
    assert s.region == contract.DEFAULT_REGION
    assert s.s3_prefix == contract.DEFAULT_S3_PREFIX
    assert s.glue_database == contract.DEFAULT_GLUE_DATABASE
    assert s.athena_workgroup == contract.DEFAULT_ATHENA_WORKGROUP
    assert s.stream_name == contract.DEFAULT_STREAM_NAME
    assert s.firehose_name == contract.DEFAULT_FIREHOSE_NAME
    assert s.athena_output_key == "athena-results/"


def test_bucket_name_derived_from_account_and_region():
    s = _load({"account": "123456789012", "region": "us-west-2"})
    assert s.bucket_name == "ecommerce-lake-123456789012-us-west-2"


def test_environment_then_context(monkeypatch):
    monkeypatch.setenv("ECOMMERCE_S3_BUCKET", "env-bucket")
    monkeypatch.setenv("ECOMMERCE_STREAM_NAME", "env-stream")
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "111111111111")
    monkeypatch.setenv("CDK_DEFAULT_REGION", "ap-south-1")
    s = _load()
    assert (s.bucket_name, s.stream_name, s.account, s.region) == (
        "env-bucket",
        "env-stream",
        "111111111111",
        "ap-south-1",
    )
    s = _load({"bucket_name": "ctx-bucket", "stream_name": "ctx-stream"})
    assert (s.bucket_name, s.stream_name) == ("ctx-bucket", "ctx-stream")


def test_prefix_is_normalised_like_the_platform():
    assert _load({"s3_prefix": "/a/b/"}).s3_prefix == "a/b"
    s = _load({"s3_prefix": "/"})
    assert s.s3_prefix == "" and s.folder("raw/stream") == "raw/stream/"
    assert _load().folder("raw/stream") == "lake/raw/stream/"


@pytest.mark.parametrize(
    "context, message",
    [
        ({"account": "12345"}, "account"),
        ({"bucket_name": "Bad_Bucket"}, "bucket_name"),
        ({"bucket_name": "a..b"}, "bucket_name"),
        ({"glue_database": "Ecommerce-DB"}, "glue_database"),
        ({"stream_name": "has space"}, "stream_name"),
        ({"clean_year_range": "2030,2010"}, "clean_year_range"),
        ({"clean_year_range": "2010"}, "clean_year_range"),
        ({"athena_results_prefix": "lake/results"}, "athena_results_prefix"),
        ({"s3_prefix": "/", "athena_results_prefix": "raw"}, "athena_results_prefix"),
        ({"athena_bytes_scanned_cutoff": 1000}, "athena_bytes_scanned_cutoff"),
        ({"raw_infrequent_access_days": 10}, "raw_infrequent_access_days"),
        ({"raw_glacier_days": 30}, "raw_glacier_days"),
        ({"firehose_buffer_mb": 500}, "firehose_buffer_mb"),
        ({"firehose_buffer_seconds": "soon"}, "firehose_buffer_seconds"),
    ],
)
def test_invalid_settings_are_rejected_by_name(context, message):
    with pytest.raises(InfraConfigError, match=message):
        _load(context)


def test_trusted_principals_lists():
    s = _load({"dagster_trusted_arns": "arn:a, arn:b", "dagster_trusted_services": ["ecs-tasks.amazonaws.com"]})
    assert s.dagster_trusted_arns == ("arn:a", "arn:b")
    assert s.dagster_trusted_services == ("ecs-tasks.amazonaws.com",)
