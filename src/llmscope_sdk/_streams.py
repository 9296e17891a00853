"""One stream-proxy base for every provider: the span covers the whole stream and ends exactly once.

A span that never ends is never exported: the most reported bug in peer instrumentations. Here the
span ends when the stream is exhausted, closed, exited as a context manager, broken by an
exception, or dropped (garbage-collected after a `break`), whichever comes first. The caller's
iteration sees exactly the chunks the client yields; providers only supply an accumulator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import wrapt

from llmscope_sdk import _attributes as A
from llmscope_sdk._errors import handle_internal_errors
from llmscope_sdk._invocation import Invocation

ENDED_BY = "llmscope.stream.ended_by"


class Accumulator(Protocol):
    """Provider-specific: folds chunks into the final response attributes."""

    def on_chunk(self, chunk: Any) -> None: ...

    def attributes(self) -> dict[str, Any]: ...


class StreamTelemetry:
    """The span of one streamed call and what was seen of the stream so far."""

    __slots__ = ("_done", "_first_chunk_seen", "_started", "accumulator", "invocation")

    def __init__(self, invocation: Invocation, accumulator: Accumulator) -> None:
        self.invocation = invocation
        self.accumulator = accumulator
        self._started = time.perf_counter()
        self._first_chunk_seen = False
        self._done = False

    def chunk(self, chunk: Any) -> None:
        with handle_internal_errors("stream chunk"):
            if not self._first_chunk_seen:
                self._first_chunk_seen = True
                self.invocation.span.set_attribute(A.RESPONSE_TTFC, time.perf_counter() - self._started)
            self.accumulator.on_chunk(chunk)

    @property
    def done(self) -> bool:
        return self._done

    def finish(self, exc: BaseException | None, ended_by: str) -> None:
        """End the span once; later calls are no-ops."""
        if self._done:
            return
        self._done = True
        attrs: dict[str, Any] = {ENDED_BY: ended_by}
        with handle_internal_errors("stream attributes"):
            attrs.update(self.accumulator.attributes())
        if exc is None:
            self.invocation.stop(attrs)
        else:
            self.invocation.fail(exc, attrs)


class SyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """Transparent proxy over a sync stream (anything with `__next__`, optionally `close`)."""

    def __init__(self, wrapped: Any, telemetry: StreamTelemetry) -> None:
        super().__init__(wrapped)
        self._self_telemetry = telemetry

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            chunk = self.__wrapped__.__next__()
        except StopIteration:
            self._self_telemetry.finish(None, "exhausted")
            raise
        except BaseException as exc:
            self._self_telemetry.finish(exc, "error")
            raise
        self._self_telemetry.chunk(chunk)
        return chunk

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_telemetry.finish(None, "closed")

    def __enter__(self) -> SyncStreamProxy:
        enter = getattr(self.__wrapped__, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            exit_ = getattr(self.__wrapped__, "__exit__", None)
            return exit_(exc_type, exc, tb) if exit_ is not None else None
        finally:
            self._self_telemetry.finish(exc, "error" if exc is not None else "closed")

    def __del__(self) -> None:
        telemetry = getattr(self, "_self_telemetry", None)
        if telemetry is not None and not telemetry.done:
            telemetry.finish(None, "abandoned")


class AsyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """Transparent proxy over an async stream (`__anext__`, optionally async `close`/`aclose`)."""

    def __init__(self, wrapped: Any, telemetry: StreamTelemetry) -> None:
        super().__init__(wrapped)
        self._self_telemetry = telemetry

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_telemetry.finish(None, "exhausted")
            raise
        except BaseException as exc:
            self._self_telemetry.finish(exc, "error")
            raise
        self._self_telemetry.chunk(chunk)
        return chunk

    async def close(self) -> Any:
        try:
            return await self.__wrapped__.close()
        finally:
            self._self_telemetry.finish(None, "closed")

    async def aclose(self) -> Any:
        try:
            closer = getattr(self.__wrapped__, "aclose", None) or self.__wrapped__.close
            return await closer()
        finally:
            self._self_telemetry.finish(None, "closed")

    async def __aenter__(self) -> AsyncStreamProxy:
        enter = getattr(self.__wrapped__, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            exit_ = getattr(self.__wrapped__, "__aexit__", None)
            return await exit_(exc_type, exc, tb) if exit_ is not None else None
        finally:
            self._self_telemetry.finish(exc, "error" if exc is not None else "closed")

    def __del__(self) -> None:
        telemetry = getattr(self, "_self_telemetry", None)
        if telemetry is not None and not telemetry.done:
            telemetry.finish(None, "abandoned")


StartStream = Callable[[], "StreamTelemetry | None"]
HookStream = Callable[[Any, StreamTelemetry], None]


class SyncStreamManagerProxy(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """Proxy over a stream *manager* (`with client.x.stream(...) as s:`), whose `__enter__` sends the
    request: the span starts there, `hook` lets the provider observe the stream it returns, and the
    span ends at the latest when the `with` block exits."""

    def __init__(self, wrapped: Any, start: StartStream, hook: HookStream) -> None:
        super().__init__(wrapped)
        self._self_start = start
        self._self_hook = hook
        self._self_telemetry: StreamTelemetry | None = None

    def __enter__(self) -> Any:
        telemetry = self._self_start()
        if telemetry is None:
            return self.__wrapped__.__enter__()
        telemetry.invocation.activate()
        try:
            stream = self.__wrapped__.__enter__()
        except BaseException as exc:
            telemetry.invocation.deactivate()
            telemetry.finish(exc, "error")
            raise
        telemetry.invocation.deactivate()
        self._self_telemetry = telemetry
        with handle_internal_errors("stream hook"):
            self._self_hook(stream, telemetry)
        return stream

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            if self._self_telemetry is not None:
                self._self_telemetry.finish(exc, "error" if exc is not None else "closed")


class AsyncStreamManagerProxy(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """Async twin of `SyncStreamManagerProxy` (`async with client.x.stream(...) as s:`)."""

    def __init__(self, wrapped: Any, start: StartStream, hook: HookStream) -> None:
        super().__init__(wrapped)
        self._self_start = start
        self._self_hook = hook
        self._self_telemetry: StreamTelemetry | None = None

    async def __aenter__(self) -> Any:
        telemetry = self._self_start()
        if telemetry is None:
            return await self.__wrapped__.__aenter__()
        telemetry.invocation.activate()
        try:
            stream = await self.__wrapped__.__aenter__()
        except BaseException as exc:
            telemetry.invocation.deactivate()
            telemetry.finish(exc, "error")
            raise
        telemetry.invocation.deactivate()
        self._self_telemetry = telemetry
        with handle_internal_errors("stream hook"):
            self._self_hook(stream, telemetry)
        return stream

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            if self._self_telemetry is not None:
                self._self_telemetry.finish(exc, "error" if exc is not None else "closed")
