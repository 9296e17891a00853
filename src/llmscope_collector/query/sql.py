"""Every SQL text the query layer runs, with bound parameters only.

Request values are always bound (`$name`); they never reach these strings. Queries whose shape
depends on the request (which filters, which grouping) are assembled here from the fragments of
fixed allowlists (`TRACE_FILTERS`, `GROUP_KEYS`, `SORT_KEYS`, `INTERVALS`), keyed by names the API
validated. File globs are bound too (`$glob`), built by `storage.layout` from validated names.

Two in-memory tables, kept by `query.index`, back the list views: `traces` (per-trace summaries
merged from the stitcher's deltas) and `llm_dups` (LLM spans found to be nested duplicates late).

Column lists are never typed here: the builders below derive them (tables, merges, SELECT lists,
usage sums) from the dataset declarations in `storage.schema`, so a declared column is read,
merged and summed without touching this file.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from llmscope_collector.storage.schema import (
    DERIVED_SPAN_COLUMNS,
    LLM_DUP_COLUMNS,
    LLM_OPERATIONS,
    SPAN_COLUMNS,
    TRACE_COLUMNS,
    TRACE_VALUE_COLUMNS,
    Column,
    token_names,
    waterfall_names,
)

SPANS = "read_parquet($glob, hive_partitioning = true, union_by_name = true)"
# ... with each row's file and row number in it (`filename`, `file_row_number`)
SPANS_LOCATED = (
    "read_parquet($glob, hive_partitioning = true, union_by_name = true, filename = true, file_row_number = true)"
)
FILES = "read_parquet($files, hive_partitioning = true, union_by_name = true)"
# One trace's span files, named (`TraceStore.trace_rows`): no glob to expand, and columns matched by name
# across files (`$by_name`) only where there are several (~0.8 ms of a waterfall's ~13 of CPU at 10M spans).
SPAN_FILES = "read_parquet($files, hive_partitioning = true, union_by_name = $by_name)"
SPAN_FILES_LOCATED = (
    "read_parquet($files, hive_partitioning = true, union_by_name = $by_name, filename = true, file_row_number = true)"
)
LLM_OPERATION_SET = frozenset(LLM_OPERATIONS)
_LLM_LIST = ", ".join(f"'{op}'" for op in LLM_OPERATIONS)  # constants of storage.schema.LLM_OPERATIONS

# An LLM call that counts: not a nested duplicate of its LLM parent (flagged at ingest or later).
COUNTED_LLM = f"""s.operation IN ({_LLM_LIST})
  AND NOT coalesce(s.llm_dup, false)
  AND NOT EXISTS (SELECT 1 FROM llm_dups d
                  WHERE d.project = s.project AND d.trace_id = s.trace_id AND d.span_id = s.span_id)"""  # noqa: S608

# Span time range, with the date partitions it touches (hive pruning).
SPAN_RANGE = "s.start_ns >= $from_ns AND s.start_ns < $to_ns AND s.date >= $from_date AND s.date <= $to_date"

# ---------------------------------------------------------------------------------------------
# Column lists derived from the declarations (storage.schema)

_DUCKDB_TYPES = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.bool_(): "BOOLEAN", pa.float64(): "DOUBLE"}
SUM_DECIMAL = "DECIMAL(38, 12)"  # a sum of `COST_TYPE` values: exact, with room for any total


def duckdb_type(column: Column) -> str:
    """The DuckDB type of a declared column (a summed decimal widened so that sums never overflow)."""
    type_ = column.type
    if pa.types.is_decimal(type_):
        return SUM_DECIMAL if column.merge == "sum" else f"DECIMAL({type_.precision}, {type_.scale})"
    if pa.types.is_list(type_):
        return f"{duckdb_type(Column(column.name, type_.value_type))}[]"
    return _DUCKDB_TYPES[type_]


def _ddl(table: str, columns: Sequence[tuple[str, str]]) -> str:
    return f"CREATE TABLE IF NOT EXISTS {table} (\n  " + ", ".join(f"{n} {t}" for n, t in columns) + "\n)"


def _sum_type(column: Column) -> str:
    return SUM_DECIMAL if pa.types.is_decimal(column.type) else "BIGINT"


def trace_table(columns: Sequence[Column]) -> str:
    """The `traces` table: `project` (from the partition path) and every trace summary column."""
    return _ddl("traces", [("project", "VARCHAR"), *((c.name, duckdb_type(c)) for c in columns)])


def trace_column_list(columns: Sequence[Column]) -> str:
    return ", ".join(["project", *(c.name for c in columns)])


def _union(column: str) -> str:
    return f"list_sort(list_distinct(flatten(list({column}) FILTER (WHERE {column} IS NOT NULL)))) AS {column}"


def _merged(column: Column) -> str:
    """The aggregate that merges one (non-root) column of a trace's deltas."""
    name = column.name
    if column.merge == "sum":
        return f"sum({name})::{_sum_type(column)} AS {name}"
    if column.merge == "union":
        return _union(name)
    if column.merge == "first":
        return f"arg_min({name}, start_ns) FILTER (WHERE {name} IS NOT NULL) AS {name}"
    if column.merge in ("arg_min", "arg_max"):
        return f"{column.merge}({name}, {column.source}) FILTER (WHERE {name} IS NOT NULL) AS {name}"
    function = {"min": "min", "max": "max", "or": "bool_or"}[column.merge]
    return f"{function}({name}) AS {name}"


