"""Every SQL text the query layer runs, with bound parameters only.

Request values are always bound (`$name`); they never reach these strings. Queries whose shape
depends on the request (which filters, which grouping) are assembled here from the fragments of
fixed allowlists (`TRACE_FILTERS`, `GROUP_KEYS`, `SORT_KEYS`, `INTERVALS`), keyed by names the API
validated. File globs are bound too (`$glob`), built by `storage.layout` from validated names.

Two in-memory tables, kept by `query.index`, back the list views: `traces` (per-trace summaries
merged from the stitcher's deltas) and `llm_dups` (LLM spans found to be nested duplicates late).
"""

from __future__ import annotations

from llmscope_collector.processors.normalize import LLM_OPERATIONS

SPANS = "read_parquet($glob, hive_partitioning = true, union_by_name = true)"
FILES = "read_parquet($files, hive_partitioning = true, union_by_name = true)"
LLM_OPERATION_SET = frozenset(LLM_OPERATIONS)
_LLM_LIST = ", ".join(f"'{op}'" for op in LLM_OPERATIONS)  # constants of normalize.LLM_OPERATIONS

# An LLM call that counts: not a nested duplicate of its LLM parent (flagged at ingest or later).
COUNTED_LLM = f"""s.operation IN ({_LLM_LIST})
  AND NOT coalesce(s.llm_dup, false)
  AND NOT EXISTS (SELECT 1 FROM llm_dups d
                  WHERE d.project = s.project AND d.trace_id = s.trace_id AND d.span_id = s.span_id)"""  # noqa: S608

# Span time range, with the date partitions it touches (hive pruning).
SPAN_RANGE = "s.start_ns >= $from_ns AND s.start_ns < $to_ns AND s.date >= $from_date AND s.date <= $to_date"

# ---------------------------------------------------------------------------------------------
# Summary index (in-memory tables)

CREATE_TRACES = """
CREATE TABLE IF NOT EXISTS traces (
  project VARCHAR, trace_id VARCHAR, start_ns BIGINT, end_ns BIGINT, updated_ns BIGINT, has_root BOOLEAN,
  root_span_id VARCHAR, root_name VARCHAR, root_service VARCHAR, root_status VARCHAR, services VARCHAR[],
  span_count BIGINT, llm_calls BIGINT, error_count BIGINT, input_tokens BIGINT, output_tokens BIGINT,
  cache_read_tokens BIGINT, cache_write_tokens BIGINT, reasoning_tokens BIGINT, total_tokens BIGINT,
  cost_usd DECIMAL(38, 12), cost_unknown BIGINT, session_id VARCHAR, user_id VARCHAR, prompts VARCHAR[],
  models VARCHAR[], providers VARCHAR[], tags VARCHAR[], prompt_names VARCHAR[]
)"""

# Point lookups of one trace (waterfall, stream) would scan every summary row without it: ~10 ms at 1.8M
# traces, ~1 ms with it. `CREATE OR REPLACE TABLE` drops it, so a full reload creates it again.
INDEX_TRACES = "CREATE INDEX IF NOT EXISTS traces_trace_id ON traces (trace_id)"

CREATE_LLM_DUPS = "CREATE TABLE IF NOT EXISTS llm_dups (project VARCHAR, trace_id VARCHAR, span_id VARCHAR)"

_TRACE_COLUMNS = """project, trace_id, start_ns, end_ns, updated_ns, has_root, root_span_id, root_name, root_service,
  root_status, services, span_count, llm_calls, error_count, input_tokens, output_tokens, cache_read_tokens,
  cache_write_tokens, reasoning_tokens, total_tokens, cost_usd, cost_unknown, session_id, user_id, prompts, models,
  providers, tags, prompt_names"""


def _union(column: str) -> str:
    return f"list_sort(list_distinct(flatten(list({column}) FILTER (WHERE {column} IS NOT NULL)))) AS {column}"


