"""``ecommerce serve``: the HTTP API and the web page (uvicorn running ``serving.app.create_app``)."""

from __future__ import annotations

import click


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on (ECOMMERCE_SERVE_HOST; default 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535),
              help="Port (ECOMMERCE_SERVE_PORT; default 8000).")
@click.option("--workers", default=None, type=click.IntRange(1, 64),
              help="Worker processes, each with its own copy of the models (ECOMMERCE_SERVE_WORKERS; default 1).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(host: str | None, port: int | None, workers: int | None, log_level: str) -> None:
    """Serve the API (/api/..., schema at /docs) and the web page (/) over what the assets published.

    Reads the lake of the deployment (ECOMMERCE_DATA_DIR, or the aws settings) read-only; does not need
    Dagster to run. A new materialization is picked up without a restart (checked every
    ECOMMERCE_SERVE_RELOAD_SECONDS). Logs are JSON lines on stderr."""
    import uvicorn

    from ecommerce_platform.config import load_settings
    from ecommerce_platform.serving.logs import log_config

    settings = load_settings()  # a wrong setting: one line and exit code 2, before anything starts
    host = host or settings.serve_host
    port = port or settings.serve_port
    workers = workers or settings.serve_workers
    uvicorn.run(
        "ecommerce_platform.serving.app:create_app", factory=True,
        host=host, port=port, workers=workers,
        log_config=log_config(log_level.upper()), log_level=log_level, access_log=False,
        server_header=False, proxy_headers=False,
        limit_concurrency=settings.serve_max_concurrency,
        timeout_keep_alive=5, timeout_graceful_shutdown=10,
    )
