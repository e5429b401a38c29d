"""Structured logs: one JSON object per line on stderr, for the server's own events and for uvicorn's.

Access lines (logger ``ecommerce_platform.serving.access``)::

    {"ts": "2026-11-30T20:50:01.123Z", "level": "info", "logger": "ecommerce_platform.serving.access",
     "event": "request", "method": "GET", "path": "/api/recommend/14646", "query": "n=10", "status": 200,
     "ms": 1.84, "bytes_in": 0, "bytes_out": 1432, "client": "127.0.0.1", "request_id": "9f1c...", "pid": 4242}

Events (``ecommerce_platform.serving``): ``loaded`` / ``reloaded`` / ``load_failed`` (a component), ``error``
(an unhandled exception, with its traceback: on the server only), and uvicorn's start-up lines.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created, dt.timezone.utc)
        body = {"ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
                "level": record.levelname.lower(), "logger": record.name}
        message = record.getMessage()
        if message:
            body["message"] = message
        body.update(getattr(record, "fields", None) or {})
        body["pid"] = os.getpid()
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str, ensure_ascii=False)


def log_config(level: str = "INFO") -> dict:
    """``logging.config.dictConfig`` for uvicorn (``log_config=``): every logger through JsonFormatter to
    stderr; uvicorn's own access log is off (the middleware writes the structured one)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "ecommerce_platform.serving.logs.JsonFormatter"}},
        "handlers": {"stderr": handler},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "ecommerce_platform": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }
