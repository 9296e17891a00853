"""Reading OTLP/HTTP request bodies under a byte budget shared by all requests, with a deadline.

The budget bounds what every request together may hold in memory while its body arrives and is
processed, so many concurrent large bodies cannot take the process's memory. A request reserves its
declared `Content-Length` before reading (all or nothing: reserving piecemeal as bytes arrive would
let many concurrent bodies each take a slice and all fail), a chunked body reserves as it grows, and
everything is given back when the request is answered. When the budget cannot cover a body the
request is refused at once with a retryable 503; a client that declares a body and then stalls
holds its reservation only until the body deadline.
Chunks are appended to one growing `bytearray` rather than kept as a list of small `bytes`: one
large allocation is served by `mmap` and returned to the system when freed, where thousands of
64 KiB chunks would fragment the heap and keep the process large after the burst.

The deadline is the caller's (`asyncio.timeout`): reading never waits on a client without one.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

Receive = Any


class Disconnected(Exception):
    """The client went away before its whole body arrived."""


class OverBudget(Exception):
    """The shared buffer budget has no room for the rest of this body."""


class OverLimit(Exception):
    """The body passed the per-request limit."""


class BufferBudget:
    """Bytes held by request bodies, all requests together; used from the event loop thread only.

    `on_change` is told each change (+taken, -given back), e.g. to move a gauge; `peak` is the most
    ever held at once, the figure that shows the bound held.
    """

    def __init__(self, capacity: int, on_change: Callable[[int], None] = lambda _delta: None) -> None:
        self.capacity = capacity
        self.held = 0
        self.peak = 0
        self._on_change = on_change

    def take(self, amount: int) -> bool:
        if self.held + amount > self.capacity:
            return False
        self.held += amount
        self.peak = max(self.peak, self.held)
        self._on_change(amount)
        return True

    def give_back(self, amount: int) -> None:
        self.held -= amount
        self._on_change(-amount)


@dataclasses.dataclass
class Body:
    """A body being read; `reserved` bytes of the budget are held until `release()`."""

    budget: BufferBudget
    data: bytearray = dataclasses.field(default_factory=bytearray)
    reserved: int = 0

    def reserve(self, amount: int) -> None:
        """Reserve `amount` more bytes, or raise `OverBudget`."""
        if not self.budget.take(amount):
            raise OverBudget
        self.reserved += amount

    def release(self) -> None:
        self.budget.give_back(self.reserved)
        self.reserved = 0
        self.data = bytearray()


async def read_body(receive: Receive, body: Body, limit: int) -> None:
    """Fill `body` with the whole request body; raises `Disconnected`, `OverBudget` or `OverLimit`."""
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        size = len(body.data) + len(chunk)
        if size > limit:
            raise OverLimit
        if size > body.reserved:
            body.reserve(size - body.reserved)
        body.data += chunk


async def drain(receive: Receive, limit: int) -> bool:
    """Read and discard up to `limit` bytes of an unwanted body; True when it was all read."""
    size = 0
    more = True
    while more:
        if size > limit:
            return False
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    return True


class RateLimitedLog:
    """At most one log line per `interval_s`; the next line says how many were left out."""

    def __init__(self, logger: logging.Logger, interval_s: float, clock: Callable[[], float] = time.monotonic):
        self._logger = logger
        self._interval_s = interval_s
        self._clock = clock
        self._next = 0.0
        self._suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        now = self._clock()
        if now < self._next:
            self._suppressed += 1
            return
        self._next = now + self._interval_s
        if self._suppressed:
            message += " (%d similar messages suppressed)"
            args = (*args, self._suppressed)
            self._suppressed = 0
        self._logger.warning(message, *args)
