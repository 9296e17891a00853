"""What an export holds: its versioned schema, declared once here, and its rows as Arrow batches.

The schema (docs/export.md) is derived, not typed out again:
- `traces`: a row per trace, the trace list's fields (`query.models.TraceSummary`, itself derived
  from the trace summary columns of `storage.schema`), typed from the struct's field types, without
  the previews (role "content": captured content);
- `spans`: a row per span, the stored span columns (`storage.schema.SPAN_COLUMNS`) with their
  Arrow types, money as float64 (the API's rule), without `content_refs` (storage addressing);
  `llm_dup` is also true for the spans marked as nested duplicates after they were stored;
- `content` (spans, only when asked for): the span's captured content items, rehydrated from the
  content dataset.
Every row starts with `export_version`. `EXPORT_VERSION` names the columns: a change to the exported
columns (a column added to the storage declaration, say) must come with a new version, which
`tests/collector/test_export_schema.py` enforces against the recorded schemas of every version.

Rows are produced one page of the trace list at a time (oldest first, by its cursor), and span rows
a bounded number of spans at a time (`Paging`), so what an export holds does not depend on its
size. Traces are listed through the query backend (every engine, the trace list's filters); spans
and content are read from the project's Parquet files with DuckDB, as scores are, whatever the
engine of the trace list.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from llmscope_collector.query.backend import QueryBackend
from llmscope_collector.query.db import Database, bind
from llmscope_collector.query.filters import TimeRange, TraceQuery
from llmscope_collector.query.models import TraceSummary
from llmscope_collector.query.vanished import until_read
from llmscope_collector.storage.content_items import display_value, dumps
from llmscope_collector.storage.layout import CONTENT_DIR, LLM_DUPS_DIR, SPANS_DIR, project_date_globs
from llmscope_collector.storage.schema import SPAN_COLUMNS, TRACE_COLUMNS, Column, names

EXPORT_VERSION = 1
VERSION_COLUMN = "export_version"
METADATA_VERSION = "llmscope.export_version"  # the Parquet key-value metadata keys
METADATA_LEVEL = "llmscope.export_level"


@dataclasses.dataclass(frozen=True)
class Paging:
    """How much an export holds at a time: a page of the trace list (`traces`), and the spans of as
    many consecutive traces of it as fit in `spans` (`content_spans` with captured content, whose
    items are bigger), by the traces' span counts (at least one trace per read).

    A read decompresses the day partitions its traces' spans are in (a compacted day is one file of
    64k-row row groups, sorted by trace id: a page's traces are spread across it), so reads of more
    spans cost less per span; ~20k spans of light columns are ~30 MB of Arrow data."""

    traces: int = 1000  # the trace list's largest page
    spans: int = 20_000
    content_spans: int = 5000


PAGING = Paging()

Level = Literal["traces", "spans"]
LEVELS: tuple[Level, ...] = ("traces", "spans")

# Span columns not exported: where the span's content items are stored (the `content` column
# carries the items themselves, on request).
_NOT_EXPORTED = frozenset({"content_refs"})
CONTENT_COLUMN = "content"
# One captured content item: what it is (`kind`: input, output, system, tools, ...), the attribute it
# came from (`source`), its value as JSON text (null when no longer stored) and its stored size.
CONTENT_ITEM = pa.struct(
    [("kind", pa.string()), ("source", pa.string()), ("value", pa.string()), ("bytes", pa.int64())]
)
_VERSION_FIELD = pa.field(VERSION_COLUMN, pa.int32(), nullable=False)


def _exported_type(type_: pa.DataType) -> pa.DataType:
    """The exported type of a stored one: money (decimals) as float64, like the API."""
    return pa.float64() if pa.types.is_decimal(type_) else type_


def span_fields(span_columns: tuple[Column, ...] = SPAN_COLUMNS) -> list[pa.Field]:
    return [
        pa.field(c.name, _exported_type(c.type), nullable=c.nullable)
        for c in span_columns
        if c.name not in _NOT_EXPORTED
    ]


def _arrow_of(info: msgspec.inspect.Type) -> tuple[pa.DataType, bool]:
    """The Arrow type of a struct field's type (and whether it may be null)."""
    if isinstance(info, msgspec.inspect.UnionType):
        kinds = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(kinds) != 1:
            raise TypeError(f"no Arrow type for {info}")
        return _arrow_of(kinds[0])[0], True
    if isinstance(info, msgspec.inspect.StrType):
        return pa.string(), False
    if isinstance(info, msgspec.inspect.LiteralType) and all(isinstance(v, str) for v in info.values):
        return pa.string(), False
    if isinstance(info, msgspec.inspect.BoolType):
        return pa.bool_(), False
    if isinstance(info, msgspec.inspect.IntType):
        return pa.int64(), False
    if isinstance(info, msgspec.inspect.FloatType):
        return pa.float64(), False
    if isinstance(info, msgspec.inspect.ListType):
        return pa.list_(_arrow_of(info.item_type)[0]), False
    raise TypeError(f"no Arrow type for {info}")


