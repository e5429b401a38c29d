"""The lake bucket (and the bucket its access logs go to)."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ecommerce_infra import contract
from ecommerce_infra.settings import InfraSettings
from ecommerce_infra.stacks.common import log_bucket, private_bucket


class LakeStorageStack(Stack):
    """An encrypted, versioned, private bucket that only accepts TLS, holding ``<prefix>/`` (the lake)
    and ``athena-results/``; raw data moves to cheaper storage classes as it ages."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings

        self.access_logs_bucket = log_bucket(
            self,
            "AccessLogsBucket",
            rule_id="expire-access-logs",
            expiration_days=settings.access_logs_expiration_days,
            reason="This is the server-access-log bucket of the lake bucket; logging it "
            "into itself (or a third bucket) would loop or only move the problem.",
        )
        self.bucket = private_bucket(
            self,
            "LakeBucket",
            bucket_name=settings.bucket_name,
            versioned=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="lake-bucket/",
            lifecycle_rules=self._lifecycle_rules(settings),
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
