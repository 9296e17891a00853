"""Sessions: conversations grouped from the stitched trace summaries (never from spans).

A page is two queries: the aggregates of the page's sessions (sorted by last activity, keyset
paginated), then latency percentiles for those sessions only, so the cost of percentiles does not
grow with the number of sessions in the project.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmscope_collector.query import sql
from llmscope_collector.query.filters import Cursor, InvalidFilter, TimeRange, check_session_id
from llmscope_collector.query.models import SessionDetail, SessionPage
from llmscope_collector.query.rows import session_summary, trace_summary

if TYPE_CHECKING:
    from llmscope_collector.query.store import TraceStore

_CURSOR_SORT = "last_activity"


def list_sessions(
    store: TraceStore, project: str, time_range: TimeRange, user: str | None, limit: int, cursor: str | None
) -> SessionPage:
    filters, params = session_page_params(project, time_range, user, limit, cursor)
    rows = store.table_rows(sql.list_sessions(filters, bool(cursor)), params)
    latency = _latencies(store, project, [r["session_id"] for r in rows[:limit]])
    return session_page(rows, limit, latency)


def session_page_params(
    project: str, time_range: TimeRange, user: str | None, limit: int, cursor: str | None
) -> tuple[list[str], dict[str, Any]]:
    """The session list's SQL conditions and bound parameters (the same for every query engine)."""
    if not 1 <= limit <= 1000:
        raise InvalidFilter("limit", "must be 1..1000")
    params: dict[str, Any] = {"project": project, "limit": limit + 1}
    filters = []
    if time_range.from_ns:
        filters.append("from_ns")
        params["from_ns"] = time_range.from_ns
    if time_range.to_ns < TimeRange().to_ns:
        filters.append("to_ns")
        params["to_ns"] = time_range.to_ns
    if user is not None:
        filters.append("user")
        params["user"] = user
    if cursor:
        position = Cursor.decode(cursor, _CURSOR_SORT, "desc")
        params["cursor_key"] = _int_key(position.key)
        params["cursor_session"] = position.last
    return filters, params


def session_page(rows: list[dict[str, Any]], limit: int, latency: dict[str, Any]) -> SessionPage:
    """A page from `limit + 1` rows (the extra one only says there is more), with each session's latency."""
    page = rows[:limit]
    sessions = [session_summary(r, latency.get(r["session_id"])) for r in page]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = Cursor(_CURSOR_SORT, "desc", str(last["last_ns"]), last["session_id"]).encode()
    return SessionPage(sessions=sessions, next_cursor=next_cursor)


def get_session(store: TraceStore, project: str, session_id: str, limit: int) -> SessionDetail | None:
    check_session_id(session_id)
    rows = store.table_rows(sql.SESSION_ONE, {"project": project, "session": session_id})
    if not rows:
        return None
    traces = store.table_rows(
        sql.SESSION_TRACES, {"project": project, "session": session_id, "limit": limit + 1, **store.state_params()}
    )
    return SessionDetail(
        session=session_summary(rows[0], rows[0]["latency_ns"]),
        traces=[trace_summary(r) for r in traces[:limit]],
        traces_truncated=len(traces) > limit,
    )


def _latencies(store: TraceStore, project: str, session_ids: list[str]) -> dict[str, list[float]]:
    if not session_ids:
        return {}
    rows = store.table_rows(sql.SESSION_LATENCY, {"project": project, "sessions": session_ids})
    return {r["session_id"]: r["latency_ns"] for r in rows}


def _int_key(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise InvalidFilter("cursor", "is not a cursor returned by this endpoint") from None
