"""OTLP/gRPC `TraceService/Export` server: a thin shell over `IngestGate`.

The method is registered with identity (de)serializers so the raw request bytes reach our own
decoder: a malformed body then yields INVALID_ARGUMENT with a message, not a grpcio INTERNAL. For
the same reason two things grpcio would otherwise answer itself are ours:

- Decompression (`grpc.per_message_decompression` off): grpcio answers a corrupt gzip message with
  INTERNAL. Python's API does not say whether a message was compressed, so the bytes do: a gzip
  member starts 1f 8b, which can never start a protobuf message (wire type 7 does not exist), and a
  zlib stream (grpc's "deflate") has a checksummed two-byte header; such a message is inflated here
  under the receive limit (RESOURCE_EXHAUSTED beyond it, as grpcio did), else it is read as it is.
- Arity: the method is registered as stream-unary, so a call whose message never arrived whole (an
  empty or truncated frame) reaches us with no message and is INVALID_ARGUMENT, where grpcio's
  unary handling answers UNIMPLEMENTED ("requires exactly one request message"). Only the first
  message is read, as for a unary call. (Waiting for it holds a worker thread, as grpcio's unary
  path does too: its handler thread also waits for the message.)

Retryable refusals carry a `google.rpc.RetryInfo` in `grpc-status-details-bin`, as the OTLP spec
asks for throttling.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from llmscope_collector.errors import CollectorError, InvalidPayload, PayloadTooLarge, Unavailable
from llmscope_collector.receiver.gate import IngestGate
from llmscope_collector.receiver.inflate import inflate
from llmscope_collector.receiver.stats import outcome_of

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
        self._limit = max_receive_bytes
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llmscope-otlp-grpc"),
            options=[
                ("grpc.max_receive_message_length", max_receive_bytes),
                ("grpc.max_send_message_length", 4 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
                ("grpc.per_message_decompression", 0),  # we inflate (see the module docstring)
            ],
            compression=None,
        )
        handler = grpc.stream_unary_rpc_method_handler(
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

    def _export(self, messages: Iterator[bytes], context: Any) -> bytes:
        stats = self._gate.stats
        stats.in_flight.labels(TRANSPORT).inc()
        try:  # credentials and rate limit first: an unauthenticated call's message is never read
            metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
            project = self._gate.admit(metadata.get, TRANSPORT)
            result = self._gate.export_admitted(self._payload(messages), project, TRANSPORT)
        except grpc.RpcError:  # the client cancelled or went away while its message was awaited
            stats.refused(TRANSPORT, "disconnected")
            return b""
        except CollectorError as exc:
            _abort(context, exc)
        except Exception:
            log.exception("OTLP/gRPC export failed")
            _abort(context, Unavailable("internal error while storing spans; retry later"))
        finally:
            stats.in_flight.labels(TRANSPORT).dec()
        return bytes(result.to_response().SerializeToString())

    def _payload(self, messages: Iterator[bytes]) -> bytes:
        """The call's request message, inflated if compressed; `InvalidPayload` (counted) if none came."""
        message = next(messages, None)
        try:
            if message is None:
                raise InvalidPayload("the call carried no complete request message (an empty or truncated frame)")
            self._gate.stats.received_bytes.labels(TRANSPORT).inc(len(message))
            return decompressed(message, self._limit)
        except CollectorError as exc:
            self._gate.stats.refused(TRANSPORT, outcome_of(exc))
            raise


def decompressed(message: bytes, limit: int) -> bytes:
    """`message` inflated when it is a gzip member or a zlib stream, else as it is (at most `limit` bytes)."""
    if message[:2] == b"\x1f\x8b":
        return inflate(message, "gzip", limit)
    if _zlib_header(message):
        try:
            return inflate(message, "deflate", limit)
        except InvalidPayload:
            pass  # a plain message that happens to start like zlib: what the decoder makes of it decides
    if len(message) > limit:
        raise PayloadTooLarge(f"request message exceeds the {limit} byte limit")
    return message


def _zlib_header(message: bytes) -> bool:
    """RFC 1950: method 8 (deflate), window <= 32 KiB, header a multiple of 31."""
    return (
        len(message) >= 2
        and message[0] & 0x0F == 8
        and message[0] >> 4 <= 7
        and int.from_bytes(message[:2], "big") % 31 == 0
    )


def _abort(context: Any, exc: CollectorError) -> None:
    details = status_details(exc)
    if details is not None:
        context.set_trailing_metadata(((STATUS_DETAILS_KEY, details),))
    context.abort(exc.grpc_code, str(exc))