# Merge deltas (or merged rows plus new deltas) into one row per trace: sums, min/max, unions.
_MERGE = f"""
SELECT project, trace_id, start_ns, end_ns, updated_ns, has_root, root.id AS root_span_id, root.name AS root_name,
       root.service AS root_service, root.status AS root_status, services, span_count, llm_calls, error_count,
       input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, total_tokens, cost_usd,
       cost_unknown, session_id, user_id, prompts, models, providers, tags, prompt_names
FROM (
  SELECT project, trace_id, min(start_ns) AS start_ns, max(end_ns) AS end_ns, max(updated_ns) AS updated_ns,
         bool_or(has_root) AS has_root,
         max({{'id': root_span_id, 'name': root_name, 'service': root_service, 'status': root_status}})
           FILTER (WHERE root_span_id IS NOT NULL) AS root,
         {_union("services")},
         sum(span_count)::BIGINT AS span_count, sum(llm_calls)::BIGINT AS llm_calls,
         sum(error_count)::BIGINT AS error_count, sum(input_tokens)::BIGINT AS input_tokens,
         sum(output_tokens)::BIGINT AS output_tokens, sum(cache_read_tokens)::BIGINT AS cache_read_tokens,
         sum(cache_write_tokens)::BIGINT AS cache_write_tokens, sum(reasoning_tokens)::BIGINT AS reasoning_tokens,
         sum(total_tokens)::BIGINT AS total_tokens, sum(cost_usd)::DECIMAL(38, 12) AS cost_usd,
         sum(cost_unknown)::BIGINT AS cost_unknown,
         arg_min(session_id, start_ns) FILTER (WHERE session_id IS NOT NULL) AS session_id,
         arg_min(user_id, start_ns) FILTER (WHERE user_id IS NOT NULL) AS user_id,
         {_union("prompts")}, {_union("models")}, {_union("providers")}, {_union("tags")}, {_union("prompt_names")}
  FROM src
  GROUP BY project, trace_id
)"""  # noqa: S608 - constant text

# `_MERGE` of a trace with one delta: that delta, normalized as the merge would (lists sorted, distinct).
_SINGLE = """project, trace_id, start_ns, end_ns, updated_ns, has_root,
  CASE WHEN root_span_id IS NOT NULL THEN root_span_id END AS root_span_id,
  CASE WHEN root_span_id IS NOT NULL THEN root_name END AS root_name,
  CASE WHEN root_span_id IS NOT NULL THEN root_service END AS root_service,
  CASE WHEN root_span_id IS NOT NULL THEN root_status END AS root_status,
  list_sort(list_distinct(services)) AS services, span_count::BIGINT AS span_count, llm_calls::BIGINT AS llm_calls,
  error_count::BIGINT AS error_count, input_tokens::BIGINT AS input_tokens, output_tokens::BIGINT AS output_tokens,
  cache_read_tokens::BIGINT AS cache_read_tokens, cache_write_tokens::BIGINT AS cache_write_tokens,
  reasoning_tokens::BIGINT AS reasoning_tokens, total_tokens::BIGINT AS total_tokens,
  cost_usd::DECIMAL(38, 12) AS cost_usd, cost_unknown::BIGINT AS cost_unknown, session_id, user_id,
  list_sort(list_distinct(prompts)) AS prompts, list_sort(list_distinct(models)) AS models,
  list_sort(list_distinct(providers)) AS providers, list_sort(list_distinct(tags)) AS tags,
  list_sort(list_distinct(prompt_names)) AS prompt_names"""

# Nearly every trace has one delta (its spans arrive in one flush): those skip the grouping, which made the
# cold load ~2x slower at 1.8M traces. A NULL start goes through `_MERGE` (arg_min ignores it there).
LOAD_TRACES_FULL = f"""
CREATE OR REPLACE TABLE traces AS
WITH deltas AS (SELECT {_TRACE_COLUMNS}, count(*) OVER (PARTITION BY project, trace_id) AS n FROM {FILES}),
src AS (SELECT * EXCLUDE (n) FROM deltas WHERE n > 1 OR start_ns IS NULL)
SELECT {_SINGLE} FROM deltas WHERE n = 1 AND start_ns IS NOT NULL
UNION ALL BY NAME
{_MERGE}"""  # noqa: S608 - constant text

STAGE_DELTAS = f"CREATE OR REPLACE TEMP TABLE delta_stage AS SELECT {_TRACE_COLUMNS} FROM {FILES}"  # noqa: S608

