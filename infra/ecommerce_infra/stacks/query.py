"""The Athena workgroup: its own encrypted result location and a per-query bytes-scanned limit."""

from __future__ import annotations

from aws_cdk import aws_athena as athena
from constructs import Construct

from ecommerce_infra.settings import InfraSettings
from ecommerce_infra.stacks.common import LakeStack


def athena_output_location(settings: InfraSettings, bucket_name: str) -> str:
    return f"s3://{bucket_name}/{settings.athena_output_key}"


class QueryStack(LakeStack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)  # settings=, bucket=: see LakeStack
        settings, bucket = self.settings, self.bucket
        self.output_location = athena_output_location(settings, bucket.bucket_name)
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=settings.athena_workgroup,
            description="Queries of the ecommerce platform (Dagster's warehouse engine in aws)",
            state="ENABLED",
            recursive_delete_option=False,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=settings.athena_bytes_scanned_cutoff,
                requester_pays_enabled=False,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=self.output_location,
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                    expected_bucket_owner=self.account,
                ),
            ),
        )
