"""`configure()`: get a TracerProvider that exports to llmscope, or reuse the app's own.

If the application already set an SDK TracerProvider, llmscope adds nothing to it: the app's
exporters decide where spans go (OpenTelemetry's own advice for libraries).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from opentelemetry import trace

from llmscope_sdk import _attributes as A
from llmscope_sdk._config import DEFAULT_SHUTDOWN_TIMEOUT_S, GRPC, GRPC_PORT, HTTP_PORT, SdkSettings, port_of

if TYPE_CHECKING:  # the OTel SDK and exporters load in `configure()`, not with `import llmscope`
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from llmscope_sdk import _delivery
    from llmscope_sdk._lean import LeanSpanDrain

_log = logging.getLogger("llmscope")
_lock = threading.Lock()
_provider: trace.TracerProvider | None = None
_owned: TracerProvider | None = None
_drain: LeanSpanDrain | None = None
_scoped: weakref.WeakSet[trace.TracerProvider] = weakref.WeakSet()  # providers given a ScopeSpanProcessor
_report: _delivery.DeliveryReport | None = None  # the exporter of `_owned`, counting what it failed to send


def _exporter(settings: SdkSettings, extra_headers: dict[str, str] | None) -> SpanExporter:
    headers = dict(extra_headers or {})
    if settings.api_key:
        headers["authorization"] = f"Bearer {settings.api_key}"
    endpoint = settings.endpoint
    if settings.protocol == GRPC:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        except ImportError:
            endpoint = _http_instead(endpoint)
        else:
            insecure = endpoint.startswith("http://")
            return GrpcExporter(endpoint=endpoint, insecure=insecure, headers=headers or None)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    endpoint = endpoint.rstrip("/")
    if not endpoint.endswith("/v1/traces"):
        endpoint += "/v1/traces"
    return HttpExporter(endpoint=endpoint, headers=headers or None)


def _http_instead(endpoint: str) -> str:
    """gRPC was asked for without its exporter installed: say how to get it, send OTLP/HTTP meanwhile (to
    4318 when the endpoint named OTLP's gRPC port 4317: the collector and OTel's collectors serve both)."""
    port = port_of(endpoint)
    http = endpoint if "//" in endpoint else f"http://{endpoint}"
    if port == GRPC_PORT:
        http = http.replace(f":{GRPC_PORT}", f":{HTTP_PORT}", 1)
    _log.warning(
        "llmscope: OTLP/gRPC export needs `pip install 'llmscope[grpc]'`; exporting OTLP/HTTP to %s instead", http
    )
    return http


def _add_scope_processor(provider: trace.TracerProvider) -> None:
    """Stamp sessions/users/tags on every span of this provider (once per provider)."""
    add = getattr(provider, "add_span_processor", None)
    if add is None or provider in _scoped:
        return
    from llmscope_sdk._stamp import ScopeSpanProcessor

    add(ScopeSpanProcessor())
    _scoped.add(provider)  # remembered here: no attribute is set on the application's object


def _app_provider() -> trace.TracerProvider | None:
    """The provider the application registered itself, if any (not the API's proxy/no-op)."""
    current = trace.get_tracer_provider()
    if isinstance(current, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    from llmscope_sdk._lean import OwnedTracerProvider

    if isinstance(current, OwnedTracerProvider):
        return None  # one llmscope created earlier and has since shut down
    return current


def configure(
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    service_name: str | None = None,
    api_key: str | None = None,
    headers: dict[str, str] | None = None,
    resource: dict[str, str] | None = None,
    max_queue_size: int = 2048,
    exporter: SpanExporter | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> trace.TracerProvider:
    """Set up (once) where llmscope's spans go; returns the provider in use.

    No network call happens here: the exporter connects lazily, retries with backoff, and a full
    queue drops spans (counted by the OTel SDK) instead of blocking the application.
    """
    global _provider, _owned, _drain, _report
    with _lock:
        if tracer_provider is not None:
            _add_scope_processor(tracer_provider)
            _provider = tracer_provider
            return _provider
        if _provider is not None:
            return _provider
        existing = _app_provider()
        if existing is not None:
            _add_scope_processor(existing)
            _provider = existing
            return existing
        settings = SdkSettings.resolve(endpoint=endpoint, protocol=protocol, service_name=service_name, api_key=api_key)
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from llmscope_sdk import _delivery
        from llmscope_sdk._lean import LeanSpanDrain, OwnedTracerProvider

        provider = OwnedTracerProvider(
            resource=Resource.create({"service.name": settings.service_name, **(resource or {})}),
            shutdown_on_exit=False,  # `_shutdown_at_exit` instead: the SDK's own waits up to 30 s per batch
        )
        _add_scope_processor(provider)
        _report = _delivery.DeliveryReport(exporter or _exporter(settings, headers))
        batch = BatchSpanProcessor(_report, max_queue_size=max_queue_size)
        if _lean_allowed():
            _drain = LeanSpanDrain(batch, provider, _version(), A.SCHEMA_URL, max_queue_size=max_queue_size)
            provider.add_span_processor(_drain)  # before `batch`: flush/shutdown drain lean spans first
        provider.add_span_processor(batch)
        provider.seal()  # processors added from here on are the application's (lean spans step aside)
        trace.set_tracer_provider(provider)
        _provider = _owned = provider
        atexit.unregister(_shutdown_at_exit)  # once, whatever the number of configure/shutdown cycles
        atexit.register(_shutdown_at_exit)
        return provider


def _lean_allowed() -> bool:
    """Lean spans implement parent-based always-on sampling only, and can be switched off."""
    return os.environ.get("OTEL_TRACES_SAMPLER") is None and os.environ.get("LLMSCOPE_LEAN_SPANS", "1") != "0"


def _version() -> str:
    from llmscope_sdk import __version__

    return __version__


def tracer() -> trace.Tracer:
    """The tracer for llmscope's own spans: lean when llmscope owns the provider, else the SDK's."""
    provider = get_provider()
    if _drain is not None and provider is _owned:
        return _drain.tracer()
    return provider.get_tracer("llmscope", _version(), schema_url=A.SCHEMA_URL)


@contextlib.contextmanager
def provider_override(provider: trace.TracerProvider) -> Iterator[None]:
    """Inside the block llmscope's spans go to `provider`; the previous setup is back after it.

    For `llmscope.testing`: a test routes spans to its own provider without touching the app's.
    """
    global _provider, _owned, _drain
    with _lock:
        saved = _provider, _owned, _drain
        _add_scope_processor(provider)
        _provider, _owned, _drain = provider, None, None
    try:
        yield
    finally:
        with _lock:
            _provider, _owned, _drain = saved


def get_provider() -> trace.TracerProvider:
    return _provider if _provider is not None else configure()


def flush(timeout_s: float = 5.0) -> bool:
    """Export everything ended so far, within `timeout_s` (exporter timeouts included).

    True when it was all delivered; False when the deadline passed or an export failed (the spans
    may still go out later, in the background).
    """
    provider = _provider
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is None:
        return True
    from llmscope_sdk import _delivery

    return _delivery.flush(force_flush, _report if provider is _owned else None, timeout_s)


def shutdown(timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S) -> bool:
    """Flush and stop the provider llmscope created, within `timeout_s` (an app's own provider is
    left alone). False when spans were left undelivered."""
    global _provider, _owned, _drain, _report
    with _lock:
        owned, report = _owned, _report
        _provider = _owned = _drain = _report = None
    if owned is None:
        return True
    from llmscope_sdk import _delivery

    return _delivery.shutdown(owned.shutdown, report, timeout_s)


def _shutdown_at_exit() -> None:
    """At interpreter exit: send what is left within `LLMSCOPE_SHUTDOWN_TIMEOUT_S` (default 5 s)."""
    if _owned is not None:
        from llmscope_sdk import _delivery

        shutdown(_delivery.exit_timeout_s())
