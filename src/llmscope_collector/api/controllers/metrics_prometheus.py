"""`GET /metrics`: the ingest, WAL, storage and API metrics of this server (prometheus-client), in
the Prometheus text format or OpenMetrics, as the scraper's `Accept` asks.

The series name every project and its span counts, so with API keys required only the admin token
may scrape them (`authorization: Bearer <admin token>` in the scrape config); open on loopback."""

from __future__ import annotations

from litestar import Controller, Request, Response, get

from llmscope_collector.api.auth import admin_when_keys_required
from llmscope_collector.metrics import Metrics

METRICS_STATE = "metrics"


class PrometheusController(Controller):
    tags = ["system"]

    @get(
        "/metrics",
        operation_id="metrics",
        include_in_schema=False,
        sync_to_thread=False,
        guards=[admin_when_keys_required],
    )
    def metrics(self, request: Request) -> Response[bytes]:  # type: ignore[type-arg]
        metrics: Metrics = request.app.state.get(METRICS_STATE) or Metrics()  # an app without a server: none
        body, content_type = metrics.exposition(request.headers.get("accept"))
        return Response(body, media_type=content_type)
