"""Each server has its own runtime (settings, span limits, metrics): nothing is process-wide.

Two servers in one process report their own counts on `/metrics` and apply their own span limits;
spans marked in decode worker processes are counted by the server that owns the workers (the
counts come back with each decoded batch)."""

from __future__ import annotations

import dataclasses
import logging
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmscope_collector.processors import native
from llmscope_collector.processors.native import decoder_name
from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from tests import otlp_factory as f
from tests.collector.receivers.clients import grpc_export, post, valid_request


def scrape(server: EmbeddedServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """`/metrics` as {(sample name, sorted labels): value}, parsed with prometheus-client's parser."""
    text = httpx.get(server.api_url + "/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _marked(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], reason: str) -> float:
    return samples.get(("llmscope_ingest_spans_marked_total", (("reason", reason),)), 0.0)


def _wide_spans(count: int, attributes: int, value: str = "v") -> bytes:
    trace_id, now = f.new_trace_id(), time.time_ns()
    attrs = {f"a{i}": value for i in range(attributes)}
    spans = [f.span(trace_id, f.new_span_id(), f"s{i}", now, now + 1000, attrs=attrs) for i in range(count)]
    return bytes(f.request(spans).SerializeToString())


def test_two_servers_in_one_process_count_and_limit_their_own_data(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llmscope_collector.pipeline")
    strict = dataclasses.replace(settings, max_span_attributes=2, decode_workers=0, decode_native=False)
    lenient = dataclasses.replace(settings, data_dir=settings.data_dir.parent / "other", decode_workers=0)
    with EmbeddedServer(strict) as first, EmbeddedServer(lenient) as second:
        grpc_export(first, _wide_spans(3, attributes=5))
        grpc_export(second, _wide_spans(4, attributes=5))
        grpc_export(second, _wide_spans(1, attributes=5))
        post(second, b"garbage")
        first.collector.flush()
        second.collector.flush()
        one, two = scrape(first), scrape(second)
    accepted = ("llmscope_ingest_spans_accepted_total", (("project", "default"),))
    assert (one[accepted], two[accepted]) == (3, 5)
    invalid = ("llmscope_ingest_requests_total", (("outcome", "invalid"), ("transport", "http")))
    assert invalid not in one and two[invalid] == 1
    assert _marked(one, "dropped_attributes") == 3  # its limit: 2 attributes
    assert _marked(two, "dropped_attributes") == 0  # the other server's limit is not its own
    written = ("llmscope_storage_spans_written_total", ())  # read from each collector at scrape time
    assert (one[written], two[written]) == (3, 5)
    # Each says which OTLP decoder it runs (the first is forced to the pure path), in /metrics and the log.
    assert one[("llmscope_ingest_decoder_info", (("decoder", "python"),))] == 1
    assert two[("llmscope_ingest_decoder_info", (("decoder", decoder_name(True)),))] == 1
    assert "OTLP decoder: pure Python (LLMSCOPE_DECODE_NATIVE=false)" in caplog.text
    assert ("OTLP decoder: native" if native.AVAILABLE else native.UNAVAILABLE) in caplog.text


def test_spans_marked_in_decode_workers_are_counted(settings: Settings) -> None:
    limited = dataclasses.replace(settings, decode_workers=2, max_attribute_value_bytes=1024)
    with EmbeddedServer(limited) as server:
        # One request over 512 KiB is decoded by the worker processes, not inline.
        grpc_export(server, _wide_spans(300, attributes=1, value="x" * 2000))
        server.collector.flush()
        assert server.collector.decode_pool.running
        samples = scrape(server)
    assert _marked(samples, "truncated_value") == 300
    assert samples[("llmscope_storage_spans_written_total", ())] == 300


def test_metrics_are_served_as_openmetrics_when_asked(server: EmbeddedServer) -> None:
    grpc_export(server, valid_request(2))
    response = httpx.get(
        server.api_url + "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}, timeout=10
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
    assert 'llmscope_ingest_spans_accepted_total{project="default"} 2.0' in response.text
