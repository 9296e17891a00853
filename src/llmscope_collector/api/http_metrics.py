"""HTTP API metrics: requests by route template and status, latency histogram, requests in flight.

Routes are labelled by their template (`/v1/traces/{trace_id:str}`), unmatched paths as
`unmatched`, so label cardinality stays fixed whatever clients request.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

ASGIApp = Any


class HttpMetrics:
    """Declared on the server's registry (`Runtime.metrics.registry`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "llmscope_http_requests",
            "API requests by method, route and status.",
            ("method", "route", "status"),
            registry=registry,
        )
        self.duration = Histogram(
            "llmscope_http_request_duration_seconds",
            "API request duration by method and route.",
            ("method", "route"),
            registry=registry,
        )
        self.in_flight = Gauge("llmscope_http_requests_in_flight", "API requests being served.", registry=registry)


class HttpMetricsMiddleware:
    """Wraps the Litestar app; reads the route template Litestar stores in the scope."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_recording(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_recording)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("path_template") or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.duration.labels(method, route).observe(time.perf_counter() - started)
