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
