"""Every ClickHouse statement of the ClickHouse query engine, with server-side `{name:Type}` parameters only.

The counterpart of `query.sql` (DuckDB): the same queries, the same result columns, so the same
response builders (`query.rows`, `query.rollups.metrics`, `query.waterfall`) serve both engines.
Request values are always bound; shapes that depend on the request are assembled from the same
allowlisted names (`TRACE_FILTERS`, `GROUP_KEYS`, `SORT_KEYS`, `INTERVALS`). Column lists and types
come from the dataset declarations in `storage.schema`.

Tables (one per dataset, fed once per stored object by `clickhouse.loader`):
- `spans`: ReplacingMergeTree ordered by (project, trace_id, span_id): a trace is one range of the
  primary key, and a span stored twice (a replay on another collector) collapses when parts merge;
  its projection `llm_hours` holds the usage totals by hour that cost roll-ups read (`hourly_costs`).
- `trace_deltas`: the stitcher's per-trace deltas, ordered by (project, trace_id), as stored; a view
  feeds each insert into `trace_summaries`, an AggregatingMergeTree by (project, trace_id) of simple
  aggregates and aggregate states, which trace and session lists read (`TRACES` below finishes the
  merge with the same rules as DuckDB's index); its projection `by_start` orders the rows by start,
  for pages sorted by start (`traces_in_window`).
- `content`: ReplacingMergeTree by (project, hash, date); `llm_dups`: by (project, trace_id, span_id).
- `loaded_objects`: the object keys loaded, so nothing loads twice or is skipped after a crash.
Retention is a TTL on the partition date, per project (`retention_ttl`). Timestamps stay Int64 nanoseconds, as stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa

from llmscope_collector.storage.schema import (
    CONTENT_COLUMNS,
    LLM_DUP_COLUMNS,
    LLM_OPERATIONS,
    SPAN_COLUMNS,
    TRACE_COLUMNS,
    TRACE_VALUE_COLUMNS,
    Column,
    token_names,
    waterfall_names,
)

_SCALARS = {pa.string(): "String", pa.int64(): "Int64", pa.bool_(): "Bool", pa.float64(): "Float64"}
# Key columns cannot be Nullable in a sorting key; the stored values are never NULL.
KEY_COLUMNS = frozenset({"trace_id", "span_id", "hash"})


def ch_type(column: Column) -> str:
    """The ClickHouse type of a declared column (lists and maps are never NULL in ClickHouse: empty instead)."""
    type_ = column.type
    if pa.types.is_list(type_):
        value = type_.value_type
        if pa.types.is_struct(value):
            fields = ", ".join(f"{f.name} {ch_type(Column(f.name, f.type))}" for f in value)
            return f"Array(Tuple({fields}))"
        return f"Array({_SCALARS[value]})"
    if pa.types.is_map(type_):
        return f"Map({_SCALARS[type_.key_type]}, {_SCALARS[type_.item_type]})"
    base = f"Decimal({type_.precision}, {type_.scale})" if pa.types.is_decimal(type_) else _SCALARS[type_]
    return base if column.name in KEY_COLUMNS else f"Nullable({base})"


def structure(columns: Sequence[Column]) -> str:
    """The read structure of a dataset's Parquet files: declared columns missing from older files read as NULL."""
    return ", ".join(f"{c.name} {ch_type(c)}" for c in columns)


def _names(columns: Sequence[Column]) -> str:
    return ", ".join(c.name for c in columns)


def _table(name: str, columns: Sequence[Column], engine: str, order: str, extra: str = "", settings: str = "") -> str:
    return _ddl(name, [f"{c.name} {ch_type(c)}" for c in columns], engine, order, extra, settings)


def _ddl(name: str, definitions: Sequence[str], engine: str, order: str, extra: str = "", settings: str = "") -> str:
    cols = ", ".join(["project LowCardinality(String)", "date Date", *definitions])
    # Loads are tagged with the object key (insert_deduplication_token): a retried load is dropped.
    return f"""CREATE TABLE IF NOT EXISTS {name} ({cols}{extra})
ENGINE = {engine}
PARTITION BY toYYYYMM(date)
ORDER BY ({order})
SETTINGS non_replicated_deduplication_window = 100000{settings}"""


DATASET_COLUMNS: dict[str, tuple[Column, ...]] = {
    "spans": SPAN_COLUMNS,
    "traces": TRACE_COLUMNS,
    "content": CONTENT_COLUMNS,
    "llm_dups": LLM_DUP_COLUMNS,
}
TABLES = {"spans": "spans", "traces": "trace_deltas", "content": "content", "llm_dups": "llm_dups"}
LOAD_ORDER = ("content", "llm_dups", "traces", "spans")  # a span never shows before its content and marks


def create_tables() -> list[str]:
    """The DDL of every table; `SUMMARY_FEED_DDL` (the view feeding `trace_summaries`) is run after them by
    the loader, which backfills the summaries when it had to add them, and adds the spans' hourly sums
    (`llm_hours`) to a table made before them; retention is set apart (`retention`)."""
    return [
        _table(
            "spans",
            SPAN_COLUMNS,
            "ReplacingMergeTree",
            "project, trace_id, span_id",
            f", INDEX start_ns_minmax start_ns TYPE minmax GRANULARITY 1, {_llm_hours()}",
            f", {_SETTINGS_TEXT}",
        ),
        _table("trace_deltas", TRACE_COLUMNS, "MergeTree", "project, trace_id"),
        summary_table(),
        _table("content", CONTENT_COLUMNS, "ReplacingMergeTree", "project, hash, date"),
        _table("llm_dups", LLM_DUP_COLUMNS, "ReplacingMergeTree", "project, trace_id, span_id"),
        """CREATE TABLE IF NOT EXISTS loaded_objects (key String, dataset LowCardinality(String), loaded_ns Int64)
ENGINE = ReplacingMergeTree ORDER BY key""",
        """CREATE TABLE IF NOT EXISTS engine_settings (name String, value String, set_ns Int64)
ENGINE = ReplacingMergeTree(set_ns) ORDER BY name""",
    ]


def declared_columns() -> list[tuple[str, str, str]]:
    """(table, column, type) of every declared column of the data tables: a column added to a declaration
    since the tables were made is added to them (`ALTER TABLE … ADD COLUMN`), its older rows empty."""
    columns = [(TABLES[dataset], c.name, ch_type(c)) for dataset, cols in DATASET_COLUMNS.items() for c in cols]
    return columns + [(SUMMARY_TABLE, name, kind) for name, kind, _, _ in _summary_parts()]


