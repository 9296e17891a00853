"""Transport-neutral OTLP trace export: bytes in, `ExportResult` out.

Both transports (gRPC now, HTTP next) call `TraceExporter.export`, so validation, partial
success and error mapping are written once.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from llmscope_collector.errors import InvalidPayload, Unavailable
from llmscope_collector.processors.decode import DecodedBatch, decode_request


class SpanSink(Protocol):
    """The next stage: takes ownership of decoded spans."""

    def append(self, batch: DecodedBatch) -> None: ...


@dataclasses.dataclass(frozen=True)
class ExportResult:
    accepted: int
    rejected: int
    message: str

    def to_response(self) -> ExportTraceServiceResponse:
        """OTLP response: `partial_success` only set when something was rejected."""
        if not self.rejected:
            return ExportTraceServiceResponse()
        return ExportTraceServiceResponse(
            partial_success=ExportTracePartialSuccess(rejected_spans=self.rejected, error_message=self.message)
        )


class TraceExporter:
    """Decodes an OTLP request and hands accepted spans to `next_stage`."""

    def __init__(self, next_stage: SpanSink) -> None:
        self._next = next_stage
        self._closed = False
        self.spans_accepted = 0
        self.spans_rejected = 0

    def close(self) -> None:
        self._closed = True

    def export(self, payload: bytes, project: str = "default") -> ExportResult:
        if self._closed:
            raise Unavailable("collector is shutting down")
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(payload)
        except DecodeError as exc:
            raise InvalidPayload(f"request is not a valid ExportTraceServiceRequest protobuf: {exc}") from None
        batch = decode_request(request, project)
        if batch.accepted:
            self._next.append(batch)
        self.spans_accepted += batch.accepted
        self.spans_rejected += batch.rejected
        return ExportResult(batch.accepted, batch.rejected, "; ".join(batch.errors))
