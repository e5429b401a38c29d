"""Builds the CDK app: the seven stacks of the aws deployment, checked by cdk-nag's AwsSolutions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from ecommerce_infra.settings import InfraSettings, OrchestrationSettings, load_infra_settings, load_orchestration_settings
from ecommerce_infra.stacks.access import AccessStack
from ecommerce_infra.stacks.catalog import CatalogStack
from ecommerce_infra.stacks.lake import LakeStorageStack
from ecommerce_infra.stacks.orchestration import OrchestrationStack
from ecommerce_infra.stacks.query import QueryStack
from ecommerce_infra.stacks.registry import RegistryStack
from ecommerce_infra.stacks.streaming import StreamingStack


# Feature flags the stacks are written for, set in code so that `python app.py`, the tests and the
# cdk CLI (which also reads cdk.json) synthesize the same templates.
FEATURE_FLAGS: dict[str, Any] = {
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/aws-s3:createDefaultLoggingPolicy": True,
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/core:checkSecretUsage": True,
    "@aws-cdk/core:defaultCrossStackReferences": "strong",
}


@dataclass
class EcommerceApp:
    app: cdk.App
    settings: InfraSettings
    lake: LakeStorageStack
    streaming: StreamingStack
    catalog: CatalogStack
    query: QueryStack
    access: AccessStack
    orchestration_settings: OrchestrationSettings
    registry: RegistryStack
    orchestration: OrchestrationStack

    @property
    def stacks(self) -> list[cdk.Stack]:
        return [self.lake, self.streaming, self.catalog, self.query, self.access, self.registry, self.orchestration]


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> EcommerceApp:
    app = cdk.App(context={**FEATURE_FLAGS, **dict(context or {})}, outdir=outdir)
    settings = load_infra_settings(app.node.try_get_context)
    orchestration_settings = load_orchestration_settings(app.node.try_get_context)
    env = cdk.Environment(account=settings.account, region=settings.region)
    p = settings.stack_prefix

    lake = LakeStorageStack(app, f"{p}Lake", settings=settings, env=env, description="Ecommerce lake bucket")
    on_lake = {"settings": settings, "bucket": lake.bucket, "env": env}  # the stacks built on the lake bucket
    streaming = StreamingStack(
        app,
        f"{p}Streaming",
        **on_lake,
        description="Ecommerce transaction stream: Kinesis -> Firehose (validating Lambda) -> raw zone",
    )
    catalog = CatalogStack(
        app,
        f"{p}Catalog",
        **on_lake,
        description="Ecommerce Glue database, clean tables (projection) and raw-zone crawler",
    )
    query = QueryStack(app, f"{p}Query", **on_lake, description="Ecommerce Athena workgroup")
    access = AccessStack(
        app,
        f"{p}Access",
        **on_lake,
        stream=streaming.stream,
        description="Ecommerce Dagster role and the aws deployment's environment (outputs)",
    )

    # Dagster itself: the image's registry (deployed, and the image pushed, before the services start),
    # then the cluster, database, load balancer and the webserver/daemon services (deploy/README.md).
    registry = RegistryStack(
        app,
        f"{p}Registry",
        orchestration=orchestration_settings,
        env=env,
        description="Ecommerce container registry of the Dagster code location's image",
    )
    orchestration = OrchestrationStack(
        app,
        f"{p}Orchestration",
        **on_lake,
        orchestration=orchestration_settings,
        stream=streaming.stream,
        repository=registry.repository,
        description="Ecommerce Dagster on ECS Fargate: webserver, daemon, run tasks, PostgreSQL, compute logs",
    )
    # The Dagster role's and the run tasks' Glue/Athena grants name resources by ARN: deploy them first.
    for granted in (access, orchestration):
        granted.add_stack_dependency(catalog)
        granted.add_stack_dependency(query)

    stacks = (lake, streaming, catalog, query, access, registry, orchestration)
    for stack in stacks:
        cdk.Tags.of(stack).add("project", "ecommerce-platform")
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return EcommerceApp(app, settings, lake, streaming, catalog, query, access, orchestration_settings, registry,
                        orchestration)
