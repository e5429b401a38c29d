"""The lake bucket and its access-log bucket: encryption, privacy, TLS, versioning, lifecycle."""

from __future__ import annotations

from aws_cdk.assertions import Match

from conftest import BUCKET, resources_of


def _lake_bucket(raw: dict) -> dict:
    buckets = resources_of(raw, "AWS::S3::Bucket")
    (lake,) = [b for b in buckets.values() if "LoggingConfiguration" in b["Properties"]]
    return lake


def test_two_private_encrypted_buckets(synth):
    buckets = resources_of(synth.raw[synth.built.lake.stack_name], "AWS::S3::Bucket")
    assert len(buckets) == 2
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        assert bucket["DeletionPolicy"] == "Retain"


def test_lake_bucket_named_versioned_and_logged(synth):
    lake = _lake_bucket(synth.raw[synth.built.lake.stack_name])["Properties"]
    assert lake["BucketName"] == BUCKET
    assert lake["VersioningConfiguration"] == {"Status": "Enabled"}
    assert lake["LoggingConfiguration"]["LogFilePrefix"] == "lake-bucket/"
    assert "Ref" in lake["LoggingConfiguration"]["DestinationBucketName"]


def test_every_bucket_denies_plain_http_and_old_tls(synth):
    policies = resources_of(synth.raw[synth.built.lake.stack_name], "AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        denies = [s for s in statements if s["Effect"] == "Deny"]
        assert {"Bool": {"aws:SecureTransport": "false"}} in [s["Condition"] for s in denies]
        assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in [s["Condition"] for s in denies]
        for s in denies:
            assert s["Principal"] == {"AWS": "*"} and s["Action"] == "s3:*"


def test_lake_lifecycle(synth):
    rules = {r["Id"]: r for r in _lake_bucket(synth.raw[synth.built.lake.stack_name])["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert set(rules) == {"raw-tiering", "stream-errors-expiry", "athena-results-expiry", "noncurrent-versions"}
    raw = rules["raw-tiering"]
    assert raw["Prefix"] == "lake/raw/" and raw["Status"] == "Enabled"
    assert [(t["StorageClass"], t["TransitionInDays"]) for t in raw["Transitions"]] == [
        ("STANDARD_IA", 30),
        ("GLACIER_IR", 90),
    ]
    assert "ExpirationInDays" not in raw  # raw data is the source of truth: tiered, never deleted
    assert rules["stream-errors-expiry"]["Prefix"] == "lake/raw/stream_errors/"
    assert rules["stream-errors-expiry"]["ExpirationInDays"] == 365
    assert rules["athena-results-expiry"]["Prefix"] == "athena-results/"
    assert rules["athena-results-expiry"]["ExpirationInDays"] == 30
    noncurrent = rules["noncurrent-versions"]
    assert "Prefix" not in noncurrent
    assert noncurrent["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert noncurrent["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}


def test_lifecycle_follows_prefix_and_context(tmp_path):
    from conftest import synthesize

    s = synthesize(
        tmp_path,
        {"bucket_name": "my-lake", "s3_prefix": "/data/lake/", "raw_infrequent_access_days": 45, "raw_glacier_days": 200},
    )
    s.lake.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": "my-lake",
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Id": "raw-tiering",
                                "Prefix": "data/lake/raw/",
                                "Transitions": [
                                    {"StorageClass": "STANDARD_IA", "TransitionInDays": 45},
                                    {"StorageClass": "GLACIER_IR", "TransitionInDays": 200},
                                ],
                            }
                        )
                    ]
                )
            },
        },
    )
