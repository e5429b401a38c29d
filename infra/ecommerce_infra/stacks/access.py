"""The Dagster deployment's IAM role (least privilege) and the stack outputs that configure it.

The statements (``platform_statements``) and the environment (``deployment_environment``) are shared
with the ECS deployment (stacks/orchestration.py), whose run tasks do what this role allows."""

from __future__ import annotations

import re

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_s3 as s3
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from ecommerce_infra import contract
from ecommerce_infra.nag import finding, object_wildcard, suppression
from ecommerce_infra.settings import InfraSettings
from ecommerce_infra.stacks.common import LakeStack
from ecommerce_infra.stacks.catalog import glue_arns
from ecommerce_infra.stacks.query import athena_output_location

S3_OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]
GLUE_ACTIONS = [
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
    "glue:CreateTable",
    "glue:UpdateTable",
    "glue:DeleteTable",
    "glue:CreatePartition",
    "glue:BatchCreatePartition",
    "glue:UpdatePartition",
    "glue:DeletePartition",
    "glue:BatchDeletePartition",
]
ATHENA_ACTIONS = [
    "athena:StartQueryExecution",
    "athena:StopQueryExecution",
    "athena:GetQueryExecution",
    "athena:BatchGetQueryExecution",
    "athena:GetQueryResults",
    "athena:GetQueryRuntimeStatistics",
    "athena:GetWorkGroup",
]
LAKE_BUCKET_ACTIONS = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
KINESIS_ACTIONS = [
    "kinesis:PutRecord",
    "kinesis:PutRecords",
    "kinesis:DescribeStreamSummary",
    "kinesis:DescribeStream",
    "kinesis:ListShards",
    "kinesis:GetShardIterator",
    "kinesis:GetRecords",
]


def platform_statements(
    stack: Stack, settings: InfraSettings, bucket: s3.IBucket, stream: kinesis.IStream
) -> dict[str, iam.PolicyStatement]:
    """What the platform's code does in aws, by statement id: the Dagster role's grants, which the ECS
    run tasks get too (the webserver and the daemon get parts of them: see stacks/orchestration.py)."""
    glue = glue_arns(stack, settings.glue_database)
    workgroup_arn = stack.format_arn(service="athena", resource="workgroup", resource_name=settings.athena_workgroup)
    results_objects = bucket.arn_for_objects(settings.athena_output_key + "*")
    statements = [
        iam.PolicyStatement(sid="LakeObjects", actions=S3_OBJECT_ACTIONS, resources=[lake_objects_arn(settings, bucket)]),
        iam.PolicyStatement(
            # Athena writes query results with the caller's credentials, and reads them back.
            sid="AthenaResults",
            actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            resources=[results_objects],
        ),
        iam.PolicyStatement(
            # Not narrowed by s3:prefix: HeadObject on a missing key answers 404 (not 403) only
            # with s3:ListBucket, which Lake.exists() relies on. The bucket holds nothing but
            # the lake and Athena's results.
            sid="LakeBucket",
            actions=LAKE_BUCKET_ACTIONS,
            resources=[bucket.bucket_arn],
        ),
        iam.PolicyStatement(
            sid="GlueCatalog",
            actions=GLUE_ACTIONS,
            resources=[glue["catalog"], glue["database"], glue["tables"]],
        ),
        iam.PolicyStatement(sid="AthenaWorkgroup", actions=ATHENA_ACTIONS, resources=[workgroup_arn]),
        iam.PolicyStatement(sid="Stream", actions=KINESIS_ACTIONS, resources=[stream.stream_arn]),
    ]
    return {st.sid: st for st in statements}


def lake_folder(settings: InfraSettings) -> str:
    return settings.folder("") if settings.s3_prefix else ""


def lake_objects_arn(settings: InfraSettings, bucket: s3.IBucket) -> str:
    return bucket.arn_for_objects(lake_folder(settings) + "*")


def platform_statements_suppression(settings: InfraSettings) -> NagPackSuppression:
    """The IAM5 findings of ``platform_statements``, named one by one."""
    return suppression(
        "AwsSolutions-IAM5",
        reason="Object-level wildcards are limited to the lake prefix and Athena's "
        "result prefix (object names are data); the table wildcard is limited to the "
        "platform's own Glue database, whose tables the platform and Athena manage.",
        applies_to=[
            object_wildcard(lake_folder(settings)),
            object_wildcard(settings.athena_output_key),
            finding(f"Resource::.*:table/{re.escape(settings.glue_database)}/\\*"),
        ],
    )


def deployment_environment(stack: Stack, settings: InfraSettings, bucket: s3.IBucket) -> dict[str, str]:
    """The platform's environment in aws (``ECOMMERCE_*``, ``AWS_REGION``): the access stack's outputs
    and the ECS containers' environment."""
    bucket_name = settings.bucket_name or bucket.bucket_name
    return {
        contract.ENV_DEPLOYMENT: "aws",
        contract.ENV_S3_BUCKET: bucket_name,
        # load_settings() strips '/', so "/" stands for "no prefix" (an output cannot be empty).
        contract.ENV_S3_PREFIX: settings.s3_prefix or "/",
        contract.ENV_GLUE_DATABASE: settings.glue_database,
        contract.ENV_ATHENA_WORKGROUP: settings.athena_workgroup,
        contract.ENV_ATHENA_OUTPUT: athena_output_location(settings, bucket_name),
        contract.ENV_STREAM_NAME: settings.stream_name,
        contract.ENV_REGION: stack.region,
    }


class AccessStack(LakeStack):
    """The role the Dagster deployment runs as, and the environment it needs, as stack outputs."""

    def __init__(self, scope: Construct, construct_id: str, *, stream: kinesis.IStream, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)  # settings=, bucket=: see LakeStack
        settings, bucket = self.settings, self.bucket
        self.role = iam.Role(
            self,
            "DagsterRole",
            assumed_by=self._trusted_principal(settings),
            description="The ecommerce platform's Dagster deployment (ECOMMERCE_DEPLOYMENT=aws)",
        )
        policy = iam.Policy(
            self,
            "DagsterPolicy",
            roles=[self.role],
            statements=list(platform_statements(self, settings, bucket, stream).values()),
        )
        NagSuppressions.add_resource_suppressions(policy, [platform_statements_suppression(settings)])

        self.env_values = deployment_environment(self, settings, bucket)
        for output_id, env_name in contract.OUTPUT_ENV.items():
            CfnOutput(self, output_id, value=self.env_values[env_name], description=env_name)
        CfnOutput(
            self,
            "DagsterRoleArn",
            value=self.role.role_arn,
            description="IAM role to run the Dagster deployment as (not an environment variable)",
        )

    @staticmethod
    def _trusted_principal(settings: InfraSettings) -> iam.IPrincipal:
        principals: list[iam.IPrincipal] = [iam.ArnPrincipal(a) for a in settings.dagster_trusted_arns]
        principals += [iam.ServicePrincipal(s) for s in settings.dagster_trusted_services]
        if not principals:
            return iam.AccountRootPrincipal()  # any principal of this account that IAM lets assume it
        return principals[0] if len(principals) == 1 else iam.CompositePrincipal(*principals)
