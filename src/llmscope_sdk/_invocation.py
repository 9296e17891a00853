"""The lifecycle of one instrumented call: a CLIENT span plus the GenAI client metrics.

`start()` → `stop(attrs)` or `fail(exc)`, exactly once. Every step is guarded: telemetry never
changes what the user's call returns or raises. This runs on the caller's thread for every LLM call,
so it is written for few Python steps (`benchmarks/sdk_overhead.py` counts its instructions): guards
are `try`/`except` (free in CPython 3.11 until something raises) rather than context-manager objects.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING, Any

from opentelemetry.context import attach, detach
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context

from llmscope_sdk import _attributes as A
from llmscope_sdk._errors import handle_internal_errors, log_internal_error

if TYPE_CHECKING:
    from llmscope_sdk._metrics import GenAIMetrics

_CLIENT = SpanKind.CLIENT


def error_type(exc: BaseException) -> str:
    """Low-cardinality error.type: the exception's class, qualified by its top package."""
    cls = type(exc)
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    return f"{module.split('.', 1)[0]}.{cls.__qualname__}"


class Invocation:
    """One GenAI operation in flight."""

    __slots__ = ("_done", "_metrics", "_request_attrs", "_start", "_token", "span")

    def __init__(self, tracer: Tracer, metrics: GenAIMetrics | None, name: str, attrs: dict[str, Any]) -> None:
        self.span: Span = tracer.start_span(name, kind=_CLIENT, attributes=attrs)
        self._metrics = metrics
        self._request_attrs = attrs
        self._token: object | None = None
        self._done = False
        self._start = perf_counter()

    def activate(self) -> None:
        """Make the span current (for spans the client library creates inside the call)."""
        self._token = attach(set_span_in_context(self.span))

    def deactivate(self) -> None:
        token = self._token
        if token is not None:
            self._token = None
            try:
                detach(token)  # type: ignore[arg-type]
            except Exception:
                log_internal_error("context detach")

    @property
    def done(self) -> bool:
        return self._done

    def stop(self, attrs: dict[str, Any]) -> None:
        if self._done:
            return
        self._done = True
        try:
            self.span.set_attributes(attrs)
        except Exception:
            log_internal_error("span attributes")
        self._end(attrs, None)

    def fail(self, exc: BaseException, attrs: dict[str, Any] | None = None) -> None:
        if self._done:
            return
        self._done = True
        err = ""
        with handle_internal_errors("span error"):
            err = error_type(exc)
            if attrs:
                self.span.set_attributes(attrs)
            self.span.set_attribute(A.ERROR_TYPE, err)
            status = getattr(exc, "status_code", None)
            if isinstance(status, int):
                self.span.set_attribute(A.HTTP_STATUS, status)
            self.span.record_exception(exc)
            self.span.set_status(Status(StatusCode.ERROR, str(exc)[:1000]))
        self._end(attrs or {}, err or "_OTHER")

    def _end(self, attrs: dict[str, Any], err: str | None) -> None:
        duration = perf_counter() - self._start
        try:
            self.span.end()
        except Exception:
            log_internal_error("span end")
        metrics = self._metrics
        if metrics is not None:
            try:
                metrics.record(self._request_attrs, attrs, duration, err)
            except Exception:
                log_internal_error("metrics")