# Trace list fields taken from captured content (the previews): content is exported per span, on request.
_TRACE_CONTENT = frozenset(names(TRACE_COLUMNS, "content"))


def trace_fields(struct: type = TraceSummary) -> list[pa.Field]:
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    fields = []
    for f in info.fields:
        if f.name in _TRACE_CONTENT:
            continue
        type_, nullable = _arrow_of(f.type)
        fields.append(pa.field(f.name, type_, nullable=nullable))
    return fields


def export_schema(level: Level, content: bool = False) -> pa.Schema:
    """The columns of an export at `level` (with the `content` column when asked for), with the
    version and level in the schema's metadata (Parquet key-value metadata)."""
    fields = [_VERSION_FIELD, *(trace_fields() if level == "traces" else span_fields())]
    if content:
        fields.append(pa.field(CONTENT_COLUMN, pa.list_(CONTENT_ITEM)))
    return pa.schema(fields, metadata={METADATA_VERSION: str(EXPORT_VERSION), METADATA_LEVEL: level})


class ContentNotPerTrace(ValueError):
    """Content is exported per span (`level=spans`): a trace has no single input or output."""


# The spans of a group of traces: the exported columns (money as DOUBLE), `llm_dup` also true for the
# late-marked nested duplicates, the trace's position in the group, the partition date (to find
# content) and the content refs (when asked for). Ordered and deduplicated afterwards (`_ordered`).


def _span_select(with_dups: bool, content: bool) -> str:
    columns = []
    for field in span_fields():
        if field.name == "llm_dup":
            late = "OR d.span_id IS NOT NULL" if with_dups else ""
            columns.append(f"(coalesce(s.llm_dup, false) {late}) AS llm_dup")
        elif pa.types.is_floating(field.type):
            columns.append(f"CAST(s.{field.name} AS DOUBLE) AS {field.name}")
        else:
            columns.append(f"s.{field.name}")
    extra = ", s.position AS _position" + (", s.date AS _date, s.content_refs AS _refs" if content else "")
    dups = (
        """LEFT JOIN (SELECT DISTINCT d.trace_id, d.span_id FROM read_parquet($dups, union_by_name = true) d
           JOIN page ON d.trace_id = page.trace_id) d ON d.trace_id = s.trace_id AND d.span_id = s.span_id"""
        if with_dups
        else ""
    )
    return f"""
WITH page AS (SELECT unnest($trace_ids) AS trace_id, generate_subscripts($trace_ids, 1) AS position)
SELECT {EXPORT_VERSION}::INTEGER AS {VERSION_COLUMN}, {", ".join(columns)}{extra}
FROM (
  SELECT f.*, page.position FROM read_parquet($glob, hive_partitioning = true, union_by_name = true) f
  JOIN page ON f.trace_id = page.trace_id
  WHERE f.date >= $from_date AND f.date <= $to_date
) s {dups}
"""  # noqa: S608 - names from storage.schema, values bound


_SPAN_QUERIES = {(d, c): _span_select(d, c) for d in (False, True) for c in (False, True)}
_CONTENT_BODIES = """
SELECT DISTINCT ON (hash) hash, body FROM read_parquet($glob, union_by_name = true) WHERE list_contains($hashes, hash)
"""
_json = msgspec.json.Decoder()