TABLE_COLUMNS = "SELECT table, name FROM system.columns WHERE database = currentDatabase()"


def add_column(table: str, name: str, kind: str) -> str:
    return f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {kind}"  # declared names and types only


# ---------------------------------------------------------------------------------------------
# Retention: a TTL on every data table, from the collector's retention policy (storage.retention)

RETAINED_TABLES = ("spans", "trace_deltas", "trace_summaries", "content", "llm_dups")
SETTING = "SELECT argMax(value, set_ns) AS value FROM engine_settings WHERE name = {name:String}"
RECORD_SETTING = "INSERT INTO engine_settings (name, value, set_ns) VALUES ({name:String}, {value:String}, {ns:Int64})"


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def retention_ttl(default_days: int, project_days: Mapping[str, int]) -> str:
    """The TTL expression of a retention policy, '' when nothing expires. The rule of
    `storage.retention.is_expired`: a date's rows go once that whole UTC day ended `days` days ago,
    per project (`project_days` overrides `default_days`; 0 keeps forever)."""
    if default_days <= 0 and all(days <= 0 for days in project_days.values()):
        return ""
    cases = [f"project = {_literal(project)}, {int(days)}" for project, days in sorted(project_days.items())]
    days = f"multiIf({', '.join([*cases, str(int(default_days))])})" if cases else str(int(default_days))
    ttl = f"toDateTime(date, 'UTC') + toIntervalDay({days} + 1)"
    keeps = default_days <= 0 or any(d <= 0 for d in project_days.values())
    return f"{ttl} WHERE {days} > 0" if keeps else ttl


def set_ttl(table: str, ttl: str) -> str:
    """Applies to the rows already stored too (ClickHouse materializes a modified TTL)."""
    return f"ALTER TABLE {table} MODIFY TTL {ttl}" if ttl else f"ALTER TABLE {table} REMOVE TTL"


def load(dataset: str, source: str) -> str:
    """Load one object of `dataset` read by table function `source` (its project and date bound)."""
    columns = DATASET_COLUMNS[dataset]
    return f"""INSERT INTO {TABLES[dataset]} (project, date, {_names(columns)})
SELECT {{project:String}}, toDate({{date:String}}), {_names(columns)}
FROM {source}"""  # noqa: S608 - derived from the declarations; values and paths are bound


LOADED_KEYS = "SELECT key FROM loaded_objects"
RECORD_LOADED = (
    "INSERT INTO loaded_objects (key, dataset, loaded_ns) VALUES ({key:String}, {dataset:String}, {ns:Int64})"
)

# ---------------------------------------------------------------------------------------------
# Trace summaries: an AggregatingMergeTree fed from the deltas, merged per trace at query time with the
# same rules as query.sql.trace_merge (DuckDB)
#
# `trace_summaries` holds, per (project, date, trace) of each loaded deltas object, the aggregate of its
# deltas: simple aggregates (sums, min/max, unions) and aggregate states (the first session/user by start
# time, the root span's record). A materialized view fills it on every insert into `trace_deltas`, in the
# same insert, so the load's deduplication token covers it too. Background merges collapse a trace's rows
# into one; a query finishes the merge (`-Merge`, GROUP BY) for the rows not yet merged.

SUMMARY_TABLE = "trace_summaries"
SUMMARY_FEED = "trace_summaries_feed"
_ROOT = "root_record"


def _sum_type(column: Column) -> str:
    """The type ClickHouse's `sum` gives for a column (what a SimpleAggregateFunction(sum) must hold)."""
    type_ = column.type
    return f"Decimal(38, {type_.scale})" if pa.types.is_decimal(type_) else _SCALARS[type_]


def _aggregate(column: Column) -> tuple[str, str, str]:
    """(summary column type, its value from a group of deltas, the merge of summary rows) of one column."""
    name = column.name
    if column.merge == "sum":
        return f"SimpleAggregateFunction(sum, Nullable({_sum_type(column)}))", f"sum({name})", f"sum({name})"
    if column.merge == "union":
        kind = f"SimpleAggregateFunction(groupUniqArrayArray, {ch_type(column)})"
        return kind, f"groupUniqArrayArray({name})", f"arraySort(groupUniqArrayArray({name}))"
    if column.merge == "first":
        kind = f"AggregateFunction(argMinIf, {ch_type(column)}, {_START_TYPE}, UInt8)"
        return kind, f"argMinIfState({name}, start_ns, {name} IS NOT NULL)", f"argMinIfMerge({name})"
    if column.merge in ("arg_min", "arg_max"):  # the value at the least/greatest `source` (a min/max column)
        function = "argMinIf" if column.merge == "arg_min" else "argMaxIf"
        order = ch_type(next(c for c in TRACE_COLUMNS if c.name == column.source))
        kind = f"AggregateFunction({function}, {ch_type(column)}, {order}, UInt8)"
        return kind, f"{function}State({name}, {column.source}, {name} IS NOT NULL)", f"{function}Merge({name})"
    function = {"min": "min", "max": "max", "or": "max"}[column.merge]
    return f"SimpleAggregateFunction({function}, {ch_type(column)})", f"{function}({name})", f"{function}({name})"


_START_TYPE = ch_type(next(c for c in TRACE_COLUMNS if c.name == "start_ns"))
_ROOTS = [c for c in TRACE_COLUMNS if c.merge == "root"]
_AGGREGATED = [c for c in TRACE_COLUMNS if c.merge not in ("key", "root")]
_KEYS = [c.name for c in TRACE_COLUMNS if c.merge == "key"]


def _root_aggregate() -> tuple[str, str, str]:
    """The root columns as one record: the greatest of the root spans' (as DuckDB's `max` of a struct)."""
    record = ", ".join(c.name for c in _ROOTS)
    kind = f"AggregateFunction(maxIf, Tuple({', '.join(ch_type(c) for c in _ROOTS)}), UInt8)"
    return kind, f"maxIfState(tuple({record}), {_ROOTS[0].name} IS NOT NULL)", f"maxIfMerge({_ROOT})"


