"""What both transports do around `TraceExporter.export`: authenticate, rate-limit, count.

The transports only turn their wire format into `(payload bytes, header getter)` and the outcome
back into status codes; the decisions live here, once.
"""

from __future__ import annotations

from llmscope_collector.auth.policy import AuthPolicy, HeaderGetter
from llmscope_collector.errors import CollectorError
from llmscope_collector.receiver._export import ExportResult, TraceExporter
from llmscope_collector.receiver.limiter import RateLimiter
from llmscope_collector.receiver.stats import IngestStats, outcome_of


class IngestGate:
    """Credentials → project → rate limit → export; every outcome is counted."""

    def __init__(self, exporter: TraceExporter, policy: AuthPolicy, limiter: RateLimiter, stats: IngestStats) -> None:
        self.exporter = exporter
        self.policy = policy
        self.limiter = limiter
        self.stats = stats

    def export(self, payload: bytes, headers: HeaderGetter, transport: str) -> ExportResult:
        """Raises a `CollectorError` (already counted) when the request is refused as a whole."""
        return self.export_admitted(payload, self.admit(headers, transport), transport)

    def admit(self, headers: HeaderGetter, transport: str) -> str:
        """The project a request may write to, from its headers alone (before its body is read)."""
        try:
            project = self.policy.project_for(headers)
            self.limiter.admit(project)
        except CollectorError as exc:
            self.stats.refused(transport, outcome_of(exc))
            raise
        return project

    def export_admitted(self, payload: bytes, project: str, transport: str) -> ExportResult:
        """`export` for a request `admit` let in."""
        try:
            result = self.exporter.export(payload, project)
        except CollectorError as exc:
            self.stats.refused(transport, outcome_of(exc))
            raise
        except Exception:
            self.stats.refused(transport, "internal_error")
            raise
        self.limiter.charge(project, result.accepted + result.rejected)
        self.stats.exported(transport, project, result)
        return result
