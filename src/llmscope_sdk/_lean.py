"""Lean spans: llmscope's own GenAI spans without the OTel SDK span machinery on the hot path.

An OTel SDK span costs tens of microseconds (attribute validation, locks, processor fan-out) on
the caller's thread. When llmscope created the TracerProvider itself, its spans are instead plain
records implementing the OTel `Span` API (so context propagation and child spans work unchanged)
that are queued on `end()`; a `LeanSpanDrain` processor converts them to SDK `ReadableSpan`s off
the hot path and hands them to the provider's batch processor, so they leave through the same
exporter, retry and queue limits as every other span. Sampling is parent-based always-on (the
provider's default); with a custom `OTEL_TRACES_SAMPLER` llmscope uses SDK spans instead.

The shortcut is only taken while it is invisible: the provider's processors are then llmscope's
own (the scope stamp, done inline here, and the batch processor, which only needs `on_end`). Once
the application adds a processor of its own to that provider (`OwnedTracerProvider`), new spans
are SDK spans, so every processor sees `on_start` and `on_end` as the OpenTelemetry contract says;
lean spans still queued at that moment are shown to it too when drained. The queue is bounded:
past `max_queue_size` ended spans waiting, a span is dropped, counted (`dropped`) and logged once.
Its counts are metrics on the application's MeterProvider, under the OpenTelemetry SDK's own
self-observability names (`otel.sdk.processor.span.processed`, `error.type=queue_full` for a drop;
`otel.sdk.processor.span.queue.size` and `.capacity`), component type `llmscope_span_queue`.
"""

from __future__ import annotations

import collections
import itertools
import logging
import random
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from llmscope_sdk import _attributes as A
from llmscope_sdk._context import scope_attributes

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSET = Status(StatusCode.UNSET)  # immutable: one shared instance instead of one per span
_getrandbits = random.getrandbits
_time_ns = time.time_ns
_log = logging.getLogger("llmscope")


