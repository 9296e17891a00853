"""Where the proxy's spans go: an OpenTelemetry TracerProvider of its own, exported as OTLP bytes.

The proxy is a client of the collector like any instrumented app: it speaks OTLP. Its spans are
batched by the SDK's `BatchSpanProcessor` (off the request path) and handed to a `Sink` with the
llmscope credential of the request that made them, so auth, rate limits and the WAL apply exactly
as for spans that arrive over the network. Inside `llmscope serve` the sink is the collector's own
ingest gate (in-process, no socket); a standalone proxy posts OTLP/HTTP to the collector.

The provider is never the global one: an app process that embeds the proxy keeps its own tracing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence

import httpx
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Span, Tracer

log = logging.getLogger("llmscope.proxy")

Credentials = tuple[tuple[str, str], ...]
"""The llmscope headers (`x-llmscope-api-key`, `x-llmscope-project`) a request carried, sorted."""

Sink = Callable[[bytes, Mapping[str, str]], None]
"""`sink(otlp_request_bytes, credential_headers)`: store one ExportTraceServiceRequest or raise."""


class _SinkExporter(SpanExporter):
    """Groups finished spans by the credentials of their requests, one OTLP request per group."""

    def __init__(self, sink: Sink, pending: dict[tuple[int, int], Credentials], lock: threading.Lock) -> None:
        self._sink = sink
        self._pending = pending
        self._lock = lock

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        groups: dict[Credentials, list[ReadableSpan]] = {}
        with self._lock:
            for span in spans:
                ctx = span.get_span_context()
                key = (ctx.trace_id, ctx.span_id) if ctx is not None else (0, 0)
                groups.setdefault(self._pending.pop(key, ()), []).append(span)
        result = SpanExportResult.SUCCESS
        for credentials, group in groups.items():
            try:
                self._sink(encode_spans(group).SerializeToString(), dict(credentials))
            except Exception as exc:  # a refused batch must not stop the others
                log.warning("llmscope proxy: %d spans not stored: %s", len(group), exc)
                result = SpanExportResult.FAILURE
        return result

    def shutdown(self) -> None:
        return None


class SpanRecorder:
    """The proxy's tracer; remembers each span's credentials until its batch is exported."""

    def __init__(self, sink: Sink, *, service_name: str = "llmscope-proxy", schedule_delay_ms: int = 200) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[int, int], Credentials] = {}
        self._provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self._provider.add_span_processor(
            BatchSpanProcessor(
                _SinkExporter(sink, self._pending, self._lock),
                schedule_delay_millis=schedule_delay_ms,
                max_queue_size=8192,
            )
        )
        self.tracer: Tracer = self._provider.get_tracer("llmscope.proxy")

    def bind(self, span: Span, credentials: Credentials) -> None:
        """Attach the request's credentials to `span` (read when its batch is exported)."""
        ctx = span.get_span_context()
        with self._lock:
            self._pending[(ctx.trace_id, ctx.span_id)] = credentials

    def flush(self, timeout_s: float = 5.0) -> bool:
        return self._provider.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        self._provider.shutdown()


def http_sink(endpoint: str, timeout_s: float = 10.0) -> Sink:
    """A sink that posts OTLP/HTTP protobuf to a collector (`http://host:4318`), with the credentials."""
    url = endpoint.rstrip("/") + "/v1/traces"
    client = httpx.Client(timeout=timeout_s)

    def post(payload: bytes, credentials: Mapping[str, str]) -> None:
        headers = {"content-type": "application/x-protobuf", **credentials}
        response = client.post(url, content=payload, headers=headers)
        if response.status_code >= 300:
            raise RuntimeError(f"collector answered HTTP {response.status_code}: {response.text[:200]}")

    return post
