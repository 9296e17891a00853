"""Every SQL text the query layer runs, with bound parameters only.

The Parquet glob is always the first parameter (`$glob`), built by `storage.layout`; request
values are never formatted into these strings.
"""

from __future__ import annotations

SPANS = "read_parquet($glob, hive_partitioning = true, union_by_name = true)"

TRACE_SPANS = f"""
SELECT project, trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, duration_ns,
       status_code, status_message, service_name, scope_name, operation, provider, request_model,
       response_model, response_id, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
       reasoning_tokens, finish_reasons, error_type, session_id, user_id, is_stream, ttft_s, events
FROM {SPANS}
WHERE trace_id = $trace_id
ORDER BY start_ns, span_id
"""  # noqa: S608 - constant text, values are bound

COUNTS = f"SELECT count(*) AS spans, count(DISTINCT trace_id) AS traces FROM {SPANS}"  # noqa: S608
