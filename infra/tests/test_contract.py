"""The stack outputs configure the platform: fed to load_settings(), they give the names the stacks
created, and the names come from the platform's own modules (no copies that could drift)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import BUCKET, INFRA_DIR, REGION, flatten, one, synthesize

from ecommerce_infra import contract


def _env_from(synth) -> dict[str, str]:
    outputs = synth.raw[synth.built.access.stack_name]["Outputs"]
    env = {}
    for output_id, env_name in contract.OUTPUT_ENV.items():
        value = outputs[output_id]["Value"]
        assert isinstance(value, str), f"{output_id} should be a literal for a configured account"
        env[env_name] = value
    return env


def _platform_settings(monkeypatch, env: dict[str, str]):
    for name in list(__import__("os").environ):
        if name.startswith("ECOMMERCE_") or name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return contract.load_platform_settings()


def test_outputs_configure_the_platform(synth, monkeypatch):
    settings = _platform_settings(monkeypatch, _env_from(synth))
    assert settings.deployment == "aws"
    assert settings.warehouse_engine == "athena"
    assert settings.s3_bucket == BUCKET
    assert settings.s3_prefix == "lake"
    assert settings.lake_root == f"s3://{BUCKET}/lake"
    assert settings.glue_database == "ecommerce"
    assert settings.athena_workgroup == "ecommerce"
    assert settings.athena_output == f"s3://{BUCKET}/athena-results/"
    assert settings.stream_name == "ecommerce-transactions"
    assert settings.region == REGION


def test_stacks_use_the_names_the_platform_reads(synth, monkeypatch):
    s = _platform_settings(monkeypatch, _env_from(synth))
    stream = one(synth.raw[synth.built.streaming.stack_name], "AWS::Kinesis::Stream")["Properties"]
    assert stream["Name"] == s.stream_name
    db = one(synth.raw[synth.built.catalog.stack_name], "AWS::Glue::Database")["Properties"]
    assert db["DatabaseInput"]["Name"] == s.glue_database
    wg = one(synth.raw[synth.built.query.stack_name], "AWS::Athena::WorkGroup")["Properties"]
    assert wg["Name"] == s.athena_workgroup
    output = flatten(wg["WorkGroupConfiguration"]["ResultConfiguration"]["OutputLocation"])
    assert output.split(">", 1)[1] == s.athena_output.split(BUCKET, 1)[1]
    lake = [b for b in synth.raw[synth.built.lake.stack_name]["Resources"].values() if b["Properties"].get("BucketName")]
    assert [b["Properties"]["BucketName"] for b in lake] == [s.s3_bucket]
    dest = one(synth.raw[synth.built.streaming.stack_name], "AWS::KinesisFirehose::DeliveryStream")["Properties"][
        "ExtendedS3DestinationConfiguration"
    ]
    assert dest["Prefix"].startswith(f"{s.s3_prefix}/{contract.RAW_STREAM_PREFIX}/year=")
    assert dest["ErrorOutputPrefix"].startswith(f"{s.s3_prefix}/{contract.RAW_STREAM_ERROR_PREFIX}/")
    table = one(synth.raw[synth.built.catalog.stack_name], "AWS::Glue::Table")["Properties"]["TableInput"]
    location = flatten(table["Parameters"]["storage.location.template"])
    assert location.split(">", 1)[1] == f"/{s.s3_prefix}/clean/transactions/year=${{year}}/month=${{month}}/"


def test_custom_names_and_empty_prefix_round_trip(tmp_path, monkeypatch):
    synth = synthesize(
        tmp_path,
        {
            "account": "210987654321",
            "region": "us-east-1",
            "bucket_name": "acme-shop-lake",
            "s3_prefix": "/",
            "glue_database": "shop_db",
            "athena_workgroup": "shop-wg",
            "stream_name": "shop-lines",
            "athena_results_prefix": "query-results",
        },
    )
    s = _platform_settings(monkeypatch, _env_from(synth))
    assert (s.s3_bucket, s.s3_prefix, s.glue_database, s.athena_workgroup, s.stream_name, s.region) == (
        "acme-shop-lake",
        "",
        "shop_db",
        "shop-wg",
        "shop-lines",
        "us-east-1",
    )
    assert s.lake_root == "s3://acme-shop-lake"
    assert s.athena_output == "s3://acme-shop-lake/query-results/"
    dest = one(synth.raw[synth.built.streaming.stack_name], "AWS::KinesisFirehose::DeliveryStream")["Properties"][
        "ExtendedS3DestinationConfiguration"
    ]
    assert dest["Prefix"].startswith("raw/stream/year=")
    stream = one(synth.raw[synth.built.streaming.stack_name], "AWS::Kinesis::Stream")["Properties"]
    assert stream["Name"] == "shop-lines"


def test_defaults_are_the_platforms():
    cfg = contract.platform_config
    assert contract.DEFAULT_S3_PREFIX == cfg.DEFAULT_S3_PREFIX
    assert contract.DEFAULT_STREAM_NAME == cfg.DEFAULT_STREAM_NAME
    assert contract.DEFAULT_FIREHOSE_NAME == cfg.DEFAULT_FIREHOSE_NAME
    assert contract.RAW_STREAM_ERROR_PREFIX == contract.platform_schema.RAW_STREAM_ERROR_PREFIX
    assert contract.CLEAN_COLUMNS is contract.platform_schema.CLEAN_COLUMNS
    assert Path(contract.platform_config.__file__) == INFRA_DIR.parent / "ecommerce_platform" / "config.py"


def _string_literals(path: Path) -> list[str]:
    """The string constants of a module's code (docstrings excluded)."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node) is not None:
            docstrings.add(id(node.body[0].value))
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    ]


def _platform_names() -> set[str]:
    names = set()
    for module in (contract.platform_config, contract.platform_schema):  # zones and prefixes: schema.py
        names |= {getattr(module, n) for n in dir(module) if n.startswith(("DEFAULT_", "ZONE_", "RAW_"))}
    names |= {c[0] for c in contract.CLEAN_COLUMNS + contract.CLEAN_PARTITIONS}
    return {n for n in names if isinstance(n, str)}


def test_no_platform_name_is_copied_into_the_app():
    """The platform's names, prefixes and columns reach the stacks only through contract.py."""
    names = _platform_names()
    assert {"lake", "ecommerce-transactions", "raw/stream", "invoice_no"} <= names
    schema = contract.platform_schema
    path_prefixes = [getattr(schema, n) for n in dir(schema) if n.startswith("RAW_") and isinstance(getattr(schema, n), str)]
    offenders = []
    for path in sorted((INFRA_DIR / "ecommerce_infra").rglob("*.py")):
        if path.name == "contract.py":
            continue
        for literal in _string_literals(path):
            if literal in names:
                offenders.append((path.name, literal))
            # a path-like literal (no spaces) that spells out a raw-zone prefix
            elif " " not in literal and any(p in literal for p in path_prefixes):
                offenders.append((path.name, literal))
    assert offenders == []
