"""Platform settings, read from the environment once per call (never cached, so tests can override).

Every name an operator may set lives here, with its default. The AWS names are the contract with the
CDK app in ``infra/`` (its stack outputs print exactly these variables).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

DEPLOYMENTS = ("local", "aws")

# Defaults of the aws deployment (the CDK app uses the same ones).
DEFAULT_S3_PREFIX = "lake"
DEFAULT_GLUE_DATABASE = "ecommerce"
DEFAULT_ATHENA_WORKGROUP = "ecommerce"
DEFAULT_STREAM_NAME = "ecommerce-transactions"
DEFAULT_FIREHOSE_NAME = "ecommerce-transactions-to-s3"
DEFAULT_REGION = "eu-west-1"
# Plausibility of invoice dates (lake/rules.py): earlier lines, or lines dated after their ingest time
# plus the tolerance, are quarantined with the reason.
DEFAULT_EARLIEST_INVOICE_DATE = dt.date(2000, 1, 1)
DEFAULT_FUTURE_TOLERANCE_HOURS = 24.0
# `ecommerce serve`: the HTTP API and web page listen here by default (loopback: not exposed)
DEFAULT_SERVE_HOST = "127.0.0.1"
DEFAULT_SERVE_PORT = 8000

# The reference data set shipped inside the repository (UCI "Online Retail", CC BY 4.0; see its README):
# the batch source when neither ECOMMERCE_SOURCE nor a user's file in the data folder names another.
REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_SOURCE = REPO_ROOT / "data" / "reference" / "online_retail.parquet"
# ECOMMERCE_SOURCE values that are not paths
SOURCE_SYNTHETIC = "synthetic"  # generate the synthetic data set (benchmarks, scale tests, demos)
SOURCE_REFERENCE = "reference"  # the shipped reference file, whatever the data folder holds
# Where the platform writes data sets it generated itself (never picked up as a user's source).
GENERATED_DIR_NAME = "generated"
# The file every entry point reads for settings, in the working folder (as `dagster` does).
ENV_FILE = ".env"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    deployment: str = "local"
    data_dir: Path = field(default_factory=lambda: Path("data"))
    source: str | None = None
    warehouse_engine: str = "duckdb"  # duckdb | athena
    # aws
    s3_bucket: str | None = None
    s3_prefix: str = DEFAULT_S3_PREFIX
    glue_database: str = DEFAULT_GLUE_DATABASE
    athena_workgroup: str = DEFAULT_ATHENA_WORKGROUP
    athena_output: str | None = None
    stream_name: str = DEFAULT_STREAM_NAME
    region: str = DEFAULT_REGION
    endpoint_url: str | None = None

    reference_source: Path = REFERENCE_SOURCE
    earliest_invoice_date: dt.date = DEFAULT_EARLIEST_INVOICE_DATE
    future_tolerance_hours: float = DEFAULT_FUTURE_TOLERANCE_HOURS
    firehose_name: str = DEFAULT_FIREHOSE_NAME
    stream_shards: int = 4  # the embedded stream's shards (Kinesis: the stream's own)
    stream_retention_hours: float = 24.0
    cache_dir: Path | None = None  # local cache of lake artefacts (models, index); default <data>/cache
    openai_model: str = "gpt-4o-mini"
    openai_base_url: str | None = None
    openai_timeout_seconds: float = 20.0
    openai_max_retries: int = 2
    openai_key_set: bool = False  # whether OPENAI_API_KEY is set (the key itself is never kept here)
    sensor_interval_seconds: int = 30  # how often the sensors and the automation sensor evaluate
    # `ecommerce serve` (ecommerce_platform/serving, docs/serving.md)
    serve_host: str = DEFAULT_SERVE_HOST
    serve_port: int = DEFAULT_SERVE_PORT
    serve_workers: int = 1  # processes; each loads the models, the index and the embedder once
    serve_reload_seconds: float = 5.0  # how often a worker checks the lake for a new materialization
    serve_max_body_bytes: int = 256 * 1024  # a larger request body is refused (413)
    serve_max_question_chars: int = 1000  # a longer question is refused (422)
    serve_max_batch: int = 1000  # invoices in one predict-high-value request
    serve_max_concurrency: int = 256  # connections + tasks a worker accepts before answering 503
    serve_access_log: bool = True  # one JSON line per request on stderr
    serve_answer_cache_mb: float = 32.0  # answers kept per worker for questions asked again (0: none)
    serve_ask_concurrency: int = 2  # answers a worker computes at once (the others queue)

    def earliest_ts(self) -> dt.datetime:
        """The earliest plausible invoice time."""
        return dt.datetime.combine(self.earliest_invoice_date, dt.time())

    def latest_valid_ts(self, ingested_at: dt.datetime) -> dt.datetime:
        """The latest plausible invoice time of a line ingested at ``ingested_at`` (naive UTC)."""
        if ingested_at.tzinfo is not None:
            ingested_at = ingested_at.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return (ingested_at + dt.timedelta(hours=self.future_tolerance_hours)).replace(microsecond=0)

    @property
    def cache_path(self) -> Path:
        """Where lake artefacts are cached on this machine (by content hash): never the system temp."""
        return self.cache_dir or (self.data_dir / "cache")

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def lake_root(self) -> str:
        """Root URI of the lake: a folder path locally, ``s3://bucket/prefix`` in aws."""
        if self.deployment == "aws":
            return f"s3://{self.s3_bucket}/{self.s3_prefix}".rstrip("/")
        return str(self.lake_dir.resolve())


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names the variable."""


def apply_env_file(folder: str | Path | None = None) -> dict[str, str]:
    """Read ``.env`` in ``folder`` (default: the working folder) into the environment, the way the
    ``dagster`` command does: values in the file win over the shell's. Returns what was set.

    The ``ecommerce`` command calls this at start, so the file that ``make -C infra env`` writes selects
    the same deployment for the command line as for Dagster."""
    path = Path(folder or Path.cwd()) / ENV_FILE
    if not path.is_file():
        return {}
    from dotenv import dotenv_values  # python-dotenv (a dependency of dagster); not at import time

    values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    os.environ.update(values)
    return values


def load_settings() -> Settings:
    deployment = (_env("ECOMMERCE_DEPLOYMENT", "local") or "local").strip().lower()
    if deployment not in DEPLOYMENTS:
        raise ConfigError(
            f"ECOMMERCE_DEPLOYMENT={deployment!r} is not one of {', '.join(DEPLOYMENTS)}"
        )
    default_engine = "athena" if deployment == "aws" else "duckdb"
    engine = (_env("ECOMMERCE_WAREHOUSE", default_engine) or default_engine).strip().lower()
    if engine not in ("duckdb", "athena"):
        raise ConfigError(f"ECOMMERCE_WAREHOUSE={engine!r} is not one of duckdb, athena")
    bucket = _env("ECOMMERCE_S3_BUCKET")
    if deployment == "aws" and not bucket:
        raise ConfigError("ECOMMERCE_DEPLOYMENT=aws needs ECOMMERCE_S3_BUCKET (the lake bucket)")
    if engine == "athena" and deployment != "aws":
        raise ConfigError("ECOMMERCE_WAREHOUSE=athena needs ECOMMERCE_DEPLOYMENT=aws")
    prefix = (_env("ECOMMERCE_S3_PREFIX", DEFAULT_S3_PREFIX) or "").strip("/")
    earliest_text = _env("ECOMMERCE_EARLIEST_INVOICE_DATE")
    try:
        earliest = dt.date.fromisoformat(earliest_text) if earliest_text else DEFAULT_EARLIEST_INVOICE_DATE
    except ValueError:
        raise ConfigError(
            f"ECOMMERCE_EARLIEST_INVOICE_DATE={earliest_text!r} is not a date (YYYY-MM-DD)") from None
    tolerance_text = _env("ECOMMERCE_FUTURE_TOLERANCE_HOURS")
    try:
        tolerance = float(tolerance_text) if tolerance_text else DEFAULT_FUTURE_TOLERANCE_HOURS
    except ValueError:
        tolerance = -1.0
    if not 0 <= tolerance <= 24 * 366:
        raise ConfigError(
            f"ECOMMERCE_FUTURE_TOLERANCE_HOURS={tolerance_text!r} is not a number of hours between 0 and 8784")
    def number(name: str, default: float, low: float, high: float) -> float:
        text = _env(name)
        try:
            value = float(text) if text else default
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise ConfigError(f"{name}={text!r} is not a number between {low:g} and {high:g}")
        return value

    def flag(name: str, default: bool) -> bool:
        text = (_env(name) or "").strip().lower()
        if not text:
            return default
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={text!r} is not one of 1, true, yes, on, 0, false, no, off")

    cache = _env("ECOMMERCE_CACHE_DIR")
    return Settings(
        deployment=deployment,
        data_dir=Path(_env("ECOMMERCE_DATA_DIR", "data")).expanduser(),
        source=_env("ECOMMERCE_SOURCE"),
        reference_source=Path(_env("ECOMMERCE_REFERENCE_SOURCE") or REFERENCE_SOURCE).expanduser(),
        earliest_invoice_date=earliest,
        future_tolerance_hours=tolerance,
        firehose_name=_env("ECOMMERCE_FIREHOSE_NAME", DEFAULT_FIREHOSE_NAME),
        stream_shards=int(number("ECOMMERCE_STREAM_SHARDS", 4, 1, 1024)),
        stream_retention_hours=number("ECOMMERCE_STREAM_RETENTION_HOURS", 24.0, 1, 24 * 365),
        cache_dir=Path(cache).expanduser() if cache else None,
        openai_model=_env("ECOMMERCE_OPENAI_MODEL", "gpt-4o-mini"),
        openai_base_url=_env("OPENAI_BASE_URL"),
        openai_timeout_seconds=number("ECOMMERCE_OPENAI_TIMEOUT", 20.0, 0.1, 600),
        openai_max_retries=int(number("ECOMMERCE_OPENAI_MAX_RETRIES", 2, 0, 10)),
        openai_key_set=bool(_env("OPENAI_API_KEY")),
        sensor_interval_seconds=int(number("ECOMMERCE_SENSOR_INTERVAL_SECONDS", 30, 1, 86400)),
        serve_host=_env("ECOMMERCE_SERVE_HOST", DEFAULT_SERVE_HOST),
        serve_port=int(number("ECOMMERCE_SERVE_PORT", DEFAULT_SERVE_PORT, 1, 65535)),
        serve_workers=int(number("ECOMMERCE_SERVE_WORKERS", 1, 1, 64)),
        serve_reload_seconds=number("ECOMMERCE_SERVE_RELOAD_SECONDS", 5.0, 0.5, 3600),
        serve_max_body_bytes=int(number("ECOMMERCE_SERVE_MAX_BODY_BYTES", 256 * 1024, 1024, 64 * 1024 * 1024)),
        serve_max_question_chars=int(number("ECOMMERCE_SERVE_MAX_QUESTION_CHARS", 1000, 10, 100_000)),
        serve_max_batch=int(number("ECOMMERCE_SERVE_MAX_BATCH", 1000, 1, 1_000_000)),
        serve_max_concurrency=int(number("ECOMMERCE_SERVE_MAX_CONCURRENCY", 256, 1, 100_000)),
        serve_access_log=flag("ECOMMERCE_SERVE_ACCESS_LOG", True),
        serve_answer_cache_mb=number("ECOMMERCE_SERVE_ANSWER_CACHE_MB", 32.0, 0, 4096),
        serve_ask_concurrency=int(number("ECOMMERCE_SERVE_ASK_CONCURRENCY", 2, 1, 256)),
        warehouse_engine=engine,
        s3_bucket=bucket,
        s3_prefix=prefix,
        glue_database=_env("ECOMMERCE_GLUE_DATABASE", DEFAULT_GLUE_DATABASE),
        athena_workgroup=_env("ECOMMERCE_ATHENA_WORKGROUP", DEFAULT_ATHENA_WORKGROUP),
        athena_output=_env("ECOMMERCE_ATHENA_OUTPUT")
        or (f"s3://{bucket}/athena-results/" if bucket else None),
        stream_name=_env("ECOMMERCE_STREAM_NAME", DEFAULT_STREAM_NAME),
        region=_env("AWS_REGION") or _env("AWS_DEFAULT_REGION") or DEFAULT_REGION,
        endpoint_url=_env("AWS_ENDPOINT_URL"),
    )
