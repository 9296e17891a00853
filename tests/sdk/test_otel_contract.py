"""llmscope's spans keep the OpenTelemetry contract, lean or not.

When llmscope creates the TracerProvider, a processor the application adds to it sees every
llmscope span start and end; links survive; the lean queue is bounded and counts what it drops;
`uninstrument()` undoes `instrument()` (its environment variable too); `configure()` sets nothing on
an application's provider; `llmscope.testing` puts back the setup it replaced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from typing import Any

import anthropic
import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, TraceFlags

import llmscope
from llmscope.testing import CapturedSpans, capture_spans, instrumented_with
from llmscope_sdk import _attributes as A
from llmscope_sdk._lean import LeanSpanDrain, OwnedTracerProvider
from llmscope_sdk._setup import provider_override
from llmscope_sim import SimulatedProvider

MODEL = "claude-sonnet-4-6"
QUIET = "ANTHROPIC_OPEN_TELEMETRY"

# A fresh process, because `configure()` registers the global OpenTelemetry provider (once per
# process): the app adds its own processor to the provider llmscope created, then makes calls.
APP = textwrap.dedent(
    """
    import json, sys
    import anthropic
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    import llmscope
    from llmscope_sim import SimulatedProvider

    class Recorder(SpanProcessor):
        def __init__(self):
            self.started, self.ended = [], []
        def on_start(self, span, parent_context=None):
            self.started.append(span.context.span_id)
        def on_end(self, span):
            self.ended.append(span.context.span_id)

    exported = InMemorySpanExporter()
    provider = llmscope.configure(exporter=exported, service_name="contract-app")
    app_processor = Recorder()
    provider.add_span_processor(app_processor)
    llmscope.instrument()

    @llmscope.trace(kind="agent")
    def agent(client):
        return client.messages.create(model="claude-sonnet-4-6", max_tokens=20,
                                      messages=[{"role": "user", "content": "hi"}])

    with SimulatedProvider(seed=3) as sim:
        client = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0)
        for _ in range(3):
            agent(client)
    llmscope.flush(timeout_s=10)
    spans = exported.get_finished_spans()
    print(json.dumps({
        "exported": [[s.name, s.context.span_id, s.instrumentation_scope.name] for s in spans],
        "started": app_processor.started,
        "ended": app_processor.ended,
    }))
    llmscope.shutdown()
    """
)


@pytest.fixture(scope="module")
def app_run() -> dict[str, Any]:
    env = {**os.environ, "LLMSCOPE_LEAN_SPANS": "1"}
    env.pop("OTEL_TRACES_SAMPLER", None)
    proc = subprocess.run(
        [sys.executable, "-c", APP], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_an_app_processor_on_the_provider_configure_made_sees_every_llmscope_span(app_run: dict[str, Any]) -> None:
    ours = [(name, span_id) for name, span_id, scope in app_run["exported"] if scope == "llmscope"]
    assert len(ours) == 6  # three agent spans, three LLM calls
    assert {name for name, _ in ours} == {"invoke_agent agent", f"chat {MODEL}"}
    ids = sorted(span_id for _, span_id in ours)
    assert sorted(app_run["started"]) == ids
    assert sorted(app_run["ended"]) == ids


class _Recorder(SpanProcessor):
    def __init__(self) -> None:
        self.started: list[int] = []
        self.ended: list[ReadableSpan] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.started.append(span.context.span_id)

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


def _owned(
    max_queue_size: int = 2048, target: SpanProcessor | None = None
) -> tuple[LeanSpanDrain, InMemorySpanExporter]:
    """An owned provider wired like `configure()` does it, exporting to memory; the drain runs only when asked."""
    exporter = InMemorySpanExporter()
    provider = OwnedTracerProvider()
    batch = target or SimpleSpanProcessor(exporter)
    drain = LeanSpanDrain(batch, provider, "test", A.SCHEMA_URL, max_queue_size=max_queue_size, interval_s=3600)
    provider.add_span_processor(drain)
    provider.add_span_processor(batch)
    provider.seal()
    return drain, exporter


def _context(n: int) -> SpanContext:
    return SpanContext(n, n, False, TraceFlags(TraceFlags.SAMPLED))


def test_lean_spans_keep_their_links() -> None:
    drain, exporter = _owned()
    try:
        span = drain.tracer().start_span("linked", links=[Link(_context(7), {"why": "batch"})])
        span.add_link(_context(9))
        span.end()
        drain.drain()
        (readable,) = exporter.get_finished_spans()
        assert [(link.context.span_id, dict(link.attributes or {})) for link in readable.links] == [
            (7, {"why": "batch"}),
            (9, {}),
        ]
    finally:
        drain.shutdown()


def test_a_processor_added_later_sees_new_spans_start_and_end_and_queued_ones_end() -> None:
    drain, exporter = _owned()
    try:
        tracer = drain.tracer()
        queued = tracer.start_span("before")
        queued.end()  # lean, waiting in the queue
        app = _Recorder()
        drain._provider.add_span_processor(app)
        later = tracer.start_span("after", links=[Link(_context(5))])
        assert isinstance(later, Span)  # an SDK span from now on: the provider's processors run
        later.end()
        drain.drain()
        assert app.started == [later.get_span_context().span_id]
        assert sorted(s.name for s in app.ended) == ["after", "before"]
        assert sorted(s.name for s in exporter.get_finished_spans()) == ["after", "before"]
        (after,) = (s for s in exporter.get_finished_spans() if s.name == "after")
        assert [link.context.span_id for link in after.links] == [5]
    finally:
        drain.shutdown()


class _Blocking(SpanProcessor):
    """Holds the drain thread inside `on_end` until released, so the queue fills deterministically."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.names: list[str] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.entered.set()
        assert self.release.wait(30)
        self.names.append(span.name)


