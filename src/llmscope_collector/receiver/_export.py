"""Transport-neutral OTLP trace export: bytes in, `ExportResult` out, acked only once durable.

Both transports call `TraceExporter.export`, so validation, partial success and error mapping are
written once. The hot path is cheap on purpose: check the protobuf's wire format and the span ids
(the only per-span rejection, answered synchronously as `partial_success`: the native decoder's check,
with the GIL released, when the collector has it, else upb's parse), append the raw bytes to the
write-ahead log and return once they are fsynced. The expensive decode into columns happens
later, on the WAL consumer thread, from the same bytes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from llmscope_collector.errors import InvalidPayload, Unavailable
from llmscope_collector.storage.layout import valid_project
from llmscope_collector.storage.schema import INVALID_IDS, valid_span_ids
from llmscope_collector.wal.errors import WalError

# A partial success's reason names the first rejected spans, each name cut (a reason is a hint, not a
# dump of the request). Handed to whichever check runs (`IdCheck`): the receiver owns this format.
REJECTED_NAMES = 5
REJECTED_NAME_CHARS = 100


class RequestLog(Protocol):
    """The next stage: durably records a request before it is acknowledged (the WAL).

    `append` raises a `WalError` when it cannot; the exporter answers it as OTLP "unavailable"."""

    def append(self, project: str, payload: bytes) -> int: ...


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


IdCheck = Callable[[bytes, int, int], tuple[int, int, list[str]]]
"""`(payload, names, name_chars)` → (accepted, rejected, the first `names` rejected spans' names cut to
`name_chars` characters); raises protobuf's `DecodeError` for bytes that are not an
`ExportTraceServiceRequest` (`check_request`, or the native decoder's twin)."""


class TraceExporter:
    """Validates an OTLP request and appends it to the WAL; OK means the request is on disk."""

    def __init__(self, next_stage: RequestLog | None = None, check: IdCheck | None = None) -> None:
        """`check`: how a request is checked (the collector hands down the native one when it is built:
        the receivers run on the process that buffers and writes, so their per-span work is the GIL's)."""
        self._next = next_stage
        self._check = check or check_request
        self._closed = False
        self.spans_accepted = 0
        self.spans_rejected = 0

    def open(self, next_stage: RequestLog) -> None:
        """Start accepting into `next_stage` (the WAL is opened only when the collector starts)."""
        self._next = next_stage
        self._closed = False

    def close(self) -> None:
        self._closed = True

    def export(self, payload: bytes, project: str = "default") -> ExportResult:
        """Raises `InvalidPayload` (do not retry) or `Unavailable` (retry later); else the spans are durable."""
        wal = self._next
        if self._closed or wal is None:
            raise Unavailable("collector is not accepting data (starting or shutting down)")
        if not valid_project(project):
            raise InvalidPayload(f"invalid project name {project!r}")
        try:
            accepted, rejected, names = self._check(payload, REJECTED_NAMES, REJECTED_NAME_CHARS)
        except DecodeError as exc:
            raise InvalidPayload(f"request is not a valid ExportTraceServiceRequest protobuf: {exc}") from None
        errors = [f"span {name!r}: {INVALID_IDS}" for name in names]
        if accepted:
            try:
                wal.append(project, payload)
            except WalError as exc:  # full, closing or failed: the client keeps the data and resends
                raise Unavailable(str(exc)) from exc
        self.spans_accepted += accepted
        self.spans_rejected += rejected
        return ExportResult(accepted, rejected, "; ".join(errors))


def check_request(
    payload: bytes, names: int = REJECTED_NAMES, name_chars: int = REJECTED_NAME_CHARS
) -> tuple[int, int, list[str]]:
    """(accepted, rejected, the first `names` rejected spans' names cut to `name_chars` characters): the same
    id rule the decoder applies, from upb's parse of the request, without decoding it. Raises `DecodeError`
    for bad bytes."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(payload)
    accepted = rejected = 0
    kept: list[str] = []
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if valid_span_ids(span.trace_id, span.span_id):
                    accepted += 1
                    continue
                rejected += 1
                if len(kept) < names:
                    kept.append(span.name[:name_chars])
    return accepted, rejected, kept
