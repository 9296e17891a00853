"""`/v1/metrics`: LLM call count, error rate, latency and TTFT percentiles, tokens, cost."""

from __future__ import annotations

from typing import Literal

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery

from llmscope_collector.api.controllers.costs import span_filters
from llmscope_collector.api.controllers.traces import UNAUTHENTICATED, From, To
from llmscope_collector.api.schemas import ErrorBody, Metrics, MetricsSeries
from llmscope_collector.query.backend import QueryBackend
from llmscope_collector.query.filters import TimeRange

_BAD = {400: ResponseSpec(data_container=ErrorBody, description="A parameter is invalid"), **UNAUTHENTICATED}


class MetricsController(Controller):
    path = "/v1/metrics"
    tags = ["metrics"]

    @get(
        "/summary",
        operation_id="getMetricsSummary",
        summary="Totals over a time range",
        responses=_BAD,
        sync_to_thread=True,
    )
    def summary(
        self,
        store: NamedDependency[QueryBackend],
        caller_project: NamedDependency[str],
        from_: From = None,
        to: To = None,
        service: FromQuery[str | None] = None,
        model: FromQuery[str | None] = None,
        provider: FromQuery[str | None] = None,
    ) -> Metrics:
        return store.metrics_summary(caller_project, TimeRange.parse(from_, to), span_filters(service, model, provider))

    @get(
        "/timeseries",
        operation_id="getMetricsTimeseries",
        summary="The same metrics per time bucket",
        responses=_BAD,
        sync_to_thread=True,
    )
    def timeseries(
        self,
        store: NamedDependency[QueryBackend],
        caller_project: NamedDependency[str],
        interval: FromQuery[Literal["1m", "1h", "1d"]] = "1h",
        group_by: FromQuery[Literal["model", "service"] | None] = None,
        from_: From = None,
        to: To = None,
        service: FromQuery[str | None] = None,
        model: FromQuery[str | None] = None,
        provider: FromQuery[str | None] = None,
    ) -> MetricsSeries:
        return store.metrics_series(
            caller_project, interval, group_by, TimeRange.parse(from_, to), span_filters(service, model, provider)
        )
