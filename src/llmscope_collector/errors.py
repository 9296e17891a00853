"""Collector error types and how each maps to OTLP gRPC and HTTP status codes.

The split follows the OTLP spec: permanent errors (bad data) must not be retried by the
client; retryable ones (backpressure, storage hiccups) tell the client to back off and resend.
"""

from __future__ import annotations

import grpc


class CollectorError(Exception):
    """Base for errors the receiver turns into an OTLP status."""

    grpc_code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    http_status: int = 500
    # Seconds a client should wait before resending; set only on retryable errors (gRPC RetryInfo, HTTP Retry-After).
    retry_after_s: float | None = None


class InvalidPayload(CollectorError):
    """The request cannot be decoded; resending the same bytes will fail again."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400


class PayloadTooLarge(CollectorError):
    """Over the receive limit; not retryable (no RetryInfo), per the OTLP spec."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 413


class Unavailable(CollectorError):
    """Temporarily unable to accept data (backpressure, shutting down); the client should retry."""

    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 503
    retry_after_s = 1.0


class RateLimited(Unavailable):
    """The project is over its span rate; retryable after `retry_after_s` (HTTP 429, gRPC UNAVAILABLE + RetryInfo)."""

    http_status = 429

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unauthenticated(CollectorError):
    """Missing, unknown or revoked API key; not retryable."""

    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401
