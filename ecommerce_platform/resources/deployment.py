"""The one place where the deployment (local or aws) picks the resources' implementations.

``build_resources(settings)`` returns the resource mapping for ``Definitions``: ``lake``, ``warehouse``
(which depends on the lake), ``stream``, ``embeddings`` and ``llm``. No asset branches on the
deployment. For ``Definitions`` (``env_vars=True``) values that come from the environment are given as
``dg.EnvVar`` where the variable is set, so the UI shows the variable's name, not its value; used
directly (the CLI, the server, tests) the resources hold plain values.
"""

from __future__ import annotations

import os

import dagster as dg

from ecommerce_platform.config import Settings, load_settings
from ecommerce_platform.resources.lake import Lake, LocalLake, S3Lake
from ecommerce_platform.resources.warehouse import AthenaWarehouse, DuckDBWarehouse, Warehouse

__all__ = ["Lake", "LocalLake", "S3Lake", "Warehouse", "DuckDBWarehouse", "AthenaWarehouse",
           "build_lake", "build_warehouse", "build_resources"]


def _env(env_vars: bool):  # noqa: ANN202
    def value(name: str, setting):  # noqa: ANN001, ANN202
        """``dg.EnvVar(name)`` when the setting came verbatim from that variable, else the value."""
        if env_vars and setting is not None and os.environ.get(name) == str(setting):
            return dg.EnvVar(name)
        return setting

    return value


def build_lake(settings: Settings, env_vars: bool = False) -> Lake:
    env = _env(env_vars)
    if settings.deployment == "aws":
        return S3Lake(
            bucket=env("ECOMMERCE_S3_BUCKET", settings.s3_bucket), prefix=settings.s3_prefix,
            region=env("AWS_REGION", settings.region), endpoint_url=env("AWS_ENDPOINT_URL", settings.endpoint_url),
        )
    return LocalLake(path=str(settings.lake_dir))


def build_warehouse(settings: Settings, lake: Lake | None = None, env_vars: bool = False) -> Warehouse:
    env = _env(env_vars)
    lake = lake or build_lake(settings, env_vars)
    if settings.warehouse_engine == "athena":
        return AthenaWarehouse(
            lake=lake, database=env("ECOMMERCE_GLUE_DATABASE", settings.glue_database),
            workgroup=env("ECOMMERCE_ATHENA_WORKGROUP", settings.athena_workgroup),
            output_location=env("ECOMMERCE_ATHENA_OUTPUT", settings.athena_output),
            region=env("AWS_REGION", settings.region),
        )
    glue = {"glue_database": env("ECOMMERCE_GLUE_DATABASE", settings.glue_database),
            "region": env("AWS_REGION", settings.region)} if settings.deployment == "aws" else {}
    return DuckDBWarehouse(lake=lake, path=str(settings.warehouse_path), **glue)


def build_resources(settings: Settings | None = None, env_vars: bool = False) -> dict:
    """The resources of the deployment ``settings`` describe (``load_settings()`` by default)."""
    from ecommerce_platform.resources.embeddings import build_embeddings
    from ecommerce_platform.resources.llm import build_llm
    from ecommerce_platform.resources.stream import build_stream

    settings = settings or load_settings()
    lake = build_lake(settings, env_vars)
    return {
        "lake": lake,
        "warehouse": build_warehouse(settings, lake, env_vars),
        "stream": build_stream(settings),
        "embeddings": build_embeddings(settings, env_vars),
        "llm": build_llm(settings, env_vars),
    }
