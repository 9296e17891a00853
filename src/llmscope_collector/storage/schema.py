"""Parquet schemas of every dataset: the single source of column names and types.

Columns are only ever added; `SCHEMA_VERSION` goes into every file's metadata so a later reader
can tell which columns a file may lack (DuckDB reads files with `union_by_name`).
`project` and `date` are not stored in the files: they come from the Hive partition path.

Datasets:
- spans: one row per span, light columns only (captured prompt/completion text is not here).
- content: captured content, one row per distinct message/payload (content-addressed), so a chat
  that resends its whole history stores each message once; spans keep only `content_refs`.
- traces: per-trace summary *deltas* written by the stitcher at each flush; a trace's summary is
  the merge (sums, min/max, unions) of its deltas, so late spans just add a delta.
- llm_dups: LLM spans found to be nested duplicates only after they were written (their LLM parent
  arrived in a later flush); aggregates skip them like rows flagged `llm_dup`.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "2"
_META = {"llmscope.schema_version": SCHEMA_VERSION}

# USD with 12 decimals: exact sums (DuckDB sums DECIMAL exactly), sub-nano-dollar per-token prices.
COST_TYPE = pa.decimal128(18, 12)

# A span's reference to one content item: what it is (`kind`: input, output, system, tools, ...),
# which attribute it came from (`source`), its content address and its size.
CONTENT_REF_TYPE = pa.struct(
    [("kind", pa.string()), ("source", pa.string()), ("hash", pa.string()), ("bytes", pa.int64())]
)

SPAN_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("trace_state", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("start_ns", pa.int64()),
        ("end_ns", pa.int64()),
        ("duration_ns", pa.int64()),
        ("status_code", pa.string()),
        ("status_message", pa.string()),
        ("service_name", pa.string()),
        ("scope_name", pa.string()),
        ("scope_version", pa.string()),
        ("resource_attributes", pa.string()),
        ("attributes", pa.string()),
        ("events", pa.string()),
        ("links", pa.string()),
        # Canonical GenAI columns (normalized from gen_ai.*, OpenInference, OpenLLMetry).
        ("operation", pa.string()),
        ("provider", pa.string()),
        ("request_model", pa.string()),
        ("response_model", pa.string()),
        ("response_id", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cache_read_tokens", pa.int64()),
        ("cache_write_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("finish_reasons", pa.list_(pa.string())),
        ("error_type", pa.string()),
        ("session_id", pa.string()),
        ("user_id", pa.string()),
        ("is_stream", pa.bool_()),
        ("ttft_s", pa.float64()),
        # --- schema version 2 ---
        ("total_tokens", pa.int64()),
        ("span_type", pa.string()),
        ("prompt_name", pa.string()),
        ("prompt_version", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("metadata", pa.map_(pa.string(), pa.string())),
        ("stream_ended_by", pa.string()),
        ("tool_name", pa.string()),
        ("tool_call_id", pa.string()),
        ("agent_name", pa.string()),
        ("server_address", pa.string()),
        ("cost_usd", COST_TYPE),
        ("cost_input_usd", COST_TYPE),
        ("cost_output_usd", COST_TYPE),
        ("cost_known", pa.bool_()),
        ("cost_source", pa.string()),
        ("llm_dup", pa.bool_()),
        ("content_refs", pa.list_(CONTENT_REF_TYPE)),
        ("content_bytes", pa.int64()),
    ],
    metadata=_META,
)

COLUMN_NAMES: tuple[str, ...] = tuple(SPAN_SCHEMA.names)

# Buffer-only column: captured content items of each span, taken out by the content store at
# flush and never written to the span files. Each entry is a list of (hash, body) pairs.
CONTENT_ITEMS = "content_items"
BUFFER_COLUMNS: tuple[str, ...] = (*COLUMN_NAMES, CONTENT_ITEMS)

# Content items as decoded (per request partition), before the content store stamps and stores them.
CONTENT_ITEM_SCHEMA = pa.schema([("hash", pa.string()), ("body", pa.string())])

CONTENT_SCHEMA = pa.schema(
    [
        ("hash", pa.string()),
        ("body", pa.string()),
        ("bytes", pa.int64()),
        ("first_seen_ns", pa.int64()),
    ],
    metadata=_META,
)

TRACE_DELTA_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("updated_ns", pa.int64()),
        ("start_ns", pa.int64()),
        ("end_ns", pa.int64()),
        ("has_root", pa.bool_()),
        ("root_span_id", pa.string()),
        ("root_name", pa.string()),
        ("root_service", pa.string()),
        ("root_status", pa.string()),
        ("services", pa.list_(pa.string())),
        ("span_count", pa.int64()),
        ("llm_calls", pa.int64()),
        ("error_count", pa.int64()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cache_read_tokens", pa.int64()),
        ("cache_write_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("total_tokens", pa.int64()),
        ("cost_usd", COST_TYPE),
        ("cost_unknown", pa.int64()),
        ("session_id", pa.string()),
        ("user_id", pa.string()),
        ("prompts", pa.list_(pa.string())),  # "name@version" (or "name" when unversioned)
        ("models", pa.list_(pa.string())),
        ("providers", pa.list_(pa.string())),
        ("tags", pa.list_(pa.string())),
        ("prompt_names", pa.list_(pa.string())),
    ],
    metadata=_META,
)

LLM_DUP_SCHEMA = pa.schema(
    [("trace_id", pa.string()), ("span_id", pa.string()), ("marked_ns", pa.int64())],
    metadata=_META,
)
