"""One declaration per dataset (`storage.schema`) drives every column list of storage, query and API.

A column added to the declaration must be written (Parquet schema), kept in memory (DuckDB tables),
merged and summed (SQL), and served (response structs), with no other edit: these tests add one to
a copy of the declaration and check each derived piece, then check that the live pieces are exactly
the ones derived from the live declaration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmscope_collector.query import models, sql, store, waterfall
from llmscope_collector.query.db import Database
from llmscope_collector.query.index import SummaryIndex
from llmscope_collector.storage import schema
from llmscope_collector.storage.schema import SPAN_COLUMNS, TOKEN_COLUMNS, TRACE_COLUMNS, Column

NEW_TOKENS = Column("audio_tokens", pa.int64(), "tokens", waterfall="copy")
NEW_GENAI = Column("conversation_id", pa.string(), "genai", waterfall="copy")
NEW_COST = Column("reported_cost_usd", schema.COST_TYPE, "cost")
EXTENDED = (*SPAN_COLUMNS, NEW_TOKENS, NEW_GENAI, NEW_COST)


def _fields(struct: type) -> set[str]:
    return {f.name for f in msgspec.structs.fields(struct)}


def test_a_column_added_once_is_written_read_and_served() -> None:
    traces = schema.trace_columns(EXTENDED)
    # Written: both in the span files, the token count in the trace summary deltas too (summed).
    assert {"audio_tokens", "conversation_id"} <= set(schema.arrow_schema(EXTENDED).names)
    assert schema.arrow_schema(traces).field("audio_tokens").type == pa.int64()
    assert "conversation_id" not in schema.arrow_schema(traces).names
    # Read: the DuckDB tables, the merge, the list rows, the waterfall, usage, sessions, partials.
    assert "audio_tokens BIGINT" in sql.trace_table(traces)
    assert "sum(audio_tokens)::BIGINT AS audio_tokens" in sql.trace_merge(traces)
    assert "audio_tokens::BIGINT AS audio_tokens" in sql.trace_single(traces)
    assert "t.audio_tokens" in sql.trace_row(traces)
    selected = sql.waterfall_spans(EXTENDED)
    assert "audio_tokens" in selected and "conversation_id" in selected
    assert "audio_tokens" in sql.usage_columns(EXTENDED)
    assert "sum(s.audio_tokens)::BIGINT AS audio_tokens" in sql.usage_sums(EXTENDED)
    assert "sum(p.audio_tokens)::BIGINT AS audio_tokens" in sql.usage_sums(EXTENDED, "p")
    assert "audio_tokens BIGINT" in sql.partials_table(EXTENDED)
    assert "audio_tokens BIGINT" in sql.session_table(traces)
    assert "sum(t.audio_tokens)::BIGINT AS audio_tokens" in sql.session_aggregates(traces)
    assert "audio_tokens" in sql.session_column_list(traces)
    # Served: span detail `genai`, waterfall rows and totals, trace and session summaries, usage.
    assert {"audio_tokens", "conversation_id"} <= set(schema.genai_names(EXTENDED))
    assert "reported_cost_usd" in schema.arrow_schema(EXTENDED).names
    detail = models.derived("SpanDetail", models._SpanDetail, models.cost_fields(EXTENDED))
    assert msgspec.structs.fields(detail)[-1].type == float | None  # money served as a float
    assert "reported_cost_usd" in _fields(detail)
    span = models.derived("WaterfallSpan", models._WaterfallSpan, models.waterfall_fields(EXTENDED))
    assert {"audio_tokens", "conversation_id"} <= _fields(span)
    for name, base, fields in [
        ("TraceTotals", models._TraceTotals, models.token_fields(EXTENDED)),
        ("Usage", models._Usage, models.token_fields(EXTENDED)),
        ("TraceSummary", models._TraceSummary, models.served_trace_fields(traces)),
        ("SessionSummary", models._SessionSummary, models.summed_trace_fields(traces)),
    ]:
        assert "audio_tokens" in _fields(models.derived(name, base, fields)), name


def test_the_derived_merge_sums_an_added_token_column(tmp_path: Path) -> None:
    """The derived DDL and merge run: two deltas of one trace merge into one row with the new count summed."""
    traces = schema.trace_columns(EXTENDED)
    delta_schema = schema.arrow_schema(traces)
    folder = tmp_path / "traces" / "project=p" / "date=2026-01-01"
    folder.mkdir(parents=True)
    for n, audio in enumerate((5, 7)):
        row = {c.name: None for c in traces} | {"trace_id": "t" * 32, "start_ns": n, "end_ns": n + 1}
        row |= {"span_count": 1, "llm_calls": 1, "error_count": 0, "cost_unknown": 0, "audio_tokens": audio}
        row |= {"cost_usd": Decimal("0.5"), "has_root": n == 0, "services": ["svc"]}
        pq.write_table(pa.Table.from_pylist([row], schema=delta_schema), folder / f"part-{n}.parquet")
    conn = duckdb.connect(":memory:")
    try:
        conn.execute(sql.trace_table(traces))
        files = sql.FILES.replace("$files", f"'{folder}/*.parquet'")
        merge = sql.trace_merge(traces)
        conn.execute(f"CREATE TEMP TABLE src AS SELECT {sql.trace_column_list(traces)} FROM {files}")  # noqa: S608
        conn.execute(f"INSERT INTO traces BY NAME {merge}")
        got = conn.execute("SELECT audio_tokens, span_count, cost_usd, has_root, services FROM traces").fetchall()
    finally:
        conn.close()
    assert got == [(12, 2, Decimal("1.000000000000"), True, ["svc"])]


def test_live_declaration_drives_storage_query_and_api() -> None:
    """The modules' column lists are exactly those derived from the live declaration."""
    assert schema.SPAN_SCHEMA.names == [c.name for c in SPAN_COLUMNS]
    assert schema.TRACE_DELTA_SCHEMA.names == [c.name for c in TRACE_COLUMNS]
    assert {c.name for c in TRACE_COLUMNS if c.merge == "sum"} >= set(TOKEN_COLUMNS)
    assert sql.trace_table(TRACE_COLUMNS) == sql.CREATE_TRACES
    assert sql.trace_row(TRACE_COLUMNS) == sql.TRACE_ROW
    assert sql.waterfall_spans((*SPAN_COLUMNS, *schema.DERIVED_SPAN_COLUMNS)) == sql.TRACE_SPANS
    assert schema.STORED_SPAN_SCHEMA.names == [c.name for c in (*SPAN_COLUMNS, *schema.DERIVED_SPAN_COLUMNS)]
    assert sql.session_table(TRACE_COLUMNS) == sql.CREATE_SESSIONS
    assert sql.partials_table(SPAN_COLUMNS) == sql.CREATE_PARTIALS
    assert sql.usage_columns(SPAN_COLUMNS) == sql.USAGE_COLUMNS
    assert schema.genai_names(SPAN_COLUMNS) == store._GENAI_FIELDS
    assert tuple(c.name for c in schema.waterfall_copied(SPAN_COLUMNS)) == waterfall._COPIED
    assert {c.name for c in schema.waterfall_copied(SPAN_COLUMNS)} <= _fields(models.WaterfallSpan)
    for struct in (models.WaterfallSpan, models.TraceTotals, models.TraceSummary, models.SessionSummary, models.Usage):
        assert set(TOKEN_COLUMNS) <= _fields(struct), struct.__name__
    assert {c.name for c in TRACE_COLUMNS if c.served} <= _fields(models.TraceSummary)
    assert set(schema.names(SPAN_COLUMNS, "cost")) <= _fields(models.SpanDetail)
    assert _fields(models.Usage) == set(sql.USAGE_COLUMNS)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[tuple[Database, SummaryIndex]]:
    db = Database(threads=1)
    try:
        yield db, SummaryIndex(tmp_path, db)
    finally:
        db.close()