def _summary_parts() -> list[tuple[str, str, str, str]]:
    """(name, type, value from deltas, merge) of every aggregated summary column."""
    parts = [(c.name, *_aggregate(c)) for c in _AGGREGATED]
    if _ROOTS:
        parts.append((_ROOT, *_root_aggregate()))
    return parts


def summary_table() -> str:
    definitions = [f"{name} String" for name in _KEYS]
    definitions += [f"{name} {kind}" for name, kind, _, _ in _summary_parts()]
    order = ", ".join(["project", *_KEYS])
    return _ddl(SUMMARY_TABLE, definitions, "AggregatingMergeTree", order, f", {_BY_START}", f", {_SETTINGS_TEXT}")


def _summarize(source: str) -> str:
    """The summary rows of a deltas table `source` (inner aliases prefixed: none may shadow a column)."""
    group = ", ".join(["project", "date", *_KEYS])
    inner = ", ".join(f"{value} AS m_{name}" for name, _, value, _ in _summary_parts())
    outer = ", ".join(f"m_{name} AS {name}" for name, _, _, _ in _summary_parts())
    return f"""SELECT {group}, {outer}
FROM (SELECT {group}, {inner} FROM {source} GROUP BY {group})"""  # noqa: S608 - derived from the declarations


SUMMARY_FEED_DDL = (
    f"CREATE MATERIALIZED VIEW IF NOT EXISTS {SUMMARY_FEED} TO {SUMMARY_TABLE} AS\n{_summarize('trace_deltas')}"
)
DROP_SUMMARY_FEED = f"DROP VIEW IF EXISTS {SUMMARY_FEED}"
SUMMARY_BACKFILL = f"INSERT INTO {SUMMARY_TABLE}\n{_summarize('trace_deltas')}"
SUMMARY_TABLE_EXISTS = (
    "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = {name:String}"
)


def trace_merge(where: str) -> str:
    """One merged row per trace of the summary rows matching `where`, in the trace-summary columns."""
    inner = [f"{merge} AS m_{name}" for name, _, _, merge in _summary_parts()]
    outer: list[str] = []
    for column in TRACE_COLUMNS:
        if column.merge == "key":
            outer.append(column.name)
        elif column.merge == "root":
            outer.append(f"tupleElement(m_{_ROOT}, {_ROOTS.index(column) + 1}) AS {column.name}")
        else:
            outer.append(f"m_{column.name} AS {column.name}")
    group = ", ".join(["project", *_KEYS])
    return f"""SELECT {", ".join(["project", *outer])}
FROM (SELECT {", ".join([group, *inner])} FROM {SUMMARY_TABLE} WHERE {where} GROUP BY {group})"""  # noqa: S608


TRACES = f"traces AS ({trace_merge('project = {project:String}')})"
# The traces of the sessions `{sessions}` only: a trace's session is the first of its rows' sessions, so
# each such trace has a summary row whose own (finalized) session is one of them; those traces are merged
# by key, and the caller keeps the ones whose merged session is one of them.
_OF_SESSIONS = """project = {project:String} AND trace_id IN (SELECT trace_id FROM trace_summaries
  WHERE project = {project:String} AND has({sessions:Array(String)}, finalizeAggregation(session_id)))"""
SESSIONS_TRACES = f"traces AS ({trace_merge(_OF_SESSIONS)})"
ONE_TRACE = f"traces AS ({trace_merge('project = {project:String} AND trace_id = {trace_id:String}')})"

STATE = """CASE WHEN t.has_root THEN 'complete'
            WHEN {now_ns:Int64} - t.updated_ns > {idle_ns:Int64} THEN 'incomplete' ELSE 'in_progress' END"""
TRACE_ROW = ", ".join(
    [*(f"t.{c.name} AS {c.name}" for c in TRACE_COLUMNS), "t.end_ns - t.start_ns AS duration_ns", f"{STATE} AS state"]
)
KNOWN_COST = "(CASE WHEN t.llm_calls > 0 AND t.cost_unknown >= t.llm_calls THEN NULL ELSE t.cost_usd END)"
SUM_DECIMAL = "Decimal(38, 12)"

TRACE_FILTERS: dict[str, str] = {
    "from_ns": "t.start_ns >= {from_ns:Int64}",
    "to_ns": "t.start_ns < {to_ns:Int64}",
    "service": "has(t.services, {service:String})",
    "model": "has(t.models, {model:String})",
    "provider": "has(t.providers, {provider:String})",
    "errors": "t.error_count > 0",
    "no_errors": "t.error_count = 0",
    "session": "t.session_id = {session:String}",
    "user": "t.user_id = {user:String}",
    "prompt_name": "has(t.prompt_names, {prompt_name:String})",
    "prompt_ref": "has(t.prompts, {prompt_ref:String})",
    "tag": "has(t.tags, {tag:String})",
    "min_duration_ns": "t.end_ns - t.start_ns >= {min_duration_ns:Int64}",
    "min_cost": f"{KNOWN_COST} >= {{min_cost:{SUM_DECIMAL}}}",
    "min_tokens": "t.total_tokens >= {min_tokens:Int64}",
    "state": f"({STATE}) = {{state:String}}",
    "trace_ids": "has({trace_ids:Array(String)}, t.trace_id)",
}
# Filters a trace can pass only if one of its summary rows does (a union holds a value if a row's array
# does; a trace's first session is one of its rows'): the list merges only the traces with such a row.
_ROW_FILTERS: dict[str, str] = {
    "service": "has(services, {service:String})",
    "model": "has(models, {model:String})",
    "provider": "has(providers, {provider:String})",
    "prompt_name": "has(prompt_names, {prompt_name:String})",
    "prompt_ref": "has(prompts, {prompt_ref:String})",
    "tag": "has(tags, {tag:String})",
    "session": "finalizeAggregation(session_id) = {session:String}",
}


def _narrowed(filters: list[str]) -> str:
    """The summary rows a trace list merges: the project's, of the traces that can pass `filters`."""
    where = ["project = {project:String}"]
    if "trace_ids" in filters:
        where.append("has({trace_ids:Array(String)}, trace_id)")
    where += [
        f"trace_id IN (SELECT trace_id FROM {SUMMARY_TABLE} WHERE project = {{project:String}} AND {_ROW_FILTERS[f]})"  # noqa: S608
        for f in filters
        if f in _ROW_FILTERS
    ]
    return f"traces AS ({trace_merge(' AND '.join(where))})"


