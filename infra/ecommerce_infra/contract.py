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


# ----------------------------------------------------------------------------------------------------
# Dagster itself on ECS (stacks/registry.py, stacks/orchestration.py): the names shared with the image
# (deploy/Dockerfile) and the instance settings (deploy/aws/dagster.yaml). Infra-side names, not the
# platform's: the tests read both files and hold them to these.
# ----------------------------------------------------------------------------------------------------
DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
INSTANCE_YAML = REPO_ROOT / "deploy" / "aws" / "dagster.yaml"
IMAGE_DAGSTER_HOME = "/opt/dagster/dagster_home"  # where the Dockerfile puts deploy/aws/dagster.yaml
IMAGE_WORKSPACE = "/app/workspace.yaml"  # the code location (workspace.yaml at the repo root)
WEBSERVER_PORT = 3000
RUN_CONTAINER_NAME = "run"  # run_launcher.config.container_name in deploy/aws/dagster.yaml
WEBSERVER_COMMAND = ["dagster-webserver", "-h", "0.0.0.0", "-p", str(WEBSERVER_PORT), "-w", IMAGE_WORKSPACE]
DAEMON_COMMAND = ["dagster-daemon", "run", "-w", IMAGE_WORKSPACE]
WEBSERVER_HEALTH_PATH = "/server_info"

# The variables deploy/aws/dagster.yaml reads (its `env:` entries), set in every container.
ENV_DAGSTER_HOME = "DAGSTER_HOME"
ENV_PG_HOST = "DAGSTER_PG_HOST"
ENV_PG_PORT = "DAGSTER_PG_PORT"
ENV_PG_DB = "DAGSTER_PG_DB"
ENV_PG_USERNAME = "DAGSTER_PG_USERNAME"  # from the database secret
ENV_PG_PASSWORD = "DAGSTER_PG_PASSWORD"  # from the database secret
ENV_COMPUTE_LOG_BUCKET = "DAGSTER_COMPUTE_LOG_BUCKET"
ENV_COMPUTE_LOG_PREFIX = "DAGSTER_COMPUTE_LOG_PREFIX"
ENV_RUN_TASK_DEFINITION = "DAGSTER_RUN_TASK_DEFINITION"

# Orchestration stack output id -> variable: written to .env by `make -C infra env` (the operator's
# view of the deployment; the containers get the same values from their task definitions). The
# password is not an output: DAGSTER_PG_SECRET_ARN names the secret that holds it.
ORCHESTRATION_OUTPUT_ENV: dict[str, str] = {
    "DagsterPgHost": ENV_PG_HOST,
    "DagsterPgPort": ENV_PG_PORT,
    "DagsterPgDb": ENV_PG_DB,
    "DagsterPgSecretArn": "DAGSTER_PG_SECRET_ARN",
    "DagsterComputeLogBucket": ENV_COMPUTE_LOG_BUCKET,
    "DagsterComputeLogPrefix": ENV_COMPUTE_LOG_PREFIX,
    "DagsterRunTaskDefinition": ENV_RUN_TASK_DEFINITION,
    "DagsterEcsCluster": "DAGSTER_ECS_CLUSTER",
    "DagsterWebserverUrl": "DAGSTER_WEBSERVER_URL",
}
REGISTRY_OUTPUT_ENV: dict[str, str] = {"EcommerceImageRepository": "ECOMMERCE_IMAGE_REPOSITORY"}
