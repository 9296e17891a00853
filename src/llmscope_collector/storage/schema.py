"""The span table's Parquet schema: the single source of column names and types.

Columns are only ever added; `SCHEMA_VERSION` goes into every file's metadata so a later reader
can tell which columns a file may lack (DuckDB reads files with `union_by_name`).
`project` and `date` are not stored in the files: they come from the Hive partition path.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1"

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
    ],
    metadata={"llmscope.schema_version": SCHEMA_VERSION},
)

COLUMN_NAMES: tuple[str, ...] = tuple(SPAN_SCHEMA.names)
