"""Both OTLP receivers and what they share (auth, rate limits, counters), built from the server's `Runtime`.

`pipeline.py` hands this the exporter; everything the receivers need is constructed here so the
pipeline wiring stays one line per stage.
"""

from __future__ import annotations

import logging

from llmscope_collector.auth.admin_token import load_admin_token
from llmscope_collector.auth.policy import AuthPolicy
from llmscope_collector.auth.store import AuthStore
from llmscope_collector.receiver._export import TraceExporter
from llmscope_collector.receiver.gate import IngestGate
from llmscope_collector.receiver.grpc import OtlpGrpcReceiver
from llmscope_collector.receiver.http import HttpDeadlines, JsonConverter, OtlpHttpReceiver
from llmscope_collector.receiver.limiter import RateLimiter
from llmscope_collector.receiver.otlp_json import json_to_protobuf
from llmscope_collector.receiver.stats import IngestStats
from llmscope_collector.runtime import Runtime
from llmscope_collector.settings import SettingsError

AUTH_DIR = "auth"

log = logging.getLogger(__name__)


class OtlpReceivers:
    """OTLP/gRPC + OTLP/HTTP over one `IngestGate`; start gRPC then HTTP, stop in reverse."""

    def __init__(
        self,
        exporter: TraceExporter,
        runtime: Runtime,
        *,
        json_converter: JsonConverter = json_to_protobuf,
        auth_store: AuthStore | None = None,
    ) -> None:
        """`auth_store`: cluster mode's shared one; by default the data dir's `auth/projects.json`."""
        settings = runtime.settings
        auth_dir = settings.data_dir / AUTH_DIR
        try:
            admin = load_admin_token(auth_dir, settings.admin_token)
            self.auth_store = auth_store or AuthStore(auth_dir / "projects.json")
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        self.policy = AuthPolicy(self.auth_store, admin, setting=settings.auth, host=settings.host)
        self.limiter = RateLimiter(
            settings.rate_limit_spans_per_s, settings.rate_limit_burst, overrides=self.auth_store.rate_limit
        )
        self.stats = IngestStats(runtime.metrics.registry)
        self.gate = IngestGate(exporter, self.policy, self.limiter, self.stats)
        self.grpc = OtlpGrpcReceiver(
            self.gate,
            host=settings.host,
            port=settings.otlp_grpc_port,
            max_receive_bytes=settings.grpc_max_receive_bytes,
            workers=settings.grpc_workers,
        )
        self.http = OtlpHttpReceiver(
            self.gate,
            host=settings.host,
            port=settings.otlp_http_port,
            max_body_bytes=settings.http_max_body_bytes,
            workers=settings.http_workers,
            json_converter=json_converter,
            deadlines=HttpDeadlines(
                settings.http_header_timeout_s, settings.http_body_timeout_s, settings.http_idle_timeout_s
            ),
            max_buffered_bytes=settings.http_max_buffered_bytes,
        )

    @property
    def grpc_port(self) -> int:
        return self.grpc.port

    @property
    def http_port(self) -> int:
        return self.http.port

    def start(self) -> None:
        self.grpc.start()
        try:
            self.http.start()
        except BaseException:
            self.grpc.stop(0)
            raise

    def stop(self) -> None:
        """Drain both receivers; afterwards nothing reaches the exporter."""
        self.http.stop()
        self.grpc.stop()
        try:
            self.auth_store.close()
        except Exception:  # keys' last-used times only; the store itself is already durable
            log.exception("could not persist API keys' last-used times")
