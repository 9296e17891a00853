"""Wrapper factories for the `openai` client (wrapt calling convention), one set for every endpoint.

An `Api` says how one endpoint is read (chat completions, responses, embeddings); the wrappers are
the same for all. `create` covers plain and `stream=True` calls. The `stream(...)` helpers send
their request from their context manager's `__enter__` by calling the (wrapped) `create`, and
close the HTTP response on exit without closing the stream `create` returned: so the helper is
wrapped with the shared manager proxy, which starts the span and ends it on exit, and hands that
span to the inner `create` through a context variable (a `Handoff`) instead of letting `create`
start a second one. Likewise a wrapped method that calls another one (1.x's
`beta.chat.completions.parse` calls `create`) gets one span, not two nested ones.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from llmscope_sdk._content import ContentPolicy
from llmscope_sdk._errors import log_internal_error
from llmscope_sdk._invocation import Invocation
from llmscope_sdk._providers._shape import parsed_body
from llmscope_sdk._runtime import Telemetry
from llmscope_sdk._streams import (
    Accumulator,
    AsyncStreamManagerProxy,
    AsyncStreamProxy,
    StreamTelemetry,
    SyncStreamManagerProxy,
    SyncStreamProxy,
)

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
Factory = Callable[[Telemetry], Wrapper]


_IN_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("llmscope_openai_in_call", default=False)


class _Calling:
    """While the client's method runs: its span is current and nested wrapped calls pass through."""

    __slots__ = ("_inv", "_token")

    def __init__(self, inv: Invocation) -> None:
        self._inv = inv

    def __enter__(self) -> None:
        self._inv.activate()
        self._token = _IN_CALL.set(True)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _IN_CALL.reset(self._token)
        self._inv.deactivate()
        if exc is not None:
            self._inv.fail(exc)


class Handoff:
    """Passes the span a `stream(...)` helper started to the `create` it calls inside `__enter__`.

    A context variable, so concurrent helpers in other threads or tasks never see each other's.
    A span is taken at most once; one left over (the helper never called `create`) is dropped by
    the helper's hook, and one whose helper failed is already ended and so ignored.
    """

    def __init__(self, name: str) -> None:
        self._var: contextvars.ContextVar[StreamTelemetry | None] = contextvars.ContextVar(
            f"llmscope_openai_{name}_handoff", default=None
        )

    def offer(self, telemetry: StreamTelemetry) -> None:
        self._var.set(telemetry)

    def take(self) -> StreamTelemetry | None:
        telemetry = self._var.get()
        if telemetry is None:
            return None
        self._var.set(None)
        return None if telemetry.done else telemetry


@dataclasses.dataclass(frozen=True)
class Api:
    """How one endpoint is read: request → (span name, attributes), result → attributes."""

    name: str
    request: Callable[[Mapping[str, Any], Any, ContentPolicy], tuple[str, dict[str, Any]]]
    response: Callable[[Any, ContentPolicy], dict[str, Any]]
    accumulator: Callable[[ContentPolicy], Accumulator] | None = None
    handoff: Handoff | None = None


def _start(api: Api, t: Telemetry, instance: Any, kwargs: Mapping[str, Any]) -> Invocation | None:
    """Start the call's span; None if telemetry itself failed (the call then runs untraced)."""
    try:
        name, attrs = api.request(kwargs, instance, t.content)
        return Invocation(t.tracer, t.metrics, name, attrs)
    except Exception:
        log_internal_error(f"openai {api.name} request")
        return None


def _finish(inv: Invocation, api: Api, t: Telemetry, result: Any) -> None:
    try:
        parsed = parsed_body(result)
        attrs = {} if parsed is None else api.response(parsed, t.content)
    except Exception:
        log_internal_error(f"openai {api.name} response")
        attrs = {}
    inv.stop(attrs)


def _stream_telemetry(inv: Invocation, api: Api, t: Telemetry) -> StreamTelemetry | None:
    if api.accumulator is None:
        return None
    try:
        return StreamTelemetry(inv, api.accumulator(t.content))
    except Exception:
        log_internal_error(f"openai {api.name} stream")
        return None


