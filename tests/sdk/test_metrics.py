"""The metrics llmscope records on the application's MeterProvider.

GenAI client metrics (`gen_ai.client.operation.duration`, `gen_ai.client.token.usage`) per call, and
the lean span queue's own counts in the OpenTelemetry SDK self-observability names
(`otel.sdk.processor.span.processed`, with `error.type=queue_full` for a dropped span, `.queue.size`,
`.queue.capacity`): an app that exports metrics sees when llmscope loses spans, next to the OTel
SDK's own processor metrics. A drop is also logged, once.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from llmscope_sdk import _attributes as A
from llmscope_sdk._lean import LeanSpanDrain, OwnedTracerProvider
from tests.sdk.test_otel_contract import _Blocking

MODEL = "claude-sonnet-4-6"

# A fresh process: the app sets the global MeterProvider (once per process) and lets llmscope
# create the TracerProvider, as an app that exports metrics does.
APP = textwrap.dedent(
    """
    import json
    import anthropic
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    import llmscope
    from llmscope_sim import SimulatedProvider

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    llmscope.configure(exporter=InMemorySpanExporter(), service_name="metrics-app")
    llmscope.instrument()
    with SimulatedProvider(seed=5) as sim:
        client = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0)
        for _ in range(3):
            client.messages.create(model="claude-sonnet-4-6", max_tokens=20,
                                   messages=[{"role": "user", "content": "hi"}])
    llmscope.flush(timeout_s=10)
    points = []
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    value = getattr(p, "value", None)
                    points.append([metric.name, dict(p.attributes), value if value is not None else p.count])
    print(json.dumps(points))
    llmscope.shutdown()
    """
)


@pytest.fixture(scope="module")
def app_points() -> list[tuple[str, dict[str, Any], int]]:
    env = {**os.environ, "LLMSCOPE_LEAN_SPANS": "1"}
    env.pop("OTEL_TRACES_SAMPLER", None)
    proc = subprocess.run(
        [sys.executable, "-c", APP], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return [(name, attrs, value) for name, attrs, value in json.loads(proc.stdout.strip().splitlines()[-1])]


def test_each_call_records_its_duration_and_tokens(app_points: list[tuple[str, dict[str, Any], int]]) -> None:
    (duration,) = [(a, v) for n, a, v in app_points if n == "gen_ai.client.operation.duration"]
    attrs, count = duration
    assert count == 3
    assert attrs[A.OPERATION] == "chat" and attrs[A.PROVIDER] == "anthropic"
    assert attrs[A.REQUEST_MODEL] == MODEL and attrs[A.RESPONSE_MODEL] == MODEL
    assert attrs[A.SERVER_ADDRESS] == "127.0.0.1" and isinstance(attrs[A.SERVER_PORT], int)
    tokens = {a["gen_ai.token.type"]: v for n, a, v in app_points if n == "gen_ai.client.token.usage"}
    assert tokens == {"input": 3, "output": 3}  # histogram counts: one input and one output record per call


def test_the_span_queue_reports_what_it_handed_on(app_points: list[tuple[str, dict[str, Any], int]]) -> None:
    processed = [(a, v) for n, a, v in app_points if n == A.OTEL_PROCESSOR_SPAN_PROCESSED]
    assert processed == [
        (
            {
                A.OTEL_COMPONENT_TYPE: A.LEAN_QUEUE_COMPONENT,
                A.OTEL_COMPONENT_NAME: processed[0][0][A.OTEL_COMPONENT_NAME],
            },
            3,
        )
    ]
    (capacity,) = [v for n, a, v in app_points if n == A.OTEL_PROCESSOR_SPAN_QUEUE_CAPACITY]
    assert capacity == 2048
    (size,) = [v for n, a, v in app_points if n == A.OTEL_PROCESSOR_SPAN_QUEUE_SIZE]
    assert size == 0


def _points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, Any], int]]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        (dict(p.attributes or {}), p.value)  # type: ignore[union-attr]
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == name
        for p in metric.data.data_points
    ]


def test_dropped_spans_are_counted_as_queue_full_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    blocking = _Blocking()
    provider = OwnedTracerProvider()
    drain = LeanSpanDrain(
        blocking, provider, "test", A.SCHEMA_URL, max_queue_size=4, interval_s=3600, meter_provider=meters
    )
    provider.add_span_processor(drain)
    provider.add_span_processor(blocking)
    provider.seal()
    try:
        tracer = drain.tracer()
        for i in range(2):  # the second reaches half the bound: the drain wakes and blocks on span 0
            tracer.start_span(f"s{i}").end()
        assert blocking.entered.wait(30)
        with caplog.at_level(logging.WARNING, logger="llmscope"):
            for i in range(2, 8):  # s2..s4 fill the queue; s5, s6, s7 are dropped
                tracer.start_span(f"s{i}").end()
        assert drain.dropped == 3
        (size,) = _points(reader, A.OTEL_PROCESSOR_SPAN_QUEUE_SIZE)
        assert size[1] == 4
    finally:
        blocking.release.set()
        drain.shutdown()
    counts = {attrs.get("error.type"): value for attrs, value in _points(reader, A.OTEL_PROCESSOR_SPAN_PROCESSED)}
    assert counts == {"queue_full": 3, None: 5}
    (capacity,) = _points(reader, A.OTEL_PROCESSOR_SPAN_QUEUE_CAPACITY)
    assert capacity[1] == 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "dropping" in r.getMessage()]
    assert len(warnings) == 1
    assert A.OTEL_PROCESSOR_SPAN_PROCESSED in warnings[0].getMessage()
    meters.shutdown()
