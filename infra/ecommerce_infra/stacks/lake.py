"""The lake bucket (and the bucket its access logs go to)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_s3 as s3
from cdk_nag import NagSuppressions
from constructs import Construct

from ecommerce_infra import contract
from ecommerce_infra.nag import suppression
from ecommerce_infra.settings import InfraSettings


class LakeStorageStack(Stack):
    """An encrypted, versioned, private bucket that only accepts TLS, holding ``<prefix>/`` (the lake)
    and ``athena-results/``; raw data moves to cheaper storage classes as it ages."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings

        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,  # server access logs only support SSE-S3
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(settings.access_logs_expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        NagSuppressions.add_resource_suppressions(
            self.access_logs_bucket,
            [
                suppression(
                    "AwsSolutions-S1",
                    reason="This is the server-access-log bucket of the lake bucket; logging it "
                    "into itself (or a third bucket) would loop or only move the problem.",
                )
            ],
        )

        self.bucket = s3.Bucket(
            self,
            "LakeBucket",
            bucket_name=settings.bucket_name,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="lake-bucket/",
            lifecycle_rules=self._lifecycle_rules(settings),
            removal_policy=RemovalPolicy.RETAIN,
        )

    @staticmethod
    def _lifecycle_rules(settings: InfraSettings) -> list[s3.LifecycleRule]:
        return [
            s3.LifecycleRule(
                id="raw-tiering",
                prefix=settings.folder(contract.ZONE_RAW),
                transitions=[
                    s3.Transition(
                        storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                        transition_after=Duration.days(settings.raw_infrequent_access_days),
                    ),
                    s3.Transition(
                        storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                        transition_after=Duration.days(settings.raw_glacier_days),
                    ),
                ],
            ),
            s3.LifecycleRule(
                id="stream-errors-expiry",
                prefix=settings.folder(contract.RAW_STREAM_ERROR_PREFIX),
                expiration=Duration.days(settings.stream_errors_expiration_days),
            ),
            s3.LifecycleRule(
                id="athena-results-expiry",
                prefix=settings.athena_output_key,
                expiration=Duration.days(settings.athena_results_expiration_days),
            ),
            s3.LifecycleRule(
                # publish_prefix rewrites whole prefixes: old versions are kept for a while, not forever
                id="noncurrent-versions",
                noncurrent_version_expiration=Duration.days(settings.noncurrent_version_expiration_days),
                expired_object_delete_marker=True,
                abort_incomplete_multipart_upload_after=Duration.days(7),
            ),
        ]