def test_the_lean_queue_is_bounded_and_counts_drops() -> None:
    blocking = _Blocking()
    drain, _ = _owned(max_queue_size=4, target=blocking)
    try:
        tracer = drain.tracer()
        for i in range(2):  # the second reaches half the bound: the drain wakes and blocks on span 0
            tracer.start_span(f"s{i}").end()
        assert blocking.entered.wait(30)
        for i in range(2, 7):  # s1 waits; s2..s4 fill the queue to 4; s5, s6 are dropped
            tracer.start_span(f"s{i}").end()
        assert drain.dropped == 2
        assert len(drain.queue) == 4
    finally:
        blocking.release.set()
        drain.shutdown()
    assert blocking.names == ["s0", "s1", "s2", "s3", "s4"]


def test_uninstrument_removes_the_environment_variable_instrument_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(QUIET, raising=False)
    with capture_spans():
        assert os.environ[QUIET] == "false"  # anthropic 2.x: no second span per call
        llmscope.uninstrument()
        assert QUIET not in os.environ
    assert QUIET not in os.environ


def test_uninstrument_keeps_the_users_own_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(QUIET, "true")
    with capture_spans():
        assert os.environ[QUIET] == "true"
    assert os.environ[QUIET] == "true"


def test_configure_sets_no_attribute_on_the_apps_provider() -> None:
    provider = TracerProvider()
    before = dict(vars(provider))
    with provider_override(TracerProvider()):
        assert llmscope.configure(tracer_provider=provider) is provider
        assert llmscope.configure(tracer_provider=provider) is provider  # once: no second scope processor
    assert vars(provider).keys() == before.keys()
    assert all(vars(provider)[k] is v for k, v in before.items())
    provider.shutdown()


def _call(sim: SimulatedProvider, text: str = "hi") -> None:
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0)
    client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": text}])


def test_capture_spans_puts_back_the_instrumentation_it_replaced(sim: SimulatedProvider) -> None:
    with capture_spans(capture_content=True) as outer:
        with capture_spans() as inner:
            _call(sim, "inner")
        _call(sim, "outer")
        assert llmscope.instrumented() == outer.methods
    assert not llmscope.instrumented()
    (inner_span,) = inner.llm_spans
    (outer_span,) = outer.llm_spans
    assert "gen_ai.input.messages" not in (inner_span.attributes or {})  # the inner block's settings
    assert "outer" in str((outer_span.attributes or {})["gen_ai.input.messages"])  # the outer's, restored


def test_instrumented_with_routes_spans_to_the_given_provider(sim: SimulatedProvider) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with instrumented_with(provider), llmscope.session("s-1", user_id="u-1"):
        _call(sim)
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {})["session.id"] == "s-1"  # llmscope's scope processor is on it
    provider.shutdown()


def test_the_capllmscope_fixture(sim: SimulatedProvider, capllmscope: CapturedSpans) -> None:
    tracer = llmscope.configure().get_tracer("app")  # inside a capture, configure() is the capture's provider
    with tracer.start_as_current_span("handler"):
        _call(sim)
    assert [s.name for s in capllmscope.spans] == [f"chat {MODEL}", "handler"]
    (call,) = capllmscope.llm_spans
    assert call.attributes is not None and call.attributes["gen_ai.request.model"] == MODEL
    assert capllmscope.attributes()[0]["gen_ai.request.model"] == MODEL
    capllmscope.clear()
    assert capllmscope.spans == []
    assert isinstance(trace.get_current_span(), trace.NonRecordingSpan)
