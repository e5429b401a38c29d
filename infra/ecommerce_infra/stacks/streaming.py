"""The transaction stream: Kinesis -> Firehose (+ validating Lambda) -> the lake's raw zone."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from cdk_nag import NagSuppressions
from constructs import Construct

from ecommerce_infra import contract
from ecommerce_infra.nag import object_wildcard, suppression
from ecommerce_infra.settings import InfraSettings
from ecommerce_infra.stacks.common import LakeStack, log_retention

LAMBDA_DIR = Path(__file__).resolve().parents[2] / "lambda"
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_14

# Firehose prefixes. The data prefix is the platform's raw/stream/year=YYYY/month=MM/day=DD/ (by
# arrival time, UTC); the error prefix must name the error output type when the data prefix uses
# expressions, so rejected records land in raw/stream_errors/processing-failed/year=.../.
TIMESTAMP_PARTS = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
ERROR_OUTPUT_TYPE = "!{firehose:error-output-type}/"

FIREHOSE_LOG_STREAM = "DestinationDelivery"
STREAM_ERRORS_METRIC_NAMESPACE = "Ecommerce/Stream"
STREAM_ERRORS_METRIC_NAME = "FailedRecords"
MONITOR_EVENT = "firehose_error_object"  # the `event` of the monitor's summary log line




def firehose_data_prefix(settings: InfraSettings) -> str:
    return settings.folder(contract.RAW_STREAM_PREFIX) + TIMESTAMP_PARTS


def firehose_error_prefix(settings: InfraSettings) -> str:
    return settings.folder(contract.RAW_STREAM_ERROR_PREFIX) + ERROR_OUTPUT_TYPE + TIMESTAMP_PARTS


class StreamingStack(LakeStack):
    """An on-demand, encrypted Kinesis stream delivered by Firehose to the raw zone as gzipped
    newline-delimited JSON; a Lambda validates each record and fails the bad ones into the error
    prefix, where an S3-notified Lambda counts them for an alarm."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)  # settings=, bucket=: see LakeStack
        settings, bucket = self.settings, self.bucket

        # --- Kinesis --------------------------------------------------------------------------
        self.stream = kinesis.Stream(
            self,
            "Stream",
            stream_name=settings.stream_name,
            stream_mode=kinesis.StreamMode.ON_DEMAND,
            # The AWS-managed key (aws/kinesis): encrypted at rest without a customer key to pay
            # for and to grant; consumers need no kms permissions of their own.
            encryption=kinesis.StreamEncryption.MANAGED,
            retention_period=Duration.hours(settings.stream_retention_hours),
        )

        # --- the validating (transformation) Lambda ---------------------------------------------
        self.processor, self.processor_log_group = self._function(
            "Processor",
            "firehose_processor",
            description="Validates stream records for Firehose; bad ones go to the error prefix",
            timeout=Duration.minutes(1),
        )

        # --- Firehose -----------------------------------------------------------------------------
        self.firehose_log_group = logs.LogGroup(
            self,
            "FirehoseLogs",
            retention=self._retention(),
            removal_policy=RemovalPolicy.DESTROY,
        )
        log_stream = logs.LogStream(
            self,
            "FirehoseDeliveryLogStream",
            log_group=self.firehose_log_group,
            log_stream_name=FIREHOSE_LOG_STREAM,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.firehose_role = iam.Role(
            self,
            "FirehoseRole",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com",
                conditions={"StringEquals": {"sts:ExternalId": self.account}},
            ),
            description="Lets Firehose read the transaction stream and write the raw zone",
        )
        raw_objects = [
            bucket.arn_for_objects(settings.folder(contract.RAW_STREAM_PREFIX) + "*"),
            bucket.arn_for_objects(settings.folder(contract.RAW_STREAM_ERROR_PREFIX) + "*"),
        ]
        firehose_policy = iam.Policy(
            self,
            "FirehosePolicy",
            roles=[self.firehose_role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadStream",
                    actions=[
                        "kinesis:DescribeStream",
                        "kinesis:DescribeStreamSummary",
                        "kinesis:GetShardIterator",
                        "kinesis:GetRecords",
                        "kinesis:ListShards",
                    ],
                    resources=[self.stream.stream_arn],
                ),
                iam.PolicyStatement(
                    sid="LakeBucket",
                    actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                    resources=[bucket.bucket_arn],
                ),
                iam.PolicyStatement(
                    sid="WriteRawStream",
                    actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                    resources=raw_objects,
                ),
                iam.PolicyStatement(
                    sid="InvokeProcessor",
                    actions=["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"],
                    resources=[self.processor.function_arn],
                ),
                iam.PolicyStatement(
                    sid="DeliveryLogs",
                    actions=["logs:PutLogEvents"],
                    resources=[
                        self.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=f"{self.firehose_log_group.log_group_name}:log-stream:{FIREHOSE_LOG_STREAM}",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    ],
                ),
            ],
        )
        NagSuppressions.add_resource_suppressions(
            firehose_policy,
            [
                suppression(
                    "AwsSolutions-IAM5",
                    reason="Firehose writes objects with generated names under the two raw-zone "
                    "prefixes only (raw/stream/ and raw/stream_errors/); the wildcard is the object "
                    "name below those prefixes.",
                    applies_to=[
                        object_wildcard(settings.folder(contract.RAW_STREAM_PREFIX)),
                        object_wildcard(settings.folder(contract.RAW_STREAM_ERROR_PREFIX)),
                    ],
                )
            ],
        )

        self.delivery_stream = firehose.CfnDeliveryStream(
            self,
            "DeliveryStream",
            delivery_stream_name=settings.firehose_name,
            delivery_stream_type="KinesisStreamAsSource",
            kinesis_stream_source_configuration=firehose.CfnDeliveryStream.KinesisStreamSourceConfigurationProperty(
                kinesis_stream_arn=self.stream.stream_arn,
                role_arn=self.firehose_role.role_arn,
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=bucket.bucket_arn,
                role_arn=self.firehose_role.role_arn,
                prefix=firehose_data_prefix(settings),
                error_output_prefix=firehose_error_prefix(settings),
                compression_format="GZIP",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=settings.firehose_buffer_seconds,
                    size_in_m_bs=settings.firehose_buffer_mb,
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.firehose_log_group.log_group_name,
                    log_stream_name=log_stream.log_stream_name,
                ),
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True,
                    processors=[
                        firehose.CfnDeliveryStream.ProcessorProperty(
                            type="Lambda",
                            parameters=[
                                _param("LambdaArn", self.processor.function_arn),
                                _param("NumberOfRetries", "3"),
                                _param("BufferSizeInMBs", "1"),
                                _param("BufferIntervalInSeconds", "60"),
                            ],
                        )
                    ],
                ),
            ),
        )
        NagSuppressions.add_resource_suppressions(
            self.delivery_stream,
            [
                suppression(
                    "AwsSolutions-KDF1",
                    reason="The source is a Kinesis stream, which is encrypted at rest; Firehose "
                    "does not store data at rest with a stream source (delivery-stream SSE applies "
                    "only to Direct PUT), and the bucket encrypts what it writes.",
                )
            ],
        )
        # Firehose checks its role's permissions when the stream is created.
        self.delivery_stream.node.add_dependency(firehose_policy)

        # --- the error-prefix monitor (S3 notifications) -------------------------------------------
        errors_prefix = settings.folder(contract.RAW_STREAM_ERROR_PREFIX)
        self.errors_monitor, self.errors_monitor_log_group = self._function(
            "StreamErrorsMonitor",
            "stream_errors_monitor",
            description="Counts the records Firehose wrote to the stream error prefix",
            timeout=Duration.minutes(2),
            environment={"ERRORS_PREFIX": errors_prefix},
        )
        errors_read_policy = iam.Policy(
            self,
            "StreamErrorsMonitorReadPolicy",
            roles=[self.errors_monitor.role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadStreamErrors",
                    actions=["s3:GetObject"],
                    resources=[bucket.arn_for_objects(errors_prefix + "*")],
                )
            ],
        )
        NagSuppressions.add_resource_suppressions(
            errors_read_policy,
            [
                suppression(
                    "AwsSolutions-IAM5",
                    reason="The monitor reads the objects Firehose writes under the stream error "
                    "prefix, whose names are generated; the wildcard is limited to that prefix.",
                    applies_to=[object_wildcard(errors_prefix)],
                )
            ],
        )
        # The bucket lives in another stack: import it here so the notification (and its custom
        # resource) belongs to this stack and the dependency stays one-way.
        lake = s3.Bucket.from_bucket_attributes(
            self, "LakeBucketRef", bucket_arn=bucket.bucket_arn, bucket_name=bucket.bucket_name
        )
        lake.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(self.errors_monitor),
            s3.NotificationKeyFilter(prefix=errors_prefix),
        )
        self.failed_records_metric_filter = logs.MetricFilter(
            self,
            "StreamFailedRecordsMetric",
            log_group=self.errors_monitor_log_group,
            filter_pattern=logs.FilterPattern.string_value("$.event", "=", MONITOR_EVENT),
            metric_namespace=STREAM_ERRORS_METRIC_NAMESPACE,
            metric_name=STREAM_ERRORS_METRIC_NAME,
            metric_value="$.failed_records",
            default_value=0,
        )
        self.failed_records_alarm = cloudwatch.Alarm(
            self,
            "StreamFailedRecordsAlarm",
            alarm_description="Stream records were rejected into the error prefix "
            f"{errors_prefix} (see the StreamErrorsMonitor log for samples)",
            metric=self.failed_records_metric_filter.metric(statistic="Sum", period=Duration.hours(1)),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self._suppress_notification_handler()

    # ------------------------------------------------------------------------------------------------
    def _retention(self) -> logs.RetentionDays:
        return log_retention(self.settings.log_retention_days)

    def _function(
        self,
        construct_id: str,
        folder: str,
        *,
        description: str,
        timeout: Duration,
        environment: dict[str, str] | None = None,
    ) -> tuple[lambda_.Function, logs.LogGroup]:
        log_group = logs.LogGroup(
            self, f"{construct_id}Logs", retention=self._retention(), removal_policy=RemovalPolicy.DESTROY
        )
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of the {construct_id} Lambda",
        )
        logs_policy = iam.Policy(
            self,
            f"{construct_id}LogsPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="WriteOwnLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                )
            ],
        )
        fn = lambda_.Function(
            self,
            construct_id,
            runtime=LAMBDA_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(LAMBDA_DIR / folder), exclude=["__pycache__", "*.pyc"]),
            description=description,
            timeout=timeout,
            memory_size=256,
            role=role,
            log_group=log_group,
            environment=environment,
        )
        fn.node.add_dependency(logs_policy)
        return fn, log_group

    def _suppress_notification_handler(self) -> None:
        # CDK's singleton BucketNotificationsHandler (a custom resource that calls
        # PutBucketNotificationConfiguration) is not configurable; these findings are its own.
        handler_path = f"/{self.stack_name}/BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
        NagSuppressions.add_resource_suppressions_by_path(
            self,
            f"{handler_path}/Role/Resource",
            [
                suppression(
                    "AwsSolutions-IAM4",
                    reason="CDK's bucket-notification custom resource uses "
                    "AWSLambdaBasicExecutionRole for its own logs; it runs only at deploy time.",
                    applies_to=[
                        "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
                    ],
                )
            ],
        )
        NagSuppressions.add_resource_suppressions_by_path(
            self,
            f"/{self.stack_name}/LakeBucketRef/Notifications/HandlerPolicy/Resource",
            [
                suppression(
                    "AwsSolutions-IAM5",
                    reason="s3:PutBucketNotification has no narrower resource in CDK's "
                    "bucket-notification custom resource; it runs only at deploy time.",
                    applies_to=["Resource::*"],
                )
            ],
        )


def _param(name: str, value: str) -> firehose.CfnDeliveryStream.ProcessorParameterProperty:
    return firehose.CfnDeliveryStream.ProcessorParameterProperty(parameter_name=name, parameter_value=value)
