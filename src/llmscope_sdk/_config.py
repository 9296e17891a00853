"""SDK settings: each option has one env var and a default; precedence is argument > env > default.

The default exporter is OTLP/HTTP protobuf to port 4318: the base install then needs no `grpcio`
(18 of its 27 MB) and sends at the same CPU per span as gRPC (`benchmarks/sdk_overhead.py
--export-cpu`). An endpoint on 4317, OTLP's gRPC port, with no protocol set anywhere means gRPC, so a
configuration written for the earlier gRPC default keeps its meaning (`pip install 'llmscope[grpc]'`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

GRPC, HTTP = "grpc", "http/protobuf"
GRPC_PORT, HTTP_PORT = 4317, 4318
DEFAULT_ENDPOINT = f"http://127.0.0.1:{HTTP_PORT}"
DEFAULT_SHUTDOWN_TIMEOUT_S = 5.0
"""What interpreter exit waits at most for llmscope's spans to be sent (then they are dropped)."""


def port_of(endpoint: str) -> int | None:
    """The endpoint's explicit port (`127.0.0.1:4317` without a scheme too), else None."""
    try:
        return urlsplit(endpoint if "//" in endpoint else f"//{endpoint}").port
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class SdkSettings:
    endpoint: str = DEFAULT_ENDPOINT
    protocol: str = HTTP  # "grpc" | "http/protobuf"
    service_name: str = "llm-app"
    api_key: str | None = None

    @classmethod
    def resolve(
        cls,
        *,
        endpoint: str | None = None,
        protocol: str | None = None,
        service_name: str | None = None,
        api_key: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> SdkSettings:
        env = os.environ if env is None else env
        given_endpoint = (
            endpoint
            or env.get("LLMSCOPE_ENDPOINT")
            or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        )
        resolved_protocol = (
            protocol
            or env.get("LLMSCOPE_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or (GRPC if given_endpoint and port_of(given_endpoint) == GRPC_PORT else HTTP)
        )
        if resolved_protocol not in (GRPC, HTTP):
            raise ValueError(f"protocol must be 'grpc' or 'http/protobuf', got {resolved_protocol!r}")
        default_port = GRPC_PORT if resolved_protocol == GRPC else HTTP_PORT
        return cls(
            endpoint=given_endpoint or f"http://127.0.0.1:{default_port}",
            protocol=resolved_protocol,
            service_name=service_name or env.get("OTEL_SERVICE_NAME") or "llm-app",
            api_key=api_key or env.get("LLMSCOPE_API_KEY") or None,
        )
