"""Query results as msgspec Structs; the API returns these as they are.

Money is USD as a float rounded from the exact stored decimal; `cost_usd` is null when no call of
the group could be priced, and `cost_unknown` counts the calls that could not (never $0).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

TraceState = Literal["complete", "in_progress", "incomplete"]


class ContentRef(msgspec.Struct, kw_only=True):
    kind: str
    bytes: int


class SpanEvent(msgspec.Struct, kw_only=True):
    name: str
    offset_ms: float
    attributes: dict[str, Any]


class SpanException(msgspec.Struct, kw_only=True):
    type: str | None
    message: str | None
    stacktrace: str | None
    offset_ms: float


class WaterfallSpan(msgspec.Struct, kw_only=True):
    """One row of the waterfall, in depth-first order with children sorted by start."""

    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    status_code: str
    status_message: str | None
    service_name: str | None
    start_offset_ms: float
    duration_ms: float
    self_time_ms: float
    depth: int
    children: list[str]
    critical_path: bool
    # The parent is not stored (lost or not arrived yet): shown under the trace's synthetic root.
    orphan: bool
    # The row standing in for missing parents (span id all zeros); not a stored span, not in the totals.
    synthetic: bool = False
    operation: str | None = None
    span_type: str | None = None
    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None
    finish_reasons: list[str] | None = None
    error_type: str | None = None
    is_stream: bool | None = None
    ttft_ms: float | None = None
    prompt_name: str | None = None
    prompt_version: str | None = None
    tool_name: str | None = None
    agent_name: str | None = None
    cost_usd: float | None = None
    cost_known: bool | None = None
    # False for an LLM span nested in another LLM span for the same call: shown, not added up.
    counted: bool | None = None
    events: list[SpanEvent] = msgspec.field(default_factory=list)
    exceptions: list[SpanException] = msgspec.field(default_factory=list)
    content: list[ContentRef] = msgspec.field(default_factory=list)


class TraceTotals(msgspec.Struct, kw_only=True):
    span_count: int
    llm_calls: int
    error_count: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None
    cost_unknown: int = 0


class Waterfall(msgspec.Struct, kw_only=True):
    trace_id: str
    project: str
    start_time_unix_nano: int
    duration_ms: float
    totals: TraceTotals
    spans: list[WaterfallSpan]
    state: TraceState | None = None
    session_id: str | None = None
    user_id: str | None = None


class StoreCounts(msgspec.Struct, kw_only=True):
    spans: int
    traces: int


class TraceSummary(msgspec.Struct, kw_only=True):
    """One row of the trace list (from the stitched summary, never from span content)."""

    trace_id: str
    name: str | None
    root_span_id: str | None
    service_name: str | None
    services: list[str]
    start_time_unix_nano: int
    duration_ms: float
    state: TraceState
    status: Literal["ok", "error"]
    span_count: int
    llm_calls: int
    error_count: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    total_tokens: int
    cost_usd: float | None
    cost_unknown: int
    session_id: str | None
    user_id: str | None
    models: list[str]
    providers: list[str]
    prompts: list[str]
    tags: list[str]


class TracePage(msgspec.Struct, kw_only=True):
    traces: list[TraceSummary]
    next_cursor: str | None


class ContentPart(msgspec.Struct, kw_only=True):
    """One stored content item of a span, rehydrated from the content store."""

    kind: str
    source: str
    hash: str
    bytes: int
    value: Any = None
    available: bool = True


class SpanDetail(msgspec.Struct, kw_only=True):
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    duration_ms: float
    status_code: str
    status_message: str | None
    service_name: str | None
    scope_name: str | None
    scope_version: str | None
    resource_attributes: dict[str, Any]
    # Every attribute as the sender set it (content attributes rebuilt from the content store).
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    links: list[dict[str, Any]]
    genai: dict[str, Any]
    cost_usd: float | None
    cost_known: bool | None
    cost_source: str | None
    counted: bool | None
    content: list[ContentPart]


class LatencyStats(msgspec.Struct, kw_only=True):
    p50_ms: float | None
    p95_ms: float | None


class SessionSummary(msgspec.Struct, kw_only=True):
    session_id: str
    user_id: str | None
    first_activity_unix_nano: int
    last_activity_unix_nano: int
    trace_count: int
    span_count: int
    llm_calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    total_tokens: int
    cost_usd: float | None
    cost_unknown: int
    error_count: int
    error_traces: int
    latency: LatencyStats


class SessionPage(msgspec.Struct, kw_only=True):
    sessions: list[SessionSummary]
    next_cursor: str | None


class SessionDetail(msgspec.Struct, kw_only=True):
    session: SessionSummary
    traces: list[TraceSummary]
    traces_truncated: bool


class DeletionReport(msgspec.Struct, kw_only=True):
    session_id: str
    traces_deleted: int
    spans_deleted: int
    content_items_deleted: int
    files_rewritten: int


class Usage(msgspec.Struct, kw_only=True):
    llm_calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    total_tokens: int
    cost_usd: float | None
    cost_unknown: int


class CostGroup(msgspec.Struct, kw_only=True):
    key: dict[str, str | None]
    usage: Usage


class CostReport(msgspec.Struct, kw_only=True):
    group_by: list[str]
    from_time_unix_nano: int | None
    to_time_unix_nano: int | None
    total: Usage
    groups: list[CostGroup]


class Percentiles(msgspec.Struct, kw_only=True):
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


class Metrics(msgspec.Struct, kw_only=True):
    requests: int
    errors: int
    error_rate: float | None
    latency: Percentiles
    ttft: Percentiles
    usage: Usage


class MetricsPoint(msgspec.Struct, kw_only=True):
    time_unix_nano: int
    key: str | None
    metrics: Metrics


class MetricsSeries(msgspec.Struct, kw_only=True):
    interval: str
    group_by: str | None
    points: list[MetricsPoint]


class PromptStats(msgspec.Struct, kw_only=True):
    uses: int
    errors: int
    error_rate: float | None
    avg_tokens: float | None
    avg_latency_ms: float | None
    first_used_unix_nano: int
    last_used_unix_nano: int
    usage: Usage


class PromptSummary(msgspec.Struct, kw_only=True):
    name: str
    versions: int
    stats: PromptStats


class PromptVersion(msgspec.Struct, kw_only=True):
    version: str | None
    stats: PromptStats


class PromptList(msgspec.Struct, kw_only=True):
    prompts: list[PromptSummary]


class PromptVersions(msgspec.Struct, kw_only=True):
    name: str
    versions: list[PromptVersion]
