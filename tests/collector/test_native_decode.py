"""The native OTLP decoder (processors/_otlp_native.c) reads exactly what upb + Python read.

On arbitrary requests (the shared OTLP strategies), on arbitrary wire messages that follow the
OTLP schema loosely (repeated singular fields, merged messages and AnyValue oneofs, wrong wire
types, unknown fields and groups, invalid UTF-8, bad lengths), and on those bytes truncated or
corrupted: both decoders accept the same bytes with the same values and refuse the same bytes with
protobuf's `DecodeError`. The whole decode (normalized, limited, priced Arrow tables) is then the
same, so the pure path stays the reference and the normalization rules exist once.

Skipped where the extension is not built (an install without a compiler), unless
LLMSCOPE_REQUIRE_NATIVE is set (CI builds it: a failed build must fail there).
"""

from __future__ import annotations

import os
import struct
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmscope_collector.processors import native
from llmscope_collector.processors.cost import PriceBook
from llmscope_collector.processors.decode import DecodedBatch, decode_bytes, request_parts
from llmscope_collector.processors.limits import DEFAULT_LIMITS, SpanLimits
from llmscope_collector.processors.scores import CARRIER_SCOPE
from llmscope_collector.receiver._export import REJECTED_NAME_CHARS, REJECTED_NAMES, check_request
from tests.otlp_strategies import otlp_llm_requests, otlp_requests, otlp_text

if not native.AVAILABLE:
    if os.environ.get("LLMSCOPE_REQUIRE_NATIVE"):
        raise RuntimeError(f"LLMSCOPE_REQUIRE_NATIVE is set but {native.UNAVAILABLE}")
    pytest.skip(native.UNAVAILABLE, allow_module_level=True)

SMALL = SpanLimits(max_attributes=3, max_value_bytes=16, max_events=2, max_name_bytes=8)
LIMITS = st.sampled_from([DEFAULT_LIMITS, SMALL, SpanLimits(0, 0, 0, 0)])
EXAMPLES = settings(max_examples=50)


def _pure(payload: bytes, limits: SpanLimits) -> Any:
    try:
        return request_parts(ExportTraceServiceRequest.FromString(payload), limits)
    except DecodeError:
        return DecodeError


def _native(payload: bytes, limits: SpanLimits) -> Any:
    try:
        return native.parse_request(payload, limits)
    except DecodeError:
        return DecodeError


def _same_reading(payload: bytes, limits: SpanLimits) -> None:
    assert _native(payload, limits) == _pure(payload, limits)


# --- the wire, loosely following the OTLP schema --------------------------------------------------
# field number -> (kind, message type); kinds: msg, str, bytes, varint, fixed64, fixed32
_SCHEMA: dict[str, dict[int, tuple[str, str]]] = {
    "request": {1: ("msg", "resource_spans")},
    "resource_spans": {1: ("msg", "resource"), 2: ("msg", "scope_spans"), 3: ("str", "")},
    "resource": {1: ("msg", "kv"), 2: ("varint", ""), 3: ("msg", "entity")},
    "entity": {1: ("str", ""), 2: ("str", ""), 3: ("str", ""), 4: ("str", "")},
    "scope_spans": {1: ("msg", "scope"), 2: ("msg", "span"), 3: ("str", "")},
    "scope": {1: ("str", ""), 2: ("str", ""), 3: ("msg", "kv"), 4: ("varint", "")},
    "span": {
        1: ("bytes", ""),
        2: ("bytes", ""),
        3: ("str", ""),
        4: ("bytes", ""),
        5: ("str", ""),
        6: ("varint", ""),
        7: ("fixed64", ""),
        8: ("fixed64", ""),
        9: ("msg", "kv"),
        10: ("varint", ""),
        11: ("msg", "event"),
        12: ("varint", ""),
        13: ("msg", "link"),
        15: ("msg", "status"),
        16: ("fixed32", ""),
    },
    "event": {1: ("fixed64", ""), 2: ("str", ""), 3: ("msg", "kv"), 4: ("varint", "")},
    "link": {1: ("bytes", ""), 2: ("bytes", ""), 3: ("str", ""), 4: ("msg", "kv"), 6: ("fixed32", "")},
    "status": {2: ("str", ""), 3: ("varint", "")},
    "kv": {1: ("str", ""), 2: ("msg", "any"), 3: ("varint", "")},
    "any": {
        1: ("str", ""),
        2: ("varint", ""),
        3: ("varint", ""),
        4: ("fixed64", ""),
        5: ("msg", "array"),
        6: ("msg", "kvlist"),
        7: ("bytes", ""),
        8: ("varint", ""),
    },
    "array": {1: ("msg", "any")},
    "kvlist": {1: ("msg", "kv")},
}
_CARRIER = CARRIER_SCOPE.encode()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if not n:
            return bytes(out) + bytes([byte])
        out.append(byte | 0x80)