SORT_KEYS: dict[str, str] = {
    "start": "t.start_ns",
    "duration": "(t.end_ns - t.start_ns)",
    "cost": f"coalesce({KNOWN_COST}, toDecimal128(-1, 12))",
    "tokens": "t.total_tokens",
    "score": "k.score",
}
_SORT_TYPES = {"start": "Int64", "duration": "Int64", "cost": SUM_DECIMAL, "tokens": "Int64", "score": "Float64"}
_SCORE_KEYS = """INNER JOIN (
  SELECT tupleElement(p, 1) AS trace_id, tupleElement(p, 2) AS score
  FROM (SELECT arrayJoin(arrayZip({score_traces:Array(String)}, {score_values:Array(Float64)})) AS p)) k
  ON k.trace_id = t.trace_id"""
_AFTER = {
    "desc": "({key} < {{cursor_key:{type}}}"
    " OR ({key} = {{cursor_key:{type}}} AND t.trace_id < {{cursor_trace:String}}))",
    "asc": "({key} > {{cursor_key:{type}}}"
    " OR ({key} = {{cursor_key:{type}}} AND t.trace_id > {{cursor_trace:String}}))",
}


def list_traces(filters: list[str], sort: str, order: str, after: bool) -> str:
    """A page of the trace list, in two steps within one statement: the page's trace ids, chosen from the
    merged columns the filters and the sort read (ClickHouse computes only those for every trace); then
    the full rows of those ids only (the id condition reaches the summaries' key: a few granules). One
    pass computing every column of every trace (unions, states) costs ~30 times more at 1M spans."""
    key = SORT_KEYS[sort]
    where = ["t.project = {project:String}", *(TRACE_FILTERS[f] for f in filters)]
    if after:
        where.append(_AFTER[order].format(key=key, type=_SORT_TYPES[sort]))
    direction = "DESC" if order == "desc" else "ASC"
    join = _SCORE_KEYS if sort == "score" else ""
    page = f"""SELECT t.trace_id FROM traces t {join}
  WHERE {" AND ".join(where)}
  ORDER BY {key} {direction}, t.trace_id {direction}
  LIMIT {{limit:UInt32}}"""  # noqa: S608 - fragments from allowlists only
    return f"""WITH {_narrowed(filters)}
SELECT {TRACE_ROW}, {key} AS sort_key
FROM traces t {join}
WHERE t.project = {{project:String}} AND t.trace_id IN ({page})
ORDER BY sort_key {direction}, t.trace_id {direction}"""  # noqa: S608 - fragments from allowlists only


# Trace pages by start time, from a window of summary rows. A trace's start is the least of its summary
# rows' starts, and one row has it: so every trace starting in `[window_from, window_to)` has a row starting
# there, which the projection `by_start` (each row's project, start and trace id, ordered by project and
# start) finds without reading the others' rows. Those traces are merged by key (all their rows: the
# merge is exact) and kept when their merged start is in the window; the caller picks the window from
# the page's end of the range (`WINDOW_EDGE`: the start of the row `offset` rows in) and widens it
# until it holds the page or covers the range.

BY_START = "by_start"
_BY_START = f"PROJECTION {BY_START} (SELECT project, start_ns, trace_id ORDER BY (project, start_ns))"
_IN_WINDOW = "start_ns >= {window_from:Int64} AND start_ns < {window_to:Int64}"
WINDOW_EDGE: dict[str, str] = {
    order: f"""SELECT start_ns AS edge FROM {SUMMARY_TABLE}
WHERE project = {{project:String}} AND start_ns >= {{lower:Int64}} AND start_ns < {{upper:Int64}}
ORDER BY start_ns {order.upper()} LIMIT 1 OFFSET {{offset:UInt64}}"""  # noqa: S608 - constant text
    for order in ("asc", "desc")
}


def traces_in_window(filters: list[str], order: str, after: bool) -> str:
    """`list_traces` sorted by start, over the traces starting in the window only: the page's ids from
    the merged columns its filters read, then the full rows of those ids (as `list_traces`)."""
    rows = f"SELECT trace_id FROM {SUMMARY_TABLE} WHERE project = {{project:String}} AND {_IN_WINDOW}"  # noqa: S608
    where = ["t.project = {project:String}", _IN_WINDOW.replace("start_ns", "t.start_ns")]
    where += [TRACE_FILTERS[f] for f in filters]
    if after:
        where.append(_AFTER[order].format(key=SORT_KEYS["start"], type=_SORT_TYPES["start"]))
    direction = "DESC" if order == "desc" else "ASC"
    page = f"""SELECT t.trace_id FROM traces t
  WHERE {" AND ".join(where)}
  ORDER BY t.start_ns {direction}, t.trace_id {direction}
  LIMIT {{limit:UInt32}}"""  # noqa: S608 - fragments from allowlists only
    return f"""WITH traces AS ({trace_merge(f"project = {{project:String}} AND trace_id IN ({rows})")})
SELECT {TRACE_ROW}, t.start_ns AS sort_key
FROM traces t
WHERE t.project = {{project:String}} AND t.trace_id IN ({page})
ORDER BY sort_key {direction}, t.trace_id {direction}"""  # noqa: S608 - fragments from allowlists only


def trace_values(field: str, filters: list[str], prefix: bool) -> str:
    """`query.sql.trace_values` here: over the project's merged summaries (of which ClickHouse computes the
    field's column and those the time filters read only)."""
    column = TRACE_VALUE_COLUMNS[field]
    value = f"arrayJoin(t.{column.name})" if pa.types.is_list(column.type) else f"t.{column.name}"
    where = ["t.project = {project:String}", *(TRACE_FILTERS[f] for f in filters)]
    match = ["v.value IS NOT NULL", *(["startsWith(lowerUTF8(v.value), lowerUTF8({prefix:String}))"] if prefix else [])]
    return f"""WITH {_narrowed([])}
SELECT v.value AS value, count() AS trace_count
FROM (SELECT {value} AS value FROM traces t WHERE {" AND ".join(where)}) v
WHERE {" AND ".join(match)}
GROUP BY v.value
ORDER BY trace_count DESC, v.value
LIMIT {{limit:UInt32}}"""  # noqa: S608 - fragments from allowlists only


TRACE_KEYS: dict[str, str] = {
    group: f"""WITH {TRACES}
SELECT t.trace_id AS trace_id, t.{column} AS keys FROM traces t
WHERE has({{trace_ids:Array(String)}}, t.trace_id)"""  # noqa: S608
    for group, column in (("model", "models"), ("prompt", "prompts"))
}

