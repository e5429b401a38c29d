"""The names shared with the platform, imported from the platform's own modules (never copied).

``ecommerce_platform/config.py`` and ``ecommerce_platform/schema.py`` are loaded by file path,
not as a package import, so the infra virtual environment (which has no Dagster) can read them
without executing ``ecommerce_platform/__init__.py``. Both modules must stay standard-library-only.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]
PLATFORM_DIR = REPO_ROOT / "ecommerce_platform"


def _load(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the infra app expects to live in <repo>/infra")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses need the module registered while it executes
    spec.loader.exec_module(module)
    return module


platform_config = _load("_ecommerce_platform_config", PLATFORM_DIR / "config.py")
platform_schema = _load("_ecommerce_platform_schema", PLATFORM_DIR / "schema.py")

# Defaults and layout of the aws deployment.
DEFAULT_S3_PREFIX: str = platform_config.DEFAULT_S3_PREFIX
DEFAULT_GLUE_DATABASE: str = platform_config.DEFAULT_GLUE_DATABASE
DEFAULT_ATHENA_WORKGROUP: str = platform_config.DEFAULT_ATHENA_WORKGROUP
DEFAULT_STREAM_NAME: str = platform_config.DEFAULT_STREAM_NAME
DEFAULT_FIREHOSE_NAME: str = platform_config.DEFAULT_FIREHOSE_NAME
DEFAULT_REGION: str = platform_config.DEFAULT_REGION

ZONE_RAW: str = platform_schema.ZONE_RAW
ZONE_CLEAN: str = platform_schema.ZONE_CLEAN
LAKE_ZONES: tuple[str, ...] = tuple(
    getattr(platform_schema, name) for name in dir(platform_schema) if name.startswith("ZONE_")
)
RAW_BATCH_PREFIX: str = platform_schema.RAW_BATCH_PREFIX
RAW_STREAM_PREFIX: str = platform_schema.RAW_STREAM_PREFIX
RAW_STREAM_ERROR_PREFIX: str = platform_schema.RAW_STREAM_ERROR_PREFIX

# The clean table.
CLEAN_TABLE: str = platform_schema.CLEAN_TABLE
CLEAN_TABLE_PREFIX: str = platform_schema.CLEAN_PREFIX  # <prefix>/clean/transactions/year=/month=/
CLEAN_COLUMNS = platform_schema.CLEAN_COLUMNS
CLEAN_PARTITIONS = platform_schema.CLEAN_PARTITIONS
GLUE_TYPES: dict[str, str] = platform_schema.GLUE_TYPES

# The environment variables the aws deployment reads (see load_settings()).
ENV_DEPLOYMENT = "ECOMMERCE_DEPLOYMENT"
ENV_S3_BUCKET = "ECOMMERCE_S3_BUCKET"
ENV_S3_PREFIX = "ECOMMERCE_S3_PREFIX"
ENV_GLUE_DATABASE = "ECOMMERCE_GLUE_DATABASE"
ENV_ATHENA_WORKGROUP = "ECOMMERCE_ATHENA_WORKGROUP"
ENV_ATHENA_OUTPUT = "ECOMMERCE_ATHENA_OUTPUT"
ENV_STREAM_NAME = "ECOMMERCE_STREAM_NAME"
ENV_REGION = "AWS_REGION"

# CloudFormation output id -> environment variable. Output ids must be alphanumeric, so each output
# carries its variable's name as its description too; scripts/outputs_to_env.py uses this table.
OUTPUT_ENV: dict[str, str] = {
    "EcommerceDeployment": ENV_DEPLOYMENT,
    "EcommerceS3Bucket": ENV_S3_BUCKET,
    "EcommerceS3Prefix": ENV_S3_PREFIX,
    "EcommerceGlueDatabase": ENV_GLUE_DATABASE,
    "EcommerceAthenaWorkgroup": ENV_ATHENA_WORKGROUP,
    "EcommerceAthenaOutput": ENV_ATHENA_OUTPUT,
    "EcommerceStreamName": ENV_STREAM_NAME,
    "AwsRegion": ENV_REGION,
}


def load_platform_settings():
    """The platform's own ``load_settings()`` (reads the current environment)."""
    return platform_config.load_settings()
