"""`/v1/traces`: the filtered, paginated trace list and the waterfall of one trace."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from itertools import islice
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, PathParameter, QueryParameter, SkipValidation
from litestar.response import Stream

from llmscope_collector.api.arrow import arrow_response, arrow_schema, batches, wants_arrow
from llmscope_collector.api.auth import caller_project
from llmscope_collector.api.exceptions import NotFound
from llmscope_collector.api.schemas import ErrorBody, TracePage, Waterfall
from llmscope_collector.query.backend import QueryBackend
from llmscope_collector.query.filters import (
    MAX_PREFIX,
    MAX_VALUES,
    SCORE_SORT,
    TimeRange,
    TraceQuery,
    ValueField,
    ValueQuery,
    attr_filters,
    parse_decimal,
)
from llmscope_collector.query.models import TraceSummary, ValueList
from llmscope_collector.query.scores import ScoreFilter, ScoreStore, score_filters

From = Annotated[str | None, QueryParameter(name="from", description="ISO 8601 time or epoch ns")]
To = Annotated[str | None, QueryParameter(description="ISO 8601 time or epoch ns (exclusive)")]
# Documented only (the handler checks ids itself, with an error that says what a valid id looks like).
TRACE_ID_PATTERN: dict[str, Any] = {"pattern": "^[0-9a-fA-F]{32}$"}
SPAN_ID_PATTERN: dict[str, Any] = {"pattern": "^[0-9a-fA-F]{16}$"}
# The score reader as handlers take it (an object of the server, not request data: not validated).
ScoreReader = NamedDependency[SkipValidation[ScoreStore | None]]
# The store as the trace routes take it, not validated either: validating it is an `isinstance` against the
# runtime-checkable protocol, which walks its ~30 methods on every request (~25 us; the waterfall checked it twice).
Store = NamedDependency[SkipValidation[QueryBackend]]
TRACE_SCHEMA = arrow_schema(TraceSummary)  # the trace list's Arrow columns
SORT_PATTERN = r"^(start|duration|cost|tokens|score\..{1,200})$"
# Every data route: the caller's credentials may be missing, unknown or revoked.
UNAUTHENTICATED = {401: ResponseSpec(data_container=ErrorBody, description="Missing, unknown or revoked API key")}
_BAD_REQUEST = {
    400: ResponseSpec(data_container=ErrorBody, description="A parameter is invalid; the body names it"),
    **UNAUTHENTICATED,
}


def trace_filters(
    request: Request[Any, Any, Any],
    caller_project: NamedDependency[str],
    score_store: ScoreReader,
    from_: From = None,
    to: To = None,
    service: FromQuery[str | None] = None,
    model: FromQuery[str | None] = None,
    provider: FromQuery[str | None] = None,
    status: FromQuery[Literal["error", "ok"] | None] = None,
    trace_state: Annotated[
        Literal["complete", "in_progress", "incomplete"] | None,
        QueryParameter(name="state", description="complete: root arrived; incomplete: idle without root"),
    ] = None,
    session: FromQuery[str | None] = None,
    user: FromQuery[str | None] = None,
    prompt_name: FromQuery[str | None] = None,
    prompt_version: Annotated[str | None, QueryParameter(description="Needs prompt_name")] = None,
    tag: FromQuery[str | None] = None,
    min_duration_ms: Annotated[float | None, QueryParameter(ge=0)] = None,
    min_cost: Annotated[str | None, QueryParameter(description="USD (decimal)")] = None,
    min_tokens: Annotated[int | None, QueryParameter(ge=0)] = None,
    q: Annotated[
        str | None,
        QueryParameter(
            description="Full-text search in captured prompts/completions (1-1000 chars)",
            min_length=1,
            max_length=1000,
        ),
    ] = None,
) -> TraceQuery:
    """The trace filters of a request (the trace list's, and the export's): one declaration of them."""
    return TraceQuery(
        time=TimeRange.parse(from_, to),
        service=service,
        model=model,
        provider=provider,
        status=status,
        state=trace_state,
        session=session,
        user=user,
        prompt_name=prompt_name,
        prompt_version=prompt_version,
        tag=tag,
        min_duration_ms=min_duration_ms,
        min_cost=parse_decimal("min_cost", min_cost),
        min_tokens=min_tokens,
        attrs=attr_filters(request.query_params),
        q=q,
        trace_ids=_scored_traces(score_store, caller_project, score_filters(request.query_params)),
    )


TRACE_FILTERS = Provide(trace_filters, sync_to_thread=True)


@dataclasses.dataclass(frozen=True, slots=True)
class TraceReader:
    """What the one-trace routes (waterfall, span detail) read with: the store, the score reader and the caller's
    project, as ONE dependency. Litestar resolves a handler's several dependencies as tasks of an anyio task
    group, a single one inline: taking the three apart cost a waterfall ~0.15 ms of the event loop's CPU."""

    store: QueryBackend
    scores: ScoreStore | None
    project: str


def trace_reader(store: QueryBackend, scores: ScoreStore | None) -> Provide:
    """The `trace_reader` dependency over the server's store and score reader (the caller's project per request,
    as `caller_project` resolves it: the same 401s)."""

    def reader(request: Request[Any, Any, Any]) -> TraceReader:
        return TraceReader(store, scores, caller_project(request))

    return Provide(reader, sync_to_thread=False)


