# Frozen copy of src/llmscope_collector/processors/decode.py at 1a12e86 (plus decode_pool.decode_payload), the
# reference the optimized decode path is proven equal to (tests/collector/test_decode_equivalence.py).
# It uses the live normalize/limits/cost/pricing/schema modules (not changed by that work) and the frozen
# messages of the same commit (reference/messages_v2.py). Do not edit (except: the span limits are a
# parameter since the live limits stopped being process-wide).
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
import dataclasses
import datetime as dt
import math
from typing import Any

import msgspec
import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from llmscope_collector.processors.cost import PriceBook
from llmscope_collector.processors.limits import DEFAULT_LIMITS, MAX_TIME_NS, SpanLimits, apply_span_limits
from llmscope_collector.processors.normalize import GENAI_COLUMNS, canonical_genai
from llmscope_collector.processors.pricing import price_rows
from llmscope_collector.storage.schema import BUFFER_COLUMNS, CONTENT_ITEM_SCHEMA, CONTENT_ITEMS, SPAN_SCHEMA
from tests.collector.reference.messages_v2 import split_content

_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUS = ("UNSET", "OK", "ERROR")
_STATUS_ERROR = _STATUS.index("ERROR")
_json = msgspec.json.Encoder()
_json_any = msgspec.json.Encoder(enc_hook=repr)  # whatever a row holds, it is set aside as something readable

Columns = dict[str, list[Any]]
PartitionKey = tuple[str, str]  # (project, date)


@dataclasses.dataclass
class DecodedPart:
    """One partition's spans of one request, ready to write.

    `spans` has `SPAN_SCHEMA` with cost columns filled (`llm_dup` is the writer's to set);
    `content` the captured content items (`CONTENT_ITEM_SCHEMA`, one row per distinct hash);
    `unstorable` rows Arrow could not hold, as JSON lines for the quarantine (never silently lost).
    """

    spans: pa.Table
    content: pa.Table
    unstorable: list[bytes] = dataclasses.field(default_factory=list)

    # Sent back from the decode workers as Arrow IPC streams: ~10x cheaper than pickling the tables.
    def __getstate__(self) -> tuple[bytes, bytes, list[bytes]]:
        return _ipc_bytes(self.spans), _ipc_bytes(self.content), self.unstorable

    def __setstate__(self, state: tuple[bytes, bytes, list[bytes]]) -> None:
        spans, content, self.unstorable = state
        self.spans = pa.ipc.open_stream(spans).read_all()
        self.content = pa.ipc.open_stream(content).read_all()


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


@dataclasses.dataclass
class DecodedBatch:
    """Decoded spans by partition plus what was rejected and why."""

    partitions: dict[PartitionKey, DecodedPart] = dataclasses.field(default_factory=dict)
    accepted: int = 0
    rejected: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)


# The values of a decoded row, in this order: the span's own fields, the cost columns (filled by
# `price_rows`), then `canonical_genai`'s columns (its dict is always in `GENAI_COLUMNS` order).
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
_COST_FIELDS = ("cost_usd", "cost_input_usd", "cost_output_usd", "cost_known", "cost_source", "llm_dup")
_ROW_FIELDS = (*_SPAN_FIELDS, *_COST_FIELDS, *GENAI_COLUMNS)
_NO_COST = (None,) * len(_COST_FIELDS)
if sorted(_ROW_FIELDS) != sorted(BUFFER_COLUMNS):  # a schema column this decoder does not fill
    raise RuntimeError(f"decoded row fields {sorted(set(BUFFER_COLUMNS) ^ set(_ROW_FIELDS))} do not match the schema")


class _Rows:
    """Row tuples per partition while a request is decoded; turned into columns once, at the end
    (a C-level transpose instead of ~55 list appends per span)."""

    def __init__(self) -> None:
        self.partitions: dict[PartitionKey, list[tuple[Any, ...]]] = {}

    def add(self, key: PartitionKey, row: tuple[Any, ...]) -> None:
        rows = self.partitions.get(key)
        if rows is None:
            rows = self.partitions[key] = []
        rows.append(row)

    @staticmethod
    def columns(rows: list[tuple[Any, ...]]) -> Columns:
        return {name: list(values) for name, values in zip(_ROW_FIELDS, zip(*rows, strict=True), strict=True)}


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
    for kv in kvs:  # strings inline: most attributes are strings, and a call per value costs ~40% here
        value = kv.value
        out[kv.key] = value.string_value if value.WhichOneof("value") == "string_value" else any_value(value)
    return out


def _hex_id(raw: bytes, size: int) -> str | None:
    if len(raw) != size or not any(raw):
        return None
    return raw.hex()


def _events(span: Any) -> list[dict[str, Any]]:
    return [
        {"time_ns": e.time_unix_nano, "name": e.name, "attributes": attributes_dict(e.attributes)} for e in span.events
    ]


def _links_json(span: Any) -> str | None:
    if not span.links:
        return None
    links = [
        {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex(), "attributes": attributes_dict(link.attributes)}
        for link in span.links
    ]
    return _json.encode(links).decode()


_NS_PER_DAY = 86_400 * 10**9
_dates: dict[int, str] = {}


