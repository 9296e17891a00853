"""`/health`: reports instead of raising, so a broken store or WAL shows as `degraded` with a 503.

The status (and 200/503) is for everyone: a liveness probe needs no key. With API keys required,
the counts and the ingest detail need the admin token (they add up every project).

A probe calls this every few seconds on a store of any size, so by default it reads only what is
cheap: the span count from the files' footers (which also proves each is readable). The distinct
trace count scans every span's trace id (about a second of CPU at 10M spans) and comes only with
`?traces=true`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import Parameter

from llmscope_collector import __version__
from llmscope_collector.api.controllers.traces import Store
from llmscope_collector.api.schemas import Health, StoreCounts
from llmscope_collector.ingest_status import IngestStatus


class SystemController(Controller):
    tags = ["system"]

    @get("/health", operation_id="health", sync_to_thread=True)
    def health(
        self,
        store: Store,
        buffered: NamedDependency[Callable[[], int]],
        ingest: NamedDependency[Callable[[], IngestStatus]],
        sees_server_detail: NamedDependency[bool],
        traces: Annotated[
            bool, Parameter(description="Also count distinct traces: a scan of every trace id, not for probes")
        ] = False,
    ) -> Response[Health]:
        status = ingest()
        try:
            counts: StoreCounts | None = store.counts(traces=traces and sees_server_detail)
        except Exception:
            counts = None
        healthy = counts is not None and status.healthy
        body = Health(
            status="ok" if healthy else "degraded",
            storage="ok" if counts is not None else "unavailable",
            version=__version__,
        )
        if sees_server_detail:
            body = msgspec.structs.replace(
                body,
                spans=counts.spans if counts else 0,
                traces=counts.traces if counts else None,
                buffered_spans=buffered(),
                ingest=status,
            )
        return Response(body, status_code=200 if healthy else 503)
