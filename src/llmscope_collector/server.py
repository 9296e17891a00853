"""Runs the collector and the HTTP API together in one process (the embedded default).

The API runs under uvicorn in a background thread on a socket we bind ourselves, so port 0 works
and "port in use" is reported before anything starts.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

import uvicorn

from llmscope_collector.api.app import create_app
from llmscope_collector.api.controllers.sessions import SessionDeleter
from llmscope_collector.api.http_metrics import HttpMetrics, HttpMetricsMiddleware
from llmscope_collector.api.request_id import RequestIdMiddleware
from llmscope_collector.asgi_thread import UvicornThread, bind_tcp
from llmscope_collector.errors import Unauthenticated
from llmscope_collector.pipeline import Collector
from llmscope_collector.query.backend import QueryBackend, open_backend
from llmscope_collector.query.deletion import delete_from_bucket
from llmscope_collector.query.export import ExportReader
from llmscope_collector.query.scores import ScoreStore
from llmscope_collector.receiver.gate import IngestGate
from llmscope_collector.settings import Settings, SettingsError, env_var, flag
from llmscope_collector.storage.cluster import query_dir

if TYPE_CHECKING:
    from llmscope_proxy import ProxyServer

log = logging.getLogger(__name__)


def _bind(host: str, port: int) -> socket.socket:
    try:
        return bind_tcp(host, port, backlog=128)
    except OSError as exc:
        raise SettingsError(
            f"{host}:{port} (api_port) is not available: {exc.strerror}. "
            f"Stop the other process or pass {flag('api_port')} / set {env_var('api_port')}."
        ) from None


class EmbeddedServer:
    """Collector + API; `start()` returns once both accept connections."""

    def __init__(self, settings: Settings) -> None:
        settings.validate()
        self.settings = settings
        self.store: QueryBackend = open_backend(settings)
        try:
            self.collector = Collector(settings, engine=self.store)  # its alert rules read the API's engine
        except BaseException:
            self.store.close()
            raise
        self.scores = ScoreStore(query_dir(settings))
        self.exports = ExportReader(query_dir(settings))
        self._api_socket: socket.socket | None = None
        self._api: UvicornThread | None = None
        self.proxy: ProxyServer | None = None

    @property
    def grpc_port(self) -> int:
        return self.collector.grpc_port

    @property
    def http_port(self) -> int:
        """The OTLP/HTTP port."""
        return self.collector.http_port

    @property
    def api_port(self) -> int:
        assert self._api_socket is not None
        return int(self._api_socket.getsockname()[1])

    @property
    def api_url(self) -> str:
        host = f"[{self.settings.host}]" if ":" in self.settings.host else self.settings.host
        return f"http://{host}:{self.api_port}"

    def start(self) -> None:
        self._api_socket = _bind(self.settings.host, self.settings.api_port)
        try:
            self.collector.start()
        except SettingsError:
            self._api_socket.close()
            raise
        except OSError as exc:
            self._api_socket.close()
            raise SettingsError(
                f"{exc}. Pass --otlp-grpc-port / --otlp-http-port or set LLMSCOPE_OTLP_*_PORT."
            ) from None
        receivers = self.collector.receivers
        self.http_metrics = HttpMetrics(self.collector.runtime.metrics.registry)
        app = create_app(
            self.store,
            buffered=lambda: self.collector.writer.buffered_rows,
            ingest=self.collector.ingest_status,
            alerts=self.collector.alerts,
            retention=self.collector,
            settle=self.collector.settle,
            auth=receivers.policy,
            metrics=self.collector.runtime.metrics,
            scores=self.scores,
            exports=self.exports,
            score_ingest=partial(receivers.gate.export_admitted, transport="scores"),  # counted, rate-charged
            delete_session=self._session_deleter(),
        )
        asgi = RequestIdMiddleware(HttpMetricsMiddleware(app, self.http_metrics))
        config = uvicorn.Config(asgi, log_level="warning", log_config=None, access_log=False, lifespan="on")
        self._api = UvicornThread(config, self._api_socket, "llmscope-api")
        if not self._api.start():
            self.stop()
            raise RuntimeError("the HTTP API did not start; see the log above")
        if self.settings.proxy_port >= 0:
            try:
                self.proxy = _capture_proxy(self.settings, self.collector.receivers.gate)
            except BaseException:
                self.stop()
                raise

    def _session_deleter(self) -> SessionDeleter:
        """The engine's own deletion over the data dir, which holds this collector's writer off while it removes
        orphaned content (`query.deletion`); in cluster mode the deletion from the bucket."""
        deletions = self.collector.deletions
        if deletions is None:
            return partial(self.store.delete_session, content_removal=self.collector.writer.content_removal)
        # Long enough for a dead compaction lease holder to be replaced (5/3 of the lease) and to run it.
        timeout_s = 2 * self.settings.lease_duration_s + 30
        return partial(delete_from_bucket, deletions, self.collector.sync_bucket, timeout_s)

    def stop(self) -> None:
        """Stop the proxy and the API, then drain and flush the collector. Safe to call twice."""
        if self.proxy is not None:
            self.proxy.stop()  # its last spans reach the gate before the receivers close
            self.proxy = None
        if self._api is not None:
            self._api.stop()  # closes the socket too
            self._api = None
        elif self._api_socket is not None:
            self._api_socket.close()
        self._api_socket = None
        self.collector.stop()
        self.store.close()
        self.scores.close()
        self.exports.close()

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _capture_proxy(settings: Settings, gate: IngestGate) -> ProxyServer:
    """The started capture proxy inside `serve`: its spans enter the collector's own ingest gate in process,
    so the same key checks, rate limits and WAL apply as to spans sent over OTLP. The proxy is a
    client of the collector (like the SDK): this composition root is the only place they meet."""
    from llmscope_proxy import ProxyAuthError, ProxyConfig, ProxyPortError, ProxyServer

    def sink(payload: bytes, credentials: Mapping[str, str]) -> None:
        gate.export(payload, credentials.get, "proxy")

    def authorize(credentials: tuple[tuple[str, str], ...]) -> None:
        try:
            gate.policy.project_for(dict(credentials).get)
        except Unauthenticated as exc:
            raise ProxyAuthError(str(exc)) from None

    config = ProxyConfig(
        openai_base_url=settings.proxy_openai_base_url,
        anthropic_base_url=settings.proxy_anthropic_base_url,
        capture_content=settings.proxy_capture_content,
    )
    server = ProxyServer(config, sink, authorize, host=settings.host, port=settings.proxy_port)
    try:
        return server.start()
    except ProxyPortError as exc:
        raise SettingsError(f"{exc}. Pass --proxy-port or set LLMSCOPE_PROXY_PORT.") from None
