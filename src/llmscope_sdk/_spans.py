"""Shared span lifecycle for wrapped calls: start with request attributes, end once with the
response's or the error's. Every step is guarded: telemetry never changes what the user sees."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from llmscope_sdk import _attributes as A
from llmscope_sdk._errors import handle_internal_errors


def start_client_span(tracer: Tracer, name: str, attributes: dict[str, Any]) -> Span:
    return tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def error_type(exc: BaseException) -> str:
    """Low-cardinality error.type: the exception's qualified class name (builtins unqualified)."""
    cls = type(exc)
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    top = module.split(".", 1)[0]
    return f"{top}.{cls.__qualname__}"


def fail_span(span: Span, exc: BaseException) -> None:
    """Record the user's exception on the span and end it; never raises."""
    with handle_internal_errors("fail_span"):
        span.set_attribute(A.ERROR_TYPE, error_type(exc))
        status = getattr(exc, "status_code", None)
        if isinstance(status, int):
            span.set_attribute(A.HTTP_STATUS, status)
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc)[:1000]))
    with handle_internal_errors("end_span"):
        span.end()


def finish_span(span: Span, attributes: dict[str, Any]) -> None:
    with handle_internal_errors("finish_span"):
        span.set_attributes(attributes)
    with handle_internal_errors("end_span"):
        span.end()
