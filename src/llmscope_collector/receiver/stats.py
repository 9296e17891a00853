"""Ingest counters by transport, outcome, project and reason, published on the API's /metrics."""

from __future__ import annotations

from llmscope_collector.errors import (
    CollectorError,
    InvalidPayload,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from llmscope_collector.processors.limits import SPANS_MARKED
from llmscope_collector.prometheus_text import Counter, Gauge, MetricSet
from llmscope_collector.receiver._export import ExportResult

_OUTCOMES: tuple[tuple[type[CollectorError], str], ...] = (
    (InvalidPayload, "invalid"),
    (PayloadTooLarge, "too_large"),
    (Unauthenticated, "unauthenticated"),
    (RateLimited, "rate_limited"),
    (Unavailable, "unavailable"),
)


def outcome_of(exc: BaseException) -> str:
    """The `outcome` label of a refused request."""
    return next((label for cls, label in _OUTCOMES if isinstance(exc, cls)), "internal_error")


class IngestStats:
    """Thread-safe counters shared by both receivers."""

    def __init__(self) -> None:
        self.requests = Counter(
            "llmscope_ingest_requests_total", "OTLP export requests by transport and outcome.", ("transport", "outcome")
        )
        self.spans_accepted = Counter(
            "llmscope_ingest_spans_accepted_total", "Spans accepted for storage, by project.", ("project",)
        )
        self.spans_rejected = Counter(
            "llmscope_ingest_spans_rejected_total",
            "Spans refused inside accepted requests (OTLP partial_success), by reason.",
            ("reason",),
        )
        self.received_bytes = Counter(
            "llmscope_ingest_received_bytes_total", "Request body bytes as received (compressed).", ("transport",)
        )
        self.in_flight = Gauge("llmscope_ingest_requests_in_flight", "Export requests being processed.", ("transport",))

    def exported(self, transport: str, project: str, result: ExportResult) -> None:
        self.requests.inc(transport, "partial" if result.rejected else "accepted")
        if result.accepted:
            self.spans_accepted.inc(project, amount=result.accepted)
        if result.rejected:
            self.spans_rejected.inc("invalid_span", amount=result.rejected)

    def refused(self, transport: str, outcome: str) -> None:
        self.requests.inc(transport, outcome)

    def metric_set(self) -> MetricSet:
        return MetricSet(
            [self.requests, self.spans_accepted, self.spans_rejected, SPANS_MARKED, self.received_bytes, self.in_flight]
        )