MERGE_STAGED = f"""
CREATE OR REPLACE TEMP TABLE merged_stage AS
WITH src AS (
  SELECT {_TRACE_COLUMNS} FROM traces
  WHERE (project, trace_id) IN (SELECT project, trace_id FROM delta_stage)
  UNION ALL BY NAME
  SELECT {_TRACE_COLUMNS} FROM delta_stage
)
{_MERGE}"""  # noqa: S608 - constant text

REPLACE_MERGED = [
    "DELETE FROM traces WHERE (project, trace_id) IN (SELECT project, trace_id FROM merged_stage)",
    "INSERT INTO traces BY NAME SELECT * FROM merged_stage",
    "DROP TABLE IF EXISTS delta_stage",
    "DROP TABLE IF EXISTS merged_stage",
]

LOAD_DUPS_FULL = f"CREATE OR REPLACE TABLE llm_dups AS SELECT project, trace_id, span_id FROM {FILES}"  # noqa: S608
APPEND_DUPS = f"INSERT INTO llm_dups SELECT project, trace_id, span_id FROM {FILES}"  # noqa: S608
CLEAR_TRACES = "DELETE FROM traces"
CLEAR_DUPS = "DELETE FROM llm_dups"

# The `sessions` table: one row per session, the aggregates of `_SESSION_AGG` over its traces, kept in step
# with `traces` (a page of the session list reads it instead of grouping every trace summary per request).
_SESSION_ROWS = """
INSERT INTO sessions BY NAME
SELECT t.project AS project, t.session_id AS session_id, {agg}
FROM traces t
WHERE t.session_id IS NOT NULL {where}
GROUP BY t.project, t.session_id"""

CLEAR_SESSIONS = "DELETE FROM sessions"

# Before `REPLACE_MERGED`: the sessions the merged traces belonged to (a trace may change session) ...
STAGE_TOUCHED_SESSIONS = """
CREATE OR REPLACE TEMP TABLE touched_sessions AS
SELECT DISTINCT project, session_id FROM traces
WHERE session_id IS NOT NULL AND (project, trace_id) IN (SELECT project, trace_id FROM merged_stage)
UNION
SELECT DISTINCT project, session_id FROM merged_stage WHERE session_id IS NOT NULL"""

# ---------------------------------------------------------------------------------------------
# Trace list

# The state of a trace: its root arrived; or it is still within the idle window; or it never will.
_STATE = """CASE WHEN t.has_root THEN 'complete'
            WHEN $now_ns - t.updated_ns > $idle_ns THEN 'incomplete' ELSE 'in_progress' END"""

TRACE_ROW = f"""t.trace_id, t.root_name, t.root_span_id, t.root_service, t.root_status, t.services, t.start_ns,
  t.end_ns - t.start_ns AS duration_ns, t.span_count, t.llm_calls, t.error_count, t.input_tokens, t.output_tokens,
  t.cache_read_tokens, t.cache_write_tokens, t.reasoning_tokens, t.total_tokens, t.cost_usd, t.cost_unknown,
  t.session_id, t.user_id, t.models, t.providers, t.prompts, t.tags, t.has_root, {_STATE} AS state"""

# A trace's cost as shown: NULL when every LLM call of it is unpriced (unknown is never $0).
_KNOWN_COST = "(CASE WHEN t.llm_calls > 0 AND t.cost_unknown >= t.llm_calls THEN NULL ELSE t.cost_usd END)"

# Filter name → predicate on `traces t`; `$name` is bound by the store (see query.filters).
TRACE_FILTERS: dict[str, str] = {
    "from_ns": "t.start_ns >= $from_ns",
    "to_ns": "t.start_ns < $to_ns",
    "service": "list_contains(t.services, $service)",
    "model": "list_contains(t.models, $model)",
    "provider": "list_contains(t.providers, $provider)",
    "errors": "t.error_count > 0",
    "no_errors": "t.error_count = 0",
    "session": "t.session_id = $session",
    "user": "t.user_id = $user",
    "prompt_name": "list_contains(t.prompt_names, $prompt_name)",
    "prompt_ref": "list_contains(t.prompts, $prompt_ref)",
    "tag": "list_contains(t.tags, $tag)",
    "min_duration_ns": "t.end_ns - t.start_ns >= $min_duration_ns",
    "min_cost": f"{_KNOWN_COST} >= $min_cost",
    "min_tokens": "t.total_tokens >= $min_tokens",
    "state": f"({_STATE}) = $state",
    "trace_ids": "list_contains($trace_ids, t.trace_id)",
}