TRACE_SUMMARY = f"WITH {ONE_TRACE} SELECT {TRACE_ROW} FROM traces t"  # noqa: S608

# ---------------------------------------------------------------------------------------------
# Spans of one project

_LLM_LIST = ", ".join(f"'{op}'" for op in LLM_OPERATIONS)  # constants of storage.schema
PROJECT_SPANS = "s.project = {project:String}"
SPAN_RANGE = """s.start_ns >= {from_ns:Int64} AND s.start_ns < {to_ns:Int64}
  AND s.date >= {from_date:Date} AND s.date <= {to_date:Date}"""
COUNTED_LLM = f"""s.operation IN ({_LLM_LIST})
  AND NOT coalesce(s.llm_dup, false)
  AND (s.trace_id, s.span_id) NOT IN (
    SELECT d.trace_id, d.span_id FROM llm_dups d WHERE d.project = {{project:String}})"""  # noqa: S608


def _attr(column: str) -> str:
    """The attribute at key `{attr_key}` as DuckDB's `json_extract_string` gives it: a string's value, else its JSON."""
    key = "{attr_key:String}"
    return (
        f"(JSONHas({column}, {key}) AND JSONType({column}, {key}) != 'Null' AND "
        f"if(JSONType({column}, {key}) = 'String', JSONExtractString({column}, {key}), "
        f"JSONExtractRaw({column}, {key})) = {{attr_value:String}})"
    )


ATTR_MATCH = f"""SELECT DISTINCT s.trace_id AS trace_id FROM spans s
WHERE {PROJECT_SPANS} AND {SPAN_RANGE}
  AND ({_attr("s.attributes")} OR {_attr("s.resource_attributes")})"""  # noqa: S608

CONTENT_SEARCH = """SELECT DISTINCT c.hash AS hash FROM content c
WHERE c.project = {project:String} AND c.date >= {from_date:Date} AND c.date <= {to_date:Date}
  AND position(lowerUTF8(c.body), lowerUTF8({q:String})) > 0
LIMIT 100000"""

SPANS_WITH_CONTENT = f"""SELECT DISTINCT s.trace_id AS trace_id FROM spans s
WHERE {PROJECT_SPANS} AND {SPAN_RANGE}
  AND hasAny(arrayMap(r -> tupleElement(r, 'hash'), s.content_refs), {{hashes:Array(String)}})"""  # noqa: S608

_WATERFALL = ", ".join(f"s.{name} AS {name}" for name in waterfall_names(SPAN_COLUMNS))
TRACE_SPANS = f"""SELECT s.project AS project, {_WATERFALL}, s.content_refs AS content_refs
FROM spans s
WHERE {PROJECT_SPANS} AND s.trace_id = {{trace_id:String}}
  AND s.date >= {{from_date:Date}} AND s.date <= {{to_date:Date}}
ORDER BY s.start_ns, s.span_id"""  # noqa: S608

MANY_TRACE_SPANS = f"""SELECT s.project AS project, {_WATERFALL}, s.content_refs AS content_refs
FROM spans s
WHERE {PROJECT_SPANS} AND has({{trace_ids:Array(String)}}, s.trace_id)
  AND s.date >= {{from_date:Date}} AND s.date <= {{to_date:Date}}
ORDER BY s.trace_id, s.start_ns, s.span_id"""  # noqa: S608

SPAN_DETAIL = """SELECT * EXCEPT (project) FROM spans s
WHERE s.project = {project:String} AND s.trace_id = {trace_id:String} AND s.span_id = {span_id:String}
  AND s.date >= {from_date:Date} AND s.date <= {to_date:Date}
LIMIT 1"""

CONTENT_BODIES = """SELECT c.hash AS hash, any(c.body) AS body FROM content c
WHERE c.project = {project:String} AND c.date = {date:Date} AND has({hashes:Array(String)}, c.hash)
GROUP BY c.hash"""

LATE_DUP = """SELECT count() AS n FROM llm_dups d
WHERE d.project = {project:String} AND d.trace_id = {trace_id:String} AND d.span_id = {span_id:String}"""

COUNTS = "SELECT count() AS spans, uniqExact(trace_id) AS traces FROM spans"
SPAN_ROWS = "SELECT count() AS spans FROM spans"  # from the parts' row counts, no column read

# Session deletion (lightweight DELETE: the rows are hidden at once, removed from disk by merges)
TRACE_TABLES = ("spans", "trace_deltas", "trace_summaries", "llm_dups")  # every table with a trace's rows


SESSION_TRACE_IDS = f"""WITH {SESSIONS_TRACES}
SELECT t.trace_id AS trace_id FROM traces t WHERE has({{sessions:Array(String)}}, t.session_id)"""  # noqa: S608


def delete_traces(table: str) -> str:
    return f"DELETE FROM {table} WHERE project = {{project:String}} AND has({{trace_ids:Array(String)}}, trace_id)"  # noqa: S608 - a table of TRACE_TABLES


DELETE_CONTENT = """DELETE FROM content
WHERE project = {project:String} AND date = {date:Date} AND has({hashes:Array(String)}, hash)"""

# ---------------------------------------------------------------------------------------------
# Sessions: grouped from the merged trace summaries at query time, a page in two statements (`session_page`,
# then `SESSION_ROWS` for its sessions only)


def _session_sums(trace_columns: Sequence[Column]) -> list[Column]:
    return [c for c in trace_columns if c.merge == "sum"]


_SESSION_INNER = ",\n  ".join(
    [
        "min(t.start_ns) AS m_first_ns",
        "max(t.end_ns) AS m_last_ns",
        "count() AS m_trace_count",
        *(f"sum(t.{c.name}) AS m_{c.name}" for c in _session_sums(TRACE_COLUMNS)),
        "countIf(t.error_count > 0) AS m_error_traces",
        "argMinIf(t.user_id, t.start_ns, t.user_id IS NOT NULL) AS m_user_id",
    ]
)
_SESSION_NAMES = [
    "first_ns",
    "last_ns",
    "trace_count",
    *(c.name for c in _session_sums(TRACE_COLUMNS)),
    "error_traces",
    "user_id",
]
_SESSION_OUTER = ", ".join(["session_id", *(f"m_{n} AS {n}" for n in _SESSION_NAMES)])
SESSION_FILTERS: dict[str, str] = {
    "from_ns": "f.end_ns >= {from_ns:Int64}",
    "to_ns": "f.start_ns < {to_ns:Int64}",
    "user": "f.user_id = {user:String}",
}
_SESSION_AFTER = """(max(t.end_ns) < {cursor_key:Int64}
  OR (max(t.end_ns) = {cursor_key:Int64} AND t.session_id < {cursor_session:String}))"""