class OwnedTracerProvider(TracerProvider):
    """The TracerProvider `configure()` creates when the application has none.

    After `seal()` (the end of `configure()`), every processor added is the application's own and is
    remembered in `app_processors`: llmscope's tracer then starts SDK spans so that processor sees
    them start and end.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_processors: tuple[SpanProcessor, ...] = ()
        self._sealed = False

    def seal(self) -> None:
        self._sealed = True

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        if self._sealed:
            self.app_processors = (*self.app_processors, span_processor)


class LeanSpan(trace.Span):
    """A recording span that is only a record until the drain converts it."""

    __slots__ = (
        "_attributes",
        "_context",
        "_end_ns",
        "_ended",
        "_events",
        "_kind",
        "_links",
        "_name",
        "_parent",
        "_sink",
        "_start_ns",
        "_status",
    )

    def __init__(
        self,
        sink: LeanSpanDrain,
        name: str,
        kind: SpanKind,
        context: SpanContext,
        parent: SpanContext | None,
        attributes: dict[str, Any],
        links: tuple[Link, ...],
        start_time: int | None = None,
    ) -> None:
        self._sink = sink
        self._links = links
        self._name = name
        self._kind = kind
        self._context = context
        self._parent = parent
        self._attributes = attributes
        self._events: list[Event] = []
        self._status = _UNSET
        self._start_ns = start_time or _time_ns()
        self._end_ns = 0
        self._ended = False

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return not self._ended

    def set_attribute(self, key: str, value: Any) -> None:
        if not self._ended and value is not None:
            self._attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if not self._ended:
            own = self._attributes
            for key, value in attributes.items():
                if value is not None:
                    own[key] = value

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        if not self._ended:
            self._events.append(Event(name, dict(attributes or {}), timestamp or time.time_ns()))

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        if not self._ended and context.is_valid:
            self._links = (*self._links, Link(context, dict(attributes) if attributes else None))

    def update_name(self, name: str) -> None:
        self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._ended:
            return
        self._status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(
        self, exception: BaseException, attributes: Any = None, timestamp: int | None = None, escaped: bool = False
    ) -> None:
        cls = type(exception)
        module = cls.__module__
        attrs = {
            "exception.type": cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}",
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(cls, exception, exception.__traceback__)),
            "exception.escaped": str(escaped),
            **dict(attributes or {}),
        }
        self.add_event("exception", attrs, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._ended:
            return
        self._end_ns = end_time or _time_ns()
        self._ended = True
        self._sink.put(self)

    def to_readable(self, resource: Resource, scope: InstrumentationScope) -> ReadableSpan:
        return ReadableSpan(
            name=self._name,
            context=self._context,
            parent=self._parent,
            resource=resource,
            attributes=self._attributes,
            events=tuple(self._events),
            links=self._links,
            kind=self._kind,
            status=self._status,
            start_time=self._start_ns,
            end_time=self._end_ns,
            instrumentation_scope=scope,
        )


class LeanTracer(trace.Tracer):
    """Starts `LeanSpan`s (parent-based sampling, scope attributes merged in at start), or SDK spans
    from `sdk_tracer` once the application added a processor of its own to the provider."""

    def __init__(self, sink: LeanSpanDrain, provider: OwnedTracerProvider, sdk_tracer: trace.Tracer) -> None:
        self._sink = sink
        self._provider = provider
        self._sdk_tracer = sdk_tracer

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Any = None,
        links: Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        if self._provider.app_processors:
            return self._sdk_tracer.start_span(
                name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
            )
        parent = trace.get_current_span(context).get_span_context()
        span_id = _getrandbits(64) or 1
        valid = parent.is_valid
        if valid:
            if not parent.trace_flags.sampled:
                return trace.NonRecordingSpan(
                    SpanContext(parent.trace_id, span_id, False, parent.trace_flags, parent.trace_state)
                )
            ctx = SpanContext(parent.trace_id, span_id, False, _SAMPLED, parent.trace_state)
        else:
            ctx = SpanContext(_getrandbits(128) or 1, span_id, False, _SAMPLED)
        attrs = dict(attributes) if attributes else {}
        scoped = scope_attributes(attrs.get("gen_ai.operation.name"))
        if scoped:
            attrs.update(scoped)
        kept = tuple(link for link in links if link.context.is_valid) if links else ()
        return LeanSpan(self._sink, name, kind, ctx, parent if valid else None, attrs, kept, start_time)

    def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Any:
        span = self.start_span(name, *args, **{k: v for k, v in kwargs.items() if k != "end_on_exit"})
        return trace.use_span(span, end_on_exit=kwargs.get("end_on_exit", True))


class LeanSpanDrain(SpanProcessor):
    """Moves ended lean spans into `target` (the provider's batch processor) off the hot path.

    Registered on the provider before `target`, so the provider's `force_flush()` and `shutdown()`
    (also at interpreter exit) drain lean spans first. At most `max_queue_size` ended spans wait;
    the drain wakes early when half of that is reached, and a span ended on a full queue is dropped
    and counted in `dropped` (logged once), like the batch processor's own full queue.

    The drain thread sleeps while nothing is queued (no timed wake-ups in an idle app); the first
    span queued after that wakes it, and it then gathers spans for `interval_s` before moving them,
    so a busy app pays no wake-up per call.
    """

    def __init__(
        self,
        target: SpanProcessor,
        provider: OwnedTracerProvider,
        version: str,
        schema_url: str,
        *,
        max_queue_size: int = 2048,
        interval_s: float = 0.2,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.queue: collections.deque[LeanSpan] = collections.deque()
        self.max_queue_size = max_queue_size
        self.dropped = 0
        self._metrics = _QueueMetrics(self.queue, max_queue_size, meter_provider)
        self._wake_at = max(1, max_queue_size // 2)
        self._target = target
        self._provider = provider
        self._resource = provider.resource
        self._scope = InstrumentationScope("llmscope", version, schema_url)
        self._tracer = LeanTracer(self, provider, provider.get_tracer("llmscope", version, schema_url=schema_url))
        self._lock = threading.Lock()
        self._drop_lock = threading.Lock()
        # A binary semaphore: released = "drain now", acquired by the drain thread to wait. Releasing a
        # lock is one C call, far cheaper on the caller's thread than `threading.Event.set()`.
        self._wake = threading.Lock()
        self._wake.acquire()
        self._stop = threading.Event()
        self._interval_s = interval_s
        self._idle = False  # the drain thread waits for a first span (set by it, cleared by `put`)
        self._thread = threading.Thread(target=self._run, name="llmscope-lean-drain", daemon=True)
        self._thread.start()

    def tracer(self) -> LeanTracer:
        return self._tracer

    def put(self, span: LeanSpan) -> None:
        """Called by `LeanSpan.end()` on the application's thread: an append, or a counted drop."""
        queue = self.queue
        waiting = len(queue)
        if waiting >= self.max_queue_size:
            self._drop()
            return
        queue.append(span)
        if self._idle or waiting + 1 == self._wake_at:
            self._idle = False
            self._signal()

    def _signal(self) -> None:
        try:
            self._wake.release()
        except RuntimeError:
            pass  # already signalled, not yet seen by the drain thread

    def _drop(self) -> None:
        with self._drop_lock:
            self.dropped += 1
            first = self.dropped == 1
        self._metrics.dropped()
        if first:
            _log.warning(
                "llmscope: %d ended spans wait to be exported; dropping new ones (counted in the metric %s"
                " with error.type=%s; configure(max_queue_size=...) sets the bound)",
                self.max_queue_size,
                A.OTEL_PROCESSOR_SPAN_PROCESSED,
                A.QUEUE_FULL,
            )

    def _run(self) -> None:
        wake, stop, queue = self._wake, self._stop, self.queue
        while not stop.is_set():
            if not queue:
                self._idle = True
                if not queue:  # a span queued before the flag was set is not missed
                    wake.acquire()
                self._idle = False
                if stop.is_set():
                    break
            if len(queue) < self._wake_at:
                wake.acquire(timeout=self._interval_s)  # gather a batch; `put` wakes us early at half the queue
            self.drain()

    def drain(self) -> int:
        with self._lock:
            moved = 0
            queue, target = self.queue, self._target
            while queue:
                readable = queue.popleft().to_readable(self._resource, self._scope)
                _deliver(target, readable)
                for processor in self._provider.app_processors:  # lean spans started before it was added
                    _deliver(processor, readable)
                moved += 1
            if moved:
                self._metrics.processed(moved)
            return moved

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.drain()
        return True

    def shutdown(self) -> None:
        self._stop.set()
        self._signal()
        self.drain()


_queue_ids = itertools.count()  # otel.component.name is `<type>/<n>`, n unique in the process (as the SDK's)


class _QueueMetrics:
    """The queue's counts as OTel metrics, on the app's MeterProvider (the global one unless given).

    Nothing is recorded per span on the application's thread: spans handed on are counted once per
    drain cycle, drops as they happen (rare), and the queue size is read when a reader collects.
    Until the app sets a MeterProvider these are the OTel API's no-op proxies.
    """

    def __init__(self, queue: collections.deque[Any], capacity: int, provider: metrics.MeterProvider | None) -> None:
        meter = metrics.get_meter("llmscope", meter_provider=provider)
        self._attrs = {
            A.OTEL_COMPONENT_TYPE: A.LEAN_QUEUE_COMPONENT,
            A.OTEL_COMPONENT_NAME: f"{A.LEAN_QUEUE_COMPONENT}/{next(_queue_ids)}",
        }
        self._dropped_attrs = {**self._attrs, A.ERROR_TYPE: A.QUEUE_FULL}
        self._processed = meter.create_counter(
            A.OTEL_PROCESSOR_SPAN_PROCESSED,
            unit="{span}",
            description="Spans llmscope's span queue handed to the batch processor, or dropped (error.type)",
        )
        meter.create_up_down_counter(
            A.OTEL_PROCESSOR_SPAN_QUEUE_CAPACITY, unit="{span}", description="The bound of llmscope's span queue"
        ).add(capacity, self._attrs)

        def size(_options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
            return (metrics.Observation(len(queue), self._attrs),)

        meter.create_observable_up_down_counter(
            A.OTEL_PROCESSOR_SPAN_QUEUE_SIZE,
            callbacks=[size],
            unit="{span}",
            description="Ended spans waiting in llmscope's span queue",
        )

    def processed(self, count: int) -> None:
        self._processed.add(count, self._attrs)

    def dropped(self) -> None:
        self._processed.add(1, self._dropped_attrs)


def _deliver(processor: SpanProcessor, span: ReadableSpan) -> None:
    """A failing processor loses this span, never the drain thread (which would silence all later ones)."""
    try:
        processor.on_end(span)
    except Exception:
        _log.warning("llmscope: span processor %r failed on a span", processor, exc_info=True)