def _tag(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _ld(field: int, body: bytes) -> bytes:
    return _tag(field, 2) + _varint(len(body)) + body


def _double(value: float) -> bytes:
    return struct.pack("<d", value)


def _any_encoding(draw: st.DrawFn, field: int, depth: int) -> bytes:
    """A field of any wire type (an unknown field, or a known one sent with another type)."""
    kind = draw(st.sampled_from(["varint", "fixed64", "fixed32", "ld", "group"]))
    if kind == "varint":
        return _tag(field, 0) + _varint(draw(st.integers(0, 2**64 - 1)))
    if kind == "fixed64":
        return _tag(field, 1) + draw(st.binary(min_size=8, max_size=8))
    if kind == "fixed32":
        return _tag(field, 5) + draw(st.binary(min_size=4, max_size=4))
    if kind == "ld":
        return _ld(field, draw(st.binary(max_size=6)))
    inner = draw(_wire("any", depth + 1)) if depth < 6 and draw(st.booleans()) else b""
    if draw(st.booleans()):  # field number 0: refused in a message, skipped inside a group (upb)
        inner = draw(st.sampled_from(_FIELD_ZERO)) + inner
    return _tag(field, 3) + inner + _tag(field, 4)


_FIELD_ZERO = [b"\x00\x00", b"\x01" + bytes(8), b"\x02\x01a", b"\x05" + bytes(4), b"\x03\x04", b"\x80\x00\x05"]


def _value(draw: st.DrawFn, field: int, kind: str, sub: str, depth: int) -> bytes:
    if kind == "msg":
        return _ld(field, draw(_wire(sub, depth + 1)) if depth < 9 else b"")
    if kind == "str":
        text = draw(st.one_of(otlp_text.map(str.encode), st.just(_CARRIER), st.binary(max_size=4)))
        return _ld(field, text)  # (binary: sometimes invalid UTF-8)
    if kind == "bytes":
        return _ld(field, draw(st.one_of(st.binary(min_size=8, max_size=8), st.binary(min_size=16, max_size=16))))
    if kind == "varint":
        return _tag(field, 0) + _varint(draw(st.integers(0, 10) | st.integers(0, 2**64 - 1)))
    if kind == "fixed64":  # a time, or a double (NaN and infinities are stored as text)
        doubles = (st.sampled_from([1.5, float("nan"), float("-inf"), -0.0]) | st.floats()).map(_double)
        return _tag(field, 1) + draw(st.binary(min_size=8, max_size=8) | doubles)
    return _tag(field, 5) + draw(st.binary(min_size=4, max_size=4))


@st.composite
def _wire(draw: st.DrawFn, message: str = "request", depth: int = 0) -> bytes:
    """One message of type `message`: its known fields (some repeated: merged or last-wins) mixed
    with unknown fields, groups and known fields of the wrong wire type."""
    schema = _SCHEMA[message]
    out = b""
    for _ in range(draw(st.integers(0, 4 if depth < 5 else 2))):
        how = draw(st.integers(0, 9))
        if how < 8:
            field, (kind, sub) = draw(st.sampled_from(sorted(schema.items())))
            out += _value(draw, field, kind, sub, depth)
        elif how == 8:
            out += _any_encoding(draw, draw(st.sampled_from(sorted(schema))), depth)
        else:
            out += _any_encoding(draw, draw(st.sampled_from([17, 99, 2**29 - 1])), depth)
    return out


_corruptions = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), min_size=1, max_size=4)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=6)),
)


