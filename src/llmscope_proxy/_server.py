"""Runs the proxy app under uvicorn on a thread, on a socket bound before anything starts.

Binding first makes port 0 usable in tests and reports a taken port as a sentence, not a traceback
from inside uvicorn. The same runner serves `llmscope proxy` (alone) and `llmscope serve
--proxy-port` (beside the collector, with the in-process sink).
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from llmscope_proxy._app import Authorize, ProxyApp, ProxyConfig
from llmscope_proxy._spans import Sink, SpanRecorder


class ProxyPortError(OSError):
    """The proxy's port cannot be bound (in use, or not allowed)."""


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ProxyPortError(f"{host}:{port} (proxy_port) is not available: {exc.strerror}") from None
    sock.listen(512)
    return sock


class ProxyServer:
    """The capture proxy on `host:port`; spans go to `sink`, credentials are checked by `authorize`."""

    def __init__(self, config: ProxyConfig, sink: Sink, authorize: Authorize, *, host: str, port: int) -> None:
        self.config = config
        self.host = host
        self._port = port
        self.recorder = SpanRecorder(sink)
        self.app = ProxyApp(config, self.recorder, authorize)
        self._socket: socket.socket | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._socket is not None, "the proxy is not started"
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ProxyServer:
        self._socket = bind(self.host, self._port)
        config = uvicorn.Config(self.app, log_level="warning", log_config=None, access_log=False, lifespan="on")
        self._uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._uvicorn.run, kwargs={"sockets": [self._socket]}, name="llmscope-proxy", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the capture proxy did not start; see the log above")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop accepting, finish the calls in flight, then hand over the last spans. Safe twice."""
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self.recorder.shutdown()

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
