"""Kinesis -> Firehose (validating Lambda) -> raw zone, and the error-prefix monitor."""

from __future__ import annotations

from pathlib import Path

from conftest import INFRA_DIR, as_list, flatten, one, policy_statements, resources_of

from ecommerce_infra import contract


def _raw(synth):
    return synth.raw[synth.built.streaming.stack_name]


def test_stream_on_demand_and_encrypted(synth):
    stream = one(_raw(synth), "AWS::Kinesis::Stream")["Properties"]
    assert stream["Name"] == contract.DEFAULT_STREAM_NAME
    assert stream["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert stream["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}
    assert stream["RetentionPeriodHours"] == 24
    assert "ShardCount" not in stream


def test_firehose_from_stream_to_raw_zone(synth):
    fh = one(_raw(synth), "AWS::KinesisFirehose::DeliveryStream")["Properties"]
    assert fh["DeliveryStreamName"] == contract.DEFAULT_FIREHOSE_NAME
    assert fh["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert fh["KinesisStreamSourceConfiguration"]["KinesisStreamARN"] == {"Fn::GetAtt": [_stream_id(synth), "Arn"]}
    dest = fh["ExtendedS3DestinationConfiguration"]
    assert dest["Prefix"] == "lake/raw/stream/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
    assert dest["ErrorOutputPrefix"] == (
        "lake/raw/stream_errors/!{firehose:error-output-type}/"
        "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
    )
    assert dest["CompressionFormat"] == "GZIP"
    assert dest["BufferingHints"] == {"IntervalInSeconds": 300, "SizeInMBs": 64}
    assert dest["CloudWatchLoggingOptions"]["Enabled"] is True
    assert "Lake" in flatten(dest["BucketARN"])
    # the same role reads the stream and writes the bucket
    assert dest["RoleARN"] == fh["KinesisStreamSourceConfiguration"]["RoleARN"]


def _stream_id(synth) -> str:
    return next(iter(resources_of(_raw(synth), "AWS::Kinesis::Stream")))


def _function_id(synth, handler_folder: str) -> str:
    stack = synth.built.streaming
    fn = {"firehose_processor": stack.processor, "stream_errors_monitor": stack.errors_monitor}[handler_folder]
    logical_id = stack.get_logical_id(fn.node.default_child)
    assert _asset_dir(synth, logical_id).joinpath("handler.py").read_text() == (
        INFRA_DIR / "lambda" / handler_folder / "handler.py"
    ).read_text()
    return logical_id


def _asset_dir(synth, logical_id: str) -> Path:
    """The folder the function's code zip is made from (cdk.out/asset.<hash>)."""
    key = _raw(synth)["Resources"][logical_id]["Properties"]["Code"]["S3Key"]
    return Path(synth.built.app.outdir) / f"asset.{key.removesuffix('.zip')}"


def test_firehose_transforms_with_the_processor_lambda(synth):
    dest = one(_raw(synth), "AWS::KinesisFirehose::DeliveryStream")["Properties"]["ExtendedS3DestinationConfiguration"]
    processing = dest["ProcessingConfiguration"]
    assert processing["Enabled"] is True
    (processor,) = processing["Processors"]
    assert processor["Type"] == "Lambda"
    params = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    assert params["LambdaArn"] == {"Fn::GetAtt": [_function_id(synth, "firehose_processor"), "Arn"]}
    assert params["NumberOfRetries"] == "3"


def test_lambdas_latest_python_own_roles_and_log_groups(synth):
    raw = _raw(synth)
    ids = [_function_id(synth, "firehose_processor"), _function_id(synth, "stream_errors_monitor")]
    for logical_id in ids:
        props = raw["Resources"][logical_id]["Properties"]
        assert props["Runtime"] == "python3.14"
        assert props["Handler"] == "handler.handler"
        assert props["LoggingConfig"]["LogGroup"]["Ref"] in resources_of(raw, "AWS::Logs::LogGroup")
        role = raw["Resources"][props["Role"]["Fn::GetAtt"][0]]["Properties"]
        assert "ManagedPolicyArns" not in role
    for group in resources_of(raw, "AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == 90


def test_firehose_role_is_least_privilege(synth):
    raw = _raw(synth)
    statements = {s["Sid"]: s for s in policy_statements(raw, "FirehosePolicy")}
    assert set(statements) == {"ReadStream", "LakeBucket", "WriteRawStream", "InvokeProcessor", "DeliveryLogs"}
    for s in statements.values():
        assert s["Effect"] == "Allow"
        for resource in as_list(s["Resource"]):
            assert resource != "*"
        for action in as_list(s["Action"]):
            assert "*" not in action
    assert statements["ReadStream"]["Resource"] == {"Fn::GetAtt": [_stream_id(synth), "Arn"]}
    assert set(statements["WriteRawStream"]["Action"]) == {"s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"}
    object_resources = sorted(flatten(r).split("/", 1)[1] for r in statements["WriteRawStream"]["Resource"])
    assert object_resources == ["lake/raw/stream/*", "lake/raw/stream_errors/*"]
    assert statements["InvokeProcessor"]["Resource"] == {
        "Fn::GetAtt": [_function_id(synth, "firehose_processor"), "Arn"]
    }
    assert flatten(statements["DeliveryLogs"]["Resource"]).endswith(":log-stream:DestinationDelivery")
    trust = next(
        r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
        for k, r in resources_of(raw, "AWS::IAM::Role").items()
        if k.startswith("FirehoseRole")
    )
    assert trust["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": "123456789012"}}


def test_delivery_stream_waits_for_its_policy(synth):
    fh = one(_raw(synth), "AWS::KinesisFirehose::DeliveryStream")
    assert any(d.startswith("FirehosePolicy") for d in fh["DependsOn"])


def test_error_prefix_notifies_the_monitor(synth):
    raw = _raw(synth)
    notif = one(raw, "Custom::S3BucketNotifications")["Properties"]
    (config,) = notif["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    assert config["Events"] == ["s3:ObjectCreated:*"]
    assert config["Filter"] == {"Key": {"FilterRules": [{"Name": "prefix", "Value": "lake/raw/stream_errors/"}]}}
    monitor = _function_id(synth, "stream_errors_monitor")
    assert config["LambdaFunctionArn"] == {"Fn::GetAtt": [monitor, "Arn"]}
    assert notif["Managed"] is False  # merges with, never replaces, the bucket's other notifications
    env = raw["Resources"][monitor]["Properties"]["Environment"]["Variables"]
    assert env == {"ERRORS_PREFIX": "lake/raw/stream_errors/"}
    (read,) = policy_statements(raw, "StreamErrorsMonitorReadPolicy")
    assert read["Action"] == "s3:GetObject"
    assert flatten(read["Resource"]).endswith("/lake/raw/stream_errors/*")


def test_failed_records_metric_and_alarm(synth):
    raw = _raw(synth)
    mf = one(raw, "AWS::Logs::MetricFilter")["Properties"]
    assert mf["FilterPattern"] == '{ $.event = "firehose_error_object" }'
    (transformation,) = mf["MetricTransformations"]
    assert transformation["MetricValue"] == "$.failed_records"
    alarm = one(raw, "AWS::CloudWatch::Alarm")["Properties"]
    assert alarm["MetricName"] == transformation["MetricName"]
    assert alarm["Namespace"] == transformation["MetricNamespace"]
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"


def test_lambda_assets_hold_only_the_handler(synth):
    raw = _raw(synth)
    for logical_id in (_function_id(synth, "firehose_processor"), _function_id(synth, "stream_errors_monitor")):
        asset = _asset_dir(synth, logical_id)
        assert sorted(p.name for p in asset.iterdir()) == ["handler.py"]
