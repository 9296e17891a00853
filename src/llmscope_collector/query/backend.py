"""The query-backend seam: every query the API and UI run goes through `QueryBackend`.

Two implementations answer it with the same results over the same stored data (tested by
`tests/collector/query/test_engine_equivalence.py`): `query.store.TraceStore` (DuckDB over the
Parquet files of a data dir or a bucket's mirror; the embedded default) and
`query.clickhouse.store.ClickHouseStore` (ClickHouse tables fed from the same objects; a server over
HTTP, or chdb in-process). `--query-engine` (`LLMSCOPE_QUERY_ENGINE`) picks one: empty or `duckdb`,
`clickhouse://host:8123/db`, or `chdb://[/dir]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from llmscope_collector.query.filters import TimeRange, TraceQuery, ValueQuery
from llmscope_collector.query.models import (
    CostReport,
    DeletionReport,
    Metrics,
    MetricsSeries,
    PromptList,
    PromptVersions,
    SessionDetail,
    SessionPage,
    SpanDetail,
    StoreCounts,
    TracePage,
    ValueList,
    Waterfall,
)

if TYPE_CHECKING:
    from llmscope_collector.alerts.metrics import RuleMetrics
    from llmscope_collector.settings import Settings
    from llmscope_collector.storage.content import ContentRemoval


class DeletionUnsupported(RuntimeError):
    """This engine cannot delete a session (it does not own the stored files)."""


class QueryFailed(RuntimeError):
    """The engine could not answer (a server's error, an unreadable object): the ClickHouse clients raise it
    for any engine error, so callers that record a failure and carry on (the alert evaluator) need not know
    which engine ran."""


@runtime_checkable  # the API's dependency injection checks what it is given against it
class QueryBackend(Protocol):
    """What the API, the live stream and the UI read; every data call is scoped to the caller's project."""

    def get_trace(self, trace_id: str, project: str = "default") -> Waterfall | None: ...

    def list_traces(self, project: str, query: TraceQuery) -> TracePage: ...

    def trace_values(self, project: str, query: ValueQuery) -> ValueList:
        """The distinct values of one trace field (service, model, ...) over the traces starting in the
        query's range, most frequent first: what the UI's pickers offer (`GET /v1/traces/values`)."""
        ...

    def waterfalls(self, project: str, trace_ids: Sequence[str], start_ns: int, end_ns: int) -> list[Waterfall]:
        """The waterfalls of these traces (those stored, in the order given) in one read: their spans start
        within a day of `[start_ns, end_ns]` (the span list of the Arrow answers, `GET /v1/spans`)."""
        ...

    def get_span(self, project: str, trace_id: str, span_id: str) -> SpanDetail | None: ...

    def list_sessions(
        self, project: str, time_range: TimeRange, user: str | None, limit: int, cursor: str | None
    ) -> SessionPage: ...

    def get_session(self, project: str, session_id: str, limit: int = 500) -> SessionDetail | None: ...

    def delete_session(
        self, project: str, session_id: str, content_removal: ContentRemoval | None = None
    ) -> DeletionReport:
        """Over a data dir a collector writes into, `content_removal` is its writer's (`query.deletion`)."""
        ...

    def costs(
        self, project: str, group_by: Sequence[str], time_range: TimeRange, filters: dict[str, str]
    ) -> CostReport: ...

    def metrics_summary(self, project: str, time_range: TimeRange, filters: dict[str, str]) -> Metrics: ...

    def metrics_series(
        self, project: str, interval: str, group_by: str | None, time_range: TimeRange, filters: dict[str, str]
    ) -> MetricsSeries: ...

    def prompts(self, project: str, time_range: TimeRange) -> PromptList: ...

    def trace_keys(self, project: str, trace_ids: Sequence[str], group_by: str) -> dict[str, list[str]]:
        """Per stored trace of `trace_ids`, the sorted models or prompt versions (`group_by`: model, prompt)
        it used (score metrics group by them)."""
        ...

    def prompt_versions(self, project: str, name: str, time_range: TimeRange) -> PromptVersions: ...

    def counts(self, *, traces: bool = False) -> StoreCounts:
        """Spans stored (cheap: file footers, or the engine's part metadata); distinct traces too when
        `traces` (a scan of every trace id)."""
        ...

    def rule_metrics(self, files: RuleMetrics) -> RuleMetrics:
        """What the alert evaluator reads each rule's metric from. `files` is the DuckDB reader of the stored
        files: the embedded engine's own, and where every engine reads score averages (scores are read from
        their files whatever the engine, as the API does: `query/scores.py`)."""
        ...

    def close(self) -> None: ...


def open_backend(settings: Settings) -> QueryBackend:
    """The engine `settings.query_engine` names, over the data the collector stores (data dir or bucket)."""
    from llmscope_collector.storage.cluster import query_dir

    if settings.query_engine in ("", "duckdb"):
        from llmscope_collector.query.store import TraceStore

        return TraceStore(query_dir(settings), trace_idle_s=settings.trace_idle_s)
    from llmscope_collector.query.clickhouse.store import open_clickhouse

    return open_clickhouse(settings)
