"""Ingest counters by transport, outcome, project and reason, published on the API's /metrics.

Declared on the server's registry (`Runtime.metrics.registry`), so each server counts its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from llmscope_collector.errors import (
    CollectorError,
    InvalidPayload,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
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

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "llmscope_ingest_requests",
            "OTLP export requests by transport and outcome.",
            ("transport", "outcome"),
            registry=registry,
        )
        self.spans_accepted = Counter(
            "llmscope_ingest_spans_accepted", "Spans accepted for storage, by project.", ("project",), registry=registry
        )
        self.spans_rejected = Counter(
            "llmscope_ingest_spans_rejected",
            "Spans refused inside accepted requests (OTLP partial_success), by reason.",
            ("reason",),
            registry=registry,
        )
        self.received_bytes = Counter(
            "llmscope_ingest_received_bytes",
            "Request body bytes as received (compressed).",
            ("transport",),
            registry=registry,
        )
        self.in_flight = Gauge(
            "llmscope_ingest_requests_in_flight", "Export requests being processed.", ("transport",), registry=registry
        )
        self.buffered_bytes = Gauge(
            "llmscope_ingest_buffered_bytes",
            "Request body bytes held in memory, all requests together.",
            ("transport",),
            registry=registry,
        )
        self.header_timeouts = Counter(
            "llmscope_ingest_header_timeouts",
            "Connections closed because their request headers did not arrive in time.",
            ("transport",),
            registry=registry,
        )

    def exported(self, transport: str, project: str, result: ExportResult) -> None:
        self.requests.labels(transport, "partial" if result.rejected else "accepted").inc()
        if result.accepted:
            self.spans_accepted.labels(project).inc(result.accepted)
        if result.rejected:
            self.spans_rejected.labels("invalid_span").inc(result.rejected)

    def refused(self, transport: str, outcome: str) -> None:
        self.requests.labels(transport, outcome).inc()
