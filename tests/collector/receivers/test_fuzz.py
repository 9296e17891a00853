"""Property tests over real sockets: random and corrupted OTLP payloads always get a defined answer,
the partial-success count is exact, and the collector keeps serving valid requests afterwards."""

from __future__ import annotations

import base64
import copy
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from llmscope_collector.errors import InvalidPayload
from llmscope_collector.receiver.otlp_json import _via_json_format
from llmscope_collector.receiver.otlp_json_fast import NotFast, build_request
from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from tests.collector.receivers.clients import grpc_export, post, valid_request
from tests.otlp_strategies import otlp_any_values

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    data = Path(tmp_path_factory.mktemp("fuzz"))
    settings_ = Settings(host="127.0.0.1", otlp_grpc_port=0, otlp_http_port=0, api_port=0, data_dir=data)
    with EmbeddedServer(settings_) as server:
        yield server


def _any_values() -> st.SearchStrategy[AnyValue]:
    return otlp_any_values(8, text)


@st.composite
def spans(draw: st.DrawFn) -> Span:
    start = draw(st.integers(0, 2**64 - 1))
    return Span(
        trace_id=draw(st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=20))),
        span_id=draw(st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=10))),
        parent_span_id=draw(st.binary(max_size=8)),
        name=draw(text),
        kind=draw(st.integers(0, 12)),
        start_time_unix_nano=start,
        end_time_unix_nano=draw(st.one_of(st.just(start), st.integers(0, 2**64 - 1))),
        attributes=[KeyValue(key=k, value=v) for k, v in draw(st.lists(st.tuples(text, _any_values()), max_size=5))],
        status=Status(code=draw(st.integers(0, 6)), message=draw(text)),  # type: ignore[arg-type]
    )


requests = st.lists(spans(), max_size=6).map(
    lambda ss: ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=ss)])])
)


def _valid_ids(span: Span) -> bool:
    return len(span.trace_id) == 16 and any(span.trace_id) and len(span.span_id) == 8 and any(span.span_id)


def _to_otlp_json(request: ExportTraceServiceRequest, *, int_enums: bool = False) -> bytes:
    doc: dict[str, Any] = json_format.MessageToDict(request, use_integers_for_enums=int_enums)
    for resource_spans in doc.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex().upper()
    return json.dumps(doc).encode()


def _rejected(raw: bytes) -> int:
    response = ExportTraceServiceResponse.FromString(raw)
    return response.partial_success.rejected_spans if response.HasField("partial_success") else 0


@FUZZ
@given(requests)
def test_random_requests_get_exact_partial_success_on_every_transport(
    fuzz_server: EmbeddedServer, request: ExportTraceServiceRequest
) -> None:
    payload = request.SerializeToString()
    bad = sum(1 for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans if not _valid_ids(s))
    assert _rejected(grpc_export(fuzz_server, payload)) == bad
    response = post(fuzz_server, gzip.compress(payload), content_encoding="gzip")
    assert response.status_code == 200 and _rejected(response.content) == bad
    response = post(fuzz_server, _to_otlp_json(request), "application/json")
    assert response.status_code == 200, response.text
    assert int(response.json().get("partialSuccess", {}).get("rejectedSpans", 0)) == bad


corruptions = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), min_size=1, max_size=8)),
    st.tuples(st.just("random"), st.binary(max_size=200)),
)


def _corrupt(payload: bytes, how: tuple[str, Any]) -> bytes:
    kind, arg = how
    if kind == "truncate":
        return payload[: int(len(payload) * arg)]
    if kind == "random":
        return bytes(arg)
    data = bytearray(payload)
    for where, bit in arg:
        if data:
            data[min(int(where * len(data)), len(data) - 1)] ^= 1 << bit
    return bytes(data)