def session_page(filters: list[str], after: bool) -> str:
    """The ids of a page of sessions (by last activity): the first of a page's two statements. It reads
    only a trace's session, end and the filters' columns, so the aggregates and latency percentiles of
    every session are not computed to show fifty (`SESSION_ROWS`)."""
    where = ["t.project = {project:String}", "t.session_id IS NOT NULL"]
    if filters:
        matching = " AND ".join(["f.session_id IS NOT NULL", *(SESSION_FILTERS[f] for f in filters)])
        where.append(f"t.session_id IN (SELECT f.session_id FROM traces f WHERE {matching})")  # noqa: S608
    having = f"\nHAVING {_SESSION_AFTER}" if after else ""
    return f"""WITH {TRACES}
SELECT t.session_id AS session_id
FROM traces t
WHERE {" AND ".join(where)}
GROUP BY t.session_id{having}
ORDER BY max(t.end_ns) DESC, t.session_id DESC
LIMIT {{limit:UInt32}}"""  # noqa: S608 - fragments from allowlists only


_SESSION_LATENCY = "quantilesExactInclusive(0.5, 0.95)(t.end_ns - t.start_ns) AS m_latency_ns"
SESSION_ROWS = f"""WITH {SESSIONS_TRACES}
SELECT {_SESSION_OUTER}, m_latency_ns AS latency_ns FROM (
  SELECT t.session_id AS session_id, {_SESSION_INNER}, {_SESSION_LATENCY}
  FROM traces t WHERE has({{sessions:Array(String)}}, t.session_id) GROUP BY t.session_id)
ORDER BY last_ns DESC, session_id DESC"""  # noqa: S608 - the sessions of a page, with their latency
SESSION_TRACES = f"""WITH {SESSIONS_TRACES}
SELECT {TRACE_ROW} FROM traces t
WHERE has({{sessions:Array(String)}}, t.session_id)
ORDER BY t.start_ns, t.trace_id
LIMIT {{limit:UInt32}}"""  # noqa: S608

# ---------------------------------------------------------------------------------------------
# Roll-ups over counted LLM calls: costs, metrics, prompts

_TS = "toDateTime(intDiv(s.start_ns, 1000000000), 'UTC')"
GROUP_KEYS: dict[str, str] = {
    "model": "coalesce(s.response_model, s.request_model)",
    "provider": "s.provider",
    "project": "s.project",
    "service": "s.service_name",
    "user": "coalesce(s.user_id, t.user_id)",
    "session": "coalesce(s.session_id, t.session_id)",
    "prompt": "if(s.prompt_version IS NULL, s.prompt_name, concat(s.prompt_name, '@', s.prompt_version))",
    "day": f"formatDateTime({_TS}, '%Y-%m-%d')",
    "hour": f"formatDateTime(toStartOfHour({_TS}), '%Y-%m-%dT%H:00:00Z')",
}
_NEEDS_TRACE = frozenset({"user", "session"})
_TRACE_JOIN = "LEFT JOIN traces t ON t.project = s.project AND t.trace_id = s.trace_id"
SPAN_FILTERS: dict[str, str] = {
    "service": "s.service_name = {service:String}",
    "model": "coalesce(s.response_model, s.request_model) = {model:String}",
    "provider": "s.provider = {provider:String}",
    "prompt_name": "s.prompt_name = {prompt_name:String}",
}
COST_GROUPS_LIMIT = 10_000


def usage_aggregates(span_columns: Sequence[Column], table: str = "s.") -> list[tuple[str, str]]:
    """(name, aggregate) of every usage total over span rows of `table` (a prefix: `s.`, or '' in a projection)."""
    known = f"coalesce({table}cost_known, false)"
    return [
        ("llm_calls", "count()"),
        *((name, f"sum({table}{name})") for name in token_names(span_columns)),
        ("cost_usd", f"sumIf({table}cost_usd, {known})"),
        ("cost_unknown", f"countIf(NOT {known})"),
    ]


def usage_sums(span_columns: Sequence[Column]) -> str:
    return ",\n  ".join(f"{value} AS {name}" for name, value in usage_aggregates(span_columns))


_USAGE_SUMS = usage_sums(SPAN_COLUMNS)
_ROLLUP_SETTINGS = "SETTINGS join_use_nulls = 1"  # an unmatched LEFT JOIN row is NULL, as in SQL (and DuckDB)


def _where(filters: list[str]) -> str:
    return " AND ".join([PROJECT_SPANS, COUNTED_LLM, SPAN_RANGE, *(SPAN_FILTERS[f] for f in filters)])


def costs(group_by: list[str], filters: list[str]) -> str:
    keys = [f"{GROUP_KEYS[g]} AS key_{g}" for g in group_by]
    needs_trace = bool(_NEEDS_TRACE & set(group_by))
    head = f"WITH {TRACES}\n" if needs_trace else ""
    join = _TRACE_JOIN if needs_trace else ""
    group = f"GROUP BY {', '.join(f'key_{g}' for g in group_by)}" if group_by else ""
    return f"""{head}SELECT {", ".join([*keys, _USAGE_SUMS])}
FROM spans s {join}
WHERE {_where(filters)}
{group}
ORDER BY cost_usd DESC NULLS LAST, llm_calls DESC
LIMIT {COST_GROUPS_LIMIT}
{_ROLLUP_SETTINGS}"""  # noqa: S608 - fragments from allowlists only


# Cost roll-ups from hourly sums. `spans` carries an aggregate projection, `llm_hours`: the usage totals of
# its rows by (project, date, hour, operation, dup flag, model, provider, service, prompt name and version),
# which ClickHouse keeps with every part: made on insert, rebuilt when parts merge (a replay collapsing in
# the table collapses in it too) and on a lightweight DELETE (the table's settings, `_SPANS_SETTINGS`).
# A roll-up whose keys and filters are among those columns reads the whole hours of its range from it (~50k
# rows at 1M spans instead of the spans), takes away the spans late duplicate marks (`llm_dups`) exclude
# (found by primary key), and adds a scan of its partial first and last hours: the same sums as `costs`,
# to the last digit (integer and decimal sums of sums are exact).

