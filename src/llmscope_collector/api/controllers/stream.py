"""`GET /v1/traces/stream`: new and changed traces of the caller's project as Server-Sent Events.

The stream polls the summary index (the cheap table the trace list reads, refreshed incrementally)
for the newest traces every `interval_ms` and sends each trace that appeared or changed (more spans,
a new state or status) since the previous poll as `event: trace` with the list row as JSON
(`TraceSummary`), oldest first. A comment line keeps idle connections open through proxies. The
stream ends after `max_s` seconds with a `retry` hint; EventSource-style clients reconnect, and a
reconnect with `backfill=0` sends only what is new from then on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import anyio
import msgspec
import uvicorn
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from llmscope_collector.api.controllers.traces import Store
from llmscope_collector.query.backend import QueryBackend
from llmscope_collector.query.filters import TraceQuery
from llmscope_collector.query.models import TraceSummary

PAGE = 200  # traces looked at per poll: a burst larger than this between two polls shows its newest only
KEEPALIVE_S = 15.0
EXIT_CHECK_S = 0.2
_encode = msgspec.json.Encoder()


def server_exiting() -> Callable[[], bool]:
    """The `should_exit` flag of the uvicorn server running this event loop, or never.

    uvicorn waits for running responses before it shuts down, and an open stream never ends by
    itself: without this, stopping the server with a browser tab on the live tail would wait for
    the stream's `max_s` (or the embedded server's join timeout).
    """
    for task in asyncio.all_tasks():
        frame = getattr(task.get_coro(), "cr_frame", None)
        owner = frame.f_locals.get("self") if frame is not None else None
        if isinstance(owner, uvicorn.Server):
            return lambda: bool(getattr(owner, "should_exit", False))
    return lambda: False


def _version(t: TraceSummary) -> tuple[object, ...]:
    return (t.span_count, t.state, t.status, t.duration_ms, t.total_tokens, t.cost_usd)


async def trace_events(
    store: QueryBackend, project: str, *, backfill: int, interval_s: float, max_s: float
) -> AsyncIterator[ServerSentEventMessage]:
    """The stream's messages; the first poll sends the newest `backfill` traces, later polls the changes."""
    query = TraceQuery(limit=PAGE)
    exiting = server_exiting()
    seen: dict[str, tuple[object, ...]] | None = None
    deadline = time.monotonic() + max_s
    last_sent = time.monotonic()
    yield ServerSentEventMessage(data=None, comment="llmscope trace stream", retry=int(interval_s * 1000) + 1000)
    while True:
        page = await anyio.to_thread.run_sync(store.list_traces, project, query)
        rows = list(reversed(page.traces))  # oldest first, so a client appends in order
        if seen is None:
            changed = rows[len(rows) - backfill :] if backfill else []
        else:
            changed = [t for t in rows if seen.get(t.trace_id) != _version(t)]
        seen = {t.trace_id: _version(t) for t in rows}
        for trace in changed:
            yield ServerSentEventMessage(data=_encode.encode(trace).decode(), event="trace", id=trace.trace_id)
            last_sent = time.monotonic()
        now = time.monotonic()
        if now >= deadline or exiting():
            return
        if now - last_sent >= KEEPALIVE_S:
            yield ServerSentEventMessage(data=None, comment="keepalive")
            last_sent = now
        wake = min(now + interval_s, deadline)
        while (left := wake - time.monotonic()) > 0:
            if exiting():
                return
            await anyio.sleep(min(EXIT_CHECK_S, left))


class TraceStreamController(Controller):
    path = "/v1/traces/stream"
    tags = ["traces"]

    @get(
        "/",
        operation_id="streamTraces",
        summary="New and changed traces as Server-Sent Events (`event: trace`, data = a trace list row)",
        media_type="text/event-stream",
    )
    async def stream(
        self,
        store: Store,
        caller_project: NamedDependency[str],
        backfill: Annotated[int, Parameter(ge=0, le=PAGE, description="Send the newest N traces first")] = 0,
        interval_ms: Annotated[int, Parameter(ge=100, le=60_000, description="Poll interval")] = 1000,
        max_s: Annotated[float, Parameter(gt=0, le=86_400, description="End the stream after this long")] = 300.0,
    ) -> ServerSentEvent:
        events = trace_events(store, caller_project, backfill=backfill, interval_s=interval_ms / 1000, max_s=max_s)
        return ServerSentEvent(events, headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
