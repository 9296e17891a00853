"""HTTP API metrics: requests by route template and status, latency histogram, requests in flight.

Routes are labelled by their template (`/v1/traces/{trace_id:str}`), unmatched paths as
`unmatched`, so label cardinality stays fixed whatever clients request.
"""

from __future__ import annotations

import time
from typing import Any

from llmscope_collector.prometheus_text import Counter, Gauge, Histogram, MetricSet

ASGIApp = Any


class HttpMetrics:
    def __init__(self) -> None:
        self.requests = Counter(
            "llmscope_http_requests_total", "API requests by method, route and status.", ("method", "route", "status")
        )
        self.duration = Histogram(
            "llmscope_http_request_duration_seconds", "API request duration by method and route.", ("method", "route")
        )
        self.in_flight = Gauge("llmscope_http_requests_in_flight", "API requests being served.")

    def metric_set(self) -> MetricSet:
        return MetricSet([self.requests, self.duration, self.in_flight])


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
            self.metrics.requests.inc(method, route, str(status))
            self.metrics.duration.observe(time.perf_counter() - started, method, route)
