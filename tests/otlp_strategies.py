"""Hypothesis strategies for OTLP values and requests (the receivers' fuzz tests, the decoders' equivalence)."""

from __future__ import annotations

import json

from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status


def any_value_trees(
    scalars: st.SearchStrategy[AnyValue], keys: st.SearchStrategy[str], *, max_leaves: int
) -> st.SearchStrategy[AnyValue]:
    """`scalars`, and arrays / key-value lists of them nested to any depth (up to `max_leaves`)."""
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
            st.lists(st.tuples(keys, inner), max_size=3).map(
                lambda kvs: AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs]))
            ),
        ),
        max_leaves=max_leaves,
    )


# Text as OTLP carries it (no lone surrogates: protobuf strings are UTF-8), with some long and
# non-ASCII values so that limits on names, keys and values are crossed.
otlp_text = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.sampled_from(["gen_ai.request.model", "gen_ai.operation.name", "chat", "service.name", "session.id"]),
    st.text(alphabet="aé€😀", min_size=20, max_size=60),
)


def otlp_any_values(max_leaves: int = 8, text: st.SearchStrategy[str] = otlp_text) -> st.SearchStrategy[AnyValue]:
    """Every AnyValue case (NaN/inf doubles, bytes, empty) nested in arrays and key-value lists;
    `text` draws the strings and the keys."""
    scalars = st.one_of(
        text.map(lambda v: AnyValue(string_value=v)),
        st.booleans().map(lambda v: AnyValue(bool_value=v)),
        st.integers(-(2**63), 2**63 - 1).map(lambda v: AnyValue(int_value=v)),
        st.floats(allow_nan=True, allow_infinity=True).map(lambda v: AnyValue(double_value=v)),
        st.binary(max_size=20).map(lambda v: AnyValue(bytes_value=v)),
        st.just(AnyValue()),
    )
    return any_value_trees(scalars, text, max_leaves=max_leaves)


def otlp_attributes(max_size: int = 5) -> st.SearchStrategy[list[KeyValue]]:
    """KeyValues, keys sometimes repeated (the last value wins, at the first key's place)."""
    keys = st.one_of(otlp_text, st.sampled_from(["k", "gen_ai.usage.input_tokens", "input.value"]))
    return st.lists(st.tuples(keys, otlp_any_values()), max_size=max_size).map(
        lambda kvs: [KeyValue(key=k, value=v) for k, v in kvs]
    )


@st.composite
def otlp_spans(draw: st.DrawFn, scores_event: str = "gen_ai.evaluation.result") -> Span:
    """A span with any ids (valid or not), times (up to 2**64 - 1), kind and status codes out of
    range too, attributes, events (some of them scores) and links."""
    start = draw(st.integers(0, 2**64 - 1))
    events = draw(
        st.lists(
            st.builds(
                Span.Event,
                time_unix_nano=st.integers(0, 2**64 - 1),
                name=st.one_of(otlp_text, st.just(scores_event)),
                attributes=otlp_attributes(3),
            ),
            max_size=4,
        )
    )
    links = draw(
        st.lists(
            st.builds(
                Span.Link,
                trace_id=st.binary(max_size=17),
                span_id=st.binary(max_size=9),
                trace_state=otlp_text,
                attributes=otlp_attributes(2),
            ),
            max_size=2,
        )
    )
    return Span(
        trace_id=draw(st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=20))),
        span_id=draw(st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=10))),
        parent_span_id=draw(st.binary(max_size=8)),
        trace_state=draw(otlp_text),
        name=draw(otlp_text),
        kind=draw(st.integers(-(2**31), 2**31 - 1) | st.integers(0, 7)),  # type: ignore[arg-type]
        start_time_unix_nano=start,
        end_time_unix_nano=draw(st.one_of(st.just(start), st.integers(0, 2**64 - 1))),
        attributes=draw(otlp_attributes()),
        events=events,
        links=links,
        status=Status(code=draw(st.integers(-3, 6)), message=draw(otlp_text)),  # type: ignore[arg-type]
    )


def otlp_requests(scope_names: st.SearchStrategy[str] = otlp_text) -> st.SearchStrategy[ExportTraceServiceRequest]:
    """Requests of several resources and scopes (`scope_names`: e.g. with the scores carrier's)."""
    scope_spans = st.builds(
        ScopeSpans,
        scope=st.builds(InstrumentationScope, name=scope_names, version=otlp_text),
        spans=st.lists(otlp_spans(), max_size=4),
    )
    resource_spans = st.builds(
        ResourceSpans,
        resource=st.builds(Resource, attributes=otlp_attributes(3)),
        scope_spans=st.lists(scope_spans, max_size=2),
    )
    return st.lists(resource_spans, max_size=2).map(lambda rs: ExportTraceServiceRequest(resource_spans=rs))


_said = st.one_of(otlp_text, st.sampled_from(["hello\nworld", "  \n ", '"user"', 'say "hi"\nto them']))
_message = st.builds(
    lambda role, text: {"role": role, "parts": [{"type": "text", "content": text}]},
    st.sampled_from(["user", "assistant", "system", "tool"]),
    _said,
)
_HISTORY = [{"role": role, "parts": [{"type": "text", "content": f"{role} said"}]} for role in ("user", "assistant")]
_messages = st.lists(st.one_of(st.sampled_from(_HISTORY), _message), max_size=4)  # some resent in other calls
_CONTENT_KEYS = {
    "gen_ai.input.messages": _messages.map(json.dumps),
    "gen_ai.output.messages": _messages.map(json.dumps),
    "gen_ai.system_instructions": _said,
    "input.value": _said,
    "output.value": st.one_of(_said, _messages.map(lambda ms: json.dumps({"choices": [{"message": m} for m in ms]}))),
    "llm.input_messages.0.message.role": st.just("user"),
    "llm.input_messages.0.message.content": _said,
}


@st.composite
def otlp_llm_spans(draw: st.DrawFn) -> Span:
    """A model call (or a tool call) of one of two traces, with captured content of some dialects (what the
    trace list's previews are made of), at times that tie and cross."""
    attrs = {"gen_ai.operation.name": draw(st.sampled_from(["chat", "text_completion", "execute_tool"]))}
    for key in draw(st.lists(st.sampled_from(sorted(_CONTENT_KEYS)), max_size=4, unique=True)):
        attrs[key] = draw(_CONTENT_KEYS[key])
    start = draw(st.integers(10**18, 10**18 + 5))
    return Span(
        trace_id=draw(st.sampled_from([b"\x01" * 16, b"\x02" * 16])),
        span_id=draw(st.binary(min_size=8, max_size=8)),
        name="call",
        start_time_unix_nano=start,
        end_time_unix_nano=start + draw(st.integers(0, 5)),
        attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attrs.items()],
    )


def otlp_llm_requests() -> st.SearchStrategy[ExportTraceServiceRequest]:
    """Requests mixing model calls with captured content (`otlp_llm_spans`) and any other spans."""
    spans = st.lists(st.one_of(otlp_llm_spans(), otlp_spans()), min_size=1, max_size=8)
    scope = st.builds(ScopeSpans, scope=st.just(InstrumentationScope(name="s")), spans=spans)
    return st.lists(scope, min_size=1, max_size=2).map(
        lambda scopes: ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=scopes)])
    )
