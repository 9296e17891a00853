"""Every token count is served wherever token counts are (and every cost column in a span's detail), over HTTP.

`reasoning_tokens` used to be stored and merged into the trace summaries but not served by the
trace list, the waterfall totals or the sessions; now every view derives its token fields from
the span declaration (`storage.schema`). The corpus carries reasoning tokens on every LLM call.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.storage.schema import SPAN_COLUMNS, TOKEN_COLUMNS, names
from tests.collector.query.conftest import query_settings
from tests.collector.query.dataset import GenSpan, GenTrace, export, generate, ok


def _reasoning(span: GenSpan) -> int:
    return span.output_tokens // 3 + 1


@pytest.fixture(scope="module")
def corpus() -> list[GenTrace]:
    traces = generate(777, 30)
    for trace in traces:
        for span in trace.spans:
            if span.is_llm:
                span.attrs["gen_ai.usage.reasoning.output_tokens"] = _reasoning(span)
    return traces


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, corpus: list[GenTrace]) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(query_settings(tmp_path_factory)) as srv:
        export(srv, corpus)
        yield srv


def _tokens_served(body: dict[str, Any]) -> None:
    assert set(TOKEN_COLUMNS) <= set(body), sorted(set(TOKEN_COLUMNS) - set(body))


def _trace_reasoning(trace: GenTrace) -> int:
    return sum(_reasoning(s) for s in trace.llm())


def test_trace_list_and_waterfall_serve_reasoning_tokens(server: EmbeddedServer, corpus: list[GenTrace]) -> None:
    listed = {t["trace_id"]: t for t in ok(server, "/v1/traces?limit=100")["traces"]}
    assert len(listed) == len(corpus)
    for trace in corpus:
        row = listed[trace.trace_id]
        _tokens_served(row)
        assert row["reasoning_tokens"] == _trace_reasoning(trace)
        detail = ok(server, f"/v1/traces/{trace.trace_id}")
        _tokens_served(detail["totals"])
        assert detail["totals"]["reasoning_tokens"] == _trace_reasoning(trace)
        by_id = {s["span_id"]: s for s in detail["spans"]}
        for span in trace.spans:
            served = by_id[span.span_id]
            _tokens_served(served)
            assert served["reasoning_tokens"] == (_reasoning(span) if span.is_llm else None)


def test_span_detail_serves_reasoning_tokens(server: EmbeddedServer, corpus: list[GenTrace]) -> None:
    calls = [s for t in corpus for s in t.llm()][:5]
    assert calls
    for span in calls:
        detail = ok(server, f"/v1/spans/{span.trace_id}/{span.span_id}")
        assert detail["genai"]["reasoning_tokens"] == _reasoning(span)
        assert set(names(SPAN_COLUMNS, "cost")) <= set(detail)  # every stored cost column, e.g. the input part
        if detail["cost_known"]:
            parts = Decimal(str(detail["cost_input_usd"])) + Decimal(str(detail["cost_output_usd"]))
            assert abs(parts - Decimal(str(detail["cost_usd"]))) < Decimal("1e-9")


def test_sessions_serve_reasoning_tokens(server: EmbeddedServer, corpus: list[GenTrace]) -> None:
    want: dict[str, int] = {}
    for trace in corpus:
        if trace.session:
            want[trace.session] = want.get(trace.session, 0) + _trace_reasoning(trace)
    listed = ok(server, "/v1/sessions?limit=100")["sessions"]
    assert {s["session_id"]: s["reasoning_tokens"] for s in listed} == want
    for summary in listed:
        _tokens_served(summary)
    one = ok(server, "/v1/sessions/" + urllib.parse.quote(next(iter(want))))
    _tokens_served(one["session"])
    assert one["session"]["reasoning_tokens"] == want[next(iter(want))]
    for trace in one["traces"]:
        _tokens_served(trace)


def test_costs_and_metrics_serve_reasoning_tokens(server: EmbeddedServer, corpus: list[GenTrace]) -> None:
    total = sum(_trace_reasoning(t) for t in corpus)
    costs = ok(server, "/v1/costs?group_by=model")
    _tokens_served(costs["total"])
    assert costs["total"]["reasoning_tokens"] == total
    assert sum(g["usage"]["reasoning_tokens"] for g in costs["groups"]) == total
    usage = ok(server, "/v1/metrics/summary")["usage"]
    _tokens_served(usage)
    assert usage["reasoning_tokens"] == total
