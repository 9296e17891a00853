"""OTLP `ExportTraceServiceRequest` → priced Arrow span tables, one per storage partition.

Ids become lowercase hex, times stay integer nanoseconds, attribute values follow the OTel
"AnyValue for non-OTLP protocols" rules (bytes → base64, maps/arrays → JSON). Spans whose ids are
invalid are rejected one by one (counted, with a reason) instead of failing the whole request.

Everything that depends on one span only (normalizing, splitting out content, pricing, building
the Arrow table) happens here, in the decode worker processes, so the single writer thread only
deduplicates, marks nested duplicate LLM spans and writes: the per-span Python work runs on every
core, and what crosses back to the collector is Arrow buffers, not millions of Python objects.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from llmscope_collector.processors import native as native_decoder
from llmscope_collector.processors.arrow_native import RowArrays, transpose, unique_pairs
from llmscope_collector.processors.limits import (
    DEFAULT_LIMITS,
    MAX_TIME_NS,
    SpanLimits,
    cut_name,
    limit_events,
    limit_span,
    span_events,
    within_limits,
)
from llmscope_collector.processors.messages import split_hashed
from llmscope_collector.processors.native import STATUS_ERROR, ResourceParts, ScopeParts, SpanFields, span_head
from llmscope_collector.processors.normalize import GENAI_COLUMNS, SESSION_ID, genai_values
from llmscope_collector.processors.previews import preview_candidates
from llmscope_collector.processors.pricing import PricesNeeded, PriceTable, price_rows
from llmscope_collector.processors.scores import CARRIER_SCOPE, EVALUATION_EVENT, score_row
from llmscope_collector.storage.batch import DecodedBatch, DecodedPart, PartitionKey
from llmscope_collector.storage.schema import (
    BUFFER_COLUMNS,
    CONTENT_ITEM_SCHEMA,
    CONTENT_ITEMS,
    COST_TYPE,
    INVALID_IDS,
    SCORE_SCHEMA,
    SPAN_COLUMNS,
    SPAN_SCHEMA,
    cost_decimal,
    valid_span_ids,
)
from llmscope_collector.storage.schema import names as column_names

if TYPE_CHECKING:
    from llmscope_collector.processors.cost import PriceBook

_json = msgspec.json.Encoder()
_json_any = msgspec.json.Encoder(enc_hook=repr)  # whatever a row holds, it is set aside as something readable

Columns = dict[str, list[Any]]
# The values of a decoded row, in this order: the span's own fields, the cost columns (filled by
# `price_rows`), then `genai_values`' columns (`GENAI_COLUMNS` order).
_SPAN_FIELDS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "trace_state",
    "name",
    "kind",
    "start_ns",
    "end_ns",
    "duration_ns",
    "status_code",
    "status_message",
    "service_name",
    "scope_name",
    "scope_version",
    "resource_attributes",
    "attributes",
    "events",
    "links",
    "content_refs",
    "content_bytes",
    CONTENT_ITEMS,
)
_COST_FIELDS = (*column_names(SPAN_COLUMNS, "cost"), "llm_dup")  # filled by `price_rows` (`llm_dup` by the writer)
_ROW_FIELDS = (*_SPAN_FIELDS, *_COST_FIELDS, *GENAI_COLUMNS)
_DECODED_FIELDS = (*_SPAN_FIELDS, *GENAI_COLUMNS)  # a row tuple's (the cost columns are added as columns)
if sorted(_ROW_FIELDS) != sorted(BUFFER_COLUMNS):  # a schema column this decoder does not fill
    raise RuntimeError(f"decoded row fields {sorted(set(BUFFER_COLUMNS) ^ set(_ROW_FIELDS))} do not match the schema")


# Row tuples (`_DECODED_FIELDS`) per partition (by its date: a request is one project's) while a request is
# decoded; turned into columns once, at the end (a C-level transpose instead of ~55 list appends per span).
_Partitions = dict[str, list[tuple[Any, ...]]]
_ScoreParts = dict[PartitionKey, list[dict[str, Any]]]  # score rows (`SCORE_SCHEMA`) per partition


def _columns(rows: list[tuple[Any, ...]]) -> Columns:
    """Row tuples → column lists, with the cost columns (all None until `price_rows`)."""
    cols = dict(zip(_DECODED_FIELDS, transpose(rows, len(_DECODED_FIELDS)), strict=True))
    for name in _COST_FIELDS:
        cols[name] = [None] * len(rows)
    return cols


def any_value(value: AnyValue) -> Any:
    """Python value of an OTLP AnyValue (JSON-compatible)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        d = value.double_value
        return d if math.isfinite(d) else str(d).replace("inf", "Infinity").replace("nan", "NaN")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_dict(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None


def attributes_dict(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:  # most attributes are strings, then ints: those inline (a call per value costs ~40% here)
        value = kv.value
        text = value.string_value  # "" unless a non-empty string: then one field read decides
        if text:
            out[kv.key] = text
            continue
        kind = value.WhichOneof("value")
        out[kv.key] = value.int_value if kind == "int_value" else text if kind == "string_value" else any_value(value)
    return out


def request_parts(request: ExportTraceServiceRequest, limits: SpanLimits) -> list[ResourceParts]:
    """The pure-Python (upb) twin of `native.parse_request`: the request's plain values."""
    out: list[ResourceParts] = []
    for resource_spans in request.resource_spans:
        scopes: list[ScopeParts] = []
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            all_events = scope.name == CARRIER_SCOPE  # a carrier's events are all scores: none dropped
            spans = [_span_fields(span, limits, all_events) for span in scope_spans.spans]
            scopes.append((scope.name, scope.version, spans))
        out.append((attributes_dict(resource_spans.resource.attributes), scopes))
    return out


def _span_fields(span: Any, limits: SpanLimits, all_events: bool) -> SpanFields:
    sent = span.events
    events = [
        {"time_ns": e.time_unix_nano, "name": e.name, "attributes": attributes_dict(e.attributes)}
        for e in (sent if all_events else span_events(sent, limits))
    ] or ()
    links = [
        {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex(), "attributes": attributes_dict(link.attributes)}
        for link in span.links
    ] or ()
    status = span.status
    name, kind, start, end, code = span.name, span.kind, span.start_time_unix_nano, span.end_time_unix_nano, status.code
    attrs = attributes_dict(span.attributes)
    trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
    head = span_head(
        trace_id.hex(),
        span_id.hex(),
        parent.hex() if any(parent) else None,
        span.trace_state,
        name,
        kind,
        start,
        end,
        code,
        status.message,
    )
    return (
        head,
        attrs,
        events,
        len(sent),
        links,
        within_limits(start, end, kind, code, name, attrs, limits),
        valid_span_ids(trace_id, span_id),
        kind,
        code,
        start,
        end,
    )


_NS_PER_DAY = 86_400 * 10**9
_MIDNIGHT_MARGIN_NS = 1_000_000  # within this of midnight a date is computed as the query side computes it
_dates: dict[int, str] = {}


def utc_date(ns: int) -> str:
    """The UTC date of a time (memoized per day: every span needs it for its partition).

    Within a millisecond of midnight it is computed the way the query side computes date bounds
    (float seconds, rounded to the microsecond), so both always agree on a span's partition."""
    day = ns // _NS_PER_DAY
    if (day + 1) * _NS_PER_DAY - ns <= _MIDNIGHT_MARGIN_NS or ns < 0:
        return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc).strftime("%Y-%m-%d")
    date = _dates.get(day)
    if date is None:
        if len(_dates) > 4096:
            _dates.clear()
        date = _dates[day] = dt.datetime.fromtimestamp(day * 86_400, tz=dt.timezone.utc).strftime("%Y-%m-%d")
    return date


_default_prices: PriceBook | None = None


def default_prices() -> PriceBook:
    """The price book of decodes given none (genai-prices only); built once per process (imported here: a
    decode worker prices by a `PriceTable` and never loads genai-prices)."""
    global _default_prices
    if _default_prices is None:
        from llmscope_collector.processors.cost import PriceBook

        _default_prices = PriceBook()
    return _default_prices


def decode_request(
    request: ExportTraceServiceRequest,
    project: str,
    prices: PriceBook | PriceTable | None = None,
    limits: SpanLimits = DEFAULT_LIMITS,
) -> DecodedBatch:
    """Flatten, normalize and price every span of the request into one Arrow table per partition;
    `limits` are the server's span limits (marks are counted in the batch's `marked`)."""
    return decode_parts(request_parts(request, limits), project, prices, limits)


def decode_bytes(
    payload: bytes,
    project: str,
    prices: PriceBook | PriceTable | None = None,
    limits: SpanLimits = DEFAULT_LIMITS,
    native: bool = True,
) -> DecodedBatch:
    """`decode_request` of the request's wire bytes, read by the native decoder when `native` and
    it is built (`native.py`), else by upb; either raises protobuf's `DecodeError` for bad bytes."""
    if native and native_decoder.AVAILABLE:
        parts = native_decoder.parse_request(payload, limits)
    else:
        request = ExportTraceServiceRequest()
        request.ParseFromString(payload)
        parts = request_parts(request, limits)
    return decode_parts(parts, project, prices, limits)


def decode_parts(
    resources: list[ResourceParts], project: str, prices: PriceBook | PriceTable | None, limits: SpanLimits
) -> DecodedBatch:
    """`decode_request` of a request's plain values (`native.py`'s shape), whichever decoder read them;
    raises `PricesNeeded` when `prices` is a worker's table that cannot price some LLM row (before the
    Arrow work: the collector decodes the record again)."""
    batch = DecodedBatch()
    parts: _Partitions = {}
    scores: _ScoreParts = {}
    for resource_attrs, scopes in resources:
        service = resource_attrs.get("service.name")
        service_name = None if service is None else str(service)
        resource_json = _json.encode(resource_attrs).decode() if resource_attrs else None
        for scope_name, scope_version, spans in scopes:
            if scope_name == CARRIER_SCOPE:  # scores sent through the API: stored as scores, not spans
                for fields in spans:
                    _carrier_scores(scores, project, fields)
                continue
            scope = (service_name, scope_name or None, scope_version or None, resource_json)
            for fields in spans:
                _decode_span(batch, parts, scores, fields, project, scope, limits)
    book = prices or default_prices()
    priced = []
    for date, rows in parts.items():
        batch.accepted += len(rows)
        cols = _columns(rows)
        if not price_rows(cols, book):
            assert isinstance(book, PriceTable)  # a `PriceBook` prices every row
            raise PricesNeeded(book.take_missing())
        priced.append(((project, date), cols))
    for key, cols in priced:
        batch.partitions[key] = to_part(cols)
    for key, score_rows in scores.items():
        part = batch.partitions.get(key)
        if part is None:
            part = batch.partitions[key] = DecodedPart(SPAN_SCHEMA.empty_table(), CONTENT_ITEM_SCHEMA.empty_table())
        part.scores = pa.Table.from_pylist(score_rows, schema=SCORE_SCHEMA)
    return batch


def _carrier_scores(scores: _ScoreParts, project: str, fields: SpanFields) -> None:
    """The scores of an API carrier span (its start is when the API received them)."""
    received = fields[0][6]  # (the head's start: clamped)
    for event in fields[2]:
        if event["name"] == EVALUATION_EVENT:
            _add_score(scores, project, event["attributes"], event["time_ns"], received, None)


def _span_scores(scores: _ScoreParts, project: str, events: list[dict[str, Any]], target: tuple[Any, ...]) -> None:
    """Scores an instrumentation attached to its span as `gen_ai.evaluation.result` events."""
    for event in events:
        if event["name"] == EVALUATION_EVENT:
            time_ns = min(event["time_ns"], MAX_TIME_NS)
            _add_score(scores, project, event["attributes"], time_ns, time_ns, target)


def _add_score(
    scores: _ScoreParts,
    project: str,
    attrs: dict[str, Any],
    time_ns: int,
    received: int,
    target: tuple[Any, ...] | None,
) -> None:
    time_ns = min(time_ns, MAX_TIME_NS) or received
    row = score_row(attrs, time_ns, received, (None, None, None) if target is None else target)
    if row is not None and (row["trace_id"] or row["session_id"]):
        scores.setdefault((project, utc_date(time_ns)), []).append(row)


def to_part(cols: Columns) -> DecodedPart:
    """Column lists → Arrow, with the rows' preview candidates (`processors.previews`: made here, where
    the content items are at hand, not on the writer's single thread); rows Arrow cannot store (a value
    out of its type's range) are set aside."""
    items = cols.pop(CONTENT_ITEMS, [])
    content = _content_table(items)
    try:
        spans = _span_table(cols)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        pass
    else:
        return DecodedPart(spans, content, previews=_previews(cols, items, None))
    count = len(cols["span_id"])
    bad = [i for i in range(count) if not _storable({n: [cols[n][i]] for n in SPAN_SCHEMA.names})]
    lines = [_json_any.encode({n: cols[n][i] for n in SPAN_SCHEMA.names}) for i in bad]
    skip = set(bad)
    kept = {n: [v for i, v in enumerate(cols[n]) if i not in skip] for n in SPAN_SCHEMA.names}
    previews = _previews(kept, items, [i for i in range(count) if i not in skip])
    return DecodedPart(pa.Table.from_pydict(kept, schema=SPAN_SCHEMA), content, lines, previews=previews)


def _previews(cols: Columns, items: list[list[tuple[str, str]]], rows: list[int] | None) -> pa.Table | None:
    """The preview candidates of `cols`' rows; `rows`: the rows of `items` they are (None: all)."""
    if rows is not None:
        items = [items[i] for i in rows]
    return preview_candidates(
        cols["trace_id"], cols["start_ns"], cols["end_ns"], cols["operation"], cols["content_refs"], items
    )


# SPAN_SCHEMA's columns, all built by the C extension (`arrow_native`) where it is built and answers; else
# each type's columns converted together by pyarrow: (type, schema positions).
_NATIVE = RowArrays(SPAN_SCHEMA)
_TYPE_GROUPS = tuple(
    (type_, tuple(i for i, f in enumerate(SPAN_SCHEMA) if f.type == type_))
    for type_ in dict.fromkeys(f.type for f in SPAN_SCHEMA)
)
_COST_POSITIONS = tuple(i for i, f in enumerate(SPAN_SCHEMA) if f.type == COST_TYPE)  # (`schema.cost_decimal`)


def _span_table(cols: Columns) -> pa.Table:
    """`pa.Table.from_pydict(cols, schema=SPAN_SCHEMA)`: one table of the C extension's where it answers
    (every column: the plain ones took 31k → 14k instructions per bench span; the cost decimals and the
    metadata map too, one import and no pyarrow conversion, took the whole decode from 146.8k
    to 139.6k instructions a span, `to_part` 4.2 → 2.7 µs: hotpaths.py --callgrind, 5 alternating runs),
    else the columns of each type converted together."""
    columns = [cols[name] for name in SPAN_SCHEMA.names]
    native = _NATIVE.table(columns)
    if native is not None:
        return native
    for i in _COST_POSITIONS:  # (in place: the rows set aside are written with their Decimals too)
        columns[i][:] = map(cost_decimal, columns[i])
    arrays: list[Any] = [None] * len(SPAN_SCHEMA)
    for type_, positions in _TYPE_GROUPS:
        for i, array in zip(positions, _arrays_of_type([columns[i] for i in positions], type_), strict=True):
            arrays[i] = array
    return pa.Table.from_arrays(arrays, schema=SPAN_SCHEMA)


def _arrays_of_type(columns: list[list[Any]], type_: pa.DataType) -> list[Any]:
    """`[pa.array(c, type=type_) for c in columns]` (equal lengths) in one conversion, sliced (zero-copy).

    A conversion costs ~2 µs before its first value and a request is ~50 spans: one per type (8)
    instead of per column (55) halves the Arrow time. Values convert by the same rules either way."""
    if len(columns) > 1:
        whole = pa.array(list(chain.from_iterable(columns)), type=type_)
        if not isinstance(whole, pa.ChunkedArray):  # (over 2 GiB of strings: column by column)
            size = len(columns[0])
            return [whole.slice(k * size, size) for k in range(len(columns))]
    return [pa.array(c, type=type_) for c in columns]


def _storable(row: Columns) -> bool:
    try:
        pa.Table.from_pydict(row, schema=SPAN_SCHEMA)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return False
    return True


_CONTENT_NATIVE = RowArrays(CONTENT_ITEM_SCHEMA)


def _content_table(per_span: list[list[tuple[str, str]]]) -> pa.Table:
    """One row per hash, built by the C extension where it answers, else hashes and bodies converted
    apart (chained into one conversion, as `_arrays_of_type` does for the span columns, the bodies'
    bytes cost more than the call saved)."""
    columns = unique_pairs(per_span)
    table = _CONTENT_NATIVE.table(columns)
    if table is not None:
        return table
    return pa.Table.from_arrays([pa.array(c, type=pa.string()) for c in columns], schema=CONTENT_ITEM_SCHEMA)


_REF_SIZE = itemgetter(3)  # a content ref's body size (`messages.ContentRef`)
_Scope = tuple[str | None, str | None, str | None, str | None]
"""(service_name, scope_name, scope_version, resource_attributes): a scope's spans' row values after the head."""


def _decode_span(
    batch: DecodedBatch,
    parts: _Partitions,
    scores: _ScoreParts,
    fields: SpanFields,
    project: str,
    scope: _Scope,
    limits: SpanLimits,
) -> None:
    """One span's row, filed by its date: the decoder made the head (`native.py`), this adds what takes
    Python (limits, normalizing, content, JSON)."""
    head, attrs, events, sent, links, within, valid, kind, code, sent_start, sent_end = fields
    if not valid:
        batch.rejected += 1
        if len(batch.errors) < 5:
            name = cut_name(head[4], limits)
            batch.errors.append(f"span {name!r}: {INVALID_IDS}")
        return
    if sent or not within:  # (the usual span has no event and is within them: as it is)
        event_marks = limit_events(events, sent, limits) if sent else None
        if event_marks or not within:
            name = head[4]
            attrs = limit_span(sent_start, sent_end, kind, code, name, attrs, limits, batch.marked, event_marks, within)
            if not within:
                head = (*head[:4], cut_name(name, limits), *head[5:])
    start = head[6]
    genai = genai_values(attrs, events, start, code == STATUS_ERROR)
    light, refs, items = split_hashed(attrs)
    if events:
        _span_scores(scores, project, events, (head[0], head[1], genai[SESSION_ID]))
    row = (
        *head,
        *scope,
        _json.encode(light).decode() if light else None,
        _json.encode(events).decode() if events else None,
        _json.encode(links).decode() if links else None,
        refs or None,
        sum(map(_REF_SIZE, refs)) if refs else None,
        items,
        *genai,
    )
    day = start // _NS_PER_DAY  # `utc_date`'s memo, inline (a call per span): away from midnight, by the day
    date = _dates.get(day) if start < (day + 1) * _NS_PER_DAY - _MIDNIGHT_MARGIN_NS else None
    if date is None:
        date = utc_date(start)
    rows = parts.get(date)
    if rows is None:
        parts[date] = [row]
    else:
        rows.append(row)


__all__ = [
    "DecodedBatch",
    "DecodedPart",
    "KeyValue",
    "any_value",
    "attributes_dict",
    "decode_bytes",
    "decode_parts",
    "decode_request",
    "request_parts",
    "utc_date",
]
