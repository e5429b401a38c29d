"""Shared AWS plumbing: boto3 clients that honour endpoint overrides, and DuckDB's S3 settings."""

from __future__ import annotations

import hashlib
import os
import threading
from urllib.parse import urlparse


def endpoint_for(service: str, endpoint_url: str | None = None) -> str | None:
    """Service-specific override (AWS_ENDPOINT_URL_S3, ...) first, then the general one."""
    specific = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}")
    return specific or endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None


_CREDENTIAL_VARS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
)
_CLIENTS: dict = {}
_CLIENTS_LOCK = threading.Lock()


def boto_client(service: str, region: str | None = None, endpoint_url: str | None = None):
    """A boto3 client, cached per (service, region, endpoint, credential settings of the environment).

    Creating a session and a client loads the service's JSON model (~0.1-0.5 s); the lake makes dozens
    of calls per transform, so clients are reused. boto3 clients are thread-safe. The cache key holds
    the credential-related environment (hashed, never logged), so a changed environment gets a new client.
    """
    import boto3
    from botocore.config import Config

    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    endpoint = endpoint_for(service, endpoint_url)
    env = hashlib.sha256("\0".join(os.environ.get(k, "") for k in _CREDENTIAL_VARS).encode()).hexdigest()
    key = (service, region, endpoint, env)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            config = Config(
                retries={"max_attempts": 8, "mode": "adaptive"}, connect_timeout=10, read_timeout=60
            )
            client = boto3.session.Session().client(
                service, region_name=region, endpoint_url=endpoint, config=config
            )
            _CLIENTS[key] = client
        return client


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