# Sort name → the sort key expression (keyset pagination continues after (key, trace_id)).
SORT_KEYS: dict[str, str] = {
    "start": "t.start_ns",
    "duration": "(t.end_ns - t.start_ns)",
    "cost": f"coalesce({_KNOWN_COST}, -1)",  # unknown cost sorts below $0, and keyset paging needs no NULLs
    "tokens": "t.total_tokens",
}
_AFTER = {
    "desc": "({key} < $cursor_key OR ({key} = $cursor_key AND t.trace_id < $cursor_trace))",
    "asc": "({key} > $cursor_key OR ({key} = $cursor_key AND t.trace_id > $cursor_trace))",
}


def list_traces(filters: list[str], sort: str, order: str, after: bool) -> str:
    """The trace page query for these (allowlisted) filter names, sort key and direction."""
    key = SORT_KEYS[sort]
    where = ["t.project = $project", *(TRACE_FILTERS[f] for f in filters)]
    if after:
        where.append(_AFTER[order].format(key=key))
    direction = "DESC" if order == "desc" else "ASC"
    return f"""
SELECT {TRACE_ROW}, {key} AS sort_key
FROM traces t
WHERE {" AND ".join(where)}
ORDER BY {key} {direction}, t.trace_id {direction}
LIMIT $limit"""  # noqa: S608 - fragments from allowlists only


TRACE_SUMMARY = f"SELECT {TRACE_ROW} FROM traces t WHERE t.project = $project AND t.trace_id = $trace_id"  # noqa: S608

# Traces having a span whose attribute (or resource attribute) at JSON path $attr_path equals $attr_value.
ATTR_MATCH = f"""
SELECT DISTINCT s.trace_id FROM {SPANS} s
WHERE {SPAN_RANGE}
  AND (json_extract_string(s.attributes, $attr_path) = $attr_value
       OR json_extract_string(s.resource_attributes, $attr_path) = $attr_value)"""  # noqa: S608

CONTENT_SEARCH = f"""
SELECT DISTINCT hash FROM {SPANS} c
WHERE c.date >= $from_date AND c.date <= $to_date AND contains(lower(c.body), lower($q))
LIMIT 100000"""  # noqa: S608

SPANS_WITH_CONTENT = f"""
SELECT DISTINCT s.trace_id FROM {SPANS} s
WHERE {SPAN_RANGE} AND list_has_any(list_transform(s.content_refs, lambda r: r.hash), $hashes)"""  # noqa: S608

# ---------------------------------------------------------------------------------------------
# One trace, one span

TRACE_SPANS = f"""
SELECT project, trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, duration_ns,
       status_code, status_message, service_name, scope_name, operation, provider, request_model,
       response_model, response_id, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
       reasoning_tokens, total_tokens, finish_reasons, error_type, session_id, user_id, is_stream, ttft_s, events,
       span_type, prompt_name, prompt_version, tool_name, agent_name, cost_usd, cost_known, llm_dup,
       list_transform(content_refs, lambda r: {{'kind': r.kind, 'bytes': r.bytes}}) AS content
FROM {SPANS}
WHERE trace_id = $trace_id AND date >= $from_date AND date <= $to_date
ORDER BY start_ns, span_id
"""  # noqa: S608 - constant text, values are bound

SPAN_DETAIL = f"""
SELECT * EXCLUDE (project)
FROM {SPANS}
WHERE trace_id = $trace_id AND span_id = $span_id AND date >= $from_date AND date <= $to_date
LIMIT 1
"""  # noqa: S608

CONTENT_BODIES = f"SELECT DISTINCT ON (hash) hash, body FROM {SPANS} WHERE list_contains($hashes, hash)"  # noqa: S608

LATE_DUP = "SELECT count(*) AS n FROM llm_dups WHERE project = $project AND trace_id = $trace_id AND span_id = $span_id"

COUNTS = f"SELECT count(*) AS spans, count(DISTINCT trace_id) AS traces FROM {SPANS}"  # noqa: S608

# ---------------------------------------------------------------------------------------------
# Sessions (over the summary table)