LLM_HOURS = "llm_hours"
_HOUR = "intDiv({t}start_ns, 3600000000000)"  # the hour number; the first hour of 1970 is always scanned
_HOURLY_COLUMNS = (  # `{t}`: the table's prefix (none in the projection)
    "{t}project",
    "{t}date",
    _HOUR,
    "{t}operation",
    "{t}llm_dup",
    "coalesce({t}response_model, {t}request_model)",  # GROUP_KEYS' model
    "{t}provider",
    "{t}service_name",
    "{t}prompt_name",
    "{t}prompt_version",
)
_HOUR_TIME = f"toDateTime({_HOUR.format(t='s.')} * 3600, 'UTC')"
HOURLY_KEYS: dict[str, str] = {  # the keys of GROUP_KEYS computed from the projection's columns
    **{k: GROUP_KEYS[k] for k in ("model", "provider", "project", "service", "prompt")},
    "day": f"formatDateTime({_HOUR_TIME}, '%Y-%m-%d')",
    "hour": f"formatDateTime({_HOUR_TIME}, '%Y-%m-%dT%H:00:00Z')",
}
HOURLY_FILTERS = frozenset(SPAN_FILTERS)  # every span filter reads projection columns only


_COUNTS = frozenset({"llm_calls", "cost_unknown", "cost_priced"})  # UInt64 counts: negated as Int64


def _hourly_aggregates(table: str) -> list[tuple[str, str]]:
    """The usage totals and the priced calls (whether a cost sum is NULL, as the scan's would be)."""
    priced = f"countIf({table}cost_usd IS NOT NULL AND coalesce({table}cost_known, false))"
    return [*usage_aggregates(SPAN_COLUMNS, table), ("cost_priced", priced)]


def _llm_hours() -> str:
    keys = ", ".join(c.format(t="") for c in _HOURLY_COLUMNS)
    sums = ", ".join(value for _, value in _hourly_aggregates(""))
    return f"PROJECTION {LLM_HOURS} (SELECT {keys}, {sums} GROUP BY {keys})"


PROJECTION_EXISTS = """SELECT count() AS n FROM system.projections
WHERE database = currentDatabase() AND table = {table:String} AND name = {name:String}"""
# A Replacing/AggregatingMergeTree refuses a projection unless merges rebuild it, and so does a lightweight DELETE.
_PROJECTION_SETTINGS = {
    "deduplicate_merge_projection_mode": "rebuild",
    "lightweight_mutation_projection_mode": "rebuild",
}
_SETTINGS_TEXT = ", ".join(f"{k} = '{v}'" for k, v in _PROJECTION_SETTINGS.items())


def projections() -> list[tuple[str, str, list[str]]]:
    """(table, projection, statements adding it to a table made before it) of every projection: the
    settings it needs, the projection, then its computation for the parts already stored (a mutation)."""
    declared = [("spans", LLM_HOURS, _llm_hours()), (SUMMARY_TABLE, BY_START, _BY_START)]
    return [
        (
            table,
            name,
            [
                f"ALTER TABLE {table} MODIFY SETTING {_SETTINGS_TEXT}",
                f"ALTER TABLE {table} ADD {text.replace('PROJECTION', 'PROJECTION IF NOT EXISTS', 1)}",
                f"ALTER TABLE {table} MATERIALIZE PROJECTION {name}",
            ],
        )
        for table, name, text in declared
    ]


_COUNTED_LOOKING = f"{PROJECT_SPANS} AND s.operation IN ({_LLM_LIST}) AND NOT coalesce(s.llm_dup, false)"
_WHOLE_HOURS = f"""s.date >= {{from_date:Date}} AND s.date <= {{to_date:Date}}
  AND {_HOUR.format(t="s.")} >= {{hours_from:Int64}} AND {_HOUR.format(t="s.")} < {{hours_to:Int64}}"""
_MARKED_LATE = """(s.trace_id, s.span_id) IN (
    SELECT d.trace_id, d.span_id FROM llm_dups d WHERE d.project = {project:String})"""
_EDGES = " OR ".join(
    f"""(s.start_ns >= {{edge{n}_from_ns:Int64}} AND s.start_ns < {{edge{n}_to_ns:Int64}}
    AND s.date >= {{edge{n}_from_date:Date}} AND s.date <= {{edge{n}_to_date:Date}})"""
    for n in (1, 2)
)


def hourly_costs(group_by: list[str], filters: list[str]) -> str:
    """`costs` for keys of `HOURLY_KEYS` and filters of `HOURLY_FILTERS`, over the hourly sums (see above):
    parameters of `costs` plus the whole hours and the edges (`ClickHouseStore` splits the range)."""
    matching = "".join(f" AND {SPAN_FILTERS[f]}" for f in filters)
    sums = [(n, f"toInt64({v})" if n in _COUNTS else v) for n, v in _hourly_aggregates("s.")]  # one type
    part = [f"{v} AS m_{n}" for n, v in sums]
    taken = [f"-{v} AS m_{n}" for n, v in sums]
    group = f"GROUP BY {', '.join(f'key_{g}' for g in group_by)}" if group_by else ""

    def branch(keys: dict[str, str], sums: list[str], where: str) -> str:
        return f"""SELECT {", ".join([*(f"{keys[g]} AS key_{g}" for g in group_by), *sums])}
  FROM spans s WHERE {where}{matching} {group}"""  # noqa: S608 - fragments from allowlists only

    hours = branch(HOURLY_KEYS, part, f"{_COUNTED_LOOKING} AND {_WHOLE_HOURS}")
    marked = branch(GROUP_KEYS, taken, f"{_COUNTED_LOOKING} AND {_WHOLE_HOURS} AND {_MARKED_LATE}")
    edges = branch(GROUP_KEYS, part, f"{PROJECT_SPANS} AND {COUNTED_LLM} AND {SPAN_RANGE} AND ({_EDGES})")
    totals = [f"sum(m_{n}) AS {n}" for n, _ in sums if n not in ("cost_usd", "cost_priced")]
    totals.append("if(sum(m_cost_priced) > 0, sum(m_cost_usd), NULL) AS cost_usd")
    having = "\nHAVING llm_calls > 0" if group_by else ""  # a group all of whose calls were marked late
    return f"""SELECT {", ".join([*(f"key_{g}" for g in group_by), *totals])}
FROM ({hours}
  UNION ALL {marked}
  UNION ALL {edges})
{group}{having}
ORDER BY cost_usd DESC NULLS LAST, llm_calls DESC
LIMIT {COST_GROUPS_LIMIT}"""  # noqa: S608 - fragments from allowlists only


