"""`/v1/metrics`: LLM call count, error rate, latency and TTFT percentiles, tokens, cost; and scores."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, QueryParameter

from llmscope_collector.api.controllers.costs import span_filters
from llmscope_collector.api.controllers.traces import UNAUTHENTICATED, From, ScoreReader, Store, To
from llmscope_collector.api.schemas import ErrorBody, Metrics, MetricsSeries, ScoreMetrics
from llmscope_collector.query.filters import TimeRange
from llmscope_collector.query.score_metrics import score_metrics

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
        store: Store,
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
        store: Store,
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

    @get(
        "/scores",
        operation_id="getScoreMetrics",
        summary="A score's average and distribution per model or prompt version, overall and per time bucket",
        responses=_BAD,
        sync_to_thread=True,
    )
    def scores(
        self,
        store: Store,
        caller_project: NamedDependency[str],
        score_store: ScoreReader,
        name: Annotated[str, QueryParameter(description="the score's name", min_length=1, max_length=200)],
        interval: FromQuery[Literal["1m", "1h", "1d"]] = "1d",
        group_by: Annotated[
            Literal["model", "prompt"] | None,
            QueryParameter(description="a score counts for each model (prompt version) its trace used"),
        ] = None,
        from_: From = None,
        to: To = None,
    ) -> ScoreMetrics:
        time_range = TimeRange.parse(from_, to)
        if score_store is None:
            return ScoreMetrics(name=name, group_by=group_by, interval=interval, groups=[], points=[])
        return score_metrics(store, score_store, caller_project, name, interval, group_by, time_range)