_SESSION_AGG = """min(t.start_ns) AS first_ns, max(t.end_ns) AS last_ns, count(*) AS trace_count,
  sum(t.span_count)::BIGINT AS span_count, sum(t.llm_calls)::BIGINT AS llm_calls,
  sum(t.input_tokens)::BIGINT AS input_tokens, sum(t.output_tokens)::BIGINT AS output_tokens,
  sum(t.cache_read_tokens)::BIGINT AS cache_read_tokens, sum(t.cache_write_tokens)::BIGINT AS cache_write_tokens,
  sum(t.total_tokens)::BIGINT AS total_tokens, sum(t.cost_usd) AS cost_usd, sum(t.cost_unknown)::BIGINT AS cost_unknown,
  sum(t.error_count)::BIGINT AS error_count, count(*) FILTER (WHERE t.error_count > 0) AS error_traces,
  arg_min(t.user_id, t.start_ns) FILTER (WHERE t.user_id IS NOT NULL) AS user_id"""

_SESSION_COLUMNS = """session_id, first_ns, last_ns, trace_count, span_count, llm_calls, input_tokens, output_tokens,
  cache_read_tokens, cache_write_tokens, total_tokens, cost_usd, cost_unknown, error_count, error_traces, user_id"""

CREATE_SESSIONS = """
CREATE TABLE IF NOT EXISTS sessions (
  project VARCHAR, session_id VARCHAR, first_ns BIGINT, last_ns BIGINT, trace_count BIGINT, span_count BIGINT,
  llm_calls BIGINT, input_tokens BIGINT, output_tokens BIGINT, cache_read_tokens BIGINT, cache_write_tokens BIGINT,
  total_tokens BIGINT, cost_usd DECIMAL(38, 12), cost_unknown BIGINT, error_count BIGINT, error_traces BIGINT,
  user_id VARCHAR
)"""

LOAD_SESSIONS_FULL = [CLEAR_SESSIONS, _SESSION_ROWS.format(agg=_SESSION_AGG, where="")]

# ... and after it, those sessions' rows recomputed from their traces (deleted when none is left).
REPLACE_TOUCHED_SESSIONS = [
    "DELETE FROM sessions WHERE (project, session_id) IN (SELECT project, session_id FROM touched_sessions)",
    _SESSION_ROWS.format(
        agg=_SESSION_AGG,
        where="AND (t.project, t.session_id) IN (SELECT project, session_id FROM touched_sessions)",
    ),
    "DROP TABLE IF EXISTS touched_sessions",
]

# Filters select sessions (one of their traces matches); the aggregates are over the whole session.
SESSION_FILTERS: dict[str, str] = {
    "from_ns": "f.end_ns >= $from_ns",
    "to_ns": "f.start_ns < $to_ns",
    "user": "f.user_id = $user",
}
_SESSION_AFTER = "(last_ns < $cursor_key OR (last_ns = $cursor_key AND session_id < $cursor_session))"


def list_sessions(filters: list[str], after: bool) -> str:
    """A page of the `sessions` table; filters keep sessions having one matching trace (a semi-join on
    `traces`), the aggregates stay those of the whole session."""
    where = ["t.project = $project"]
    if filters:
        matching = " AND ".join(
            ["f.project = $project", "f.session_id IS NOT NULL", *(SESSION_FILTERS[f] for f in filters)]
        )
        where.append(f"t.session_id IN (SELECT f.session_id FROM traces f WHERE {matching})")  # noqa: S608
    if after:
        where.append(_SESSION_AFTER)
    return f"""
SELECT {_SESSION_COLUMNS}
FROM sessions t
WHERE {" AND ".join(where)}
ORDER BY last_ns DESC, session_id DESC
LIMIT $limit"""  # noqa: S608 - fragments from allowlists only


SESSION_LATENCY = """
SELECT t.session_id AS session_id,
       quantile_cont(t.end_ns - t.start_ns, [0.5, 0.95]) AS latency_ns
FROM traces t
WHERE t.project = $project AND list_contains($sessions, t.session_id)
GROUP BY t.session_id"""