def _corrupt(payload: bytes, how: tuple[Any, ...]) -> bytes:
    if how[0] == "truncate":
        return payload[: int(len(payload) * how[1])]
    if how[0] == "insert":
        at = int(len(payload) * how[1])
        return payload[:at] + how[2] + payload[at:]
    data = bytearray(payload)
    for where, bit in how[1]:
        if data:
            data[min(int(where * len(data)), len(data) - 1)] ^= 1 << bit
    return bytes(data)


def _group(field: int, body: bytes) -> bytes:
    return _tag(field, 3) + body + _tag(field, 4)


# Groups as upb reads them: inside a group's skipped contents any tag goes, field number 0 (of
# any wire type but a foreign end) and nested groups included; in a message, field 0 is refused,
# and so is a group left open or closed by another field's end.
_GROUPS = [
    _group(2**29 - 1, b"\x00\x00"),
    _group(2**29 - 1, b"\x00\x01" + _group(5, b"")),
    _group(17, _group(5, b"\x00\x00")),
    _group(17, b"\x03\x00\x01\x04"),
    _group(17, b"\x80\x80\x80\x80\x00\x00"),
    _ld(1, _group(17, b"\x01" + bytes(8))),
    _group(17, b"\x04"),
    _group(17, b"\x06"),
    _group(17, b"\x03"),
    _tag(17, 3) + b"\x00\x00",
    _tag(17, 3) + _tag(5, 4),
    _group(0, b""),
    b"\x00\x00",
    _ld(1, b"\x00\x00"),
]


@pytest.mark.parametrize("payload", _GROUPS, ids=lambda payload: payload.hex())
def test_groups_and_field_zero_are_read_as_upb_reads_them(payload: bytes) -> None:
    _same_reading(payload, DEFAULT_LIMITS)


def test_field_zero_inside_a_group_is_accepted_and_in_a_message_refused() -> None:
    """The rule the cases above follow, stated once on the two sides (both agree with upb)."""
    assert _native(_group(17, b"\x00\x00"), DEFAULT_LIMITS) == []
    assert _native(b"\x00\x00", DEFAULT_LIMITS) is DecodeError


# --- properties ----------------------------------------------------------------------------------

carrier_or_text = st.one_of(otlp_text, st.just(CARRIER_SCOPE))


@EXAMPLES
@given(otlp_requests(carrier_or_text), LIMITS)
def test_native_reads_any_request_as_upb_does(request: ExportTraceServiceRequest, limits: SpanLimits) -> None:
    payload = request.SerializeToString()
    assert native.parse_request(payload, limits) == request_parts(request, limits)


@EXAMPLES
@given(_wire(), LIMITS)
def test_native_accepts_and_refuses_the_same_wire_bytes_as_upb(payload: bytes, limits: SpanLimits) -> None:
    _same_reading(payload, limits)


@EXAMPLES
@given(st.one_of(_wire(), otlp_requests(carrier_or_text).map(lambda r: r.SerializeToString())), _corruptions)
def test_truncated_or_corrupted_bytes_are_refused_or_read_alike(payload: bytes, how: tuple[Any, ...]) -> None:
    _same_reading(_corrupt(payload, how), DEFAULT_LIMITS)


def _batch(batch: DecodedBatch) -> Any:
    parts = {
        key: (
            part.spans.to_pylist(),
            part.content.to_pylist(),
            part.unstorable,
            part.scores and part.scores.to_pylist(),
            part.previews and part.previews.to_pylist(),
        )
        for key, part in batch.partitions.items()
    }
    return batch.accepted, batch.rejected, batch.errors, batch.marked, parts


_PRICES = PriceBook()


@settings(max_examples=25)
@given(otlp_requests(carrier_or_text), LIMITS)
def test_the_whole_decode_is_the_same_on_either_path(request: ExportTraceServiceRequest, limits: SpanLimits) -> None:
    payload = request.SerializeToString()
    pure = decode_bytes(payload, "p", _PRICES, limits, native=False)
    assert _batch(decode_bytes(payload, "p", _PRICES, limits, native=True)) == _batch(pure)


