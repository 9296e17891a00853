"""`/v1/sessions`: conversations (traces sharing a session id), their metrics, and real deletion."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from litestar import Controller, delete, get
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, ServiceUnavailableException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, PathParameter, QueryParameter

from llmscope_collector.api.controllers.traces import UNAUTHENTICATED, ScoreReader, Store
from llmscope_collector.api.exceptions import NotFound
from llmscope_collector.api.schemas import DeletionReport, ErrorBody, SessionDetail, SessionPage
from llmscope_collector.ingest_status import IngestNotSettled
from llmscope_collector.query.backend import DeletionUnsupported
from llmscope_collector.query.deletion import DeletionNotFinished
from llmscope_collector.query.filters import TimeRange
from llmscope_collector.query.models import DeletionReport as StoredDeletion

SessionDeleter = Callable[[str, str], StoredDeletion]
"""(project, session id) → what was removed: the engine's deletion over a data dir, or the bucket's."""

SessionId = Annotated[
    str,
    PathParameter(
        description="1-512 characters, no control characters", max_length=512, pattern=r"^[^\x00-\x1f]{1,512}$"
    ),
]
_NOT_FOUND = {
    404: ResponseSpec(data_container=ErrorBody, description="No trace of this session is stored"),
    **UNAUTHENTICATED,
}
_NOTHING_STORED = {
    404: ResponseSpec(data_container=ErrorBody, description="No trace or score of this session is stored"),
    **UNAUTHENTICATED,
}


class SessionController(Controller):
    path = "/v1/sessions"
    tags = ["sessions"]

    @get(
        "/",
        operation_id="listSessions",
        summary="Sessions by last activity: traces, LLM calls, tokens, cost, errors, p50/p95 latency",
        responses={
            400: ResponseSpec(data_container=ErrorBody, description="A parameter is invalid"),
            **UNAUTHENTICATED,
        },
        sync_to_thread=True,
    )
    def list_sessions(
        self,
        store: Store,
        caller_project: NamedDependency[str],
        from_: Annotated[
            str | None, QueryParameter(name="from", description="Active at or after (ISO 8601 or epoch ns)")
        ] = None,
        to: Annotated[str | None, QueryParameter(description="Started before (ISO 8601 or epoch ns)")] = None,
        user: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
        cursor: Annotated[str | None, QueryParameter(description="`next_cursor` of the previous page")] = None,
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
        store: Store,
        caller_project: NamedDependency[str],
        score_store: ScoreReader,
        session_id: SessionId,
        limit: Annotated[int, QueryParameter(ge=1, le=5000, description="Most traces returned")] = 500,
    ) -> SessionDetail:
        detail = store.get_session(caller_project, session_id, limit)
        if detail is None:
            raise NotFound(f"session {session_id!r} has no stored trace")
        if score_store is not None:
            detail.scores = score_store.for_session(caller_project, session_id)
        return detail

    @delete(
        "/{session_id:str}",
        operation_id="deleteSession",
        summary="Delete every span, summary, content item and score of the session and its traces from disk",
        responses=_NOTHING_STORED,
        status_code=200,
        sync_to_thread=True,
    )
    def delete_session(
        self,
        session_deleter: NamedDependency[SessionDeleter],
        caller_project: NamedDependency[str],
        settle_ingest: NamedDependency[Callable[[], None]],
        session_id: SessionId,
    ) -> DeletionReport:
        """Accepted spans still on their way (in the write-ahead log) are stored first, so they are
        deleted too; afterwards no copy of the session's spans, content or scores (on the session, its
        traces or their spans) is left on disk, the WAL included. In cluster mode (`--storage`) the
        session's objects are rewritten in the bucket and every collector drops the session's spans
        that reach it later (docs/scale.md). 503 when ingest cannot catch up now, or the deletion is
        recorded but not carried out yet (retry); 404 when nothing of the session is stored."""
        try:
            settle_ingest()
        except IngestNotSettled as exc:
            raise ServiceUnavailableException(str(exc)) from None
        try:
            report = session_deleter(caller_project, session_id)
        except DeletionUnsupported as exc:
            raise ClientException(str(exc), status_code=409) from None
        except DeletionNotFinished as exc:
            raise ServiceUnavailableException(str(exc)) from None
        if report.traces_deleted == 0 and report.scores_deleted == 0:
            raise NotFound(f"session {session_id!r} has no stored trace or score")
        return report