SESSION_ONE = f"""
SELECT t.session_id AS session_id, {_SESSION_AGG},
       quantile_cont(t.end_ns - t.start_ns, [0.5, 0.95]) AS latency_ns
FROM traces t
WHERE t.project = $project AND t.session_id = $session
GROUP BY t.session_id"""  # noqa: S608

SESSION_TRACES = f"""
SELECT {TRACE_ROW} FROM traces t
WHERE t.project = $project AND t.session_id = $session
ORDER BY t.start_ns, t.trace_id
LIMIT $limit"""  # noqa: S608

SESSION_TRACE_IDS = "SELECT trace_id FROM traces WHERE project = $project AND session_id = $session"
SPAN_SESSION_TRACE_IDS = f"SELECT DISTINCT trace_id FROM {SPANS} WHERE session_id = $session"  # noqa: S608
FILES_WITH_TRACES = """
SELECT DISTINCT filename FROM read_parquet($glob, filename = true, union_by_name = true)
WHERE list_contains($trace_ids, trace_id)"""
REFERENCED_HASHES = f"SELECT DISTINCT unnest(list_transform(content_refs, lambda r: r.hash)) AS hash FROM {SPANS}"  # noqa: S608
DELETE_TRACES = "DELETE FROM traces WHERE project = $project AND list_contains($trace_ids, trace_id)"

# ---------------------------------------------------------------------------------------------
# Span-level roll-ups: costs, metrics, prompts (over counted LLM calls only)

# Group name → key expression; user/session fall back to the trace's (stitched) value.
GROUP_KEYS: dict[str, str] = {
    "model": "coalesce(s.response_model, s.request_model)",
    "provider": "s.provider",
    "project": "s.project",
    "service": "s.service_name",
    "user": "coalesce(s.user_id, t.user_id)",
    "session": "coalesce(s.session_id, t.session_id)",
    "prompt": "CASE WHEN s.prompt_version IS NULL THEN s.prompt_name ELSE s.prompt_name || '@' || s.prompt_version END",
    "day": "strftime(make_timestamp(s.start_ns // 1000), '%Y-%m-%d')",
    "hour": "strftime(date_trunc('hour', make_timestamp(s.start_ns // 1000)), '%Y-%m-%dT%H:00:00Z')",
}
_NEEDS_TRACE = frozenset({"user", "session"})
_TRACE_JOIN = "LEFT JOIN traces t ON t.project = s.project AND t.trace_id = s.trace_id"

USAGE_COLUMNS = (
    "llm_calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost_usd",
    "cost_unknown",
)
COST_GROUPS_LIMIT = 10_000
_USAGE_SUMS = """count(*) AS llm_calls, sum(s.input_tokens)::BIGINT AS input_tokens,
  sum(s.output_tokens)::BIGINT AS output_tokens, sum(s.cache_read_tokens)::BIGINT AS cache_read_tokens,
  sum(s.cache_write_tokens)::BIGINT AS cache_write_tokens, sum(s.reasoning_tokens)::BIGINT AS reasoning_tokens,
  sum(s.total_tokens)::BIGINT AS total_tokens,
  sum(s.cost_usd) FILTER (WHERE s.cost_known) AS cost_usd,
  count(*) FILTER (WHERE NOT coalesce(s.cost_known, false)) AS cost_unknown"""

# Optional span filters of the roll-ups.
SPAN_FILTERS: dict[str, str] = {
    "service": "s.service_name = $service",
    "model": "coalesce(s.response_model, s.request_model) = $model",
    "provider": "s.provider = $provider",
    "prompt_name": "s.prompt_name = $prompt_name",
}


def costs(group_by: list[str], filters: list[str]) -> str:
    keys = [f"{GROUP_KEYS[g]} AS key_{g}" for g in group_by]
    join = _TRACE_JOIN if _NEEDS_TRACE & set(group_by) else ""
    where = [COUNTED_LLM, SPAN_RANGE, *(SPAN_FILTERS[f] for f in filters)]
    group = f"GROUP BY {', '.join(f'key_{g}' for g in group_by)}" if group_by else ""
    return f"""
SELECT {", ".join([*keys, _USAGE_SUMS])}
FROM {SPANS} s {join}
WHERE {" AND ".join(where)}
{group}
ORDER BY cost_usd DESC NULLS LAST, llm_calls DESC
LIMIT {COST_GROUPS_LIMIT}"""  # noqa: S608 - fragments from allowlists only


