"""The lifecycle of one instrumented call: a CLIENT span plus the GenAI client metrics.

`start()` → `stop(attrs)` or `fail(exc)`, exactly once. Every step is guarded: telemetry never
changes what the user's call returns or raises.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from llmscope_sdk import _attributes as A
from llmscope_sdk._errors import handle_internal_errors
from llmscope_sdk._metrics import GenAIMetrics

_METRIC_KEYS = (A.OPERATION, A.PROVIDER, A.REQUEST_MODEL, A.SERVER_ADDRESS, A.SERVER_PORT)


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
        self.span: Span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
        self._metrics = metrics
        self._request_attrs = attrs
        self._start = time.perf_counter()
        self._token: object | None = None
        self._done = False

    def activate(self) -> None:
        """Make the span current (for spans the client library creates inside the call)."""
        self._token = otel_context.attach(trace.set_span_in_context(self.span))

    def deactivate(self) -> None:
        if self._token is not None:
            token, self._token = self._token, None
            with handle_internal_errors("context detach"):
                otel_context.detach(token)  # type: ignore[arg-type]

    @property
    def done(self) -> bool:
        return self._done

    def stop(self, attrs: dict[str, Any]) -> None:
        if self._done:
            return
        self._done = True
        with handle_internal_errors("span attributes"):
            self.span.set_attributes(attrs)
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
        duration = time.perf_counter() - self._start
        with handle_internal_errors("span end"):
            self.span.end()
        if self._metrics is not None:
            with handle_internal_errors("metrics"):
                base = {k: self._request_attrs[k] for k in _METRIC_KEYS if k in self._request_attrs}
                model = attrs.get(A.RESPONSE_MODEL)
                if model is not None:
                    base[A.RESPONSE_MODEL] = model
                self._metrics.record(base, duration, attrs.get(A.USAGE_INPUT), attrs.get(A.USAGE_OUTPUT), err)
