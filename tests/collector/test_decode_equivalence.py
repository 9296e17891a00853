"""The optimized decode path (`decode_payload` → Arrow tables) equals its frozen original on any request.

`tests/collector/reference/decode.py` is decode.py as it was before the decode-path CPU work (with the
messages.py of the same commit); these properties generate OTLP requests (GenAI attributes with message
content in every dialect, events, links, invalid ids, out-of-range times/kinds/codes, values over the
span limits, costs too large to store, non-UTF-8 strings) and require the same batch: partitions in
the same order, equal span and content tables (schemas included), the same unstorable lines and the
same accepted/rejected counts and errors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from llmscope_collector.processors import limits
from llmscope_collector.processors.cost import PriceBook
from llmscope_collector.processors.decode_pool import decode_payload
from tests.collector.reference import decode as ref_decode
from tests.collector.test_hotpath_equivalence import _CONTENT_KEYS, _FLAT_KEYS, _KEYS, _MESSAGE_JSON, _WORDS
from tests.otlp_strategies import any_value_trees

_BOOK, _REF_BOOK = PriceBook(), PriceBook()
_DAY_NS = 86_400 * 10**9
_TODAY = 20_400 * _DAY_NS
_BAD_UTF8 = "\u2603bad\u2603"  # the snowmen become invalid UTF-8 in 1 request in 10, plain ASCII in others

# Message arrays as senders write them (any JSON, any spacing, escaped or not) and odd texts.
_json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.sampled_from(["user", "assistant", "text", "hi"]),
)
_json_docs = st.recursive(
    _json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["role", "parts", "b", "a", ""]), inner, max_size=3),
    ),
    max_leaves=10,
)
_messages = st.one_of(
    st.builds(
        lambda docs, indent, ascii: json.dumps(docs, indent=indent, ensure_ascii=ascii),
        st.lists(_json_docs, max_size=4),
        st.sampled_from([None, 0, 2]),
        st.booleans(),
    ),
    _MESSAGE_JSON,
    st.sampled_from(
        [
            '[{"a": 1e}]',
            "[1.5e999]",
            '[{"a":1,"a":2}]',
            '[ {"role":"user"} , 2 ]',
            '["\\ud83d\\ude00", "\\u00e9"]',
            '["\\ud800"]',
            "[1] x",
            " [1]",
            "[[[[[]]]]]",
            '[{"b": 1, "a": {"d": [1.0, 2.50, -0.0, 1E3, 12345678901234567890123]}}]',
            "[1,]",
            "[01]",
            '{"role": "user"}',
        ]
    ),
)
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_strings = st.one_of(
    _text,
    _WORDS,
    _messages,
    st.sampled_from(["gpt-4o", "claude-3-5-haiku-latest", "openai", "anthropic", "chat", "", "1000000000000"]),
    st.sampled_from(["99999999999999999999999", "-5", "1e30", _BAD_UTF8]),
    st.text(alphabet='aé€😀{}[]",:', min_size=30, max_size=120),
)
_ints = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 1, -1, 12, 10**12, 10**15, 2**63 - 1, -(2**63)]),
)
_scalars = st.one_of(
    _strings.map(lambda v: AnyValue(string_value=v)),
    _strings.map(lambda v: AnyValue(string_value=v)),
    _ints.map(lambda v: AnyValue(int_value=v)),
    st.booleans().map(lambda v: AnyValue(bool_value=v)),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda v: AnyValue(double_value=v)),
    st.binary(max_size=6).map(lambda v: AnyValue(bytes_value=v)),
    st.just(AnyValue()),
)
_values = any_value_trees(_scalars, _text, max_leaves=6)
_GENAI = st.sampled_from(
    [
        ("gen_ai.operation.name", AnyValue(string_value="chat")),
        ("gen_ai.provider.name", AnyValue(string_value="openai")),
        ("gen_ai.request.model", AnyValue(string_value="gpt-4o")),
        ("gen_ai.response.model", AnyValue(string_value="claude-3-5-haiku-latest")),
        ("gen_ai.usage.input_tokens", AnyValue(int_value=10**12)),
        ("gen_ai.usage.output_tokens", AnyValue(int_value=42)),
        ("gen_ai.usage.input_tokens", AnyValue(string_value="99999999999999999999999")),
        ("service.name", AnyValue(string_value="svc")),
    ]
)
_LLM_CALL = st.tuples(
    st.sampled_from(["chat", "text_completion", "embeddings", "invoke_agent"]),
    st.sampled_from(["openai", "anthropic", "nope"]),
    st.sampled_from(["gpt-4o", "claude-3-5-haiku-latest", "no-such-model"]),
    st.one_of(_ints, st.sampled_from([10, 10**12]).map(str)),
    st.integers(0, 10**13),
).map(
    lambda v: [
        KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value=v[0])),
        KeyValue(key="gen_ai.provider.name", value=AnyValue(string_value=v[1])),
        KeyValue(key="gen_ai.request.model", value=AnyValue(string_value=v[2])),
        KeyValue(
            key="gen_ai.usage.input_tokens",
            value=AnyValue(string_value=v[3]) if isinstance(v[3], str) else AnyValue(int_value=v[3]),
        ),
        KeyValue(key="gen_ai.usage.output_tokens", value=AnyValue(int_value=v[4])),
    ]
)
_key_values = st.lists(
    st.one_of(
        _GENAI,
        _GENAI,
        st.tuples(st.one_of(_KEYS, _FLAT_KEYS, _CONTENT_KEYS, _text), _values),
        st.tuples(_CONTENT_KEYS, _messages.map(lambda v: AnyValue(string_value=v))),
    ),
    max_size=14,
).map(lambda kvs: [KeyValue(key=k, value=v) for k, v in kvs])
_span_attributes = st.tuples(st.one_of(st.just([]), _LLM_CALL), _key_values).map(lambda parts: parts[0] + parts[1])
_ids = st.one_of(
    st.binary(min_size=16, max_size=16),
    st.sampled_from([b"", bytes(16), bytes(8), b"\x01" * 16, b"\x02" * 8]),
    st.binary(max_size=17),
)
_trace_ids = st.integers(1, 2**128 - 1).map(lambda i: i.to_bytes(16, "big"))
_span_ids = st.integers(1, 2**64 - 1).map(lambda i: i.to_bytes(8, "big"))
_times = st.one_of(
    st.integers(_TODAY - _DAY_NS, _TODAY + _DAY_NS),
    st.sampled_from([0, _TODAY - 1, _TODAY, _TODAY - 10**6, _TODAY - 10**6 + 1, 2**63 - 1, 2**63, 2**64 - 1]),
)
_events = st.lists(
    st.builds(
        Span.Event,
        time_unix_nano=_times,
        name=st.sampled_from(["First Token Stream Event", "gen_ai.content.completion.chunk", "exception", "x"]),
        attributes=st.lists(
            st.tuples(st.sampled_from(["exception.type", "exception.message", "x"]), _values), max_size=3
        ).map(lambda kvs: [KeyValue(key=k, value=v) for k, v in kvs]),
    ),
    max_size=3,
)
_links = st.lists(
    st.builds(
        Span.Link, trace_id=_ids, span_id=_ids, trace_state=_text, attributes=_key_values.map(lambda kvs: kvs[:3])
    ),
    max_size=2,
)


@st.composite
def _spans(draw: st.DrawFn) -> Span:
    start = draw(_times)
    return Span(
        trace_id=draw(_ids if draw(st.integers(0, 7)) == 7 else _trace_ids),
        span_id=draw(_ids if draw(st.integers(0, 7)) == 7 else _span_ids),
        parent_span_id=draw(st.one_of(st.just(b""), st.binary(min_size=8, max_size=8), _ids)),
        trace_state=draw(st.one_of(st.just(""), _text)),
        name=draw(st.one_of(_text, _strings)),
        kind=draw(st.integers(0, 8)),  # type: ignore[arg-type]
        start_time_unix_nano=start,
        end_time_unix_nano=draw(st.one_of(st.just(start), st.integers(start, min(start + 10**10, 2**64 - 1)), _times)),
        attributes=draw(_span_attributes),
        events=draw(_events),
        links=draw(_links),
        status=Status(code=draw(st.integers(0, 4)), message=draw(_text)),  # type: ignore[arg-type]
    )


_resource_spans = st.builds(
    ResourceSpans,
    resource=st.builds(Resource, attributes=_key_values),
    scope_spans=st.lists(
        st.builds(
            ScopeSpans,
            scope=st.builds(InstrumentationScope, name=_text, version=_text),
            spans=st.lists(_spans(), max_size=4),
        ),
        max_size=2,
    ),
)
_requests = st.lists(_resource_spans, max_size=3).map(lambda rs: ExportTraceServiceRequest(resource_spans=rs))
_LIMITS = st.sampled_from(
    [limits.SpanLimits(), limits.SpanLimits(4, 48), limits.SpanLimits(0, 0), limits.SpanLimits(1024, 16)]
)


def _outcome(decode: Any, payload: bytes, book: PriceBook, span_limits: limits.SpanLimits) -> Any:
    try:
        return decode("proj", payload, book, span_limits)
    except Exception as exc:  # the same failure counts as the same outcome
        return f"raised {type(exc).__name__}: {exc}"


def assert_same_decode(payload: bytes, span_limits: limits.SpanLimits = limits.DEFAULT_LIMITS) -> None:
    """`decode_payload` and the reference give equal batches (or fail alike)."""
    old = _outcome(ref_decode.decode_payload, payload, _REF_BOOK, span_limits)
    for _ in range(2):  # twice: the second time with the per-process key caches warm
        _assert_same(_outcome(decode_payload, payload, _BOOK, span_limits), old)


def _assert_same(new: Any, old: Any) -> None:
    if isinstance(old, str) or isinstance(new, str):
        assert new == old
        return
    assert (new.accepted, new.rejected, new.errors) == (old.accepted, old.rejected, old.errors)
    assert list(new.partitions) == list(old.partitions)
    for key, part in new.partitions.items():
        ref = old.partitions[key]
        for table, expected in ((part.spans, ref.spans), (part.content, ref.content)):
            assert table.schema.equals(expected.schema, check_metadata=True)
            assert table.equals(expected), (key, table.to_pylist(), expected.to_pylist())
        assert part.unstorable == ref.unstorable


@settings(max_examples=400, deadline=None)
@given(request=_requests, span_limits=_LIMITS, corrupt=st.integers(0, 9))
def test_decode_payload_equals_reference(
    request: ExportTraceServiceRequest, span_limits: limits.SpanLimits, corrupt: int
) -> None:
    snowman = "\u2603".encode()  # 3 bytes, replaced by 3 (the framing stays valid)
    payload = request.SerializeToString().replace(snowman, b"\xff\xfe\xff" if corrupt == 0 else b"abc")
    assert_same_decode(payload, span_limits)


def test_decode_payload_equals_reference_on_the_benchmark_traces() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    try:
        from ingest import build_templates
    finally:
        sys.path.pop(0)
    protos, _, _ = build_templates(12, 10, 7)
    for payload in protos:
        assert_same_decode(payload)
