"""`/v1/traces`: the filtered, paginated trace list and the waterfall of one trace."""

from __future__ import annotations

from typing import Any, Literal

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from llmscope_collector.api.exceptions import NotFound
from llmscope_collector.api.schemas import ErrorBody, TracePage, Waterfall
from llmscope_collector.query.filters import TimeRange, TraceQuery, attr_filters, parse_decimal
from llmscope_collector.query.store import TraceStore

_BAD_REQUEST = {400: ResponseSpec(data_container=ErrorBody, description="A parameter is invalid; the body names it")}


class TraceController(Controller):
    path = "/v1/traces"
    tags = ["traces"]

    @get(
        "/",
        operation_id="listTraces",
        summary="Traces, newest first, filtered; `attr.<key>=<value>` filters on any span attribute",
        responses=_BAD_REQUEST,
        sync_to_thread=True,
    )
    def list_traces(
        self,
        request: Request[Any, Any, Any],
        store: NamedDependency[TraceStore],
        caller_project: NamedDependency[str],
        from_: str | None = Parameter(query="from", default=None, description="ISO 8601 time or epoch ns"),
        to: str | None = Parameter(default=None, description="ISO 8601 time or epoch ns (exclusive)"),
        service: str | None = None,
        model: str | None = None,
        provider: str | None = None,
        status: Literal["error", "ok"] | None = None,
        trace_state: Literal["complete", "in_progress", "incomplete"] | None = Parameter(
            query="state", default=None, description="complete: root arrived; incomplete: idle without root"
        ),
        session: str | None = None,
        user: str | None = None,
        prompt_name: str | None = None,
        prompt_version: str | None = None,
        tag: str | None = None,
        min_duration_ms: float | None = Parameter(default=None, ge=0),
        min_cost: str | None = Parameter(default=None, description="USD"),
        min_tokens: int | None = Parameter(default=None, ge=0),
        q: str | None = Parameter(default=None, description="Full-text search in captured prompts/completions"),
        sort: Literal["start", "duration", "cost", "tokens"] = "start",
        order: Literal["asc", "desc"] = "desc",
        limit: int = Parameter(default=50, ge=1, le=1000),
        cursor: str | None = Parameter(default=None, description="`next_cursor` of the previous page"),
    ) -> TracePage:
        query = TraceQuery(
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
            sort=sort,
            order=order,
            limit=limit,
            cursor=cursor,
        )
        return store.list_traces(caller_project, query)

    @get(
        "/{trace_id:str}",
        operation_id="getTrace",
        summary="The waterfall of one trace: tree, timings, per-span cost, events, exceptions, content sizes",
        responses={
            400: ResponseSpec(data_container=ErrorBody, description="Malformed trace id"),
            404: ResponseSpec(data_container=ErrorBody, description="No span of this trace is stored"),
        },
        sync_to_thread=True,
    )
    def get_trace(
        self,
        store: NamedDependency[TraceStore],
        caller_project: NamedDependency[str],
        trace_id: str = Parameter(description="32 hex characters, as in W3C traceparent"),
    ) -> Waterfall:
        waterfall = store.get_trace(trace_id, caller_project)
        if waterfall is None:
            raise NotFound(f"trace {trace_id.lower()} is not stored (yet)")
        return waterfall
