"""Runs the proxy app under uvicorn on a thread, on a socket bound before anything starts (the
runner the collector's own HTTP servers use). It serves `llmscope proxy` (alone) and `llmscope serve
--proxy-port` (beside the collector, with the in-process sink).
"""

from __future__ import annotations

import uvicorn

from llmscope_collector.asgi_thread import UvicornThread, bind_tcp
from llmscope_proxy._app import Authorize, ProxyApp, ProxyConfig
from llmscope_proxy._spans import Sink, SpanRecorder


class ProxyPortError(OSError):
    """The proxy's port cannot be bound (in use, or not allowed)."""


class ProxyServer:
    """The capture proxy on `host:port`; spans go to `sink`, credentials are checked by `authorize`."""

    def __init__(self, config: ProxyConfig, sink: Sink, authorize: Authorize, *, host: str, port: int) -> None:
        self.config = config
        self.host = host
        self._port = port
        self.recorder = SpanRecorder(sink)
        self.app = ProxyApp(config, self.recorder, authorize)
        self._runner: UvicornThread | None = None

    @property
    def port(self) -> int:
        assert self._runner is not None, "the proxy is not started"
        return self._runner.port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ProxyServer:
        try:
            sock = bind_tcp(self.host, self._port, backlog=512)
        except OSError as exc:
            raise ProxyPortError(f"{self.host}:{self._port} (proxy_port) is not available: {exc.strerror}") from None
        config = uvicorn.Config(self.app, log_level="warning", log_config=None, access_log=False, lifespan="on")
        self._runner = UvicornThread(config, sock, "llmscope-proxy")
        if not self._runner.start():
            self.recorder.shutdown()
            raise RuntimeError("the capture proxy did not start; see the log above")
        return self

    def stop(self) -> None:
        """Stop accepting, finish the calls in flight, then hand over the last spans. Safe twice."""
        if self._runner is not None:
            self._runner.stop()
        self.recorder.shutdown()

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