_METRICS = f"""{_USAGE_SUMS},
  count(*) FILTER (WHERE s.status_code = 'ERROR') AS errors,
  quantile_cont(s.duration_ns, [0.5, 0.95, 0.99]) AS latency_ns,
  quantile_cont(s.ttft_s, [0.5, 0.95]) FILTER (WHERE s.ttft_s IS NOT NULL) AS ttft_s"""

# Interval name → DuckDB interval literal (allowlist).
INTERVALS: dict[str, str] = {"1m": "INTERVAL 1 MINUTE", "1h": "INTERVAL 1 HOUR", "1d": "INTERVAL 1 DAY"}
SERIES_GROUPS: dict[str, str] = {"model": GROUP_KEYS["model"], "service": GROUP_KEYS["service"]}


def metrics_summary(filters: list[str]) -> str:
    where = [COUNTED_LLM, SPAN_RANGE, *(SPAN_FILTERS[f] for f in filters)]
    return f"SELECT {_METRICS} FROM {SPANS} s WHERE {' AND '.join(where)}"  # noqa: S608 - allowlisted fragments


def metrics_series(interval: str, group_by: str | None, filters: list[str]) -> str:
    bucket = f"time_bucket({INTERVALS[interval]}, make_timestamp(s.start_ns // 1000))"
    key = f"{SERIES_GROUPS[group_by]} AS key" if group_by else "NULL::VARCHAR AS key"
    where = [COUNTED_LLM, SPAN_RANGE, *(SPAN_FILTERS[f] for f in filters)]
    return f"""
SELECT {bucket} AS bucket, {key}, {_METRICS}
FROM {SPANS} s
WHERE {" AND ".join(where)}
GROUP BY ALL
ORDER BY bucket, key
LIMIT 100000"""  # noqa: S608 - fragments from allowlists only


_PROMPT_STATS = f"""{_USAGE_SUMS},
  count(*) FILTER (WHERE s.status_code = 'ERROR') AS errors,
  avg(s.duration_ns) AS avg_duration_ns, avg(s.total_tokens) AS avg_tokens,
  min(s.start_ns) AS first_ns, max(s.start_ns) AS last_ns"""

PROMPTS = f"""
SELECT s.prompt_name AS name, count(DISTINCT s.prompt_version) AS versions, {_PROMPT_STATS}
FROM {SPANS} s
WHERE {COUNTED_LLM} AND {SPAN_RANGE} AND s.prompt_name IS NOT NULL
GROUP BY s.prompt_name
ORDER BY llm_calls DESC, name
LIMIT 10000"""  # noqa: S608

PROMPT_VERSIONS = f"""
SELECT s.prompt_version AS version, {_PROMPT_STATS}
FROM {SPANS} s
WHERE {COUNTED_LLM} AND {SPAN_RANGE} AND s.prompt_name = $prompt_name
GROUP BY s.prompt_version
ORDER BY last_ns DESC
LIMIT 10000"""  # noqa: S608

# ---------------------------------------------------------------------------------------------
# Cost partials (query.partials): per span file, the counted LLM calls summed by hour and by the
# span columns that group keys and filters are made of. A roll-up over them re-sums exact integers
# and decimals, so it equals the scan of the spans; user/session keys need `traces` and are not here.

CREATE_PARTIALS = """
CREATE TABLE IF NOT EXISTS llm_partials (
  file VARCHAR, project VARCHAR, date DATE, hour TIMESTAMP, model VARCHAR, provider VARCHAR, service VARCHAR,
  prompt_name VARCHAR, prompt_version VARCHAR, llm_calls BIGINT, input_tokens BIGINT, output_tokens BIGINT,
  cache_read_tokens BIGINT, cache_write_tokens BIGINT, reasoning_tokens BIGINT, total_tokens BIGINT,
  cost_usd DECIMAL(38, 12), cost_unknown BIGINT
)"""

# The partial columns of a span `s` (the hour keeps the day: `day` and `hour` keys are made from it).
# No range ever includes a negative start (`from_ns` >= 0), so such spans are left out of the partials.
_PARTIAL_OF_SPAN = """s.project AS project, s.date AS date,
  date_trunc('hour', make_timestamp(s.start_ns // 1000)) AS hour, coalesce(s.response_model, s.request_model) AS model,
  s.provider AS provider, s.service_name AS service, s.prompt_name AS prompt_name, s.prompt_version AS prompt_version"""

