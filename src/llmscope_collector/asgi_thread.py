"""One way to serve an ASGI app with uvicorn on a thread, on a socket bound before anything starts.

Used by the HTTP API, the OTLP/HTTP receiver and the capture proxy. Binding first makes port 0
usable (the bound port is known before serving) and turns "port in use" into a sentence at start
instead of a traceback from inside uvicorn's thread.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

START_TIMEOUT_S = 15.0


def bind_tcp(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket; raises `OSError` whose `strerror` says why (the callers name the setting).

    IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on accepted sockets whose protocol says TCP,
    and without it a response's header and body writes wait on the client's delayed ACK (~40 ms).
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


class UvicornThread:
    """uvicorn serving `config`'s app on `sock` in a daemon thread named `name`; owns the socket."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, name: str) -> None:
        self.socket: socket.socket | None = sock
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=name, daemon=True
        )

    @property
    def port(self) -> int:
        assert self.socket is not None
        return int(self.socket.getsockname()[1])

    def start(self) -> bool:
        """Serve; True once uvicorn accepts connections. False (and stopped) if it died or did not
        start within `START_TIMEOUT_S`: the caller says what failed to start."""
        assert self._thread is not None
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                return False
            time.sleep(0.01)
        return True

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the requests in flight, then close the socket. Safe to call twice."""
        self._server.should_exit = True
        if self._thread is not None:
            if self._thread.is_alive():
                self._thread.join(timeout=timeout_s)
            self._thread = None
        if self.socket is not None:
            self.socket.close()
            self.socket = None
