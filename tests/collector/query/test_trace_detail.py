"""`GET /v1/traces/{id}` (the waterfall), `GET /v1/spans/{trace_id}/{span_id}` and the 400s of every
data route, over real HTTP on traces sent through OTLP/gRPC."""

from __future__ import annotations

import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import grpc
import pytest
from litestar.serialization import encode_json
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llmscope_collector.server import EmbeddedServer
from tests import otlp_factory as f
from tests.collector.query.conftest import query_settings
from tests.collector.query.dataset import METHOD, NS, T0_NS, GenTrace, expected_cost, export, generate, get, ok

MS = 1_000_000
TRACE = "0af7651916cd43dd8448eb211c80319c"
ORPHANS = "1bf7651916cd43dd8448eb211c80319c"
BIG = "2cf7651916cd43dd8448eb211c80319c"
BIG_SPANS = 10_000


def _sid(n: int) -> bytes:
    return (n + 1).to_bytes(8, "big")


def _hex(n: int) -> str:
    return _sid(n).hex()


def _span(trace: str, n: int, parent: int | None, start_ms: int, end_ms: int, **kw: Any) -> Span:
    return f.span(
        bytes.fromhex(trace),
        _sid(n),
        kw.pop("name", f"s{n}"),
        T0_NS + start_ms * MS,
        T0_NS + end_ms * MS,
        parent=_sid(parent) if parent is not None else b"",
        **kw,
    )


LLM_ATTRS = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"hello waterfall"}]}]',
}


def _hand_made() -> list[Span]:
    """root 0-100 ms; A 10-40; B 30-90 (LLM) with B1 35-60 (its client's own span); C 20-25 with an exception."""
    spans = [
        _span(TRACE, 0, None, 0, 100, name="root"),
        _span(TRACE, 1, 0, 10, 40, name="A"),
        _span(TRACE, 2, 0, 30, 90, name="B", kind=3, attrs=LLM_ATTRS),
        _span(TRACE, 3, 2, 35, 60, name="B1", kind=3, attrs={**LLM_ATTRS, "gen_ai.input.messages": "[]"}),
        _span(TRACE, 4, 0, 20, 25, name="C", error=True),
    ]
    event = spans[4].events.add()
    event.time_unix_nano = T0_NS + 22 * MS
    event.name = "exception"
    event.attributes.extend(f.kvs({"exception.type": "ValueError", "exception.message": "bad input"}))
    # Orphans: X's parent never arrives; Y is X's child.
    spans += [
        _span(ORPHANS, 10, None, 0, 50, name="present-root"),
        _span(ORPHANS, 11, 99, 5, 30, name="X"),
        _span(ORPHANS, 12, 11, 10, 20, name="Y"),
    ]
    return spans


