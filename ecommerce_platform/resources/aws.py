"""Shared AWS plumbing: boto3 clients that honour endpoint overrides, and DuckDB's S3 settings."""

from __future__ import annotations

import os
from urllib.parse import urlparse


def endpoint_for(service: str, endpoint_url: str | None = None) -> str | None:
    """Service-specific override (AWS_ENDPOINT_URL_S3, ...) first, then the general one."""
    specific = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}")
    return specific or endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None


def boto_client(service: str, region: str | None = None, endpoint_url: str | None = None):
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 8, "mode": "adaptive"}, connect_timeout=10, read_timeout=60)
    return boto3.session.Session().client(
        service,
        region_name=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        endpoint_url=endpoint_for(service, endpoint_url),
        config=config,
    )


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def duckdb_s3_secret_sql(region: str, endpoint_url: str | None = None) -> str:
    """A DuckDB secret that makes ``s3://`` URIs work with the same credentials and endpoint as boto3."""
    import boto3

    creds = boto3.session.Session().get_credentials()
    parts = ["TYPE s3", f"REGION {_sql_str(region)}"]
    if creds is not None:
        frozen = creds.get_frozen_credentials()
        parts.append(f"KEY_ID {_sql_str(frozen.access_key)}")
        parts.append(f"SECRET {_sql_str(frozen.secret_key)}")
        if frozen.token:
            parts.append(f"SESSION_TOKEN {_sql_str(frozen.token)}")
    endpoint = endpoint_for("s3", endpoint_url)
    if endpoint:
        parsed = urlparse(endpoint)
        parts.append(f"ENDPOINT {_sql_str(parsed.netloc)}")
        parts.append("URL_STYLE 'path'")
        parts.append(f"USE_SSL {'true' if parsed.scheme == 'https' else 'false'}")
    return f"CREATE OR REPLACE SECRET ecommerce_lake ({', '.join(parts)})"
