"""`X-Request-ID` on every API response (the caller's if sane, else a new one) and an access log line.

Runs outside the Litestar app so 404s and errors raised during routing are covered too.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from llmscope_collector.log_config import REQUEST_ID

access_log = logging.getLogger("llmscope_collector.api.access")
HEADER = b"x-request-id"
_SAFE = re.compile(rb"^[A-Za-z0-9._:@/+=-]{1,128}$")

ASGIApp = Any


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's id when it is short and printable (it ends up in logs), else a fresh UUID."""
    for name, value in headers:
        if name == HEADER and _SAFE.match(value):
            return value.decode("ascii")
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Sets `REQUEST_ID` for the request, echoes it as `x-request-id`, logs one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope.get("headers", []))
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, request_id.encode("ascii"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            access_log.info(
                "%s %s %d %.1f ms",
                scope["method"],
                scope["path"],
                status,
                elapsed_ms,
                extra={"method": scope["method"], "path": scope["path"], "status": status, "duration_ms": elapsed_ms},
            )
            REQUEST_ID.reset(token)
