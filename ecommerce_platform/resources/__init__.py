"""Resources: the one place where the deployment (local or aws) picks implementations.

``build_resources()`` returns the resource dict for ``Definitions``; no asset branches on the
deployment. Resource keys: ``lake``, ``warehouse`` (and the layers' own: ``stream``, ``llm``, ...).
"""

from __future__ import annotations

from ecommerce_platform.config import Settings, load_settings
from ecommerce_platform.resources.lake import Lake, LocalLake, S3Lake
from ecommerce_platform.resources.warehouse import AthenaWarehouse, DuckDBWarehouse, Warehouse

__all__ = ["Lake", "LocalLake", "S3Lake", "Warehouse", "DuckDBWarehouse", "AthenaWarehouse",
           "build_lake", "build_warehouse", "build_resources"]


def build_lake(settings: Settings) -> Lake:
    if settings.deployment == "aws":
        return S3Lake(
            bucket=settings.s3_bucket, prefix=settings.s3_prefix, region=settings.region,
            endpoint_url=settings.endpoint_url,
        )
    return LocalLake(path=str(settings.lake_dir))


def build_warehouse(settings: Settings) -> Warehouse:
    if settings.warehouse_engine == "athena":
        return AthenaWarehouse(
            database=settings.glue_database, workgroup=settings.athena_workgroup,
            output_location=settings.athena_output, region=settings.region,
            endpoint_url=settings.endpoint_url,
        )
    return DuckDBWarehouse(path=str(settings.warehouse_path))


def build_resources(settings: Settings | None = None) -> dict:
    settings = settings or load_settings()
    resources: dict = {
        "lake": build_lake(settings),
        "warehouse": build_warehouse(settings),
    }
    # Layer resources (stream, llm, ...) register themselves in LAYER_RESOURCES below.
    for key, factory in LAYER_RESOURCES.items():
        resources[key] = factory(settings)
    return resources


# key -> factory(settings); filled by the layers' resource modules (see definitions.py).
LAYER_RESOURCES: dict = {}

# The stream (ingestion layer): the embedded durable log locally, Kinesis in aws.
from ecommerce_platform.resources.stream import Stream, build_stream  # noqa: E402

LAYER_RESOURCES["stream"] = build_stream
__all__ += ["Stream", "build_stream"]
