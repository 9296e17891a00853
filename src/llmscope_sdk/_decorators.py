"""`@llmscope.trace`: custom spans for agents, tools, retrievals and any other step of an app.

Works on sync, async, generator and async-generator functions. The span is current while the
function body runs (so LLM calls inside become its children) but never leaks into the caller
between a generator's yields. Arguments and results are recorded only with content capture on.
Exceptions are recorded and re-raised unchanged.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Literal, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from llmscope_sdk import _attributes as A
from llmscope_sdk._content import ContentPolicy, capture_from_env
from llmscope_sdk._errors import handle_internal_errors, log_internal_error
from llmscope_sdk._instrumentor import current_telemetry
from llmscope_sdk._invocation import error_type
from llmscope_sdk._setup import tracer

F = TypeVar("F", bound=Callable[..., Any])
Kind = Literal["agent", "tool", "retrieval", "workflow", "chain", "task", "span"]

_OPERATIONS: dict[str, str] = {
    "agent": "invoke_agent",
    "tool": "execute_tool",
    "retrieval": "retrieval",
    "workflow": "invoke_workflow",
}
_NAME_ATTRS = {"agent": A.AGENT_NAME, "tool": A.TOOL_NAME, "workflow": "gen_ai.workflow.name"}
KIND_ATTR = "llmscope.span.kind"


class _SpanSpec:
    """Everything about the span that is fixed at decoration time."""

    def __init__(self, func: Callable[..., Any], name: str | None, kind: str, attributes: dict[str, Any]) -> None:
        self.func = func
        self.kind = kind
        base = name or getattr(func, "__name__", "function")
        operation = _OPERATIONS.get(kind)
        self.span_name: str = f"{operation} {base}" if operation else str(base)
        self.attributes: dict[str, Any] = {KIND_ATTR: kind, **attributes}
        if operation:
            self.attributes[A.OPERATION] = operation
        if kind in _NAME_ATTRS:
            self.attributes[_NAME_ATTRS[kind]] = base
        if kind == "tool":
            self.attributes[A.TOOL_TYPE] = "function"
        try:
            self.signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):
            self.signature = None

    def _policy(self) -> ContentPolicy:
        telemetry = current_telemetry()
        return telemetry.content if telemetry is not None else ContentPolicy(capture=capture_from_env())

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Span, ContentPolicy] | None:
        try:
            attrs = dict(self.attributes)
            policy = self._policy()
            if policy.capture:
                policy.encode(self._input_attr(), self._arguments(args, kwargs), attrs)
            return tracer().start_span(self.span_name, kind=SpanKind.INTERNAL, attributes=attrs), policy
        except Exception:
            log_internal_error("trace start")
            return None

    def _input_attr(self) -> str:
        return A.TOOL_CALL_ARGUMENTS if self.kind == "tool" else "llmscope.input"

    def _output_attr(self) -> str:
        return A.TOOL_CALL_RESULT if self.kind == "tool" else "llmscope.output"

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.signature is None:
            return {"args": list(args), "kwargs": kwargs}
        bound = self.signature.bind_partial(*args, **kwargs)
        return {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}

    def finish(self, span: Span, policy: ContentPolicy, result: Any = None, exc: BaseException | None = None) -> None:
        with handle_internal_errors("trace finish"):
            if exc is not None:
                span.set_attribute(A.ERROR_TYPE, error_type(exc))
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)[:1000]))
            elif policy.capture and result is not None:
                attrs: dict[str, Any] = {}
                policy.encode(self._output_attr(), result, attrs)
                span.set_attributes(attrs)
        with handle_internal_errors("trace end"):
            span.end()


def _wrap_function(spec: _SpanSpec) -> Callable[..., Any]:
    func = spec.func

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = spec.start(args, kwargs)
        if started is None:
            return func(*args, **kwargs)
        span, policy = started
        with otel_trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                spec.finish(span, policy, exc=exc)
                raise
        spec.finish(span, policy, result)
        return result

    return wrapper


def _wrap_coroutine(spec: _SpanSpec) -> Callable[..., Any]:
    func = spec.func

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = spec.start(args, kwargs)
        if started is None:
            return await func(*args, **kwargs)
        span, policy = started
        with otel_trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:
                spec.finish(span, policy, exc=exc)
                raise
        spec.finish(span, policy, result)
        return result

    return wrapper


def _wrap_generator(spec: _SpanSpec) -> Callable[..., Any]:
    func = spec.func

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        started = spec.start(args, kwargs)
        if started is None:
            return (yield from func(*args, **kwargs))
        span, policy = started
        ctx = otel_trace.set_span_in_context(span)
        gen = func(*args, **kwargs)
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            token = otel_context.attach(ctx)
            try:
                item = gen.throw(to_throw) if to_throw is not None else gen.send(to_send)
            except StopIteration as stop:
                spec.finish(span, policy, stop.value)
                return stop.value
            except BaseException as exc:
                spec.finish(span, policy, exc=exc)
                raise
            finally:
                otel_context.detach(token)
            to_send, to_throw = None, None
            try:
                to_send = yield item
            except GeneratorExit:
                gen.close()
                spec.finish(span, policy)
                raise
            except BaseException as exc:
                to_throw = exc

    return wrapper


def _wrap_async_generator(spec: _SpanSpec) -> Callable[..., Any]:
    func = spec.func

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        started = spec.start(args, kwargs)
        agen = func(*args, **kwargs)
        if started is None:
            async for item in agen:
                yield item
            return
        span, policy = started
        ctx = otel_trace.set_span_in_context(span)
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            token = otel_context.attach(ctx)
            try:
                item = await (agen.athrow(to_throw) if to_throw is not None else agen.asend(to_send))
            except StopAsyncIteration:
                spec.finish(span, policy)
                return
            except BaseException as exc:
                spec.finish(span, policy, exc=exc)
                raise
            finally:
                otel_context.detach(token)
            to_send, to_throw = None, None
            try:
                to_send = yield item
            except GeneratorExit:
                await agen.aclose()
                spec.finish(span, policy)
                raise
            except BaseException as exc:
                to_throw = exc

    return wrapper


@overload
def trace(func: F, /) -> F: ...


@overload
def trace(
    *, name: str | None = None, kind: Kind = "span", attributes: dict[str, Any] | None = None
) -> Callable[[F], F]: ...


def trace(
    func: Any = None, /, *, name: str | None = None, kind: Kind = "span", attributes: dict[str, Any] | None = None
) -> Any:
    """Trace a function as a span: `@llmscope.trace` or `@llmscope.trace(name=..., kind="tool")`."""

    def decorate(f: F) -> F:
        spec = _SpanSpec(f, name, kind, dict(attributes or {}))
        if inspect.isasyncgenfunction(f):
            return _wrap_async_generator(spec)  # type: ignore[return-value]
        if inspect.isgeneratorfunction(f):
            return _wrap_generator(spec)  # type: ignore[return-value]
        if inspect.iscoroutinefunction(f):
            return _wrap_coroutine(spec)  # type: ignore[return-value]
        return _wrap_function(spec)  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate
