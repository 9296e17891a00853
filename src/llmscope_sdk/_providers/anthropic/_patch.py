"""Wrapper factories for `anthropic` Messages methods (wrapt calling convention).

Each factory is built once at instrument time with the `Telemetry` it needs and returns the
per-call closure. `create` covers plain and `stream=True` calls; `stream` covers the
`messages.stream(...)` helper, whose request is only sent when its context manager is entered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmscope_sdk._errors import log_internal_error
from llmscope_sdk._invocation import Invocation
from llmscope_sdk._providers._shape import parsed_body
from llmscope_sdk._providers.anthropic import _extract
from llmscope_sdk._providers.anthropic._stream import MessageAccumulator
from llmscope_sdk._runtime import Telemetry
from llmscope_sdk._streams import (
    AsyncStreamManagerProxy,
    AsyncStreamProxy,
    StreamTelemetry,
    SyncStreamManagerProxy,
    SyncStreamProxy,
)

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def _start(t: Telemetry, instance: Any, kwargs: dict[str, Any]) -> Invocation | None:
    """Start the call's span; None if telemetry itself failed (the call then runs untraced)."""
    try:
        attrs = _extract.request_attributes(kwargs, instance)
        if t.content.capture:
            _extract.request_content(kwargs, t.content, attrs)
        return Invocation(t.tracer, t.metrics, f"chat {kwargs.get('model', 'unknown')}", attrs)
    except Exception:
        log_internal_error("anthropic request")
        return None


def _finish(inv: Invocation, t: Telemetry, result: Any) -> None:
    try:
        parsed = parsed_body(result)
        attrs = {} if parsed is None else _extract.response_attributes(parsed, t.content)
    except Exception:
        log_internal_error("anthropic response")
        attrs = {}
    inv.stop(attrs)


def _stream_telemetry(inv: Invocation, t: Telemetry) -> StreamTelemetry:
    return StreamTelemetry(inv, MessageAccumulator(t.content))


def _wrap_sync_stream(inv: Invocation, t: Telemetry, stream: Any) -> Any:
    if not hasattr(stream, "__next__"):
        _finish(inv, t, None)
        return stream
    return SyncStreamProxy(stream, _stream_telemetry(inv, t))


def _wrap_async_stream(inv: Invocation, t: Telemetry, stream: Any) -> Any:
    if not hasattr(stream, "__anext__"):
        _finish(inv, t, None)
        return stream
    return AsyncStreamProxy(stream, _stream_telemetry(inv, t))


def messages_create(t: Telemetry) -> Wrapper:
    def traced_create(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        inv = _start(t, instance, kwargs)
        if inv is None:
            return wrapped(*args, **kwargs)
        inv.activate()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            inv.deactivate()
            inv.fail(exc)
            raise
        inv.deactivate()
        if kwargs.get("stream") is True:
            return _wrap_sync_stream(inv, t, result)
        _finish(inv, t, result)
        return result

    return traced_create


def async_messages_create(t: Telemetry) -> Wrapper:
    async def traced_create(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        inv = _start(t, instance, kwargs)
        if inv is None:
            return await wrapped(*args, **kwargs)
        inv.activate()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            inv.deactivate()
            inv.fail(exc)
            raise
        inv.deactivate()
        if kwargs.get("stream") is True:
            return _wrap_async_stream(inv, t, result)
        _finish(inv, t, result)
        return result

    return traced_create


def _hook_message_stream(is_async: bool) -> Callable[[Any, StreamTelemetry], None]:
    """Observe the helper's raw event stream, so every way of consuming it (iteration, text_stream,
    get_final_message) is seen with its timing; fall back to the helper's snapshot if the attribute
    is missing in some client version."""

    def hook(stream: Any, telemetry: StreamTelemetry) -> None:
        raw = getattr(stream, "_raw_stream", None)
        accumulator = telemetry.accumulator
        if raw is not None and hasattr(raw, "__anext__" if is_async else "__next__"):
            proxy = AsyncStreamProxy(raw, telemetry) if is_async else SyncStreamProxy(raw, telemetry)
            stream._raw_stream = proxy
        elif isinstance(accumulator, MessageAccumulator):
            accumulator.snapshot = lambda: getattr(stream, "current_message_snapshot", None)

    return hook


def _stream_starter(t: Telemetry, instance: Any, kwargs: dict[str, Any]) -> Callable[[], StreamTelemetry | None]:
    def start() -> StreamTelemetry | None:
        inv = _start(t, instance, {**kwargs, "stream": True})
        return None if inv is None else _stream_telemetry(inv, t)

    return start


def messages_stream(t: Telemetry) -> Wrapper:
    def traced_stream(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        manager = wrapped(*args, **kwargs)
        if not hasattr(manager, "__enter__"):
            return manager
        return SyncStreamManagerProxy(manager, _stream_starter(t, instance, kwargs), _hook_message_stream(False))

    return traced_stream


def async_messages_stream(t: Telemetry) -> Wrapper:
    def traced_stream(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        manager = wrapped(*args, **kwargs)
        if not hasattr(manager, "__aenter__"):
            return manager
        return AsyncStreamManagerProxy(manager, _stream_starter(t, instance, kwargs), _hook_message_stream(True))

    return traced_stream