_METRICS = f"""{_USAGE_SUMS},
  countIf(s.status_code = 'ERROR') AS errors,
  quantilesExactInclusive(0.5, 0.95, 0.99)(s.duration_ns) AS latency_ns,
  quantilesExactInclusiveIf(0.5, 0.95)(s.ttft_s, s.ttft_s IS NOT NULL) AS ttft_s"""
INTERVALS: dict[str, str] = {"1m": "INTERVAL 1 MINUTE", "1h": "INTERVAL 1 HOUR", "1d": "INTERVAL 1 DAY"}
SERIES_GROUPS: dict[str, str] = {"model": GROUP_KEYS["model"], "service": GROUP_KEYS["service"]}


def metrics_summary(filters: list[str]) -> str:
    return f"SELECT {_METRICS} FROM spans s WHERE {_where(filters)}"  # noqa: S608 - allowlisted fragments


def metrics_series(interval: str, group_by: str | None, filters: list[str]) -> str:
    bucket = f"toUnixTimestamp(toStartOfInterval({_TS}, {INTERVALS[interval]}))"  # seconds
    key = f"{SERIES_GROUPS[group_by]} AS key" if group_by else "CAST(NULL AS Nullable(String)) AS key"
    return f"""SELECT {bucket} AS bucket, {key}, {_METRICS}
FROM spans s
WHERE {_where(filters)}
GROUP BY bucket, key
ORDER BY bucket, key
LIMIT 100000"""  # noqa: S608 - fragments from allowlists only


_PROMPT_STATS = f"""{_USAGE_SUMS},
  countIf(s.status_code = 'ERROR') AS errors,
  avg(s.duration_ns) AS avg_duration_ns, avg(s.total_tokens) AS avg_tokens,
  min(s.start_ns) AS first_ns, max(s.start_ns) AS last_ns"""

PROMPTS = f"""SELECT s.prompt_name AS name, uniqExact(s.prompt_version) AS versions, {_PROMPT_STATS}
FROM spans s
WHERE {_where([])} AND s.prompt_name IS NOT NULL
GROUP BY s.prompt_name
ORDER BY llm_calls DESC, name
LIMIT 10000"""  # noqa: S608

PROMPT_VERSIONS = f"""SELECT s.prompt_version AS version, {_PROMPT_STATS}
FROM spans s
WHERE {_where(["prompt_name"])}
GROUP BY s.prompt_version
ORDER BY last_ns DESC
LIMIT 10000"""  # noqa: S608

# ---------------------------------------------------------------------------------------------
# Alert metrics (the counterpart of alerts.metric_sql): one statement per rule evaluation, over the
# rule's window; an LLM span whose parent is an LLM span of the same trace in the window is skipped.

_ALERT_FILTERS = """
  AND ({model:Nullable(String)} IS NULL OR c.request_model = {model:Nullable(String)}
       OR c.response_model = {model:Nullable(String)})
  AND ({provider:Nullable(String)} IS NULL OR c.provider = {provider:Nullable(String)})
  AND ({service:Nullable(String)} IS NULL OR c.service_name = {service:Nullable(String)})
  AND ({session:Nullable(String)} IS NULL OR c.session_id = {session:Nullable(String)})
  AND ({user:Nullable(String)} IS NULL OR c.user_id = {user:Nullable(String)})
  AND ({prompt_name:Nullable(String)} IS NULL OR c.prompt_name = {prompt_name:Nullable(String)})
  AND ({prompt_version:Nullable(String)} IS NULL OR c.prompt_version = {prompt_version:Nullable(String)})
"""
_WINDOW = """s.project = {project:String} AND s.start_ns >= {from_ns:Int64} AND s.start_ns < {to_ns:Int64}
    AND s.date >= {from_date:Date} AND s.date <= {to_date:Date}"""

ALERT_LLM_CALLS = f"""WITH llm AS (
  SELECT s.trace_id AS trace_id, s.span_id AS span_id, s.parent_span_id AS parent_span_id,
         s.request_model AS request_model, s.response_model AS response_model, s.provider AS provider,
         s.service_name AS service_name, s.session_id AS session_id, s.user_id AS user_id,
         s.prompt_name AS prompt_name, s.prompt_version AS prompt_version, s.duration_ns AS duration_ns,
         s.status_code AS status_code, s.cost_usd AS cost_usd, s.input_tokens AS input_tokens,
         s.output_tokens AS output_tokens, s.ttft_s AS ttft_s
  FROM spans s
  WHERE {_WINDOW} AND has({{llm_operations:Array(String)}}, s.operation)
), calls AS (
  SELECT * FROM llm AS c
  WHERE (c.trace_id, coalesce(c.parent_span_id, '')) NOT IN (SELECT p.trace_id, p.span_id FROM llm AS p)
  {_ALERT_FILTERS}
)
SELECT count() AS requests,
       countIf(k.status_code = 'ERROR') AS errors,
       toFloat64(coalesce(sum(k.cost_usd), 0)) AS cost_usd,
       countIf(k.cost_usd IS NULL) AS cost_unknown,
       toFloat64(coalesce(sum(coalesce(k.input_tokens, 0) + coalesce(k.output_tokens, 0)), 0)) AS tokens,
       quantileExactInclusive(0.50)(k.duration_ns) / 1e6 AS latency_p50,
       quantileExactInclusive(0.95)(k.duration_ns) / 1e6 AS latency_p95,
       quantileExactInclusive(0.99)(k.duration_ns) / 1e6 AS latency_p99,
       quantileExactInclusive(0.95)(k.ttft_s) * 1000 AS ttft_p95,
       count(k.ttft_s) AS ttft_samples
FROM calls AS k"""  # noqa: S608 - constant text, values are bound

ALERT_SPAN_COUNT = f"""SELECT count() AS spans FROM spans AS c
WHERE {_WINDOW.replace("s.", "c.")}
{_ALERT_FILTERS}"""  # noqa: S608 - constant text, values are bound