def trace_merge(columns: Sequence[Column]) -> str:
    """Merge deltas (or merged rows plus new deltas, from `src`) into one row per trace: sums, min/max,
    unions; the root columns are taken together, from one root span (as one record)."""
    keys = [c.name for c in columns if c.merge == "key"]
    roots = [c.name for c in columns if c.merge == "root"]
    outer = [f"root.{c.name} AS {c.name}" if c.merge == "root" else c.name for c in columns]
    record = ", ".join(f"'{name}': {name}" for name in roots)
    inner = [_merged(c) for c in columns if c.merge not in ("key", "root")]
    if roots:
        inner.append(f"max({{{record}}}) FILTER (WHERE {roots[0]} IS NOT NULL) AS root")
    group = ", ".join(["project", *keys])
    return f"""
SELECT {", ".join(["project", *outer])}
FROM (
  SELECT {", ".join([group, *inner])}
  FROM src
  GROUP BY {group}
)"""  # noqa: S608 - derived from the declared columns


def trace_single(columns: Sequence[Column]) -> str:
    """`trace_merge` of a trace with one delta: that delta, normalized as the merge would."""
    presence = next((c.name for c in columns if c.merge == "root"), "NULL")
    parts = ["project"]
    for column in columns:
        name = column.name
        if column.merge == "root":
            parts.append(f"CASE WHEN {presence} IS NOT NULL THEN {name} END AS {name}")
        elif column.merge == "union":
            parts.append(f"list_sort(list_distinct({name})) AS {name}")
        elif column.merge == "sum":
            parts.append(f"{name}::{_sum_type(column)} AS {name}")
        else:
            parts.append(name)
    return ", ".join(parts)


def trace_row(columns: Sequence[Column]) -> str:
    """A trace list row: every summary column of `traces t`, its duration and its state."""
    return ", ".join([*(f"t.{c.name}" for c in columns), "t.end_ns - t.start_ns AS duration_ns", f"{_STATE} AS state"])


def waterfall_spans(span_columns: Sequence[Column], many: bool = False, located: bool = False) -> str:
    """One trace's span rows for the waterfall: the columns it reads or copies (among them the derived
    `content_sizes`, each ref's kind and size), unordered (the caller sorts a trace's few rows: DuckDB's sort
    costs ~1.3 ms of its ~13 of CPU); `located`: for files without `content_sizes` (schema version < 4),
    where each row is instead (its file and row number, with `content_bytes`, null without content) for
    `query.content_kinds` to read the refs' kinds and sizes; both over the files `$files` of the trace's dates
    (`TraceStore.trace_rows` lists them); `many`: the rows of the traces `$trace_ids` in the dates' partitions,
    sorted, with those kinds and sizes read here (a page of traces reads most of its row groups' refs)."""
    if many:
        return f"""
SELECT {", ".join(["project", *waterfall_names(span_columns)])},
       list_transform(content_refs, lambda r: {{'kind': r.kind, 'bytes': r.bytes}}) AS content
FROM {SPANS}
WHERE trace_id IN (SELECT unnest($trace_ids::VARCHAR[])) AND date >= $from_date AND date <= $to_date
ORDER BY trace_id, start_ns, span_id
"""  # noqa: S608 - derived from the declared columns, values are bound
    if located:
        return f"""
SELECT {", ".join(["project", *waterfall_names(span_columns)])}, content_bytes, filename, file_row_number
FROM {SPAN_FILES_LOCATED}
WHERE trace_id = $trace_id
"""  # noqa: S608 - derived from the declared columns, values are bound
    return f"""
SELECT {", ".join(["project", *waterfall_names(span_columns)])}, content_bytes
FROM {SPAN_FILES}
WHERE trace_id = $trace_id
"""  # noqa: S608 - derived from the declared columns, values are bound


def usage_columns(span_columns: Sequence[Column]) -> tuple[str, ...]:
    """What a usage total holds: calls, every token count, cost and unpriced calls."""
    return ("llm_calls", *token_names(span_columns), "cost_usd", "cost_unknown")


