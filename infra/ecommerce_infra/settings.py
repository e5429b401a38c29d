"""Configuration of the CDK app: CDK context (``-c key=value`` or cdk.json) first, then the
environment, then the platform's defaults (imported from ``ecommerce_platform/config.py``).

| setting              | context key            | environment                               | default |
| -------------------- | ---------------------- | ----------------------------------------- | ------- |
| account              | account                | CDK_DEFAULT_ACCOUNT                       | none (environment-agnostic synth) |
| region               | region                 | AWS_REGION, CDK_DEFAULT_REGION            | DEFAULT_REGION |
| lake bucket name     | bucket_name            | ECOMMERCE_S3_BUCKET                       | ecommerce-lake-<account>-<region>, or a generated name without an account |
| lake prefix          | s3_prefix              | ECOMMERCE_S3_PREFIX                       | DEFAULT_S3_PREFIX |
| Glue database        | glue_database          | ECOMMERCE_GLUE_DATABASE                   | DEFAULT_GLUE_DATABASE |
| Athena workgroup     | athena_workgroup       | ECOMMERCE_ATHENA_WORKGROUP                | DEFAULT_ATHENA_WORKGROUP |
| Kinesis stream       | stream_name            | ECOMMERCE_STREAM_NAME                     | DEFAULT_STREAM_NAME |
| Firehose stream      | firehose_name          | ECOMMERCE_FIREHOSE_NAME                   | DEFAULT_FIREHOSE_NAME |

The remaining knobs are context-only (see ``_CONTEXT_DEFAULTS``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Callable

from ecommerce_infra import contract

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_GLUE_DB_RE = re.compile(r"^[a-z0-9_]{1,255}$")  # Athena-friendly: lower case, digits, underscore
_ACCOUNT_RE = re.compile(r"^\d{12}$")

_CONTEXT_DEFAULTS: dict[str, Any] = {
    "stack_prefix": "Ecommerce",
    "athena_results_prefix": "athena-results",  # the platform's default ECOMMERCE_ATHENA_OUTPUT
    "athena_bytes_scanned_cutoff": 10 * 1024**3,  # per query, bytes
    "athena_results_expiration_days": 30,
    "raw_infrequent_access_days": 30,
    "raw_glacier_days": 90,
    "stream_errors_expiration_days": 365,
    "noncurrent_version_expiration_days": 30,
    "access_logs_expiration_days": 365,
    "stream_retention_hours": 24,
    "firehose_buffer_seconds": 300,
    "firehose_buffer_mb": 64,
    "clean_year_range": "2009,2030",  # partition projection range of the clean table's `year`
    "crawler_schedule": "cron(30 0 * * ? *)",  # daily, after the day's stream folder is complete
    "dagster_trusted_arns": "",  # comma-separated principal ARNs; empty = the account root
    "dagster_trusted_services": "",  # comma-separated service principals, e.g. ecs-tasks.amazonaws.com
    "log_retention_days": 90,
}


class InfraConfigError(ValueError):
    """A setting of the CDK app is wrong; the message names it."""


@dataclass(frozen=True)
class InfraSettings:
    account: str | None
    region: str
    bucket_name: str | None
    s3_prefix: str
    glue_database: str
    athena_workgroup: str
    stream_name: str
    firehose_name: str
    stack_prefix: str
    athena_results_prefix: str
    athena_bytes_scanned_cutoff: int
    athena_results_expiration_days: int
    raw_infrequent_access_days: int
    raw_glacier_days: int
    stream_errors_expiration_days: int
    noncurrent_version_expiration_days: int
    access_logs_expiration_days: int
    stream_retention_hours: int
    firehose_buffer_seconds: int
    firehose_buffer_mb: int
    clean_year_range: tuple[int, int]
    crawler_schedule: str
    dagster_trusted_arns: tuple[str, ...]
    dagster_trusted_services: tuple[str, ...]
    log_retention_days: int

    def key(self, relative: str) -> str:
        """An object key (no leading slash) for a path relative to the lake root."""
        relative = relative.strip("/")
        return f"{self.s3_prefix}/{relative}" if self.s3_prefix else relative

    def folder(self, relative: str) -> str:
        """Like ``key`` but ending in '/', as S3 prefixes and Firehose prefixes are written."""
        return self.key(relative).rstrip("/") + "/"

    @property
    def athena_output_key(self) -> str:
        return self.athena_results_prefix.strip("/") + "/"


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else None


def _split(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        items = value
    else:
        items = str(value or "").split(",")
    return tuple(s.strip() for s in items if str(s).strip())


def _integer(key: str, raw: Any, minimum: int, maximum: int | None = None) -> int:
    """Context setting ``key`` (given as ``raw``) as an integer in ``[minimum, maximum]``."""
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InfraConfigError(f"context {key}={raw!r} is not an integer") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise InfraConfigError(f"context {key}={value} is outside [{minimum}, {maximum}]")
    return value


def load_infra_settings(get_context: Callable[[str], Any] | None = None) -> InfraSettings:
    """Settings from ``get_context`` (e.g. ``app.node.try_get_context``), the environment, defaults."""
    get_context = get_context or (lambda _key: None)

    def pick(key: str, env: tuple[str, ...] = (), default: Any = None) -> Any:
        value = get_context(key)
        if value not in (None, ""):
            return value
        for name in env:
            if _env(name):
                return _env(name)
        return default

    def integer(key: str, minimum: int, maximum: int | None = None) -> int:
        return _integer(key, pick(key, default=_CONTEXT_DEFAULTS[key]), minimum, maximum)

    account = pick("account", ("CDK_DEFAULT_ACCOUNT",))
    if account is not None:
        account = str(account)
        if not _ACCOUNT_RE.match(account):
            raise InfraConfigError(f"account={account!r} is not a 12-digit AWS account id")
    region = str(pick("region", ("AWS_REGION", "CDK_DEFAULT_REGION"), contract.DEFAULT_REGION))

    bucket = pick("bucket_name", (contract.ENV_S3_BUCKET,))
    if bucket is None and account is not None:
        bucket = f"ecommerce-lake-{account}-{region}"
    if bucket is not None:
        bucket = str(bucket)
        if not _BUCKET_RE.match(bucket) or ".." in bucket:
            raise InfraConfigError(f"bucket_name={bucket!r} is not a valid S3 bucket name")

    prefix = str(pick("s3_prefix", (contract.ENV_S3_PREFIX,), contract.DEFAULT_S3_PREFIX)).strip("/")
    glue_database = str(
        pick("glue_database", (contract.ENV_GLUE_DATABASE,), contract.DEFAULT_GLUE_DATABASE)
    )
    if not _GLUE_DB_RE.match(glue_database):
        raise InfraConfigError(
            f"glue_database={glue_database!r}: use lower-case letters, digits and '_' (Athena)"
        )
    names = {
        "athena_workgroup": str(
            pick("athena_workgroup", (contract.ENV_ATHENA_WORKGROUP,), contract.DEFAULT_ATHENA_WORKGROUP)
        ),
        "stream_name": str(pick("stream_name", (contract.ENV_STREAM_NAME,), contract.DEFAULT_STREAM_NAME)),
        "firehose_name": str(
            pick("firehose_name", ("ECOMMERCE_FIREHOSE_NAME",), contract.DEFAULT_FIREHOSE_NAME)
        ),
        "stack_prefix": str(pick("stack_prefix", default=_CONTEXT_DEFAULTS["stack_prefix"])),
    }
    for key, value in names.items():
        if not _NAME_RE.match(value):
            raise InfraConfigError(f"{key}={value!r} may only hold letters, digits, '_', '.', '-'")

    years = _split(pick("clean_year_range", default=_CONTEXT_DEFAULTS["clean_year_range"]))
    try:
        year_range = (int(years[0]), int(years[1]))
    except (IndexError, ValueError):
        raise InfraConfigError(f"clean_year_range={years!r} must be 'FIRST,LAST'") from None
    if len(years) != 2 or year_range[0] > year_range[1]:
        raise InfraConfigError(f"clean_year_range={years!r} must be 'FIRST,LAST' with FIRST <= LAST")

    results_prefix = str(
        pick("athena_results_prefix", default=_CONTEXT_DEFAULTS["athena_results_prefix"])
    ).strip("/")
    if not results_prefix:
        raise InfraConfigError("athena_results_prefix must not be empty")
    # Athena's results must not be inside the lake: crawlers and the platform's listings would see them.
    inside = (
        results_prefix == prefix or results_prefix.startswith(prefix + "/")
        if prefix
        else results_prefix.split("/")[0] in contract.LAKE_ZONES
    )
    if inside:
        raise InfraConfigError(
            f"athena_results_prefix={results_prefix!r} must lie outside the lake (prefix {prefix!r})"
        )

    raw_ia = integer("raw_infrequent_access_days", 30)  # S3 minimum for STANDARD_IA
    raw_glacier = integer("raw_glacier_days", 1)
    if raw_glacier <= raw_ia:
        raise InfraConfigError("raw_glacier_days must be greater than raw_infrequent_access_days")

    return InfraSettings(
        account=account,
        region=region,
        bucket_name=bucket,
        s3_prefix=prefix,
        glue_database=glue_database,
        athena_results_prefix=results_prefix,
        athena_bytes_scanned_cutoff=integer("athena_bytes_scanned_cutoff", 10_000_000),
        athena_results_expiration_days=integer("athena_results_expiration_days", 1),
        raw_infrequent_access_days=raw_ia,
        raw_glacier_days=raw_glacier,
        stream_errors_expiration_days=integer("stream_errors_expiration_days", 1),
        noncurrent_version_expiration_days=integer("noncurrent_version_expiration_days", 1),
        access_logs_expiration_days=integer("access_logs_expiration_days", 1),
        stream_retention_hours=integer("stream_retention_hours", 24, 8760),
        firehose_buffer_seconds=integer("firehose_buffer_seconds", 60, 900),
        firehose_buffer_mb=integer("firehose_buffer_mb", 1, 128),
        clean_year_range=year_range,
        crawler_schedule=str(pick("crawler_schedule", default=_CONTEXT_DEFAULTS["crawler_schedule"])),
        dagster_trusted_arns=_split(pick("dagster_trusted_arns", default="")),
        dagster_trusted_services=_split(pick("dagster_trusted_services", default="")),
        log_retention_days=integer("log_retention_days", 1),
        **names,
    )


# ----------------------------------------------------------------------------------------------------
# The Dagster deployment on ECS (the registry and orchestration stacks): context only.
# ----------------------------------------------------------------------------------------------------
_ORCHESTRATION_DEFAULTS: dict[str, Any] = {
    "image_repository_name": "ecommerce-platform",  # the ECR repository of deploy/Dockerfile's image
    "image_tag": "latest",  # the tag the services and run tasks start (pass a git sha to pin one)
    "vpc_cidr": "10.40.0.0/16",
    "max_azs": 2,
    "nat_gateways": 1,
    "ui_allowed_cidrs": "",  # who may reach the internal load balancer; empty = the VPC's own range
    "certificate_arn": "",  # an ACM certificate: the UI listener is HTTPS on 443 (else HTTP on 80)
    "webserver_cpu": 1024,
    "webserver_memory_mib": 2048,
    "daemon_cpu": 512,
    "daemon_memory_mib": 2048,
    "run_cpu": 2048,
    "run_memory_mib": 8192,
    "db_instance_class": "t4g.micro",
    "db_allocated_storage_gib": 20,
    "db_max_allocated_storage_gib": 100,
    "db_multi_az": False,
    "db_backup_retention_days": 7,
    "db_deletion_protection": True,
    "db_name": "dagster",
    "compute_logs_prefix": "dagster-compute-logs",
    "compute_logs_expiration_days": 90,
    "ops_logs_expiration_days": 365,
    "container_insights": True,
    "ecs_exec": True,  # ECS Exec on the webserver: the hop for SSM port forwarding to the internal UI
}

# Fargate's valid task sizes: CPU units -> (min, max, step) of memory in MiB.
FARGATE_SIZES: dict[int, tuple[int, int, int]] = {
    256: (512, 2048, 512),
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}
_CIDR_RE = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})/(\d{1,2})$")
_DB_CLASS_RE = re.compile(r"^[a-z][a-z0-9]*\.[a-z0-9]+$")
_ECR_NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class TaskSize:
    cpu: int
    memory_mib: int


@dataclass(frozen=True)
class OrchestrationSettings:
    image_repository_name: str
    image_tag: str
    vpc_cidr: str
    max_azs: int
    nat_gateways: int
    ui_allowed_cidrs: tuple[str, ...]  # empty: the VPC's CIDR
    certificate_arn: str | None
    webserver: TaskSize
    daemon: TaskSize
    run: TaskSize
    db_instance_class: str
    db_allocated_storage_gib: int
    db_max_allocated_storage_gib: int
    db_multi_az: bool
    db_backup_retention_days: int
    db_deletion_protection: bool
    db_name: str
    compute_logs_prefix: str
    compute_logs_expiration_days: int
    ops_logs_expiration_days: int
    container_insights: bool
    ecs_exec: bool


def _cidr(key: str, value: str) -> str:
    m = _CIDR_RE.match(value.strip())
    if not m or any(int(x) > 255 for x in m.groups()[:4]) or int(m.group(5)) > 32:
        raise InfraConfigError(f"{key}={value!r} is not an IPv4 CIDR block such as 10.40.0.0/16")
    return value.strip()


def _boolean(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise InfraConfigError(f"context {key}={value!r} is not true or false")


def load_orchestration_settings(get_context: Callable[[str], Any] | None = None) -> OrchestrationSettings:
    """The ECS deployment's settings from CDK context (``-c key=value``), else ``_ORCHESTRATION_DEFAULTS``."""
    get_context = get_context or (lambda _key: None)

    def pick(key: str) -> Any:
        value = get_context(key)
        return _ORCHESTRATION_DEFAULTS[key] if value in (None, "") else value

    def integer(key: str, minimum: int, maximum: int | None = None) -> int:
        return _integer(key, pick(key), minimum, maximum)

    def size(role: str) -> TaskSize:
        cpu, memory = integer(f"{role}_cpu", 256), integer(f"{role}_memory_mib", 512)
        if cpu not in FARGATE_SIZES:
            raise InfraConfigError(f"context {role}_cpu={cpu} is not a Fargate size ({sorted(FARGATE_SIZES)})")
        low, high, step = FARGATE_SIZES[cpu]
        if not (low <= memory <= high and memory % step == 0):
            raise InfraConfigError(
                f"context {role}_memory_mib={memory} does not fit {role}_cpu={cpu} on Fargate "
                f"({low}..{high} MiB in steps of {step})"
            )
        return TaskSize(cpu, memory)

    repository = str(pick("image_repository_name"))
    if not _ECR_NAME_RE.match(repository) or len(repository) > 256:
        raise InfraConfigError(f"image_repository_name={repository!r} is not a valid ECR repository name")
    tag = str(pick("image_tag"))
    if not _TAG_RE.match(tag):
        raise InfraConfigError(f"image_tag={tag!r} is not a valid image tag")
    db_class = str(pick("db_instance_class"))
    if not _DB_CLASS_RE.match(db_class):
        raise InfraConfigError(f"db_instance_class={db_class!r} is not an instance class such as t4g.micro")
    db_name = str(pick("db_name"))
    if not re.match(r"^[a-z][a-z0-9_]{0,62}$", db_name):
        raise InfraConfigError(f"db_name={db_name!r}: a lower-case letter, then letters, digits or '_'")
    compute_prefix = str(pick("compute_logs_prefix")).strip("/")
    if not compute_prefix or not re.match(r"^[A-Za-z0-9_.\-/]+$", compute_prefix):
        raise InfraConfigError(f"compute_logs_prefix={compute_prefix!r} must be a non-empty S3 prefix")
    allocated = integer("db_allocated_storage_gib", 20, 65536)
    certificate = str(pick("certificate_arn") or "").strip() or None
    if certificate and not certificate.startswith("arn:"):
        raise InfraConfigError(f"certificate_arn={certificate!r} is not an ACM certificate ARN")

    return OrchestrationSettings(
        image_repository_name=repository,
        image_tag=tag,
        vpc_cidr=_cidr("vpc_cidr", str(pick("vpc_cidr"))),
        max_azs=integer("max_azs", 2, 6),  # RDS subnet groups need two zones
        nat_gateways=integer("nat_gateways", 1, 6),
        ui_allowed_cidrs=tuple(_cidr("ui_allowed_cidrs", c) for c in _split(pick("ui_allowed_cidrs"))),
        certificate_arn=certificate,
        webserver=size("webserver"),
        daemon=size("daemon"),
        run=size("run"),
        db_instance_class=db_class,
        db_allocated_storage_gib=allocated,
        db_max_allocated_storage_gib=integer("db_max_allocated_storage_gib", allocated, 65536),
        db_multi_az=_boolean("db_multi_az", pick("db_multi_az")),
        db_backup_retention_days=integer("db_backup_retention_days", 1, 35),
        db_deletion_protection=_boolean("db_deletion_protection", pick("db_deletion_protection")),
        db_name=db_name,
        compute_logs_prefix=compute_prefix,
        compute_logs_expiration_days=integer("compute_logs_expiration_days", 1),
        ops_logs_expiration_days=integer("ops_logs_expiration_days", 1),
        container_insights=_boolean("container_insights", pick("container_insights")),
        ecs_exec=_boolean("ecs_exec", pick("ecs_exec")),
    )
