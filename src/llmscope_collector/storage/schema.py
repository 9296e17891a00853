"""Every dataset's columns, declared once: the single source of column names, types and roles.

Everything else is derived from these declarations, never typed out again: the Parquet schemas
below, the DuckDB tables and SELECT lists (`query.sql`), the fields of the API's response structs
(`query.models`), the span detail's `genai` map, the waterfall's copied fields and the stitcher's
summed columns. Add a column here and it is written, read, merged and served; `tests/collector/
storage/test_schema.py` proves it for a column added to the declaration.

Columns are only ever added; `SCHEMA_VERSION` goes into every file's metadata so a later reader
can tell which columns a file may lack (DuckDB reads files with `union_by_name`).
`project` and `date` are not stored in the files: they come from the Hive partition path.

Datasets:
- spans: one row per span, light columns only (captured prompt/completion text is not here).
- content: captured content, one row per distinct message/payload (content-addressed), so a chat
  that resends its whole history stores each message once; spans keep only `content_refs`.
- traces: per-trace summary *deltas* written by the stitcher at each flush; a trace's summary is
  the merge (sums, min/max, unions) of its deltas, so late spans just add a delta. Its token
  columns are the span token columns: a token count added to spans is summed per trace too.
- llm_dups: LLM spans found to be nested duplicates only after they were written (their LLM parent
  arrived in a later flush); aggregates skip them like rows flagged `llm_dup`.
- scores: evaluations attached to a trace, a span or a session (`POST /v1/scores`, OTel
  `gen_ai.evaluation.result` span events); a row with an `id` already stored replaces it (the
  latest `received_ns` wins at query time, so a replayed duplicate changes nothing).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from decimal import Decimal
from typing import Literal, cast

import pyarrow as pa

SCHEMA_VERSION = "4"
_META = {"llmscope.schema_version": SCHEMA_VERSION}

# Operations whose spans are model calls: they carry tokens and cost, and only they are counted
# (`llm_calls`), summed and marked `llm_dup`. A contract of the stored data, so declared here.
LLM_OPERATIONS: tuple[str, ...] = ("chat", "text_completion", "generate_content", "embeddings")

INVALID_IDS = "trace_id must be 16 bytes and span_id 8 bytes, non-zero"
"""Why a span is not stored (`valid_span_ids`), as the receiver answers it and the decoder records it."""


def valid_span_ids(trace_id: bytes, span_id: bytes) -> bool:
    """Whether a span's ids, as sent, can key its stored row: a 16-byte trace id and an 8-byte span id,
    neither all zero (OTLP's invalid ids). The receiver answers by this rule and the decoder keeps spans by
    it (the native decoder's C twin: `processors.native`), so both count the same spans."""
    return len(trace_id) == 16 and len(span_id) == 8 and any(trace_id) and any(span_id)


# `cost_source` of a cost the instrumentation reported (`reported_cost_usd`), used when the price
# source does not know the model.
REPORTED_SOURCE = "reported"

# USD with 12 decimals: exact sums (DuckDB sums DECIMAL exactly), sub-nano-dollar per-token prices.
COST_TYPE = pa.decimal128(18, 12)


def cost_decimal(value: Decimal | int | None) -> Decimal | None:
    """A decoded cost column's value as pyarrow is given it: a decoder holds a Decimal, or an int counting
    units of the last decimal place (`COST_TYPE.scale`), which the span table's C builder stores without a
    Decimal made and printed per value (`pricing.price_rows`: the common row, priced in integers)."""
    return Decimal(f"{value}E-{COST_TYPE.scale}") if type(value) is int else cast("Decimal | None", value)  # (exact)


# A span's reference to one content item: what it is (`kind`: input, output, system, tools, ...),
# which attribute it came from (`source`), its content address and its size.
CONTENT_REF_TYPE = pa.struct(
    [("kind", pa.string()), ("source", pa.string()), ("hash", pa.string()), ("bytes", pa.int64())]
)

# What a column is, which decides where it goes:
# - span: the OTel span's own fields (read by name where they are used);
# - raw: JSON text of what the sender sent (attributes, events, links);
# - genai: a canonical GenAI column, served in the span detail's `genai` map;
# - tokens: a token count: served like genai, and summed per trace, per session, per roll-up group;
# - cost: the price the collector computed; internal: bookkeeping (duplicate marks, content refs);
# - content: (trace summaries) taken from captured content: left out where content is only on request
#   (exports, `llmscope sql` views without --content).
Role = Literal["span", "raw", "genai", "tokens", "cost", "internal", "content"]
# How a trace summary column combines a trace's deltas: `key` groups, `min`/`max`/`sum`, `or` any true,
# `first` the value of the earliest delta, `root` taken from the root span (as one record), `union`
# the sorted distinct values of list columns, `arg_min`/`arg_max` the non-null value whose `source`
# summary column (merged by `min`/`max`) is the least/greatest.
# Whether the trace waterfall selects a span column: `read` (used by name, or converted) or `copy`
# (served in each waterfall row under its own name, as it is).
Waterfall = Literal["", "read", "copy"]
Merge = Literal["", "key", "min", "max", "or", "sum", "first", "root", "union", "arg_min", "arg_max"]


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a dataset.

    `waterfall` (spans): whether the trace waterfall reads the column or copies it into its rows.
    `dictionary`: whether its Parquet pages are dictionary-encoded. Off for columns whose values are
    (nearly) distinct in a row group (ids, times, JSON of a span's own attributes): their dictionary is
    as large as the data, and a point lookup decodes the row group's whole dictionary instead of only
    the pages the page index selects (`storage.layout.SPAN_ENCODING`).
    `statistics`: whether its Parquet chunks (and pages) carry min/max. Off only for columns no query
    filters or prunes by whose values are long strings (JSON, content): nothing reads their min/max,
    which cost the writer a compare per value (~0.4 us a span over a span file's JSON and refs).
    `merge`, `source` and `served` are for trace
    summaries: how deltas combine, the root span column a `root` column comes from (or the summary
    column that orders an `arg_min`/`arg_max` column), and whether the trace list serves the column
    under its own name.
    """

    name: str
    type: pa.DataType
    role: Role = "span"
    nullable: bool = True
    waterfall: Waterfall = ""
    merge: Merge = ""
    source: str = ""
    served: bool = False
    dictionary: bool = True
    statistics: bool = True

    def field(self) -> pa.Field:
        return pa.field(self.name, self.type, nullable=self.nullable)


def _c(
    name: str,
    type_: pa.DataType,
    role: Role = "span",
    *,
    waterfall: Waterfall = "",
    dictionary: bool = True,
    statistics: bool = True,
) -> Column:
    return Column(name, type_, role, waterfall=waterfall, dictionary=dictionary, statistics=statistics)


_STR = pa.string()
_INT = pa.int64()
_STRS = pa.list_(pa.string())

SPAN_COLUMNS: tuple[Column, ...] = (
    _c("trace_id", _STR, waterfall="read", dictionary=False),
    _c("span_id", _STR, waterfall="read", dictionary=False),
    _c("parent_span_id", _STR, waterfall="read", dictionary=False),
    _c("trace_state", _STR),
    _c("name", _STR, waterfall="read"),
    _c("kind", _STR, waterfall="read"),
    _c("start_ns", _INT, waterfall="read", dictionary=False),
    _c("end_ns", _INT, waterfall="read", dictionary=False),
    _c("duration_ns", _INT, dictionary=False),  # (the waterfall computes it from start and end)
    _c("status_code", _STR, waterfall="read"),
    _c("status_message", _STR, waterfall="read", statistics=False),
    _c("service_name", _STR, waterfall="read"),
    _c("scope_name", _STR),
    _c("scope_version", _STR),
    _c("resource_attributes", _STR, "raw", statistics=False),
    _c("attributes", _STR, "raw", dictionary=False, statistics=False),
    _c("events", _STR, "raw", waterfall="read", statistics=False),
    _c("links", _STR, "raw", statistics=False),
    # Canonical GenAI columns (normalized from gen_ai.*, OpenInference, OpenLLMetry).
    _c("operation", _STR, "genai", waterfall="copy"),
    _c("provider", _STR, "genai", waterfall="copy"),
    _c("request_model", _STR, "genai", waterfall="copy"),
    _c("response_model", _STR, "genai", waterfall="copy"),
    _c("response_id", _STR, "genai", waterfall="copy", dictionary=False),
    _c("input_tokens", _INT, "tokens", waterfall="copy"),
    _c("output_tokens", _INT, "tokens", waterfall="copy"),
    _c("cache_read_tokens", _INT, "tokens", waterfall="copy"),
    _c("cache_write_tokens", _INT, "tokens", waterfall="copy"),
    _c("reasoning_tokens", _INT, "tokens", waterfall="copy"),
    _c("finish_reasons", _STRS, "genai", waterfall="copy"),
    _c("error_type", _STR, "genai", waterfall="copy"),
    _c("session_id", _STR, "genai"),
    _c("user_id", _STR, "genai"),
    _c("is_stream", pa.bool_(), "genai", waterfall="copy"),
    _c("ttft_s", pa.float64(), "genai", waterfall="read"),  # the waterfall serves it as `ttft_ms`
    # --- schema version 2 ---
    _c("total_tokens", _INT, "tokens", waterfall="copy"),
    _c("span_type", _STR, "genai", waterfall="copy"),
    _c("prompt_name", _STR, "genai", waterfall="copy"),
    _c("prompt_version", _STR, "genai", waterfall="copy"),
    _c("tags", _STRS, "genai"),
    _c("metadata", pa.map_(pa.string(), pa.string()), "genai"),
    _c("stream_ended_by", _STR, "genai"),
    _c("tool_name", _STR, "genai", waterfall="copy"),
    _c("tool_call_id", _STR, "genai", dictionary=False),
    _c("agent_name", _STR, "genai", waterfall="copy"),
    _c("server_address", _STR, "genai"),
    _c("cost_usd", COST_TYPE, "cost", waterfall="read"),
    _c("cost_input_usd", COST_TYPE, "cost"),
    _c("cost_output_usd", COST_TYPE, "cost"),
    _c("cost_known", pa.bool_(), "cost", waterfall="copy"),
    _c("cost_source", _STR, "cost"),
    _c("llm_dup", pa.bool_(), "internal", waterfall="read"),
    _c("content_refs", pa.list_(CONTENT_REF_TYPE), "internal", dictionary=False, statistics=False),
    _c("content_bytes", _INT, "internal"),
    # --- schema version 3 ---
    # The cost the instrumentation itself reported (LiteLLM, OpenInference, OpenLIT), as normalized from
    # the span, kept beside ours: `cost_usd` takes it (`cost_source` "reported") only when the price
    # source does not know the model.
    _c("reported_cost_usd", COST_TYPE, "genai"),
)

# Span columns derived from the others when a span file is written (the writer, compaction: `storage.derived`),
# never decoded: the decoder fills `SPAN_COLUMNS`, and a file of an older version lacks these (readers fall
# back to their sources).
DERIVED_SPAN_COLUMNS: tuple[Column, ...] = (
    # --- schema version 4 ---
    # `content_refs` as the waterfall shows them, JSON `[[kind, bytes], ...]`, null exactly where the refs
    # are: DuckDB reads a list of structs whole (the hashes were a third of a waterfall's scan) and skips the
    # rows of a nested column by decoding them, a string column by its lengths.
    _c("content_sizes", pa.string(), "internal", waterfall="read", statistics=False),
)


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    """The Parquet/Arrow schema of a dataset's columns (with the schema version in its metadata)."""
    return pa.schema([c.field() for c in columns], metadata=_META)


def names(columns: Sequence[Column], *roles: Role) -> tuple[str, ...]:
    """The names of the columns (of these roles, when given), in declaration order."""
    return tuple(c.name for c in columns if not roles or c.role in roles)


def token_names(span_columns: Sequence[Column]) -> tuple[str, ...]:
    """The token counts of a span, in declaration order: what every usage sum adds up."""
    return names(span_columns, "tokens")


def genai_names(span_columns: Sequence[Column]) -> tuple[str, ...]:
    """The columns a span's detail serves in its `genai` map (canonical GenAI columns and token counts)."""
    return names(span_columns, "genai", "tokens")


def waterfall_names(span_columns: Sequence[Column]) -> tuple[str, ...]:
    """The span columns the waterfall query selects."""
    return tuple(c.name for c in span_columns if c.waterfall)


def waterfall_copied(span_columns: Sequence[Column]) -> tuple[Column, ...]:
    """The columns served in each waterfall row as they are (the others are structural or converted)."""
    return tuple(c for c in span_columns if c.waterfall == "copy")


def _t(
    name: str, type_: pa.DataType, merge: Merge, *, served: bool = False, source: str = "", dictionary: bool = True
) -> Column:
    return Column(name, type_, "span", merge=merge, served=served, source=source, dictionary=dictionary)


def trace_columns(span_columns: Sequence[Column]) -> tuple[Column, ...]:
    """The trace summary (delta) columns; the token columns are those of `span_columns`, summed."""
    tokens = [Column(c.name, c.type, "tokens", merge="sum", served=True) for c in span_columns if c.role == "tokens"]
    # A delta is one trace's: its id, times, root span and previews are distinct in a file (no dictionary).
    return (
        _t("trace_id", _STR, "key", served=True, dictionary=False),
        _t("updated_ns", _INT, "max"),
        _t("start_ns", _INT, "min", dictionary=False),
        _t("end_ns", _INT, "max", dictionary=False),
        _t("has_root", pa.bool_(), "or"),
        _t("root_span_id", _STR, "root", served=True, source="span_id", dictionary=False),
        _t("root_name", _STR, "root", source="name"),
        _t("root_service", _STR, "root", source="service_name"),
        _t("root_status", _STR, "root", source="status_code"),
        _t("services", _STRS, "union", served=True),
        _t("span_count", _INT, "sum", served=True),
        _t("llm_calls", _INT, "sum", served=True),
        _t("error_count", _INT, "sum", served=True),
        *tokens,
        Column("cost_usd", COST_TYPE, "cost", merge="sum", served=True),
        _t("cost_unknown", _INT, "sum", served=True),
        _t("session_id", _STR, "first", served=True),
        _t("user_id", _STR, "first", served=True),
        _t("prompts", _STRS, "union", served=True),  # "name@version" (or "name" when unversioned)
        _t("models", _STRS, "union", served=True),
        _t("providers", _STRS, "union", served=True),
        _t("tags", _STRS, "union", served=True),
        _t("prompt_names", _STRS, "union"),  # for the prompt filter only
        # Previews of captured content (`processors.previews`; null when no content was captured): the
        # first line of the last user message of the trace's earliest-starting LLM call, and of the
        # answer of its latest-ending one, each with the time that orders it across deltas.
        _preview("preview_input", _STR, "arg_min", source="preview_input_ns"),
        _preview("preview_input_ns", _INT, "min"),
        _preview("preview_output", _STR, "arg_max", source="preview_output_ns"),
        _preview("preview_output_ns", _INT, "max"),
    )


def _preview(name: str, type_: pa.DataType, merge: Merge, *, source: str = "") -> Column:
    """A trace's preview column (or its time): distinct per trace, and the text's min/max read by nothing."""
    text = type_ == _STR
    return Column(
        name, type_, "content", merge=merge, served=text, source=source, dictionary=False, statistics=not text
    )


def without_content(columns: Sequence[Column]) -> tuple[Column, ...]:
    """The columns not taken from captured content (what is served where content is only on request)."""
    return tuple(c for c in columns if c.role != "content")


TRACE_COLUMNS = trace_columns(SPAN_COLUMNS)

# The trace fields whose distinct values the API serves (`GET /v1/traces/values`, the UI's pickers) →
# the trace summary column holding them (a list column holds several values per trace).
TRACE_VALUE_COLUMNS: dict[str, Column] = {
    field: next(c for c in TRACE_COLUMNS if c.name == name)
    for field, name in (
        ("service", "services"),
        ("model", "models"),
        ("provider", "providers"),
        ("session", "session_id"),
        ("user", "user_id"),
        ("tag", "tags"),
    )
}

# One row per distinct item: hash and body are distinct in a file (no dictionary); readers look items up by
# hash (a file is sorted by it), none by body.
CONTENT_COLUMNS: tuple[Column, ...] = (
    _c("hash", _STR, dictionary=False),
    _c("body", _STR, dictionary=False, statistics=False),
    _c("bytes", _INT),
    _c("first_seen_ns", _INT),
)

# A late duplicate mark: the span it marks (its keys), and when it was found.
LLM_DUP_COLUMNS: tuple[Column, ...] = (
    Column("trace_id", _STR, merge="key"),
    Column("span_id", _STR, merge="key"),
    _c("marked_ns", _INT),
)

# A score: what it is attached to (trace, span and/or session), its name and value. `value` holds a
# number (booleans as 1/0), `label` a category (booleans as "true"/"false"); `data_type` says which
# of numeric, boolean, categorical it is. Partitioned by the date of `time_ns`.
SCORE_COLUMNS: tuple[Column, ...] = (
    _c("id", _STR),
    _c("trace_id", _STR),
    _c("span_id", _STR),
    _c("session_id", _STR),
    _c("name", _STR),
    _c("data_type", _STR),
    _c("value", pa.float64()),
    _c("label", _STR),
    _c("comment", _STR),
    _c("source", _STR),
    _c("author", _STR),
    _c("time_ns", _INT),
    _c("received_ns", _INT),
)
SCORE_DATA_TYPES: tuple[str, ...] = ("numeric", "boolean", "categorical")
SCORE_SOURCES: tuple[str, ...] = ("human", "api", "eval")

SPAN_SCHEMA = arrow_schema(SPAN_COLUMNS)  # as decoded
STORED_SPAN_SCHEMA = arrow_schema((*SPAN_COLUMNS, *DERIVED_SPAN_COLUMNS))  # as written
SCORE_SCHEMA = arrow_schema(SCORE_COLUMNS)
TRACE_DELTA_SCHEMA = arrow_schema(TRACE_COLUMNS)
CONTENT_SCHEMA = arrow_schema(CONTENT_COLUMNS)
LLM_DUP_SCHEMA = arrow_schema(LLM_DUP_COLUMNS)

COLUMN_NAMES: tuple[str, ...] = names(SPAN_COLUMNS)
TOKEN_COLUMNS: tuple[str, ...] = token_names(SPAN_COLUMNS)

# Buffer-only column: captured content items of each span, taken out by the content store at
# flush and never written to the span files. Each entry is a list of (hash, body) pairs.
CONTENT_ITEMS = "content_items"
BUFFER_COLUMNS: tuple[str, ...] = (*COLUMN_NAMES, CONTENT_ITEMS)

# Content items as decoded (per request partition), before the content store stamps and stores them.
CONTENT_ITEM_SCHEMA = pa.schema([("hash", pa.string()), ("body", pa.string())])