@settings(max_examples=25)
@given(otlp_llm_requests(), LIMITS)
def test_the_trace_list_previews_are_the_same_on_either_path(
    request: ExportTraceServiceRequest, limits: SpanLimits
) -> None:
    """Model calls with captured content: the decode's preview candidates (made from the content
    items, beside the spans) too."""
    payload = request.SerializeToString()
    pure = decode_bytes(payload, "p", _PRICES, limits, native=False)
    assert _batch(decode_bytes(payload, "p", _PRICES, limits, native=True)) == _batch(pure)


# --- an attacker's bytes ---------------------------------------------------------------------------


def _request_with_value(any_value: bytes) -> bytes:
    span = _ld(1, b"\x01" * 16) + _ld(2, b"\x01" * 8) + _ld(9, _ld(1, b"k") + _ld(2, any_value))
    return _ld(1, _ld(2, _ld(2, span)))


@pytest.mark.parametrize("levels", [47, 48, 2000])
def test_deep_nesting_is_refused_at_upbs_depth_not_by_a_crash(levels: int) -> None:
    value = _ld(1, b"x")
    for _ in range(levels):  # an array holding an array...: two messages per level
        value = _ld(5, _ld(1, value))
    _same_reading(_request_with_value(value), DEFAULT_LIMITS)


@pytest.mark.parametrize("levels", [95, 96, 100_000])
def test_deeply_nested_groups_are_refused_at_upbs_depth(levels: int) -> None:
    _same_reading(_request_with_value(_tag(20, 3) * levels + _tag(20, 4) * levels), DEFAULT_LIMITS)