LOAD_PARTIALS = f"""
INSERT INTO llm_partials BY NAME
SELECT s.filename AS file, {_PARTIAL_OF_SPAN}, {_USAGE_SUMS}
FROM read_parquet($files, hive_partitioning = true, union_by_name = true, filename = true) s
WHERE {COUNTED_LLM} AND s.start_ns >= 0
GROUP BY ALL"""  # noqa: S608 - constant text

DROP_PARTIALS = "DELETE FROM llm_partials WHERE list_contains($files, file)"
CLEAR_PARTIALS = "DELETE FROM llm_partials"

# Group name → key expression over a partial row `p` (the same values as GROUP_KEYS over its spans).
PARTIAL_KEYS: dict[str, str] = {
    "model": "p.model",
    "provider": "p.provider",
    "project": "p.project",
    "service": "p.service",
    "prompt": "CASE WHEN p.prompt_version IS NULL THEN p.prompt_name ELSE p.prompt_name || '@' || p.prompt_version END",
    "day": "strftime(p.hour, '%Y-%m-%d')",
    "hour": "strftime(p.hour, '%Y-%m-%dT%H:00:00Z')",
}
PARTIAL_FILTERS: dict[str, str] = {
    "service": "p.service = $service",
    "model": "p.model = $model",
    "provider": "p.provider = $provider",
    "prompt_name": "p.prompt_name = $prompt_name",
}
_PARTIAL_SUMS = """sum(p.llm_calls)::BIGINT AS llm_calls, sum(p.input_tokens)::BIGINT AS input_tokens,
  sum(p.output_tokens)::BIGINT AS output_tokens, sum(p.cache_read_tokens)::BIGINT AS cache_read_tokens,
  sum(p.cache_write_tokens)::BIGINT AS cache_write_tokens, sum(p.reasoning_tokens)::BIGINT AS reasoning_tokens,
  sum(p.total_tokens)::BIGINT AS total_tokens, sum(p.cost_usd) AS cost_usd,
  sum(p.cost_unknown)::BIGINT AS cost_unknown"""

# Whole hours of the range come from the partials; spans of its partial first and last hours (`$edge_*`,
# half-open) from a scan of those hours' date partitions only (`$glob`).
_PARTIAL_HOURS = """p.project = $project AND p.hour >= make_timestamp($hours_from_ns // 1000)
  AND p.hour < make_timestamp($hours_to_ns // 1000) AND p.date >= $from_date AND p.date <= $to_date"""
_EDGE_SPANS = f"""
  SELECT {_PARTIAL_OF_SPAN}, {_USAGE_SUMS}
  FROM {SPANS} s
  WHERE {COUNTED_LLM} AND {SPAN_RANGE}
    AND ((s.start_ns >= $edge1_from_ns AND s.start_ns < $edge1_to_ns)
         OR (s.start_ns >= $edge2_from_ns AND s.start_ns < $edge2_to_ns))
  GROUP BY ALL"""  # noqa: S608 - constant text


def partial_costs(group_by: list[str], filters: list[str], edges: bool) -> str:
    """`costs(group_by, filters)` answered from the partials (plus the edge hours' spans when `edges`)."""
    source = f"SELECT * EXCLUDE (file) FROM llm_partials p WHERE {_PARTIAL_HOURS}"  # noqa: S608
    if edges:
        source += f"\n  UNION ALL BY NAME{_EDGE_SPANS}"
    keys = [f"{PARTIAL_KEYS[g]} AS key_{g}" for g in group_by]
    where = [PARTIAL_FILTERS[f] for f in filters] or ["true"]
    group = f"GROUP BY {', '.join(f'key_{g}' for g in group_by)}" if group_by else ""
    return f"""
SELECT {", ".join([*keys, _PARTIAL_SUMS])}
FROM ({source}) p
WHERE {" AND ".join(where)}
{group}
ORDER BY cost_usd DESC NULLS LAST, llm_calls DESC
LIMIT {COST_GROUPS_LIMIT}"""  # noqa: S608 - fragments from allowlists only