def utc_date(ns: int) -> str:
    """The UTC date of a time (memoized per day: every span needs it for its partition).

    Within a millisecond of midnight it is computed the way the query side computes date bounds
    (float seconds, rounded to the microsecond), so both always agree on a span's partition."""
    day = ns // _NS_PER_DAY
    if (day + 1) * _NS_PER_DAY - ns <= 1_000_000 or ns < 0:
        return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc).strftime("%Y-%m-%d")
    date = _dates.get(day)
    if date is None:
        if len(_dates) > 4096:
            _dates.clear()
        date = _dates[day] = dt.datetime.fromtimestamp(day * 86_400, tz=dt.timezone.utc).strftime("%Y-%m-%d")
    return date


_default_prices: PriceBook | None = None


def default_prices() -> PriceBook:
    """The price book of decodes given none (genai-prices only); built once per process."""
    global _default_prices
    if _default_prices is None:
        _default_prices = PriceBook()
    return _default_prices


def decode_request(
    request: ExportTraceServiceRequest,
    project: str,
    prices: PriceBook | None = None,
    limits: SpanLimits = DEFAULT_LIMITS,
) -> DecodedBatch:
    """Flatten, normalize and price every span of the request into one Arrow table per partition."""
    batch = DecodedBatch()
    rows = _Rows()
    for resource_spans in request.resource_spans:
        resource_attrs = attributes_dict(resource_spans.resource.attributes)
        service = resource_attrs.get("service.name")
        resource_json = _json.encode(resource_attrs).decode() if resource_attrs else None
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            for span in scope_spans.spans:
                _decode_span(batch, rows, span, project, service, resource_json, scope.name, scope.version, limits)
    book = prices or default_prices()
    for key, part_rows in rows.partitions.items():
        cols = rows.columns(part_rows)
        price_rows(cols, book)
        batch.partitions[key] = to_part(cols)
    return batch


def to_part(cols: Columns) -> DecodedPart:
    """Column lists → Arrow; rows Arrow cannot store (a value out of its type's range) are set aside."""
    content = _content_table(cols.pop(CONTENT_ITEMS, []))
    try:
        return DecodedPart(pa.Table.from_pydict(cols, schema=SPAN_SCHEMA), content)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        pass
    count = len(cols["span_id"])
    bad = [i for i in range(count) if not _storable({n: [cols[n][i]] for n in SPAN_SCHEMA.names})]
    lines = [_json_any.encode({n: cols[n][i] for n in SPAN_SCHEMA.names}) for i in bad]
    skip = set(bad)
    kept = {n: [v for i, v in enumerate(cols[n]) if i not in skip] for n in SPAN_SCHEMA.names}
    return DecodedPart(pa.Table.from_pydict(kept, schema=SPAN_SCHEMA), content, lines)


def _storable(row: Columns) -> bool:
    try:
        pa.Table.from_pydict(row, schema=SPAN_SCHEMA)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return False
    return True


def _content_table(per_span: list[list[tuple[str, str]]]) -> pa.Table:
    items = {h: body for span_items in per_span for h, body in span_items}
    return pa.Table.from_pydict({"hash": list(items), "body": list(items.values())}, schema=CONTENT_ITEM_SCHEMA)


def _decode_span(
    batch: DecodedBatch,
    rows: _Rows,
    span: Any,
    project: str,
    service: Any,
    resource_json: str | None,
    scope_name: str,
    scope_version: str,
    limits: SpanLimits,
) -> None:
    trace_id = _hex_id(span.trace_id, 16)
    span_id = _hex_id(span.span_id, 8)
    if trace_id is None or span_id is None:
        batch.rejected += 1
        if len(batch.errors) < 5:
            batch.errors.append(f"span {span.name!r}: trace_id must be 16 bytes and span_id 8 bytes, non-zero")
        return
    parent = span.parent_span_id.hex() if span.parent_span_id and any(span.parent_span_id) else None
    start, end = min(span.start_time_unix_nano, MAX_TIME_NS), min(span.end_time_unix_nano, MAX_TIME_NS)
    attrs = apply_span_limits(span, attributes_dict(span.attributes), limits, {})  # limits + anomaly marks
    events = _events(span) if span.events else []
    genai = canonical_genai(attrs, events, start_ns=start, failed=span.status.code == _STATUS_ERROR)
    split = split_content(attrs)
    items = [(item.hash, item.body) for item in split.items]
    # (kind, source, hash, bytes): Arrow builds the `content_refs` structs from tuples faster than from dicts
    refs = [(item.kind, item.source, h, len(item.body)) for item, (h, _) in zip(split.items, items, strict=True)]
    status = span.status
    row = (
        trace_id,
        span_id,
        parent,
        span.trace_state or None,
        span.name,
        _KINDS[span.kind] if 0 <= span.kind < len(_KINDS) else "UNSPECIFIED",
        start,
        end,
        max(0, end - start),
        _STATUS[status.code] if 0 <= status.code < len(_STATUS) else "UNSET",
        status.message or None,
        None if service is None else str(service),
        scope_name or None,
        scope_version or None,
        resource_json,
        _json.encode(split.attributes).decode() if split.attributes else None,
        _json.encode(events).decode() if events else None,
        _links_json(span),
        refs or None,
        sum(ref[3] for ref in refs) if refs else None,
        items,
        *_NO_COST,
        *genai.values(),
    )
    rows.add((project, utc_date(start)), row)
    batch.accepted += 1


def decode_payload(
    project: str, payload: bytes, prices: PriceBook | None = None, limits: SpanLimits = DEFAULT_LIMITS
) -> DecodedBatch:
    """decode_pool.decode_payload as it was (inline: no worker price book here)."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(payload)
    return decode_request(request, project, prices, limits)