@pytest.mark.parametrize(
    "payload",
    [
        _tag(1, 2) + b"\xff\xff\xff\xff\x0f",  # a length of 4 GiB
        _tag(1, 2) + b"\xff\xff\xff\xff\x07" + b"\x00" * 8,  # 2 GiB
        _tag(1, 2) + b"\x80" * 9 + b"\x00",  # a ten-byte length
        _tag(1, 0) + b"\xff" * 10 + b"\x01",  # an eleven-byte varint
        b"\x80\x80\x80\x80\x80\x08\x00",  # a tag over 32 bits
        _tag(5, 4),  # an end-group with no group
        _tag(5, 3) + _tag(6, 4),  # a group closed by another field
        _tag(5, 6),
        _ld(1, _ld(2, _ld(2, _ld(5, b"\xed\xa0\x80")))),  # a span name with a UTF-16 surrogate
        _ld(1, _ld(2, _ld(2, _ld(5, b"\xc0\x80")))),  # an overlong NUL
        _ld(1, _ld(2, _ld(2, _ld(5, b"\xf4\x90\x80\x80")))),  # beyond U+10FFFF
        _request_with_value(_ld(1, b"\xe2\x82")),  # a cut 3-byte sequence
        _ld(1, _ld(1, _ld(3, _ld(3, b"\xff")))),  # bad UTF-8 in a field decode.py never reads
    ],
)
def test_malformed_bytes_raise_decode_error_on_both_paths(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        ExportTraceServiceRequest.FromString(payload)
    with pytest.raises(DecodeError):
        native.parse_request(payload, DEFAULT_LIMITS)


def test_a_value_sent_twice_merges_as_protobuf_merges() -> None:
    array = _ld(5, _ld(1, _ld(1, b"a"))) + _ld(5, _ld(1, _ld(1, b"b")))
    switched = _ld(5, _ld(1, _ld(1, b"a"))) + _ld(1, b"s") + _ld(5, _ld(1, _ld(1, b"b")))
    for value in (array, switched, _ld(1, b"s") + _tag(8, 0) + b"\x05", _tag(2, 0) + b"\x80\x80\x80\x80\x80\x01"):
        _same_reading(_request_with_value(value), DEFAULT_LIMITS)
    ((_, [(_, _, [span])]),) = native.parse_request(_request_with_value(array), DEFAULT_LIMITS)
    assert span[1] == {"k": ["a", "b"]}


def test_cached_keys_and_values_are_the_strings_sent_whatever_their_slot() -> None:
    """Short keys, values and span names are shared strs from a direct-mapped cache whose slot comes from a
    string's length and first and last 8 bytes: strings alike there but not in the middle must each read as sent."""
    texts = [f"{'a' * 12}{middle}{'b' * 12}" for middle in ("x", "y", "\u00e9", "\u4e2d", "xy", "")] * 2
    spans = b"".join(
        _ld(
            2,
            _ld(1, b"\x01" * 16)
            + _ld(2, b"\x01" * 8)
            + _ld(5, t.encode())
            + _ld(9, _ld(1, t.encode()) + _ld(2, _ld(1, t.encode()))),
        )
        for t in texts
    )
    payload = _ld(1, _ld(2, spans))
    _same_reading(payload, DEFAULT_LIMITS)
    ((_, [(_, _, read)]),) = native.parse_request(payload, DEFAULT_LIMITS)
    assert [(span[0][4], span[1]) for span in read] == [(t, {t: t}) for t in texts]


def _span_with(*fields: bytes) -> bytes:
    """A request of one span (valid ids) with these fields besides."""
    return _ld(1, _ld(2, _ld(2, _ld(1, b"\x01" * 16) + _ld(2, b"\x01" * 8) + b"".join(fields))))


def test_key_values_in_the_usual_shape_or_not_read_alike() -> None:
    """The usual KeyValue (key, then one string or int; read without the field loops) and every encoding
    next to it that is not that shape (merged, reordered, repeated, other oneof cases, trailing fields)."""
    long = "\u00e9" * 100  # (lengths of two bytes)
    values = [
        _ld(1, b"s"),
        _ld(1, b""),
        _ld(1, long.encode()),
        _tag(3, 0) + _varint(2**64 - 5),  # (-5)
        _tag(3, 0) + _varint(300),
        b"",  # no value: None
        _tag(2, 0) + b"\x01",
        _tag(4, 1) + struct.pack("<d", 1.5),
        _ld(7, b"\x00\xff"),
        _ld(1, b"a") + _ld(1, b"b"),  # repeated: the last
        _ld(1, b"a") + _tag(3, 0) + b"\x07",  # the oneof switched
        _tag(3, 0) + b"\x07" + _tag(9, 0) + b"\x01",  # an unknown field after
        _tag(3, 1) + struct.pack("<q", 7),  # int_value sent with another wire type: unknown
    ]
    kvs = [_ld(9, _ld(1, f"k{i}".encode()) + _ld(2, v)) for i, v in enumerate(values)]
    odd = [
        _ld(9, _ld(2, _ld(1, b"v")) + _ld(1, b"first.value")),  # value before key
        _ld(9, _ld(1, b"twice") + _ld(2, _ld(1, b"a")) + _ld(2, _tag(3, 0) + b"\x02")),  # the value merged
        _ld(9, _ld(1, b"x") + _ld(1, b"key.twice") + _ld(2, _ld(1, b"v"))),
        _ld(9, _ld(1, b"trailing") + _ld(2, _ld(1, b"v")) + _tag(5, 0) + b"\x01"),
        _ld(9, _ld(1, b"no.value")),
        _ld(9, _ld(2, _ld(1, b"v"))),  # no key: ""
    ]
    payload = _span_with(*kvs, *odd)
    _same_reading(payload, DEFAULT_LIMITS)
    ((_, [(_, _, [span])]),) = native.parse_request(payload, DEFAULT_LIMITS)
    assert [span[1][f"k{i}"] for i in range(5)] == ["s", "", long, -5, 300]
    assert span[1]["k5"] is None and span[1]["twice"] == 2 and span[1]["key.twice"] == "v"


def test_many_attributes_and_repeated_keys_keep_protobufs_order_and_last_value() -> None:
    """A span's attributes are read in batches (its dict made at their count): past a batch, with keys
    repeated across batches, the dict is the one Python builds (insertion order, the last value)."""
    keys = [f"key.{i % 90}" for i in range(200)]
    payload = _span_with(*(_ld(9, _ld(1, k.encode()) + _ld(2, _tag(3, 0) + _varint(i))) for i, k in enumerate(keys)))
    _same_reading(payload, DEFAULT_LIMITS)
    ((_, [(_, _, [span])]),) = native.parse_request(payload, DEFAULT_LIMITS)
    assert list(span[1].items()) == list({k: i for i, k in enumerate(keys)}.items())


def test_spans_without_events_or_links_have_the_empty_tuple() -> None:
    event = _ld(11, _tag(1, 1) + struct.pack("<Q", 5) + _ld(2, b"e"))
    link = _ld(13, _ld(1, b"\x02" * 16) + _ld(2, b"\x03" * 8))
    for fields, events, links in (
        ((), (), ()),
        ((event,), [{"time_ns": 5, "name": "e", "attributes": {}}], ()),
        ((link,), (), [{"trace_id": "02" * 16, "span_id": "03" * 8, "attributes": {}}]),
    ):
        payload = _span_with(*fields)
        _same_reading(payload, DEFAULT_LIMITS)
        ((_, [(_, _, [span])]),) = native.parse_request(payload, DEFAULT_LIMITS)
        assert (span[2], span[4]) == (events, links)
        assert type(span[2]) is type(events) and type(span[4]) is type(links)


def test_memoryviews_and_bytearrays_are_read_too() -> None:
    payload = _request_with_value(_ld(1, b"v"))
    expected = native.parse_request(payload, DEFAULT_LIMITS)
    assert native.parse_request(memoryview(payload), DEFAULT_LIMITS) == expected  # type: ignore[arg-type]
    assert native.parse_request(bytearray(payload), DEFAULT_LIMITS) == expected  # type: ignore[arg-type]


# --- the receiver's check ------------------------------------------------------------------------


def _checked(payload: bytes, check: Any, names: int = REJECTED_NAMES, name_chars: int = REJECTED_NAME_CHARS) -> Any:
    try:
        return check(payload, names, name_chars)
    except DecodeError:
        return DecodeError


@EXAMPLES
@given(
    st.one_of(
        _wire(),
        otlp_requests(carrier_or_text).map(lambda r: r.SerializeToString()),
        st.tuples(_wire(), _corruptions).map(lambda t: _corrupt(*t)),
    )
)
def test_the_receivers_native_check_answers_as_upbs(payload: bytes) -> None:
    """Refused bytes, accepted and rejected span counts and the rejected spans' names: as upb's parse gives them."""
    assert _checked(payload, native.check_ids) == _checked(payload, check_request)


def test_the_native_check_names_the_first_rejected_spans_cut_as_the_receiver_asks() -> None:
    """The receiver's reason format (how many names, how many characters) is handed in, to both checks."""
    good, zero = (b"\x01" * 16, b"\x02" * 8), (bytes(16), bytes(8))
    ids = [good, zero, (b"\x01" * 15, b"\x02" * 8), (b"\x01" * 16, b"\x02" * 9), good, *[zero] * 6]
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for n, (trace_id, span_id) in enumerate(ids):
        scope.spans.add(trace_id=trace_id, span_id=span_id, name=f"{n}-" + "é" * 150)
    payload = request.SerializeToString()
    accepted, rejected, names = native.check_ids(payload, REJECTED_NAMES, REJECTED_NAME_CHARS)
    assert (accepted, rejected) == (2, 9)
    assert [name.split("-")[0] for name in names] == ["1", "2", "3", "5", "6"][:REJECTED_NAMES]
    assert all(len(name) == REJECTED_NAME_CHARS for name in names)
    for kept, chars in [(0, 100), (2, 3), (9, 0), (20, 500)]:
        answer = native.check_ids(payload, kept, chars)
        assert answer == check_request(payload, kept, chars)
        rejected_names = [f"{n}-" + "é" * 150 for n, pair in enumerate(ids) if pair != good]
        assert answer[2] == [name[:chars] for name in rejected_names[:kept]]
    with pytest.raises(ValueError):
        native.check_ids(payload, -1, 100)
