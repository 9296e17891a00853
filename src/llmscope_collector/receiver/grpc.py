"""OTLP/gRPC `TraceService/Export` server: a thin shell over `TraceExporter`.

The method is registered with identity (de)serializers so the raw request bytes reach our own
decoder: a malformed body then yields INVALID_ARGUMENT with a message, not a grpcio INTERNAL.
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Any

import grpc

from llmscope_collector.errors import CollectorError
from llmscope_collector.receiver._export import TraceExporter

log = logging.getLogger(__name__)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


def _identity(data: bytes) -> bytes:
    return data


class OtlpGrpcReceiver:
    """Owns the grpcio server; `start()` binds, `stop()` drains in-flight calls."""

    def __init__(self, exporter: TraceExporter, *, host: str, port: int, max_receive_bytes: int, workers: int):
        self._exporter = exporter
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
        try:
            result = self._exporter.export(payload)
        except CollectorError as exc:
            context.abort(exc.grpc_code, str(exc))
        except Exception:
            log.exception("OTLP/gRPC export failed")
            context.abort(grpc.StatusCode.UNAVAILABLE, "internal error while storing spans; retry later")
        return bytes(result.to_response().SerializeToString())
