"""`/v1/sessions`: conversations (traces sharing a session id), their metrics, and real deletion."""

from __future__ import annotations

from litestar import Controller, delete, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from llmscope_collector.api.exceptions import NotFound
from llmscope_collector.api.schemas import DeletionReport, ErrorBody, SessionDetail, SessionPage
from llmscope_collector.query.filters import TimeRange
from llmscope_collector.query.store import TraceStore

_NOT_FOUND = {404: ResponseSpec(data_container=ErrorBody, description="No trace of this session is stored")}


class SessionController(Controller):
    path = "/v1/sessions"
    tags = ["sessions"]

    @get(
        "/",
        operation_id="listSessions",
        summary="Sessions by last activity: traces, LLM calls, tokens, cost, errors, p50/p95 latency",
        responses={400: ResponseSpec(data_container=ErrorBody, description="A parameter is invalid")},
        sync_to_thread=True,
    )
    def list_sessions(
        self,
        store: NamedDependency[TraceStore],
        caller_project: NamedDependency[str],
        from_: str | None = Parameter(query="from", default=None, description="Active at or after (ISO 8601)"),
        to: str | None = Parameter(default=None, description="Started before (ISO 8601)"),
        user: str | None = None,
        limit: int = Parameter(default=50, ge=1, le=1000),
        cursor: str | None = None,
    ) -> SessionPage:
        return store.list_sessions(caller_project, TimeRange.parse(from_, to), user, limit, cursor)

    @get(
        "/{session_id:str}",
        operation_id="getSession",
        summary="One session's metrics and its traces in order",
        responses=_NOT_FOUND,
        sync_to_thread=True,
    )
    def get_session(
        self,
        store: NamedDependency[TraceStore],
        caller_project: NamedDependency[str],
        session_id: str,
        limit: int = Parameter(default=500, ge=1, le=5000, description="Most traces returned"),
    ) -> SessionDetail:
        detail = store.get_session(caller_project, session_id, limit)
        if detail is None:
            raise NotFound(f"session {session_id!r} has no stored trace")
        return detail

    @delete(
        "/{session_id:str}",
        operation_id="deleteSession",
        summary="Delete every span, summary and content item of the session's traces from disk",
        responses=_NOT_FOUND,
        status_code=200,
        sync_to_thread=True,
    )
    def delete_session(
        self, store: NamedDependency[TraceStore], caller_project: NamedDependency[str], session_id: str
    ) -> DeletionReport:
        report = store.delete_session(caller_project, session_id)
        if report.traces_deleted == 0:
            raise NotFound(f"session {session_id!r} has no stored trace")
        return report
