"""`/health`: reports instead of raising, so a broken store or WAL shows as `degraded` with a 503."""

from __future__ import annotations

from collections.abc import Callable

from litestar import Controller, Response, get
from litestar.di import NamedDependency

from llmscope_collector import __version__
from llmscope_collector.api.schemas import Health
from llmscope_collector.ingest_status import IngestStatus
from llmscope_collector.query.store import TraceStore


class SystemController(Controller):
    tags = ["system"]

    @get("/health", operation_id="health", sync_to_thread=True)
    def health(
        self,
        store: NamedDependency[TraceStore],
        buffered: NamedDependency[Callable[[], int]],
        ingest: NamedDependency[Callable[[], IngestStatus]],
    ) -> Response[Health]:
        status = ingest()
        try:
            counts = store.counts()
        except Exception:
            body = Health(
                status="degraded",
                storage="unavailable",
                spans=0,
                traces=0,
                buffered_spans=buffered(),
                version=__version__,
                ingest=status,
            )
            return Response(body, status_code=503)
        body = Health(
            status="ok" if status.healthy else "degraded",
            storage="ok",
            spans=counts.spans,
            traces=counts.traces,
            buffered_spans=buffered(),
            version=__version__,
            ingest=status,
        )
        return Response(body, status_code=200 if status.healthy else 503)
