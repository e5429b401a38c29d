"""What the stacks build alike: stacks on the lake bucket, private buckets, log retention."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from cdk_nag import NagSuppressions
from constructs import Construct

from ecommerce_infra.nag import suppression
from ecommerce_infra.settings import InfraSettings

# CloudWatch's retention options, shortest first, by the days each keeps.
_RETENTION_OPTIONS = (
    (1, logs.RetentionDays.ONE_DAY),
    (7, logs.RetentionDays.ONE_WEEK),
    (14, logs.RetentionDays.TWO_WEEKS),
    (30, logs.RetentionDays.ONE_MONTH),
    (90, logs.RetentionDays.THREE_MONTHS),
    (180, logs.RetentionDays.SIX_MONTHS),
    (365, logs.RetentionDays.ONE_YEAR),
    (731, logs.RetentionDays.TWO_YEARS),
    (1827, logs.RetentionDays.FIVE_YEARS),
    (3653, logs.RetentionDays.TEN_YEARS),
)


def log_retention(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch retention option that keeps logs for ``days``."""
    for option_days, option in _RETENTION_OPTIONS:
        if option_days >= days:
            return option
    return _RETENTION_OPTIONS[-1][1]


class LakeStack(Stack):
    """A stack built on the lake bucket (the lake stack's) with the infra settings: both keyword
    arguments (``settings=``, ``bucket=``) are kept as ``self.settings`` and ``self.bucket``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: InfraSettings,
        bucket: s3.IBucket,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.bucket = bucket


def private_bucket(scope: Construct, construct_id: str, **kwargs) -> s3.Bucket:
    """A retained bucket with SSE-S3 encryption, no public access, owner-enforced object ownership,
    and TLS 1.2 or later only; ``kwargs`` are the bucket's other properties."""
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        removal_policy=RemovalPolicy.RETAIN,
        **kwargs,
    )


def log_bucket(scope: Construct, construct_id: str, *, rule_id: str, expiration_days: int, reason: str) -> s3.Bucket:
    """A private bucket that receives other buckets' (or a load balancer's) access logs and expires
    them after ``expiration_days``. Such logs support SSE-S3 only; the bucket is not logged itself,
    for ``reason`` (the AwsSolutions-S1 suppression)."""
    bucket = private_bucket(
        scope,
        construct_id,
        lifecycle_rules=[
            s3.LifecycleRule(
                id=rule_id,
                expiration=Duration.days(expiration_days),
                abort_incomplete_multipart_upload_after=Duration.days(7),
            )
        ],
    )
    NagSuppressions.add_resource_suppressions(bucket, [suppression("AwsSolutions-S1", reason=reason)])
    return bucket
