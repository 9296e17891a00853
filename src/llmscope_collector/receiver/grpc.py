"""OTLP/gRPC `TraceService/Export` server: a thin shell over `IngestGate`.

The method is registered with identity (de)serializers so the raw request bytes reach our own
decoder: a malformed body then yields INVALID_ARGUMENT with a message, not a grpcio INTERNAL.
grpcio itself decompresses `grpc-encoding: gzip` requests and enforces the receive limit on the
decompressed message (RESOURCE_EXHAUSTED, no RetryInfo: not retryable). Retryable refusals carry a
`google.rpc.RetryInfo` in `grpc-status-details-bin`, as the OTLP spec asks for throttling.
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from llmscope_collector.errors import CollectorError, Unavailable
from llmscope_collector.receiver.gate import IngestGate

log = logging.getLogger(__name__)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
STATUS_DETAILS_KEY = "grpc-status-details-bin"
TRANSPORT = "grpc"


def _identity(data: bytes) -> bytes:
    return data


def status_details(exc: CollectorError) -> bytes | None:
    """A serialized `google.rpc.Status` with RetryInfo for retryable errors, else None."""
    if exc.retry_after_s is None:
        return None
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(max(1, int(exc.retry_after_s * 1e9)))
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    status = status_pb2.Status(code=exc.grpc_code.value[0], message=str(exc), details=[detail])
    return bytes(status.SerializeToString())


class OtlpGrpcReceiver:
    """Owns the grpcio server; `start()` binds, `stop()` drains in-flight calls."""

    def __init__(self, gate: IngestGate, *, host: str, port: int, max_receive_bytes: int, workers: int):
        self._gate = gate
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llmscope-otlp-grpc"),
            options=[
                ("grpc.max_receive_message_length", max_receive_bytes),
                ("grpc.max_send_message_length", 4 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ],
            compression=None,
        )
        handler = grpc.unary_unary_rpc_method_handler(
            self._export, request_deserializer=_identity, response_serializer=_identity
        )
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))
        self._address = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        self.port = 0

    def start(self) -> int:
        """Bind and serve; returns the bound port (useful with port 0)."""
        try:
            self.port = self._server.add_insecure_port(self._address)
        except RuntimeError as exc:
            raise OSError(f"cannot bind OTLP/gRPC on {self._address}: {exc}") from None
        if self.port == 0:
            raise OSError(f"cannot bind OTLP/gRPC on {self._address}")
        self._server.start()
        return self.port

    def stop(self, grace_s: float = 5.0) -> None:
        self._server.stop(grace_s).wait()

    def _export(self, payload: bytes, context: Any) -> bytes:
        stats = self._gate.stats
        stats.in_flight.labels(TRANSPORT).inc()
        stats.received_bytes.labels(TRANSPORT).inc(len(payload))
        try:
            metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
            result = self._gate.export(payload, metadata.get, TRANSPORT)
        except CollectorError as exc:
            _abort(context, exc)
        except Exception:
            log.exception("OTLP/gRPC export failed")
            _abort(context, Unavailable("internal error while storing spans; retry later"))
        finally:
            stats.in_flight.labels(TRANSPORT).dec()
        return bytes(result.to_response().SerializeToString())


def _abort(context: Any, exc: CollectorError) -> None:
    details = status_details(exc)
    if details is not None:
        context.set_trailing_metadata(((STATUS_DETAILS_KEY, details),))
    context.abort(exc.grpc_code, str(exc))
