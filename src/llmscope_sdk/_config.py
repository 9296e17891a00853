"""SDK settings: each option has one env var and a default; precedence is argument > env > default."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

DEFAULT_ENDPOINT = "http://127.0.0.1:4317"
DEFAULT_SHUTDOWN_TIMEOUT_S = 5.0
"""What interpreter exit waits at most for llmscope's spans to be sent (then they are dropped)."""


@dataclasses.dataclass(frozen=True)
class SdkSettings:
    endpoint: str = DEFAULT_ENDPOINT
    protocol: str = "grpc"  # "grpc" | "http/protobuf"
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
        resolved_protocol = (
            protocol
            or env.get("LLMSCOPE_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "grpc"
        )
        if resolved_protocol not in ("grpc", "http/protobuf"):
            raise ValueError(f"protocol must be 'grpc' or 'http/protobuf', got {resolved_protocol!r}")
        resolved_endpoint = (
            endpoint
            or env.get("LLMSCOPE_ENDPOINT")
            or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            or (DEFAULT_ENDPOINT if resolved_protocol == "grpc" else "http://127.0.0.1:4318")
        )
        return cls(
            endpoint=resolved_endpoint,
            protocol=resolved_protocol,
            service_name=service_name or env.get("OTEL_SERVICE_NAME") or "llm-app",
            api_key=api_key or env.get("LLMSCOPE_API_KEY") or None,
        )