class ExportReader:
    """Reads what an export holds for one project of a data dir (or a bucket's mirror)."""

    def __init__(self, data_dir: Path, db: Database | None = None) -> None:
        self._data_dir = data_dir
        self._db = db or Database(threads=1, memory_limit="512MB")
        self._owns_db = db is None

    def tables(
        self,
        backend: QueryBackend,
        project: str,
        filters: TraceQuery,
        level: Level,
        content: bool = False,
        paging: Paging | None = None,
    ) -> Iterator[pa.Table]:
        """The export's rows, a table per page of the selected traces (oldest first) or per read of
        their spans; no empty table. Raises `ContentNotPerTrace` (before anything is read) for
        traces with content."""
        if content and level == "traces":
            raise ContentNotPerTrace("captured content is exported per span: ask for level=spans")
        schema = export_schema(level, content)
        return self._walk(backend, project, filters, level, content, paging or PAGING, schema)

    def _walk(
        self,
        backend: QueryBackend,
        project: str,
        filters: TraceQuery,
        level: Level,
        content: bool,
        paging: Paging,
        schema: pa.Schema,
    ) -> Iterator[pa.Table]:
        pages = _pages(backend, project, filters, paging.traces)
        if level == "traces":
            yield from (_trace_table(page, schema) for page in pages)
            return
        for group in _by_span_count(pages, paging.content_spans if content else paging.spans):
            table = self._span_table(project, group, content, schema)
            if table.num_rows:
                yield table

    def _span_table(self, project: str, traces: list[TraceSummary], content: bool, schema: pa.Schema) -> pa.Table:
        # A trace's spans start within its summary's time range (its start is their earliest start, its
        # end their latest end), and spans are partitioned by the date they start: the page's dates
        # exactly (the waterfall adds a day each side; an export reads many pages, each one day or two).
        first = min(t.start_time_unix_nano for t in traces)
        last = max(t.start_time_unix_nano + max(0, int(t.duration_ms * 1_000_000)) for t in traces)
        dates = TimeRange(first, last + 1).params()
        days = _days(dates["from_date"], dates["to_date"])
        dates = {"from_date": dates["from_date"], "to_date": dates["to_date"]}
        globs = project_date_globs(self._data_dir, SPANS_DIR, project, days)
        if not globs:
            return schema.empty_table()
        dups = project_date_globs(self._data_dir, LLM_DUPS_DIR, project, days)
        params = {"glob": globs, "dups": dups, "trace_ids": [t.trace_id for t in traces], **dates}
        table = _ordered(self._arrow(_SPAN_QUERIES[(bool(dups), content)], params))
        if content:
            table = self._with_content(project, table)
        return table.select(schema.names).cast(schema)

    def _with_content(self, project: str, table: pa.Table) -> pa.Table:
        """`table` with a `content` column: each span's items, their bodies read from the content
        partition of the span's date (one read per date of the page)."""
        refs = table.column("_refs").to_pylist()
        dates = table.column("_date").to_pylist()
        wanted: dict[str, set[str]] = defaultdict(set)
        for date, span_refs in zip(dates, refs, strict=True):
            wanted[_iso(date)].update(r["hash"] for r in span_refs or ())
        bodies: dict[tuple[str, str], str] = {}
        for date, hashes in wanted.items():
            for glob in project_date_globs(self._data_dir, CONTENT_DIR, project, [date]):
                rows = self._arrow(_CONTENT_BODIES, {"glob": glob, "hashes": sorted(hashes)}).to_pylist()
                bodies.update(((date, r["hash"]), r["body"]) for r in rows)
        items = [
            [_item(r, bodies.get((_iso(date), r["hash"]))) for r in span_refs or ()]
            for date, span_refs in zip(dates, refs, strict=True)
        ]
        return table.append_column(CONTENT_COLUMN, pa.array(items, type=pa.list_(CONTENT_ITEM)))

    def _arrow(self, query: str, params: dict[str, Any]) -> pa.Table:
        cur = self._db.cursor()
        try:  # a file compacted away between the glob and the read: glob again
            return until_read(lambda: cur.sql(query, params=bind(query, params)).to_arrow_table())
        finally:
            cur.close()

    def close(self) -> None:
        if self._owns_db:
            self._db.close()


def _pages(backend: QueryBackend, project: str, filters: TraceQuery, size: int) -> Iterator[list[TraceSummary]]:
    """The selected traces, oldest first, a page of the trace list at a time (never an empty page)."""
    query = dataclasses.replace(filters, sort="start", order="asc", limit=size, cursor=None)
    while True:
        listed = backend.list_traces(project, query)
        if listed.traces:
            yield listed.traces
        if listed.next_cursor is None:
            return
        query = dataclasses.replace(query, cursor=listed.next_cursor)


def _by_span_count(pages: Iterator[list[TraceSummary]], budget: int) -> Iterator[list[TraceSummary]]:
    """Consecutive traces (across pages) whose spans add up to at most `budget` (a bigger trace on its own)."""
    group: list[TraceSummary] = []
    spans = 0
    for page in pages:
        for trace in page:
            if group and spans + trace.span_count > budget:
                yield group
                group, spans = [], 0
            group.append(trace)
            spans += trace.span_count
    if group:
        yield group


def _ordered(table: pa.Table) -> pa.Table:
    """One row per span id (as the waterfall shows a span stored twice once), in the traces' order,
    then by start. Arrow sorts the key columns and moves the rows once: DuckDB's ORDER BY sorts the
    whole rows (attributes and all), ~8x slower on a read of spans."""
    keys = table.select(["trace_id", "span_id"]).append_column("_row", pa.array(range(table.num_rows), pa.int64()))
    first = keys.group_by(["trace_id", "span_id"], use_threads=False).aggregate([("_row", "min")]).column("_row_min")
    if len(first) < table.num_rows:
        table = table.take(pc.sort_indices(first))
    order = [("_position", "ascending"), ("start_ns", "ascending"), ("span_id", "ascending")]
    return table.take(pc.sort_indices(table.select([k for k, _ in order]), sort_keys=order))


def _trace_table(traces: list[TraceSummary], schema: pa.Schema) -> pa.Table:
    rows = [{VERSION_COLUMN: EXPORT_VERSION, **msgspec.structs.asdict(t)} for t in traces]
    return pa.Table.from_pylist(rows, schema=schema)


def _item(ref: dict[str, Any], body: str | None) -> dict[str, Any]:
    value = None if body is None else dumps(display_value(_json.decode(body)))
    return {"kind": ref["kind"], "source": ref["source"], "value": value, "bytes": ref["bytes"]}


def _iso(date: Any) -> str:
    return date.isoformat() if isinstance(date, dt.date) else str(date)


def _days(first: dt.date, last: dt.date) -> list[str]:
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
