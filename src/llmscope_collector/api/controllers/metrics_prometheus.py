"""`GET /metrics`: Prometheus text format of the ingest, WAL and API metrics of this server.

The series name every project and its span counts, so with API keys required only the admin token
may scrape them (`authorization: Bearer <admin token>` in the scrape config); open on loopback."""

from __future__ import annotations

from litestar import Controller, Request, Response, get

from llmscope_collector.api.auth import admin_when_keys_required
from llmscope_collector.prometheus_text import CONTENT_TYPE, MetricSet

METRIC_SETS_STATE = "metric_sets"


class PrometheusController(Controller):
    tags = ["system"]

    @get(
        "/metrics",
        operation_id="metrics",
        include_in_schema=False,
        sync_to_thread=False,
        guards=[admin_when_keys_required],
    )
    def metrics(self, request: Request) -> Response[str]:  # type: ignore[type-arg]
        sets: list[MetricSet] = request.app.state.get(METRIC_SETS_STATE, [])
        body = "".join(metric_set.render() for metric_set in sets)
        return Response(body, media_type=CONTENT_TYPE)
