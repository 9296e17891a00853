"""Query results as msgspec Structs; the API returns these as they are.

Money is USD as a float rounded from the exact stored decimal; `cost_usd` is null when no call of
the group could be priced, and `cost_unknown` counts the calls that could not (never $0).

The structs that serve stored columns get those fields from the declarations in `storage.schema`
(`derived`): a waterfall row gets every span column marked `copy`, a span detail every cost
column; trace totals, trace and session summaries and usage totals get every token count; a trace
summary every `served` column.
Each such struct is written here as its base (the fields computed or renamed by the query layer)
and built at import with the declared fields added. For the type checker the struct is its base,
whose `__getattr__`/`__init__` stubs accept the added fields (as `Any`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import pyarrow as pa

from llmscope_collector.storage.schema import (
    SCORE_COLUMNS,
    SPAN_COLUMNS,
    TRACE_COLUMNS,
    Column,
    token_names,
    waterfall_copied,
)

TraceState = Literal["complete", "in_progress", "incomplete"]
Field = tuple[str, Any, Any]  # (name, type, default) as `msgspec.defstruct` takes them


class _Derived(msgspec.Struct, kw_only=True):
    """Base of the structs that get fields from the declarations: typed stubs for the added fields."""

    if TYPE_CHECKING:

        def __init__(self, **fields: Any) -> None: ...

        def __getattr__(self, name: str) -> Any: ...


def _python_type(type_: pa.DataType) -> Any:
    """The JSON-facing Python type of a stored Arrow type (decimals are served as floats)."""
    if pa.types.is_list(type_):
        return list[_python_type(type_.value_type)]  # type: ignore[misc]
    if pa.types.is_map(type_):
        return dict[_python_type(type_.key_type), _python_type(type_.item_type)]  # type: ignore[misc]
    if pa.types.is_decimal(type_) or pa.types.is_floating(type_):
        return float
    if pa.types.is_integer(type_):
        return int
    if pa.types.is_boolean(type_):
        return bool
    return str


def waterfall_fields(span_columns: Sequence[Column]) -> list[Field]:
    """A waterfall row's copied span columns: as stored, null when the span has no value."""
    return [(c.name, _python_type(c.type) | None, None) for c in waterfall_copied(span_columns)]


def cost_fields(span_columns: Sequence[Column]) -> list[Field]:
    """A span's cost columns as stored (money as a float), null when not priced."""
    return [(c.name, _python_type(c.type) | None, None) for c in span_columns if c.role == "cost"]


def token_fields(span_columns: Sequence[Column]) -> list[Field]:
    """Every token count, as a total (0 when nothing was counted)."""
    return [(name, int, 0) for name in token_names(span_columns)]


def served_trace_fields(trace_columns: Sequence[Column]) -> list[Field]:
    """The trace summary columns the trace list serves under their own names."""
    fields: list[Field] = []
    for column in trace_columns:
        if not column.served:
            continue
        if column.name == "cost_usd":
            fields.append((column.name, float | None, None))
        elif column.merge == "sum":
            fields.append((column.name, int, 0))
        elif column.merge == "union":
            fields.append((column.name, _python_type(column.type), msgspec.field(default_factory=list)))
        else:
            fields.append((column.name, _python_type(column.type) | None, None))
    return fields


def summed_trace_fields(trace_columns: Sequence[Column]) -> list[Field]:
    """The trace summary columns a session adds up (the `sum` ones), as totals."""
    return [
        (c.name, float | None, None) if c.name == "cost_usd" else (c.name, int, 0)
        for c in trace_columns
        if c.merge == "sum"
    ]


def derived(name: str, base: type[_Derived], fields: Sequence[Field]) -> type[_Derived]:
    """`base` with the declared `fields` added (those the base writes out itself are its own)."""
    own = set(base.__struct_fields__)
    added = [f for f in fields if f[0] not in own]
    struct = msgspec.defstruct(name, added, bases=(base,), kw_only=True, module=__name__)
    struct.__doc__ = base.__doc__
    return struct  # type: ignore[return-value]


class _Score(_Derived, kw_only=True):
    """A score on a trace, a span or a session; its fields are the declared score columns."""


def score_fields(score_columns: Sequence[Column]) -> list[Field]:
    """Every score column as stored, null when the score has no value for it."""
    return [(c.name, _python_type(c.type) | None, None) for c in score_columns]


if TYPE_CHECKING:
    Score = _Score
else:
    Score = derived("Score", _Score, score_fields(SCORE_COLUMNS))


class ScoreList(msgspec.Struct, kw_only=True):
    scores: list[Score]


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


class _WaterfallSpan(_Derived, kw_only=True):
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
    ttft_ms: float | None = None
    cost_usd: float | None = None
    # False for an LLM span nested in another LLM span for the same call: shown, not added up.
    counted: bool | None = None
    events: list[SpanEvent] = msgspec.field(default_factory=list)
    exceptions: list[SpanException] = msgspec.field(default_factory=list)
    content: list[ContentRef] = msgspec.field(default_factory=list)


class _TraceTotals(_Derived, kw_only=True):
    """Totals of a trace's counted LLM calls (plus every token count of the declaration)."""

    span_count: int
    llm_calls: int
    error_count: int
    cost_usd: float | None = None
    cost_unknown: int = 0


