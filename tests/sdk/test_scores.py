"""`llmscope.score(...)`: an evaluation event on the current span, stored by the collector as a score
of that span; bad input or no span is ignored with `False`, never an exception in the app."""

from __future__ import annotations

import json
import urllib.request

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

import llmscope
from llmscope.testing import CapturedSpans
from llmscope_collector.server import EmbeddedServer


def test_scores_ride_on_the_current_span_to_the_collector(spans: CapturedSpans, server: EmbeddedServer) -> None:
    attached: list[bool] = []

    @llmscope.trace(name="answer")
    def answer() -> str:
        attached.append(llmscope.score("helpfulness", 0.8, comment="solved it", author="judge-1"))
        attached.append(llmscope.score("thumbs", True, source="human", score_id="fb-1"))
        attached.append(llmscope.score("tone", "warm"))
        attached.append(llmscope.score("broken", float("nan")))  # refused, not raised
        attached.append(llmscope.score("broken", None))  # type: ignore[arg-type]
        return "ok"

    assert answer() == "ok"
    assert attached == [True, True, True, False, False]
    assert llmscope.score("orphan", 1) is False  # no current span: ignored

    (span,) = spans.spans
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{server.http_port}/v1/traces")
    assert exporter.export([span]) is SpanExportResult.SUCCESS
    exporter.shutdown()
    server.collector.flush()
    trace_id, span_id = format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")
    with urllib.request.urlopen(f"{server.api_url}/v1/scores?trace_id={trace_id}", timeout=10) as resp:
        scores = {s["name"]: s for s in json.loads(resp.read())["scores"]}
    assert set(scores) == {"helpfulness", "thumbs", "tone"}
    assert all(s["span_id"] == span_id for s in scores.values())
    helpfulness = scores["helpfulness"]
    assert (helpfulness["value"], helpfulness["comment"], helpfulness["author"], helpfulness["source"]) == (
        0.8,
        "solved it",
        "judge-1",
        "eval",
    )
    thumbs = scores["thumbs"]
    assert (thumbs["id"], thumbs["data_type"], thumbs["value"], thumbs["source"]) == ("fb-1", "boolean", 1.0, "human")
    tone = scores["tone"]
    assert (tone["data_type"], tone["label"], tone["value"]) == ("categorical", "warm", None)