def usage_sums(span_columns: Sequence[Column], table: str = "s") -> str:
    """The usage totals of counted LLM span rows (`table` = `s`), or re-summed partial rows (`p`)."""
    tokens = [f"sum({table}.{name})::BIGINT AS {name}" for name in token_names(span_columns)]
    if table == "s":
        calls = ["count(*) AS llm_calls"]
        cost = [
            "sum(s.cost_usd) FILTER (WHERE s.cost_known) AS cost_usd",
            "count(*) FILTER (WHERE NOT coalesce(s.cost_known, false)) AS cost_unknown",
        ]
    else:
        calls = [f"sum({table}.llm_calls)::BIGINT AS llm_calls"]
        cost = [f"sum({table}.cost_usd) AS cost_usd", f"sum({table}.cost_unknown)::BIGINT AS cost_unknown"]
    return ",\n  ".join([*calls, *tokens, *cost])


def partials_table(span_columns: Sequence[Column]) -> str:
    """`llm_partials`: per span file, hour and group keys (see `_PARTIAL_OF_SPAN`), the usage sums."""
    columns = [("file", "VARCHAR"), ("project", "VARCHAR"), ("date", "DATE"), ("hour", "TIMESTAMP")]
    columns += [(n, "VARCHAR") for n in ("model", "provider", "service", "prompt_name", "prompt_version")]
    usage = [(n, SUM_DECIMAL if n == "cost_usd" else "BIGINT") for n in usage_columns(span_columns)]
    return _ddl("llm_partials", [*columns, *usage])


def _session_sums(trace_columns: Sequence[Column]) -> list[Column]:
    """The trace summary columns a session adds up over its traces."""
    return [c for c in trace_columns if c.merge == "sum"]


def session_aggregates(trace_columns: Sequence[Column]) -> str:
    sums = [f"sum(t.{c.name})::{_sum_type(c)} AS {c.name}" for c in _session_sums(trace_columns)]
    return ",\n  ".join(
        [
            "min(t.start_ns) AS first_ns",
            "max(t.end_ns) AS last_ns",
            "count(*) AS trace_count",
            *sums,
            "count(*) FILTER (WHERE t.error_count > 0) AS error_traces",
            "arg_min(t.user_id, t.start_ns) FILTER (WHERE t.user_id IS NOT NULL) AS user_id",
        ]
    )


def _session_table_columns(trace_columns: Sequence[Column]) -> list[tuple[str, str]]:
    sums = [(c.name, duckdb_type(c)) for c in _session_sums(trace_columns)]
    head = [("session_id", "VARCHAR"), ("first_ns", "BIGINT"), ("last_ns", "BIGINT"), ("trace_count", "BIGINT")]
    return [*head, *sums, ("error_traces", "BIGINT"), ("user_id", "VARCHAR")]


def session_table(trace_columns: Sequence[Column]) -> str:
    return _ddl("sessions", [("project", "VARCHAR"), *_session_table_columns(trace_columns)])


def session_column_list(trace_columns: Sequence[Column]) -> str:
    return ", ".join(name for name, _ in _session_table_columns(trace_columns))


# ---------------------------------------------------------------------------------------------
# Summary index (in-memory tables)

# The state of a trace: its root arrived; or it is still within the idle window; or it never will.
_STATE = """CASE WHEN t.has_root THEN 'complete'
            WHEN $now_ns - t.updated_ns > $idle_ns THEN 'incomplete' ELSE 'in_progress' END"""

CREATE_TRACES = trace_table(TRACE_COLUMNS)

# Point lookups of one trace (waterfall, stream) would scan every summary row without it: ~10 ms at 1.8M
# traces, ~1 ms with it. `CREATE OR REPLACE TABLE` drops it, so a full reload creates it again.
INDEX_TRACES = "CREATE INDEX IF NOT EXISTS traces_trace_id ON traces (trace_id)"

# The marks' keys only (when a mark was made does not matter to a query).
_DUP_KEYS = [c for c in LLM_DUP_COLUMNS if c.merge == "key"]
_DUP_COLUMNS = ", ".join(["project", *(c.name for c in _DUP_KEYS)])
CREATE_LLM_DUPS = _ddl("llm_dups", [("project", "VARCHAR"), *((c.name, duckdb_type(c)) for c in _DUP_KEYS)])

_TRACE_COLUMNS = trace_column_list(TRACE_COLUMNS)
_MERGE = trace_merge(TRACE_COLUMNS)
_SINGLE = trace_single(TRACE_COLUMNS)

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

LOAD_DUPS_FULL = f"CREATE OR REPLACE TABLE llm_dups AS SELECT {_DUP_COLUMNS} FROM {FILES}"  # noqa: S608
APPEND_DUPS = f"INSERT INTO llm_dups BY NAME SELECT {_DUP_COLUMNS} FROM {FILES}"  # noqa: S608
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

