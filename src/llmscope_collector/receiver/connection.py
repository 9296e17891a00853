"""The OTLP/HTTP connection protocol: uvicorn's h11 protocol plus a deadline for request headers.

Why uvicorn and not a hand-written server: the receiver already runs under uvicorn (as the API
does), and HTTP/1.1 parsing (h11: framing, chunked bodies, pipelining, header size limits) is
exactly what a maintained server should own. What uvicorn lacks is a header deadline: its only
timer is the keep-alive one, armed after a response and cancelled by the first byte of the next
request, so a client that opens a connection (or starts a request) and never finishes its headers
holds the socket forever. This subclass adds that one timer; the body deadline lives in the ASGI
app (`body.py`), where the request's credentials are already known.

The deadline runs from the connection's first moment (or the first byte of a later request on a
kept-alive connection) until the request line and headers are complete; trickling bytes does not
extend it. It relies on uvicorn's `conn` (the public h11 `Connection`) and `transport` attributes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderDeadlineProtocol(H11Protocol):  # type: ignore[misc]
    """`H11Protocol` that closes a connection whose request headers take longer than `header_timeout_s`."""

    def __init__(self, *args: Any, header_timeout_s: float, on_timeout: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._on_timeout = on_timeout
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:  # headers of the next request not complete yet
            if self._header_timer is None:
                self._arm()
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        self._disarm()  # the keep-alive timer takes over until the next request's first byte
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self._header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._on_timeout()
            self.transport.close()
