"""`/v1/spans/{trace_id}/{span_id}`: one span with all raw attributes, events and captured content."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter

from llmscope_collector.api.controllers.traces import SPAN_ID_PATTERN, TRACE_ID_PATTERN, UNAUTHENTICATED, ScoreReader
from llmscope_collector.api.exceptions import NotFound
from llmscope_collector.api.schemas import ErrorBody, SpanDetail
from llmscope_collector.query.backend import QueryBackend


class SpanController(Controller):
    path = "/v1/spans"
    tags = ["spans"]

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
        store: NamedDependency[QueryBackend],
        caller_project: NamedDependency[str],
        score_store: ScoreReader,
        trace_id: Annotated[str, PathParameter(description="32 hex characters", schema_extra=TRACE_ID_PATTERN)],
        span_id: Annotated[str, PathParameter(description="16 hex characters", schema_extra=SPAN_ID_PATTERN)],
    ) -> SpanDetail:
        span = store.get_span(caller_project, trace_id, span_id)
        if span is None:
            raise NotFound(f"span {span_id.lower()} of trace {trace_id.lower()} is not stored (yet)")
        if score_store is not None:
            span.scores = score_store.for_span(caller_project, span.trace_id, span.span_id)
        return span