if TYPE_CHECKING:
    WaterfallSpan = _WaterfallSpan
    TraceTotals = _TraceTotals
else:
    WaterfallSpan = derived("WaterfallSpan", _WaterfallSpan, waterfall_fields(SPAN_COLUMNS))
    TraceTotals = derived("TraceTotals", _TraceTotals, token_fields(SPAN_COLUMNS))


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
    scores: list[Score] = msgspec.field(default_factory=list)  # on the trace and its spans


class StoreCounts(msgspec.Struct, kw_only=True):
    """What the store holds. `traces` only when asked for: counting distinct trace ids reads every
    span's id (about a second of CPU at 10M spans), too much for a liveness probe's every call."""

    spans: int
    traces: int | None = None


class _TraceSummary(_Derived, kw_only=True):
    """One row of the trace list (from the stitched summary, never from span content: `preview_input` and
    `preview_output` are one-line previews the stitcher took from captured content, null without it)."""

    trace_id: str
    name: str | None
    service_name: str | None
    start_time_unix_nano: int
    duration_ms: float
    state: TraceState
    status: Literal["ok", "error"]


if TYPE_CHECKING:
    TraceSummary = _TraceSummary
else:
    TraceSummary = derived("TraceSummary", _TraceSummary, served_trace_fields(TRACE_COLUMNS))


class TracePage(msgspec.Struct, kw_only=True):
    traces: list[TraceSummary]
    next_cursor: str | None


class ValueCount(msgspec.Struct, kw_only=True):
    value: str
    traces: int  # how many traces of the range have it


class ValueList(msgspec.Struct, kw_only=True):
    """The distinct values of one trace field, the most frequent first (then by value)."""

    field: str
    values: list[ValueCount]


class ContentPart(msgspec.Struct, kw_only=True):
    """One stored content item of a span, rehydrated from the content store."""

    kind: str
    source: str
    hash: str
    bytes: int
    value: Any = None
    available: bool = True


class _SpanDetail(_Derived, kw_only=True):
    """One span in full; its cost columns (every `cost` column of the declaration) are added."""

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
    # Whether the cost the instrumentation reported (`genai.reported_cost_usd`) differs from `cost_usd` by
    # more than a cent per million tokens of the call (then the UI shows both).
    reported_cost_differs: bool = False
    counted: bool | None
    content: list[ContentPart]
    scores: list[Score] = msgspec.field(default_factory=list)


if TYPE_CHECKING:
    SpanDetail = _SpanDetail
else:
    SpanDetail = derived("SpanDetail", _SpanDetail, cost_fields(SPAN_COLUMNS))


class LatencyStats(msgspec.Struct, kw_only=True):
    p50_ms: float | None
    p95_ms: float | None


class _SessionSummary(_Derived, kw_only=True):
    """A session: its traces' summed columns (from the declaration) plus when, who and how fast."""

    session_id: str
    user_id: str | None
    first_activity_unix_nano: int
    last_activity_unix_nano: int
    trace_count: int
    error_traces: int
    latency: LatencyStats


if TYPE_CHECKING:
    SessionSummary = _SessionSummary
else:
    SessionSummary = derived("SessionSummary", _SessionSummary, summed_trace_fields(TRACE_COLUMNS))


class SessionPage(msgspec.Struct, kw_only=True):
    sessions: list[SessionSummary]
    next_cursor: str | None


class SessionDetail(msgspec.Struct, kw_only=True):
    session: SessionSummary
    traces: list[TraceSummary]
    traces_truncated: bool
    scores: list[Score] = msgspec.field(default_factory=list)


class DeletionReport(msgspec.Struct, kw_only=True):
    session_id: str
    traces_deleted: int
    spans_deleted: int
    content_items_deleted: int
    files_rewritten: int
    # Score rows removed: those on the session, on its traces and on their spans (every stored version).
    scores_deleted: int = 0


class _Usage(_Derived, kw_only=True):
    """What a group of counted LLM calls used: calls, every declared token count, cost."""

    llm_calls: int
    cost_usd: float | None
    cost_unknown: int


if TYPE_CHECKING:
    Usage = _Usage
else:
    Usage = derived("Usage", _Usage, token_fields(SPAN_COLUMNS))


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


class ScoreStats(msgspec.Struct, kw_only=True):
    """The values of one score over a group: how many, their average and spread (numeric and boolean
    scores: booleans as 1/0), and how many of each label (categorical and boolean scores)."""

    count: int
    avg: float | None
    min: float | None
    max: float | None
    p50: float | None
    p90: float | None
    labels: dict[str, int]


class ScoreGroup(msgspec.Struct, kw_only=True):
    key: str | None
    stats: ScoreStats


class ScorePoint(msgspec.Struct, kw_only=True):
    time_unix_nano: int
    key: str | None
    stats: ScoreStats


class ScoreMetrics(msgspec.Struct, kw_only=True):
    """A score's statistics per group (model, prompt version, or all) over the range, and per time bucket."""

    name: str
    group_by: str | None
    interval: str
    groups: list[ScoreGroup]
    points: list[ScorePoint]
