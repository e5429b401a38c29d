"""The container registry of the code location's image (deploy/Dockerfile).

A stack of its own so that it can be deployed, and the image pushed, before the orchestration stack's
services ask for the image (deploy/README.md)."""

from __future__ import annotations

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from constructs import Construct

from ecommerce_infra import contract
from ecommerce_infra.settings import OrchestrationSettings

KEEP_IMAGES = 20


class RegistryStack(Stack):
    """A private ECR repository: images scanned on push, the last KEEP_IMAGES kept."""

    def __init__(
        self, scope: Construct, construct_id: str, *, orchestration: OrchestrationSettings, **kwargs
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.repository = ecr.Repository(
            self,
            "ImageRepository",
            repository_name=orchestration.image_repository_name,
            image_scan_on_push=True,
            # `latest` is re-pushed by default; deploy with -c image_tag=<git sha> to pin an image.
            image_tag_mutability=ecr.TagMutability.MUTABLE,
            encryption=ecr.RepositoryEncryption.AES_256,
            lifecycle_rules=[
                ecr.LifecycleRule(description=f"keep the last {KEEP_IMAGES} images", max_image_count=KEEP_IMAGES)
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        for output_id, env_name in contract.REGISTRY_OUTPUT_ENV.items():
            CfnOutput(self, output_id, value=self.repository.repository_uri, description=env_name)
