"""`/v1/spans/{trace_id}/{span_id}`: one span with all raw attributes, events and captured content;
`/v1/spans`: the spans of the traces the trace list's filters select, as an Arrow stream (DataFrames)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
import pyarrow as pa
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, SkipValidation
from litestar.response import Stream

from llmscope_collector.api.arrow import ARROW_STREAM, arrow_response, arrow_schema, batches, wants_arrow
from llmscope_collector.api.controllers.traces import (
    SPAN_ID_PATTERN,
    TRACE_FILTERS,
    TRACE_ID_PATTERN,
    UNAUTHENTICATED,
    Store,
    TraceReader,
    walk_traces,
)
from llmscope_collector.api.exceptions import NotFound
from llmscope_collector.api.schemas import ErrorBody, SpanDetail
from llmscope_collector.query.backend import QueryBackend
from llmscope_collector.query.filters import TraceQuery
from llmscope_collector.query.models import WaterfallSpan

# A span row: its trace id, then the waterfall row's fields (its children are the rows naming it as parent).
SPAN_PAGE = 200  # traces whose spans are read together (one query; their spans held at a time)
_WITH_TRACE = arrow_schema(WaterfallSpan, (pa.field("trace_id", pa.string()),))
SPAN_SCHEMA = _WITH_TRACE.remove(_WITH_TRACE.get_field_index("children"))


class SpanController(Controller):
    path = "/v1/spans"
    tags = ["spans"]
    dependencies = {"trace_filters": TRACE_FILTERS}

    @get(
        "/",
        operation_id="listSpans",
        summary="The spans of the selected traces (the trace list's filters), as an Arrow IPC stream",
        description=f"Answers `Accept: {ARROW_STREAM}` only: oldest trace first, each trace's spans in "
        "waterfall order, the columns of a waterfall row plus `trace_id`.",
        responses={
            **UNAUTHENTICATED,
            400: ResponseSpec(data_container=ErrorBody, description="A parameter is invalid"),
            406: ResponseSpec(data_container=ErrorBody, description=f"Not asked for {ARROW_STREAM}"),
        },
        sync_to_thread=True,
        media_type=ARROW_STREAM,
    )
    def list_spans(
        self,
        request: Request[Any, Any, Any],
        store: Store,
        caller_project: NamedDependency[str],
        trace_filters: NamedDependency[TraceQuery],
    ) -> Stream:
        if not wants_arrow(request):
            raise HTTPException(status_code=406, detail=f"this route answers Accept: {ARROW_STREAM} only")
        query = dataclasses.replace(trace_filters, sort="start", order="asc")
        rows = _span_rows(store, caller_project, walk_traces(store, caller_project, query))
        return arrow_response(SPAN_SCHEMA, batches(rows, SPAN_SCHEMA), f"llmscope-{caller_project}-spans")

    @get(
        "/{trace_id:str}/{span_id:str}",
        operation_id="getSpan",
        summary="One span: every attribute as sent, events, links, cost and its content from the content store",
        responses={
            **UNAUTHENTICATED,
            400: ResponseSpec(data_container=ErrorBody, description="Malformed trace or span id"),
            404: ResponseSpec(data_container=ErrorBody, description="No such span is stored"),
        },
        sync_to_thread=True,
    )
    def get_span(
        self,
        trace_reader: NamedDependency[SkipValidation[TraceReader]],
        trace_id: Annotated[str, PathParameter(description="32 hex characters", schema_extra=TRACE_ID_PATTERN)],
        span_id: Annotated[str, PathParameter(description="16 hex characters", schema_extra=SPAN_ID_PATTERN)],
    ) -> SpanDetail:
        project, scores = trace_reader.project, trace_reader.scores
        span = trace_reader.store.get_span(project, trace_id, span_id)
        if span is None:
            raise NotFound(f"span {span_id.lower()} of trace {trace_id.lower()} is not stored (yet)")
        if scores is not None:
            span.scores = scores.for_span(project, span.trace_id, span.span_id)
        return span


def _span_rows(store: QueryBackend, project: str, traces: Iterator[Any]) -> Iterator[dict[str, Any]]:
    """Each trace's stored spans (not the waterfall's synthetic root), read a page of traces at a time."""
    for page in _pages(traces, SPAN_PAGE):
        start = min(t.start_time_unix_nano for t in page)
        end = max(t.start_time_unix_nano + int(t.duration_ms * 1_000_000) for t in page)
        for waterfall in store.waterfalls(project, [t.trace_id for t in page], start, end):
            for span in waterfall.spans:
                if not span.synthetic:
                    yield {"trace_id": waterfall.trace_id, **msgspec.to_builtins(span)}


def _pages(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    page: list[Any] = []
    for item in items:
        page.append(item)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page