def _send(server: EmbeddedServer, spans: list[Span]) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        call(f.request(spans, service="hand").SerializeToString(), timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(query_settings(tmp_path_factory)) as srv:
        _send(srv, _hand_made())
        big = [_span(BIG, 1000, None, 0, BIG_SPANS + 10, name="big-root")]
        big += [_span(BIG, 1001 + i, 1000, i, i + 5, name=f"step {i}") for i in range(BIG_SPANS)]
        _send(srv, big)
        export(srv, generate(99, 30))
        yield srv


def _by_name(waterfall: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in waterfall["spans"]}


def test_waterfall_tree_offsets_self_time_and_critical_path(server: EmbeddedServer) -> None:
    wf = ok(server, f"/v1/traces/{TRACE.upper()}")  # ids are case-insensitive
    assert wf["trace_id"] == TRACE and wf["project"] == "default" and wf["state"] == "complete"
    assert wf["start_time_unix_nano"] == T0_NS and wf["duration_ms"] == 100.0
    assert [s["name"] for s in wf["spans"]] == ["root", "A", "C", "B", "B1"]  # depth-first, children by start
    spans = _by_name(wf)
    assert [spans[n]["depth"] for n in ("root", "A", "C", "B", "B1")] == [0, 1, 1, 1, 2]
    assert spans["root"]["children"] == [_hex(1), _hex(4), _hex(2)]
    assert spans["B"]["children"] == [_hex(3)] and spans["B1"]["parent_span_id"] == _hex(2)
    assert {n: spans[n]["start_offset_ms"] for n in spans} == {"root": 0, "A": 10, "B": 30, "B1": 35, "C": 20}
    assert {n: spans[n]["duration_ms"] for n in spans} == {"root": 100, "A": 30, "B": 60, "B1": 25, "C": 5}
    # root: 100 - |[10,90]| = 20; B: 60 - 25 = 35; leaves: their duration.
    assert {n: spans[n]["self_time_ms"] for n in spans} == {"root": 20, "A": 30, "B": 35, "B1": 25, "C": 5}
    # Back from root's end: B (ends last), then C (ended before B started), not A (overlaps B); B1 inside B.
    assert {n for n in spans if spans[n]["critical_path"]} == {"root", "B", "C", "B1"}
    assert not any(s["orphan"] for s in wf["spans"])


def test_waterfall_counts_a_nested_llm_span_once_and_shows_exceptions(server: EmbeddedServer) -> None:
    wf = ok(server, f"/v1/traces/{TRACE}")
    spans = _by_name(wf)
    assert spans["B"]["counted"] is True and spans["B1"]["counted"] is False and spans["A"]["counted"] is None
    assert spans["B"]["input_tokens"] == 1200 and spans["B1"]["output_tokens"] == 300
    call = dataset_span(T0_NS + 30 * MS)
    want = expected_cost(call)
    assert want is not None and abs(Decimal(str(spans["B"]["cost_usd"])) - want) < Decimal("1e-9")
    totals = wf["totals"]
    assert totals["span_count"] == 5 and totals["llm_calls"] == 1 and totals["error_count"] == 1
    assert (totals["input_tokens"], totals["output_tokens"], totals["total_tokens"]) == (1200, 300, 1500)
    assert abs(Decimal(str(totals["cost_usd"])) - want) < Decimal("1e-9") and totals["cost_unknown"] == 0
    assert spans["C"]["status_code"] == "ERROR"
    assert spans["C"]["exceptions"] == [
        {"type": "ValueError", "message": "bad input", "stacktrace": None, "offset_ms": 22.0}
    ]
    assert spans["C"]["events"][0]["name"] == "exception" and spans["C"]["events"][0]["offset_ms"] == 22.0
    assert [c["kind"] for c in spans["B"]["content"]] == ["input"]


def dataset_span(start_ns: int) -> Any:
    from tests.collector.query.dataset import GenSpan

    return GenSpan(
        TRACE,
        "x",
        None,
        "B",
        start_ns,
        start_ns,
        "hand",
        {},
        provider="openai",
        model="gpt-4o",
        input_tokens=1200,
        output_tokens=300,
    )


def test_orphans_are_flagged_under_a_synthetic_root(server: EmbeddedServer) -> None:
    wf = ok(server, f"/v1/traces/{ORPHANS}")
    spans = _by_name(wf)
    assert spans["X"]["orphan"] is True and spans["X"]["parent_span_id"] == _hex(99)
    assert spans["Y"]["orphan"] is False and spans["Y"]["depth"] == spans["X"]["depth"] + 1
    assert spans["present-root"]["orphan"] is False
    synthetic = [s for s in wf["spans"] if s["synthetic"]]
    assert len(synthetic) == 1
    root = synthetic[0]
    assert root["span_id"] == "0" * 16 and root["parent_span_id"] is None and not root["orphan"]
    assert root["depth"] == 0 and root["children"] == [_hex(11)] and spans["X"]["depth"] == 1
    assert root["start_offset_ms"] == 5.0 and root["duration_ms"] == 25.0
    assert wf["totals"]["span_count"] == 3  # the synthetic row is not a span


def test_trace_state_filter(server: EmbeddedServer) -> None:
    """A trace whose root has not arrived is in progress (then incomplete once idle, see below)."""
    rootless = "3df7651916cd43dd8448eb211c80319c"
    _send(server, [_span(rootless, 20, 98, 0, 10, name="early-child")])
    server.collector.flush()
    in_progress = {t["trace_id"] for t in ok(server, "/v1/traces?state=in_progress&limit=1000")["traces"]}
    complete = {t["trace_id"] for t in ok(server, "/v1/traces?state=complete&limit=1000")["traces"]}
    assert rootless in in_progress and rootless not in complete and TRACE in complete and TRACE not in in_progress
    assert ok(server, f"/v1/traces/{rootless}")["state"] == "in_progress"
    assert not ok(server, "/v1/traces?state=incomplete")["traces"]


def test_idle_rootless_trace_is_incomplete(tmp_path_factory: pytest.TempPathFactory) -> None:
    with EmbeddedServer(query_settings(tmp_path_factory, trace_idle_s=0.001)) as srv:
        _send(srv, [_span(ORPHANS, 11, 99, 5, 30, name="X")])
        srv.collector.flush()
        time.sleep(0.01)  # longer than the idle time: the state no longer depends on how fast the test runs
        listed = ok(srv, "/v1/traces?state=incomplete")["traces"]
        assert [t["trace_id"] for t in listed] == [ORPHANS] and listed[0]["state"] == "incomplete"
        assert not ok(srv, "/v1/traces?state=in_progress")["traces"]


def test_waterfall_of_ten_thousand_spans(server: EmbeddedServer) -> None:
    wf = ok(server, f"/v1/traces/{BIG}")
    assert len(wf["spans"]) == BIG_SPANS + 1 and wf["totals"]["span_count"] == BIG_SPANS + 1
    assert wf["spans"][0]["name"] == "big-root" and len(wf["spans"][0]["children"]) == BIG_SPANS
    assert [s["start_offset_ms"] for s in wf["spans"][1:]] == [float(i) for i in range(BIG_SPANS)]
    assert all(s["depth"] == 1 for s in wf["spans"][1:])


def test_generated_traces_waterfall_totals_equal_the_spans(server: EmbeddedServer) -> None:
    for trace in generate(99, 30):
        wf = ok(server, f"/v1/traces/{trace.trace_id}")
        assert len(wf["spans"]) == len(trace.spans)
        totals = wf["totals"]
        assert totals["llm_calls"] == len(trace.llm()) and totals["total_tokens"] == trace.total_tokens
        assert totals["error_count"] == trace.error_count
        if trace.cost is None:
            assert totals["cost_usd"] is None and totals["cost_unknown"] == len(trace.llm())
        else:
            assert abs(Decimal(str(totals["cost_usd"])) - trace.cost) < Decimal("1e-9")
        assert _dfs_ok(wf)


def _dfs_ok(wf: dict[str, Any]) -> bool:
    """Every span's children follow it, each subtree contiguous, children in start order."""
    pos = {s["span_id"]: i for i, s in enumerate(wf["spans"])}
    for i, s in enumerate(wf["spans"]):
        kids = [pos[c] for c in s["children"]]
        if kids and kids[0] != i + 1:
            return False
        starts = [wf["spans"][k]["start_offset_ms"] for k in kids]
        if starts != sorted(starts):
            return False
    return True


def test_unknown_and_malformed_trace_ids(server: EmbeddedServer) -> None:
    assert get(server, "/v1/traces/" + "ab" * 16)[0] == 404
    status, body = get(server, "/v1/traces/xyz")
    assert status == 400 and body["error"] == "invalid_trace_id"


# -- one span --------------------------------------------------------------------------------------


def test_span_detail_has_raw_attributes_events_and_content(server: EmbeddedServer) -> None:
    span = ok(server, f"/v1/spans/{TRACE}/{_hex(2)}")
    assert span["name"] == "B" and span["parent_span_id"] == _hex(0) and span["kind"] == "CLIENT"
    assert span["resource_attributes"]["service.name"] == "hand" and span["service_name"] == "hand"
    attrs = span["attributes"]
    assert attrs["gen_ai.usage.input_tokens"] == 1200 and attrs["gen_ai.request.model"] == "gpt-4o"
    assert "hello waterfall" in str(attrs["gen_ai.input.messages"])  # rebuilt from the content store
    assert [c["kind"] for c in span["content"]] == ["input"] and span["content"][0]["available"]
    assert span["genai"]["provider"] == "openai" and span["genai"]["input_tokens"] == 1200
    assert span["cost_known"] is True and span["counted"] is True
    assert span["start_time_unix_nano"] == T0_NS + 30 * MS and span["duration_ms"] == 60.0
    error_span = ok(server, f"/v1/spans/{TRACE}/{_hex(4)}")
    assert error_span["status_code"] == "ERROR" and error_span["events"][0]["name"] == "exception"
    assert ok(server, f"/v1/spans/{TRACE}/{_hex(3)}")["counted"] is False


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        (f"/v1/spans/{TRACE}/{'ab' * 8}", 404, "not_found"),
        (f"/v1/spans/{'ab' * 16}/{_hex(2)}", 404, "not_found"),
        (f"/v1/spans/{TRACE}/xyz", 400, "invalid_trace_id"),
        (f"/v1/spans/nothex/{_hex(2)}", 400, "invalid_trace_id"),
    ],
)
def test_span_errors(server: EmbeddedServer, path: str, status: int, error: str) -> None:
    got, body = get(server, path)
    assert (got, body["error"]) == (status, error)