def _proxy(result: Any, telemetry: StreamTelemetry, is_async: bool) -> Any:
    """The stream behind a proxy that ends the span; a non-stream (a raw response) is left as is."""
    if is_async and hasattr(result, "__anext__"):
        return AsyncStreamProxy(result, telemetry)
    if not is_async and hasattr(result, "__next__"):
        return SyncStreamProxy(result, telemetry)
    return None


def _traced_result(
    inv: Invocation, api: Api, t: Telemetry, kwargs: Mapping[str, Any], result: Any, is_async: bool
) -> Any:
    """What the wrapper returns: the result itself, or a proxy for a stream that ends the span."""
    if kwargs.get("stream") is True:
        telemetry = _stream_telemetry(inv, api, t)
        proxied = None if telemetry is None else _proxy(result, telemetry, is_async)
        if proxied is not None:
            return proxied
    _finish(inv, api, t, result)
    return result


def _adopted(result: Any, telemetry: StreamTelemetry, is_async: bool) -> Any:
    """Inside a helper: its span observes the stream, and its manager proxy ends it."""
    proxied = _proxy(result, telemetry, is_async)
    return result if proxied is None else proxied


def _take(api: Api) -> StreamTelemetry | None:
    return api.handoff.take() if api.handoff is not None else None


def sync_create(api: Api) -> Factory:
    def factory(t: Telemetry) -> Wrapper:
        def traced_create(
            wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            if _IN_CALL.get():
                return wrapped(*args, **kwargs)
            adopted = _take(api)
            if adopted is not None:
                return _adopted(wrapped(*args, **kwargs), adopted, False)
            inv = _start(api, t, instance, kwargs)
            if inv is None:
                return wrapped(*args, **kwargs)
            with _Calling(inv):
                result = wrapped(*args, **kwargs)
            return _traced_result(inv, api, t, kwargs, result, False)

        return traced_create

    return factory


def async_create(api: Api) -> Factory:
    def factory(t: Telemetry) -> Wrapper:
        async def traced_create(
            wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            if _IN_CALL.get():
                return await wrapped(*args, **kwargs)
            adopted = _take(api)
            if adopted is not None:
                return _adopted(await wrapped(*args, **kwargs), adopted, True)
            inv = _start(api, t, instance, kwargs)
            if inv is None:
                return await wrapped(*args, **kwargs)
            with _Calling(inv):
                result = await wrapped(*args, **kwargs)
            return _traced_result(inv, api, t, kwargs, result, True)

        return traced_create

    return factory


def _stream_starter(
    api: Api, t: Telemetry, instance: Any, kwargs: dict[str, Any]
) -> Callable[[], StreamTelemetry | None]:
    def start() -> StreamTelemetry | None:
        if api.handoff is None or not isinstance(kwargs.get("model"), str):
            return None  # e.g. `responses.stream(response_id=...)` re-reads a stored response: no new call
        inv = _start(api, t, instance, {**kwargs, "stream": True})
        telemetry = None if inv is None else _stream_telemetry(inv, api, t)
        if telemetry is not None:
            api.handoff.offer(telemetry)
        return telemetry

    return start


def _hook(api: Api) -> Callable[[Any, StreamTelemetry], None]:
    def hook(_stream: Any, _telemetry: StreamTelemetry) -> None:
        _take(api)  # normally already taken by `create`; never leave a span behind in the context

    return hook


def sync_stream(api: Api) -> Factory:
    def factory(t: Telemetry) -> Wrapper:
        def traced_stream(
            wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            manager = wrapped(*args, **kwargs)
            if not hasattr(manager, "__enter__"):
                return manager
            return SyncStreamManagerProxy(manager, _stream_starter(api, t, instance, kwargs), _hook(api))

        return traced_stream

    return factory


def async_stream(api: Api) -> Factory:
    def factory(t: Telemetry) -> Wrapper:
        def traced_stream(
            wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            manager = wrapped(*args, **kwargs)
            if not hasattr(manager, "__aenter__"):
                return manager
            return AsyncStreamManagerProxy(manager, _stream_starter(api, t, instance, kwargs), _hook(api))

        return traced_stream

    return factory