class TraceController(Controller):
    path = "/v1/traces"
    tags = ["traces"]
    dependencies = {"trace_filters": TRACE_FILTERS}

    @get(
        "/",
        operation_id="listTraces",
        summary="Traces, newest first, filtered; `attr.<key>=<value>` on a span attribute, `score.<name>>=<n>` a score",
        responses={
            200: ResponseSpec(data_container=TracePage, description="A page of traces (or an Arrow stream)"),
            **_BAD_REQUEST,
        },
        description="With `Accept: application/vnd.apache.arrow.stream`: every selected trace (from `cursor`; at most "
        "`limit` only when given) as an Arrow IPC stream, the same columns as the JSON rows.",
        sync_to_thread=True,
    )
    def list_traces(
        self,
        request: Request[Any, Any, Any],
        store: Store,
        caller_project: NamedDependency[str],
        trace_filters: NamedDependency[TraceQuery],
        score_store: ScoreReader,
        sort: Annotated[
            str,
            QueryParameter(
                description="start, duration, cost, tokens, or score.<name>: by the trace's average of that "
                "score (on the trace and its spans); a score sort lists only the traces that have the score",
                pattern=SORT_PATTERN,
            ),
        ] = "start",
        order: FromQuery[Literal["asc", "desc"]] = "desc",
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
        cursor: Annotated[str | None, QueryParameter(description="`next_cursor` of the previous page")] = None,
    ) -> TracePage | Stream:
        query = dataclasses.replace(
            trace_filters,
            sort=sort,
            order=order,
            limit=limit,
            cursor=cursor,
            score_keys=score_sort_keys(score_store, caller_project, sort),
        )
        if wants_arrow(request):  # every selected trace from the cursor on (up to `limit` only when given)
            rows = islice(walk_traces(store, caller_project, query), limit if "limit" in request.query_params else None)
            summaries = (msgspec.to_builtins(summary) for summary in rows)
            return arrow_response(TRACE_SCHEMA, batches(summaries, TRACE_SCHEMA), f"llmscope-{caller_project}-traces")
        return store.list_traces(caller_project, query)

    @get(
        "/values",
        operation_id="listTraceValues",
        summary="The distinct values of one trace field over a time range, with their trace counts",
        responses={
            200: ResponseSpec(data_container=ValueList, description="Values, most frequent first"),
            **_BAD_REQUEST,
        },
        description="What the UI's pickers offer: every value of `field` among the traces starting in the range "
        "(no other filter applies), the most frequent first, then by value; `prefix` keeps those starting with it "
        "(any case).",
        sync_to_thread=True,
    )
    def trace_values(
        self,
        store: Store,
        caller_project: NamedDependency[str],
        field: Annotated[ValueField, QueryParameter(description="The trace field whose values to list")],
        from_: From = None,
        to: To = None,
        prefix: Annotated[str | None, QueryParameter(max_length=MAX_PREFIX)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_VALUES)] = 100,
    ) -> ValueList:
        query = ValueQuery(field=field, time=TimeRange.parse(from_, to), prefix=prefix, limit=limit)
        return store.trace_values(caller_project, query)

    @get(
        "/{trace_id:str}",
        operation_id="getTrace",
        summary="The waterfall of one trace: tree, timings, per-span cost, events, exceptions, content sizes",
        responses={
            **UNAUTHENTICATED,
            400: ResponseSpec(data_container=ErrorBody, description="Malformed trace id"),
            404: ResponseSpec(data_container=ErrorBody, description="No span of this trace is stored"),
        },
        sync_to_thread=True,
    )
    def get_trace(
        self,
        trace_reader: NamedDependency[SkipValidation[TraceReader]],
        trace_id: Annotated[
            str, PathParameter(description="32 hex characters, as in W3C traceparent", schema_extra=TRACE_ID_PATTERN)
        ],
    ) -> Waterfall:
        project, scores = trace_reader.project, trace_reader.scores
        waterfall = trace_reader.store.get_trace(trace_id, project)
        if waterfall is None:
            raise NotFound(f"trace {trace_id.lower()} is not stored (yet)")
        if scores is not None:
            waterfall.scores = scores.for_trace(project, waterfall.trace_id)
        return waterfall


def walk_traces(store: QueryBackend, project: str, query: TraceQuery) -> Iterator[TraceSummary]:
    """Every trace `query` selects, in its order, from its cursor on: one page of 1000 in memory at a time."""
    query = dataclasses.replace(query, limit=1000)
    while True:
        page = store.list_traces(project, query)
        yield from page.traces
        if page.next_cursor is None:
            return
        query = dataclasses.replace(query, cursor=page.next_cursor)


def score_sort_keys(scores: ScoreStore | None, project: str, sort: str) -> tuple[tuple[str, float], ...] | None:
    """The keys of a `sort=score.<name>` (None for the other sorts; none at all without a score reader)."""
    if not sort.startswith(SCORE_SORT):
        return None
    return scores.trace_averages(project, sort[len(SCORE_SORT) :]) if scores is not None else ()


def _scored_traces(scores: ScoreStore | None, project: str, filters: tuple[ScoreFilter, ...]) -> tuple[str, ...] | None:
    """The traces the `score.<name><op><value>` filters allow (None: no score filter)."""
    if not filters:
        return None
    return tuple(scores.matching_traces(project, filters)) if scores is not None else ()