# -- invalid parameters: 400 naming the field --------------------------------------------------------

INVALID = [
    ("/v1/traces", {"from": "yesterday"}, "from"),
    ("/v1/traces", {"to": "2026-13-45"}, "to"),
    ("/v1/prompts", {"to": "1\u00b2"}, "to"),  # a superscript digit is not an epoch ns
    ("/v1/traces", {"from": "2026-03-16", "to": "2026-03-15"}, "to"),
    ("/v1/traces", {"min_cost": "cheap"}, "min_cost"),
    ("/v1/traces", {"min_cost": "-1"}, "min_cost"),
    ("/v1/traces", {"min_cost": "NaN"}, "min_cost"),
    ("/v1/traces", {"min_tokens": "-5"}, "min_tokens"),
    ("/v1/traces", {"min_tokens": "many"}, "min_tokens"),
    ("/v1/traces", {"min_duration_ms": "-1"}, "min_duration_ms"),
    ("/v1/traces", {"limit": "0"}, "limit"),
    ("/v1/traces", {"limit": "100000"}, "limit"),
    ("/v1/traces", {"sort": "name"}, "sort"),
    ("/v1/traces", {"order": "up"}, "order"),
    ("/v1/traces", {"status": "broken"}, "status"),
    ("/v1/traces", {"state": "done"}, "state"),
    ("/v1/traces", {"prompt_version": "2"}, "prompt_version"),
    ("/v1/traces", {"q": "x" * 1001}, "q"),
    ("/v1/traces", {"cursor": "%%%"}, "cursor"),
    ("/v1/traces", {f"attr.k{i}": "v" for i in range(9)}, "attr"),
    ("/v1/traces", {'attr.a"b': "v"}, 'attr.a"b'),
    ("/v1/sessions", {"limit": "0"}, "limit"),
    ("/v1/sessions", {"from": "soon"}, "from"),
    ("/v1/sessions", {"cursor": "bm9wZQ"}, "cursor"),
    ("/v1/costs", {"group_by": "color"}, "group_by"),
    ("/v1/costs", {"group_by": "model,model"}, "group_by"),
    ("/v1/costs", {"group_by": "model,day,user,hour"}, "group_by"),
    ("/v1/costs", {"to": "then"}, "to"),
    ("/v1/metrics/summary", {"from": "x"}, "from"),
    ("/v1/metrics/timeseries", {"interval": "5m"}, "interval"),
    ("/v1/metrics/timeseries", {"group_by": "user"}, "group_by"),
    ("/v1/prompts", {"from": "x"}, "from"),
    ("/v1/prompts/greet/versions", {"to": "x"}, "to"),
]