TRACE_ROW = trace_row(TRACE_COLUMNS)

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
    "score": "k.score",  # a score's average per trace, bound (`$score_traces`, `$score_values`): see _SCORE_KEYS
}
# The traces a score sort lists, with their sort keys (computed from the scores dataset by query.scores).
_SCORE_KEYS = """JOIN (SELECT unnest($score_traces::VARCHAR[]) AS trace_id, unnest($score_values::DOUBLE[]) AS score) k
  ON k.trace_id = t.trace_id"""
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
    join = _SCORE_KEYS if sort == "score" else ""
    return f"""
SELECT {TRACE_ROW}, {key} AS sort_key
FROM traces t {join}
WHERE {" AND ".join(where)}
ORDER BY {key} {direction}, t.trace_id {direction}
LIMIT $limit"""  # noqa: S608 - fragments from allowlists only


def trace_values(field: str, filters: list[str], prefix: bool) -> str:
    """The distinct values of a picker field (`storage.schema.TRACE_VALUE_COLUMNS`) over the traces the
    (allowlisted, time) filters keep, each with its trace count; most frequent first, then by value."""
    column = TRACE_VALUE_COLUMNS[field]
    value = f"unnest(t.{column.name})" if pa.types.is_list(column.type) else f"t.{column.name}"
    where = ["t.project = $project", *(TRACE_FILTERS[f] for f in filters)]
    match = ["v.value IS NOT NULL", *(["starts_with(lower(v.value), lower($prefix))"] if prefix else [])]
    return f"""
SELECT v.value AS value, count(*) AS trace_count
FROM (SELECT {value} AS value FROM traces t WHERE {" AND ".join(where)}) v
WHERE {" AND ".join(match)}
GROUP BY v.value
ORDER BY trace_count DESC, v.value
LIMIT $limit"""  # noqa: S608 - fragments from allowlists only


# Score metrics: the models or prompt versions of given traces (`$trace_ids`), a summary list column.
TRACE_KEYS: dict[str, str] = {
    group: f"""SELECT t.trace_id AS trace_id, t.{column} AS keys FROM traces t
WHERE t.project = $project AND t.trace_id IN (SELECT unnest($trace_ids::VARCHAR[]))"""  # noqa: S608
    for group, column in (("model", "models"), ("prompt", "prompts"))
}

# What a waterfall or span detail needs of its trace's summary: where its spans are (dates, how many), its
# state, session and user (binding every summary column cost DuckDB a millisecond more than the lookup itself).
TRACE_PLACE = f"""
SELECT t.start_ns, t.end_ns - t.start_ns AS duration_ns, t.span_count, t.session_id, t.user_id, {_STATE} AS state
FROM traces t WHERE t.project = $project AND t.trace_id = $trace_id"""  # noqa: S608

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

TRACE_SPANS = waterfall_spans((*SPAN_COLUMNS, *DERIVED_SPAN_COLUMNS))
TRACE_SPANS_LOCATED = waterfall_spans(SPAN_COLUMNS, located=True)  # files older than `content_sizes`
MANY_TRACE_SPANS = waterfall_spans(SPAN_COLUMNS, many=True)

SPAN_DETAIL = f"""
SELECT * EXCLUDE (project)
FROM {SPANS}
WHERE trace_id = $trace_id AND span_id = $span_id AND date >= $from_date AND date <= $to_date
LIMIT 1
"""  # noqa: S608

# What makes the lookup database parse one file's footer into its cache (query.footers): a count is answered
# from the footer's row group sizes, no data page is read.
FILE_FOOTER = "SELECT count(*) AS n FROM read_parquet($file)"

CONTENT_BODIES = f"SELECT DISTINCT ON (hash) hash, body FROM {SPANS} WHERE list_contains($hashes, hash)"  # noqa: S608

LATE_DUP = "SELECT count(*) AS n FROM llm_dups WHERE project = $project AND trace_id = $trace_id AND span_id = $span_id"

COUNTS = f"SELECT count(*) AS spans, count(DISTINCT trace_id) AS traces FROM {SPANS}"  # noqa: S608
# /health counts spans alone from the files' footers by default (query.span_rows, without DuckDB), since
# counting distinct trace ids scans every span file (~1 s of CPU at 10M spans, for each probe).

# ---------------------------------------------------------------------------------------------
# Sessions (over the summary table)

_SESSION_AGG = session_aggregates(TRACE_COLUMNS)
_SESSION_COLUMNS = session_column_list(TRACE_COLUMNS)
CREATE_SESSIONS = session_table(TRACE_COLUMNS)

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

USAGE_COLUMNS = usage_columns(SPAN_COLUMNS)
COST_GROUPS_LIMIT = 10_000
_USAGE_SUMS = usage_sums(SPAN_COLUMNS)

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

CREATE_PARTIALS = partials_table(SPAN_COLUMNS)

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
_PARTIAL_SUMS = usage_sums(SPAN_COLUMNS, "p")

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
