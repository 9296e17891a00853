"""LiteLLM's own OpenTelemetry callback (`litellm.callbacks = ["otel"]`): `gen_ai.*` plus LiteLLM's
`metadata.*` and `gen_ai.cost.*`, cache tokens only in the Python-repr `metadata.usage_object`."""

from __future__ import annotations

import os
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-map download at import

import litellm
import pytest
from opentelemetry import trace
from tests.interop.frameworks import MODEL, QUESTION, SYSTEM, check_tree_and_counts, openai_truth
from tests.interop.harness import fetch_trace, hex_span_id, hex_trace_id, llm_spans, raw_attributes
from tests.interop.scenarios import Bench, Package

PACKAGE = Package(
    param="litellm",
    distribution="litellm",
    client="",
    instrumentor=lambda: None,
    dialect="LiteLLM OTel callback (gen_ai.* + metadata.*)",
)
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]


def _args(bench: Bench) -> dict[str, object]:
    return {"model": f"openai/{MODEL}", "messages": MESSAGES, "api_base": bench.sim.base_url + "/v1", "api_key": "k"}


@pytest.fixture
def otel_callback(bench: Bench, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """LiteLLM's callback exports through the global provider: the app's (one interop param per process).

    Under an active span LiteLLM writes a call's attributes onto that span instead of a child span of
    its own unless USE_OTEL_LITELLM_REQUEST_SPAN is set: several calls under one app span would leave
    only the last call's numbers (a fact for the matrix, checked by the last test)."""
    trace.set_tracer_provider(bench.app.provider)
    monkeypatch.setenv("USE_OTEL_LITELLM_REQUEST_SPAN", "true")
    litellm.callbacks = ["otel"]
    yield
    litellm.callbacks = []


def _wait_for_spans(bench: Bench, name: str, count: int) -> None:
    """Until the app has ended `count` spans called `name` (LiteLLM logs some calls from a thread)."""
    deadline = time.monotonic() + 30
    while sum(s.name == name for s in bench.app.raw().values()) < count:
        assert time.monotonic() < deadline, f"LiteLLM ended fewer than {count} {name} spans"
        time.sleep(0.05)


def test_calls_cache_stream_cost_and_tree(bench: Bench, otel_callback: None) -> None:
    rec = bench.recorder
    with bench.app.tracer.start_as_current_span("interop-root") as root:
        first = litellm.completion(**_args(bench), metadata={"session_id": "sess-1"}, user="user-7")
        second = litellm.completion(**_args(bench), metadata={"session_id": "sess-1"}, user="user-7")
        chunks = list(litellm.completion(**_args(bench), stream=True, stream_options={"include_usage": True}))
    _wait_for_spans(bench, "litellm_request", 3)  # a stream's success callback runs in LiteLLM's worker thread
    usage = next(c.usage for c in reversed(chunks) if getattr(c, "usage", None))
    calls = [
        openai_truth("completion", first.usage, first.id),
        openai_truth("completion (cache read)", second.usage, second.id),
    ]
    stream = openai_truth("completion stream", usage, chunks[-1].id, stream=True)
    assert calls[1].cache_read > 0
    waterfall = check_tree_and_counts(rec, bench.server, bench.app, hex_trace_id(root), calls, parents={"interop-root"})
    # The stream's span is ended from LiteLLM's logging thread, which does not have the caller's context.
    (stream_span,) = [
        s
        for s in bench.app.raw().values()
        if s.name == "litellm_request" and (s.attributes or {}).get("llm.is_streaming") == "True"
    ]
    stream_trace = format(stream_span.context.trace_id, "032x")
    if stream_trace != hex_trace_id(root):
        rec.upstream(
            "structure",
            "stream: LiteLLM ends a streamed call's span from its logging thread, without "
            "the caller's context: the span starts a trace of its own (counted there)",
        )
        check_tree_and_counts(rec, bench.server, bench.app, stream_trace, [stream])
    else:
        check_tree_and_counts(rec, bench.server, bench.app, stream_trace, [*calls, stream])
    spans = sorted(llm_spans(waterfall), key=lambda s: s["start_offset_ms"])
    if spans:
        raw = raw_attributes(bench.app.raw()[spans[0]["span_id"]])
        sent = [k for k, v in raw.items() if v == "sess-1"]
        if sent:
            rec._add("session", "gap", f"session id sent as {sent}, not mapped")
        else:
            rec.absent("session", "`metadata={'session_id': ...}` is not sent (the span keeps LiteLLM's own keys)")
        rec.info["span name (call)"] = spans[0]["name"]
        reported = [k for k in raw if k == "gen_ai.cost.total_cost"]
        rec.ok("cost", bool(reported), "LiteLLM's gen_ai.cost.total_cost not on the span")
    rec.info["cost"] = "genai-prices, exact; LiteLLM's own gen_ai.cost.total_cost kept as reported_cost_usd"
    rec.verify()


def test_failed_call_is_an_error_span(bench: Bench, otel_callback: None) -> None:
    rec = bench.recorder
    with bench.app.tracer.start_as_current_span("interop-root") as root, pytest.raises(litellm.InternalServerError):
        litellm.completion(**_args(bench), extra_headers={"x-sim-error": "500"}, max_retries=0, num_retries=0)
    waterfall = fetch_trace(bench.server, hex_trace_id(root), bench.app)
    failed = [s for s in waterfall["spans"] if s["status_code"] == "ERROR" and s["span_id"] != hex_span_id(root)]
    elsewhere = [
        s
        for s in bench.app.raw().values()
        if s.status.status_code.name == "ERROR" and s.context.trace_id != root.get_span_context().trace_id
    ]
    if not failed and elsewhere:
        rec.upstream("status", f"the failed call's span ({elsewhere[0].name}) starts a trace of its own")
    elif not failed:
        rec.absent("status", "no span is sent for a failed call")
    else:
        rec.ok("status", all(s["parent_span_id"] == hex_span_id(root) for s in failed), "error span parent")
        rec.info["error span"] = f"{failed[0]['name']} ({failed[0]['operation']})"
    rec.ok("structure", waterfall["totals"]["input_tokens"] in (0, None), "a failed call added tokens")
    rec.verify()


def test_without_a_request_span_litellm_writes_onto_the_callers_span(
    bench: Bench, otel_callback: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LiteLLM's default under an active span: no span of its own, the call's attributes on the caller's."""
    rec = bench.recorder
    monkeypatch.delenv("USE_OTEL_LITELLM_REQUEST_SPAN")
    with bench.app.tracer.start_as_current_span("app-handler") as handler:
        first = litellm.completion(**_args(bench))
        second = litellm.completion(**_args(bench))
    waterfall = fetch_trace(bench.server, hex_trace_id(handler), bench.app)
    llm = llm_spans(waterfall)
    names = [s["name"] for s in llm]
    if names == ["app-handler"]:
        shown = (llm[0]["input_tokens"], llm[0]["output_tokens"])
        both = (
            first.usage.prompt_tokens + second.usage.prompt_tokens,
            first.usage.completion_tokens + second.usage.completion_tokens,
        )
        rec.upstream(
            "structure",
            f"two calls under one app span: LiteLLM writes each onto that span (no span of "
            f"its own unless USE_OTEL_LITELLM_REQUEST_SPAN=true); it shows {shown}, the calls made {both}",
        )
    else:
        rec.ok("structure", len(llm) == 2, f"LLM spans {names}")
    rec.verify()