@pytest.mark.parametrize(("route", "params", "field"), INVALID, ids=[f"{r}:{p}"[:60] for r, p, _ in INVALID])
def test_invalid_parameters_are_400_naming_the_field(
    server: EmbeddedServer, route: str, params: dict[str, str], field: str
) -> None:
    status, body = get(server, route + "?" + urllib.parse.urlencode(params))
    assert status == 400, body
    assert body["error"] == "invalid_parameter" and body["status_code"] == 400
    assert body["detail"].startswith(field), body["detail"]


@pytest.mark.parametrize("route", ["/v1/traces", "/v1/sessions"])
def test_empty_parameters_mean_unset(server: EmbeddedServer, route: str) -> None:
    status, body = get(server, route + "?cursor=&from=&to=&limit=3")
    assert status == 200, body
    assert body == ok(server, route + "?limit=3")


@pytest.mark.parametrize(
    "route", ["/v1/traces", "/v1/sessions", "/v1/costs", "/v1/metrics/summary", "/v1/metrics/timeseries", "/v1/prompts"]
)
def test_times_beyond_int64_nanoseconds_are_clamped(server: EmbeddedServer, route: str) -> None:
    status, body = get(server, route + "?from=1900-01-01&to=2999-12-31T23:00:00%2B01:00")
    assert status == 200, body
    status, body = get(server, route + "?from=99999999999999999999999")
    assert status == 200, body


def test_sample_generated_corpus_is_queryable(server: EmbeddedServer) -> None:
    traces: list[GenTrace] = generate(99, 30)
    listed = ok(server, f"/v1/traces?from={T0_NS}&to={T0_NS + 86_400 * NS}&limit=1000")["traces"]
    assert {t.trace_id for t in traces} <= {t["trace_id"] for t in listed}


def test_the_waterfall_body_is_the_stores_waterfall_as_litestar_encodes_it(server: EmbeddedServer) -> None:
    """The bytes served are those of the store's waterfall (with its scores) through Litestar's own encoder:
    what the route skips (validating the store) or moves must not change a byte."""
    scores = server.scores
    for trace_id in (TRACE, ORPHANS, *generated_ids(server)):
        expected = server.store.get_trace(trace_id)
        assert expected is not None
        if scores is not None:
            expected.scores = scores.for_trace("default", trace_id)
        req = urllib.request.Request(f"{server.api_url}/v1/traces/{trace_id}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.headers["content-type"] == "application/json"
            assert resp.read() == encode_json(expected)


def generated_ids(server: EmbeddedServer) -> list[str]:
    """A few of the generated corpus's trace ids, as the trace list gives them."""
    return [t["trace_id"] for t in ok(server, "/v1/traces?limit=5")["traces"]]
