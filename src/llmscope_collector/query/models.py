"""Query results as msgspec Structs; the API returns these as they are."""

from __future__ import annotations

import msgspec


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
    orphan: bool
    operation: str | None = None
    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    finish_reasons: list[str] | None = None
    error_type: str | None = None
    is_stream: bool | None = None
    ttft_ms: float | None = None


class TraceTotals(msgspec.Struct, kw_only=True):
    span_count: int
    llm_calls: int
    error_count: int
    input_tokens: int
    output_tokens: int


class Waterfall(msgspec.Struct, kw_only=True):
    trace_id: str
    project: str
    start_time_unix_nano: int
    duration_ms: float
    totals: TraceTotals
    spans: list[WaterfallSpan]


class StoreCounts(msgspec.Struct, kw_only=True):
    spans: int
    traces: int
