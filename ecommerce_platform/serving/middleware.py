"""The server's outer layer (plain ASGI, one per request): a request id, the request size limit, security
headers, one structured access-log line per request, and the guarantee that no stack trace reaches a
client (an exception that escapes the application is logged with its traceback on the server and
answered ``500 {"error": "internal error", "request_id": ...}``)."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.exceptions import HTTPException

access_log = logging.getLogger("ecommerce_platform.serving.access")
error_log = logging.getLogger("ecommerce_platform.serving")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# the page and its assets: everything from this server, nothing from anywhere else
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# /docs: Swagger UI's page starts it with an inline script; its assets are served by this server
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class BodyTooLarge(HTTPException):
    """The request body is over the limit (raised while it is read, for bodies without a length)."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than {limit:,} bytes")


def json_error(status: int, message: str, request_id: str | None, **extra) -> bytes:  # noqa: ANN003
    return json.dumps({"error": message, "status": status, "request_id": request_id, **extra}).encode()


class ServingMiddleware:
    """Request id (``X-Request-ID``: the client's when it is a plain token, else a new one), body size
    limit (declared ``Content-Length`` over it: 413 before anything is read; a body streamed without a
    length: 413 as soon as it passes the limit), security headers, the access log, and the last line of
    defence against stack traces."""

    def __init__(self, app, max_body_bytes: int, access: bool = True):  # noqa: ANN001
        self.app = app
        self.max_body = int(max_body_bytes)
        self.access = access

    async def __call__(self, scope, receive, send):  # noqa: ANN001, ANN204
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        headers = dict(scope.get("headers") or ())
        rid = headers.get(b"x-request-id", b"").decode("latin-1")
        if not REQUEST_ID.match(rid):
            rid = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid
        path = scope.get("path", "")
        state = {"status": 0, "bytes": 0, "started": False}
        cache = b"max-age=3600" if path.startswith("/static/") else b"no-store"
        extra_headers = [(b"x-request-id", rid.encode()), (b"x-content-type-options", b"nosniff"),
                         (b"referrer-policy", b"no-referrer"), (b"cache-control", cache)]
        if path == "/" or path.startswith("/static/app/"):
            extra_headers.append((b"content-security-policy", PAGE_CSP.encode()))
            extra_headers.append((b"x-frame-options", b"DENY"))
        elif path == "/docs" or path.startswith("/static/swagger/"):
            extra_headers.append((b"content-security-policy", DOCS_CSP.encode()))

        async def send_wrapper(message):  # noqa: ANN001, ANN202
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                message["headers"] = [*message.get("headers", ()), *extra_headers]
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        length = headers.get(b"content-length")
        try:
            declared = int(length) if length is not None else None
        except ValueError:
            declared = -1
        try:
            if declared is not None and (declared < 0 or declared > self.max_body):
                message = ("the Content-Length header is not a number" if declared < 0
                           else f"the request body is larger than {self.max_body:,} bytes")
                await self._send_error(send_wrapper, 400 if declared < 0 else 413, message, rid)
            else:
                await self.app(scope, self._limited(receive) if declared is None else receive, send_wrapper)
        except BodyTooLarge as exc:
            if not state["started"]:
                await self._send_error(send_wrapper, 413, exc.detail, rid)
        except Exception:  # noqa: BLE001 - logged here with its traceback; the client gets a plain 500
            error_log.exception("unhandled error on %s %s", scope.get("method"), path,
                                extra={"fields": {"event": "error", "request_id": rid}})
            if not state["started"]:
                await self._send_error(send_wrapper, 500, "internal error", rid)
        finally:
            if self.access:
                query = scope.get("query_string", b"").decode("latin-1")
                client = scope.get("client")
                access_log.info("", extra={"fields": {
                    "event": "request", "method": scope.get("method"), "path": path,
                    **({"query": query[:512]} if query else {}),
                    "status": state["status"] or 500, "ms": round((time.perf_counter() - t0) * 1000, 2),
                    "bytes_in": declared if declared and declared > 0 else 0, "bytes_out": state["bytes"],
                    "client": client[0] if client else None, "request_id": rid}})

    def _limited(self, receive):  # noqa: ANN001, ANN202
        seen = 0
        limit = self.max_body

        async def receive_limited():  # noqa: ANN202
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return receive_limited

    @staticmethod
    async def _send_error(send, status: int, message: str, rid: str) -> None:  # noqa: ANN001
        body = json_error(status, message, rid)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