def test_in_memory_tables_have_the_declared_columns(index: tuple[Database, SummaryIndex]) -> None:
    db, _ = index
    cur = db.cursor()
    try:
        columns = {
            table: [row[0] for row in cur.execute(f"DESCRIBE {table}").fetchall()]
            for table in ("traces", "sessions", "llm_dups")
        }
    finally:
        cur.close()
    assert columns["traces"] == ["project", *(c.name for c in TRACE_COLUMNS)]
    assert set(TOKEN_COLUMNS) <= set(columns["sessions"])
    assert columns["llm_dups"] == ["project", "trace_id", "span_id"]


def test_declared_types_map_to_duckdb() -> None:
    for column in (*SPAN_COLUMNS, *TRACE_COLUMNS):
        if column.name in ("metadata", "content_refs"):  # read where stored, never kept in a table
            continue
        assert sql.duckdb_type(column)
    summed_cost = next(c for c in TRACE_COLUMNS if c.name == "cost_usd")
    assert sql.duckdb_type(summed_cost) == sql.SUM_DECIMAL
    assert sql.duckdb_type(dataclasses.replace(summed_cost, merge="")) == "DECIMAL(18, 12)"


def test_token_column_names_are_written_only_in_the_declaration() -> None:
    """A token count's name appears in the collector's code only where it is declared and where the
    dialects' attributes are mapped onto it: every other list is derived."""
    root = Path(schema.__file__).parents[1]
    allowed = {root / "storage" / "schema.py", root / "processors" / "normalize.py"}
    writers = {path for path in root.rglob("*.py") if "reasoning_tokens" in path.read_text()}
    assert writers == allowed
