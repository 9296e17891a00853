"""`/v1/cleanup`: retention statistics and on-demand runs; admin token only.

Retention drops whole date partitions of every project, so these routes belong to the operator
(the admin token), like project administration. The scheduled run uses the same code path.
"""

from __future__ import annotations

from typing import Annotated, Protocol, runtime_checkable

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from llmscope_collector.api.auth import admin_only
from llmscope_collector.api.schemas import ErrorBody
from llmscope_collector.storage.retention import CleanupReport, RetentionStats


@runtime_checkable  # Litestar's signature model checks dependency values with isinstance
class Retention(Protocol):
    """What the collector offers these routes (`pipeline.Collector`)."""

    def cleanup(self, *, dry_run: bool) -> CleanupReport: ...

    def retention_stats(self) -> RetentionStats: ...


_ERRORS = {
    401: ResponseSpec(data_container=ErrorBody, description="Missing or wrong admin token"),
    403: ResponseSpec(data_container=ErrorBody, description="A project key cannot run retention"),
}


def _require(retention: Retention | None) -> Retention:
    if retention is None:
        raise ServiceUnavailableException("retention runs inside the collector; this API has none attached")
    return retention


class CleanupController(Controller):
    path = "/v1/cleanup"
    tags = ["retention"]
    guards = [admin_only]

    @get("/stats", operation_id="cleanupStats", responses=_ERRORS, sync_to_thread=True)
    def stats(self, retention: NamedDependency[Retention | None]) -> RetentionStats:
        """Storage per dataset and project with its TTL, and what a run now would delete."""
        return _require(retention).retention_stats()

    @post("/run", operation_id="cleanupRun", responses=_ERRORS, status_code=200, sync_to_thread=True)
    def run(
        self,
        retention: NamedDependency[Retention | None],
        dry_run: Annotated[bool, Parameter(description="Only report what would be deleted")] = True,
    ) -> CleanupReport:
        """Delete the expired date partitions now (`dry_run=false`), or report them (the default)."""
        return _require(retention).cleanup(dry_run=dry_run)