@FUZZ
@given(corruptions, st.booleans())
def test_corrupted_payloads_get_a_defined_answer_and_the_server_keeps_serving(
    fuzz_server: EmbeddedServer, how: tuple[str, Any], gzipped: bool
) -> None:
    payload = _corrupt(valid_request(3, **{"gen_ai.request.model": "m", "n": 7}), how)
    try:
        grpc_export(fuzz_server, payload)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.details()
    body = _corrupt(gzip.compress(valid_request(2)), how) if gzipped else payload
    response = post(fuzz_server, body, **({"content_encoding": "gzip"} if gzipped else {}))
    assert response.status_code in (200, 400), response.content
    json_body = _corrupt(_to_otlp_json(ExportTraceServiceRequest.FromString(valid_request(2))), how)
    assert post(fuzz_server, json_body, "application/json").status_code in (200, 400)
    assert post(fuzz_server, valid_request(1)).status_code == 200
    grpc_export(fuzz_server, valid_request(1))


def test_invalid_utf8_is_rejected_with_a_message_on_both_transports(fuzz_server: EmbeddedServer) -> None:
    request = ExportTraceServiceRequest.FromString(valid_request(1))
    request.resource_spans[0].scope_spans[0].spans[0].name = "QQQQ"
    payload = request.SerializeToString().replace(b"QQQQ", b"\xff\xfeQQ")
    with pytest.raises(grpc.RpcError) as info:
        grpc_export(fuzz_server, payload)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and info.value.details()
    assert post(fuzz_server, payload).status_code == 400
    assert (
        post(
            fuzz_server, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "\xff"}]}]}]}', "application/json"
        ).status_code
        == 400
    )


@FUZZ
@given(st.binary(max_size=300) | text.map(str.encode))
def test_arbitrary_json_bodies_are_200_or_400(fuzz_server: EmbeddedServer, body: bytes) -> None:
    assert post(fuzz_server, body, "application/json").status_code in (200, 400)


def _json_format_path(doc: dict[str, Any]) -> ExportTraceServiceRequest | None:
    try:
        return ExportTraceServiceRequest.FromString(_via_json_format(copy.deepcopy(doc)))
    except InvalidPayload:
        return None


def _fast_path(doc: dict[str, Any]) -> ExportTraceServiceRequest | None:
    try:
        return build_request(copy.deepcopy(doc))
    except (NotFast, ValueError, TypeError, OverflowError):
        return None


@FUZZ
@given(requests, st.booleans())
def test_fast_json_builder_equals_json_format(request: ExportTraceServiceRequest, int_enums: bool) -> None:
    doc = json.loads(_to_otlp_json(request, int_enums=int_enums))
    reference = _json_format_path(doc)
    fast = _fast_path(doc)
    assert reference is not None
    # Compared as wire bytes: messages holding a NaN double never compare equal (NaN != NaN), and a
    # NaN read back from JSON has the canonical bits, not necessarily the generated ones.
    if int_enums:
        assert fast is not None and _wire(fast) == _wire(reference)
        assert _wire(reference) == _wire(request) or '"NaN"' in json.dumps(doc)
    else:
        assert fast is None or _wire(fast) == _wire(reference)


def _wire(message: ExportTraceServiceRequest | None) -> bytes:
    assert message is not None
    return message.SerializeToString(deterministic=True)


odd_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), text, st.just("NaN"), st.just("12"),
    st.just("0x1f"), st.just(" 5"), st.just("AAE="), st.just("AAE"), st.lists(st.integers(), max_size=2),
    st.just({}), st.just({"values": []}), st.just({"stringValue": "x", "intValue": 1}),
)  # fmt: skip
odd_keys = st.sampled_from(
    ["traceId", "spanId", "name", "kind", "flags", "startTimeUnixNano", "status", "attributes", "events", "links",
     "droppedAttributesCount", "trace_id", "start_time_unix_nano", "futureField"]
)  # fmt: skip
odd_any_keys = st.sampled_from(
    ["stringValue", "intValue", "boolValue", "doubleValue", "bytesValue", "arrayValue", "kvlistValue", "int_value"]
)


@FUZZ
@given(st.dictionaries(odd_keys, odd_values, max_size=4), st.dictionaries(odd_any_keys, odd_values, max_size=2))
def test_fast_builder_never_disagrees_on_odd_input(span: dict[str, Any], value: dict[str, Any]) -> None:
    span = {**span, "attributes": [{"key": "k", "value": value}]}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    fast = _fast_path(doc)
    if fast is not None:
        assert fast == _json_format_path(doc)
