"""Wrapper factories for `anthropic` Messages methods (wrapt calling convention).

Each factory decides what it can once, at instrument time, and returns the per-call closure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Tracer

from llmscope_sdk._errors import log_internal_error
from llmscope_sdk._providers.anthropic import _extract
from llmscope_sdk._spans import fail_span, finish_span, start_client_span

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def _start(tracer: Tracer, instance: Any, kwargs: dict[str, Any]) -> tuple[Any, object] | None:
    """Start the span and make it current; None if telemetry itself failed."""
    try:
        attrs = _extract.request_attributes(kwargs, instance)
        span = start_client_span(tracer, f"chat {kwargs.get('model', 'unknown')}", attrs)
        token = otel_context.attach(trace.set_span_in_context(span))
    except Exception:
        log_internal_error("anthropic messages.create start")
        return None
    return span, token


def _detach(token: object) -> None:
    try:
        otel_context.detach(token)  # type: ignore[arg-type]
    except Exception:
        log_internal_error("context detach")


def messages_create(tracer: Tracer) -> Wrapper:
    def traced_create(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if kwargs.get("stream") is True:
            return wrapped(*args, **kwargs)  # streams: not instrumented yet (never end a span early)
        started = _start(tracer, instance, kwargs)
        if started is None:
            return wrapped(*args, **kwargs)
        span, token = started
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            _detach(token)
            fail_span(span, exc)
            raise
        _detach(token)
        finish_span(span, _safe_response_attributes(result))
        return result

    return traced_create


def async_messages_create(tracer: Tracer) -> Wrapper:
    async def traced_create(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if kwargs.get("stream") is True:
            return await wrapped(*args, **kwargs)
        started = _start(tracer, instance, kwargs)
        if started is None:
            return await wrapped(*args, **kwargs)
        span, token = started
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _detach(token)
            fail_span(span, exc)
            raise
        _detach(token)
        finish_span(span, _safe_response_attributes(result))
        return result

    return traced_create


def _safe_response_attributes(result: Any) -> dict[str, Any]:
    try:
        return _extract.response_attributes(result)
    except Exception:
        log_internal_error("anthropic response attributes")
        return {}
