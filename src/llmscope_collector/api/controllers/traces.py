"""`/v1/traces`: the waterfall of one trace."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from llmscope_collector.api.exceptions import NotFound
from llmscope_collector.api.schemas import ErrorBody, Waterfall
from llmscope_collector.query.store import TraceStore


class TraceController(Controller):
    path = "/v1/traces"
    tags = ["traces"]

    @get(
        "/{trace_id:str}",
        operation_id="getTrace",
        summary="The waterfall of one trace",
        responses={
            400: ResponseSpec(data_container=ErrorBody, description="Malformed trace id"),
            404: ResponseSpec(data_container=ErrorBody, description="No span of this trace is stored"),
        },
        sync_to_thread=True,
    )
    def get_trace(
        self,
        store: NamedDependency[TraceStore],
        trace_id: str = Parameter(description="32 hex characters, as in W3C traceparent"),
    ) -> Waterfall:
        waterfall = store.get_trace(trace_id)
        if waterfall is None:
            raise NotFound(f"trace {trace_id.lower()} is not stored (yet)")
        return waterfall
