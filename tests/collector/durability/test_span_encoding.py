"""Span files carry the page index, small pages, no dictionary on exactly the columns declared without one
(`Column.dictionary`) and no statistics on exactly those declared without them (`Column.statistics`,
`layout.SPAN_ENCODING`): from the writer's flush and from compaction, on real Parquet, with the same rows
and the same waterfall rows through DuckDB as the default encoding. A flush writes them in lz4, compaction
and a deletion's rewrite in zstd (`layout.FLUSH_SPAN_ENCODING`). The other datasets' files follow their
own declarations (`layout.encoding_of`), in zstd."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from obstore.store import MemoryStore

from llmscope_collector.durable_io import DEFAULT_ENCODING, Encoding, write_durably, write_parquet
from llmscope_collector.storage.compaction import CompactionOptions, Compactor
from llmscope_collector.storage.layout import (
    CONTENT_DIR,
    DATASETS,
    FLUSH_SPAN_ENCODING,
    SCORES_DIR,
    SPAN_ENCODING,
    SPAN_PAGE_ROWS,
    SPANS_DIR,
    TRACES_DIR,
    encoding_of,
    flush_encoding_of,
    iter_partitions,
    parquet_files,
    partition_dir,
    partition_key,
)
from llmscope_collector.storage.objects import ObjectStore, StorageUrl
from llmscope_collector.storage.schema import (
    CONTENT_COLUMNS,
    DERIVED_SPAN_COLUMNS,
    SPAN_COLUMNS,
    STORED_SPAN_SCHEMA,
    TRACE_COLUMNS,
    arrow_schema,
)
from llmscope_collector.storage.tables import BucketTables, LocalTables
from tests.collector.durability.helpers import payload
from tests.collector.durability.test_compaction import START, Files

_DECLARED = (*SPAN_COLUMNS, *DERIVED_SPAN_COLUMNS)
_PLAIN = {c.name for c in _DECLARED if not c.dictionary}
_UNSUMMARIZED = {c.name for c in _DECLARED if not c.statistics}
_FLUSHED, _COMPACTED = "LZ4", "ZSTD"  # the codecs of a flush's span file (LZ4_RAW) and of every other file


def _chunks(path: Path) -> list[pq.ColumnChunkMetaData]:
    meta = pq.read_metadata(path)
    return [meta.row_group(g).column(c) for g in range(meta.num_row_groups) for c in range(meta.num_columns)]


def _dictionary_expected(chunk: pq.ColumnChunkMetaData, plain: set[str]) -> bool:
    """Parquet has no dictionary for booleans; every other leaf has one unless its column is plain."""
    return chunk.physical_type != "BOOLEAN" and chunk.path_in_schema.split(".")[0] not in plain


def _assert_declared(chunk: pq.ColumnChunkMetaData, plain: set[str], unsummarized: set[str]) -> None:
    """A dictionary exactly on the leaves of the columns declared with one, min/max on those declared with them."""
    column = chunk.path_in_schema.split(".")[0]
    assert chunk.has_dictionary_page is _dictionary_expected(chunk, plain), chunk.path_in_schema
    assert chunk.is_stats_set is (column not in unsummarized), chunk.path_in_schema


def _assert_span_encoding(path: Path, codec: str = _COMPACTED) -> None:
    """Every chunk's pages located and in `codec`; their min/max (the column index) where the column has
    statistics."""
    chunks = _chunks(path)
    assert {chunk.path_in_schema.split(".")[0] for chunk in chunks} == {c.name for c in _DECLARED}
    for chunk in chunks:
        assert chunk.compression == codec, chunk.path_in_schema
        assert chunk.has_offset_index, chunk.path_in_schema
        assert chunk.has_column_index is (chunk.path_in_schema.split(".")[0] not in _UNSUMMARIZED)
        _assert_declared(chunk, _PLAIN, _UNSUMMARIZED)


def _flushed(data_dir: Path, flushes: int, spans: int) -> Files:
    files = Files(data_dir)
    for n in range(flushes):
        files.flush(payload([(n * 10_000 + i + 1).to_bytes(8, "big") for i in range(spans)], start_ns=START + n))
    return files


def test_the_declared_columns_are_plain_and_the_nested_ones_keep_their_dictionary() -> None:
    assert {"trace_id", "span_id", "parent_span_id", "start_ns", "end_ns", "attributes", "content_refs"} <= _PLAIN
    assert {"name", "service_name", "finish_reasons", "tags", "metadata", "content_sizes"}.isdisjoint(_PLAIN)
    assert SPAN_ENCODING.plain == _PLAIN and SPAN_ENCODING.page_index
    assert encoding_of(SPANS_DIR) == SPAN_ENCODING
    assert flush_encoding_of(SPANS_DIR) == FLUSH_SPAN_ENCODING == dataclasses.replace(SPAN_ENCODING, compression="lz4")


def test_a_flush_writes_only_span_files_in_lz4() -> None:
    """Compaction rewrites every span flush file (in zstd); the other datasets' files are kept as a flush
    wrote them on a data dir, so they are written in zstd."""
    assert SPAN_ENCODING.compression == "zstd"
    for dataset in DATASETS:
        if dataset != SPANS_DIR:
            assert flush_encoding_of(dataset) == encoding_of(dataset) and encoding_of(dataset).compression == "zstd"


def test_what_queries_filter_by_keeps_its_statistics() -> None:
    """Row-group pruning (waterfalls, span lookups, time ranges, roll-up filters, content by hash, deletions
    by trace) needs the min/max of these; only long text nobody filters by goes without."""
    filtered = {"trace_id", "span_id", "start_ns", "end_ns", "operation", "llm_dup", "service_name", "provider"}
    filtered |= {"request_model", "response_model", "prompt_name", "session_id", "user_id", "status_code"}
    assert filtered.isdisjoint(_UNSUMMARIZED) and SPAN_ENCODING.unsummarized == _UNSUMMARIZED
    assert {"attributes", "content_refs"} <= _UNSUMMARIZED
    assert "hash" not in encoding_of(CONTENT_DIR).unsummarized and "body" in encoding_of(CONTENT_DIR).unsummarized
    assert "trace_id" not in encoding_of(TRACES_DIR).unsummarized
    # Other datasets are not point-looked-up: no page index, pyarrow's page size.
    others = [encoding_of(dataset) for dataset in DATASETS if dataset != SPANS_DIR]
    assert all(not e.page_index and e.page_rows is None for e in others)
    assert encoding_of("unknown") == DEFAULT_ENCODING


def test_a_flushed_span_file_has_the_page_index_and_no_dictionary_on_the_declared_columns(tmp_path: Path) -> None:
    _flushed(tmp_path, flushes=1, spans=3 * SPAN_PAGE_ROWS)
    [partition] = list(iter_partitions(tmp_path))
    [path] = parquet_files(partition.path)
    assert pq.read_metadata(path).num_rows == 3 * SPAN_PAGE_ROWS
    _assert_span_encoding(path, _FLUSHED)


def test_a_bucket_stores_span_objects_with_the_same_encoding(tmp_path: Path) -> None:
    """Cluster mode's flush (`BucketTables`, here over obstore's in-memory store) encodes spans alike."""
    _flushed(tmp_path, flushes=1, spans=500)
    [partition] = list(iter_partitions(tmp_path))
    table = pq.read_table(parquet_files(partition.path)[0])
    memory = MemoryStore()  # the obstore API of the S3 store ObjectStore is typed for
    tables = BucketTables(ObjectStore(StorageUrl("bucket", "prefix"), store=memory), "c1")  # type: ignore[arg-type]
    assert tables.write(SPANS_DIR, "default", partition.date, "spans.parquet", table, row_group_size=128)
    assert tables.write(SCORES_DIR, "default", partition.date, "other.parquet", table, row_group_size=128)
    spans = tmp_path / "spans.parquet"
    spans.write_bytes(tables.objects.get(f"{partition_key('default', partition.date)}/spans.parquet"))
    _assert_span_encoding(spans, _FLUSHED)
    assert pq.read_table(spans).equals(table)
    other = tmp_path / "other.parquet"
    other.write_bytes(tables.objects.get(f"{partition_key('default', partition.date, SCORES_DIR)}/other.parquet"))
    assert all(chunk.has_dictionary_page is _dictionary_expected(chunk, set()) for chunk in _chunks(other))
    assert not any(chunk.has_offset_index for chunk in _chunks(other))
    assert {chunk.compression for chunk in _chunks(other)} == {_COMPACTED}


def test_compaction_writes_span_files_with_the_same_encoding_and_rows(tmp_path: Path) -> None:
    """The flush files' rows (lz4) in one compacted file (zstd), the same through pyarrow and DuckDB."""
    _flushed(tmp_path, flushes=4, spans=700)
    [partition] = list(iter_partitions(tmp_path))
    flushed = parquet_files(partition.path)
    for path in flushed:
        _assert_span_encoding(path, _FLUSHED)
    before = pa.concat_tables(pq.read_table(p) for p in flushed).sort_by("span_id")
    with duckdb.connect() as con:
        trace_ids = before.column("trace_id").unique().to_pylist()[::50]
        files = [str(p) for p in flushed]
        looked_up = {t: con.execute(_LOOKUP, {"files": files, "t": t}).fetchall() for t in trace_ids}
    compactor = Compactor(tmp_path, CompactionOptions(row_group_size=1_000), committed_lsn=lambda: 1 << 62)
    assert compactor.run_once().files_out == 1
    [output] = parquet_files(partition.path)
    assert output.name.startswith("compact-")
    _assert_span_encoding(output)
    after = pq.read_table(output).sort_by("span_id")
    assert after.select(before.column_names).equals(before.replace_schema_metadata(after.schema.metadata))
    with duckdb.connect() as con:
        for trace_id, rows in looked_up.items():
            assert rows and con.execute(_LOOKUP, {"files": [str(output)], "t": trace_id}).fetchall() == rows


_LOOKUP = "SELECT * FROM read_parquet($files, union_by_name = true) WHERE trace_id = $t ORDER BY span_id"


def _filled(schema: pa.Schema, rows: int) -> pa.Table:
    """Rows with every string and integer column set (distinct per row), the others null."""
    columns = []
    for field in schema:
        if pa.types.is_string(field.type):
            columns.append(pa.array([f"{field.name}-{i:032x}" for i in range(rows)], field.type))
        elif pa.types.is_integer(field.type):
            columns.append(pa.array(range(rows), field.type))
        else:
            columns.append(pa.nulls(rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


@pytest.mark.parametrize("dataset", [CONTENT_DIR, TRACES_DIR])
def test_content_and_trace_delta_files_are_written_as_their_columns_declare(tmp_path: Path, dataset: str) -> None:
    """The writer's content and trace delta files (`LocalTables.write`, as the content store and the
    stitcher write them): dictionaries and statistics as `CONTENT_COLUMNS` and `TRACE_COLUMNS` declare."""
    columns = {CONTENT_DIR: CONTENT_COLUMNS, TRACES_DIR: TRACE_COLUMNS}[dataset]
    table = _filled(arrow_schema(columns), 500)
    LocalTables(tmp_path).write(dataset, "default", "2026-01-02", "part.parquet", table, row_group_size=200)
    path = partition_dir(tmp_path, "default", "2026-01-02", dataset) / "part.parquet"
    assert pq.read_table(path).equals(table)
    plain = {c.name for c in columns if not c.dictionary}
    unsummarized = {c.name for c in columns if not c.statistics}
    assert plain and encoding_of(dataset).plain == plain and encoding_of(dataset).unsummarized == unsummarized
    for chunk in _chunks(path):
        _assert_declared(chunk, plain, unsummarized)


def _rows(con: duckdb.DuckDBPyConnection, path: Path, trace_id: str) -> list[tuple[object, ...]]:
    """A point lookup's rows (the page index may skip pages here)."""
    return con.execute(
        "SELECT * FROM read_parquet($path) WHERE trace_id = $trace_id ORDER BY span_id",
        {"path": str(path), "trace_id": trace_id},
    ).fetchall()


@pytest.fixture(scope="module")
def flushed_table(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    """One flush's span file, as read back with the stored schema."""
    directory = tmp_path_factory.mktemp("flushed")
    _flushed(directory, flushes=1, spans=300)
    [partition] = list(iter_partitions(directory))
    return pq.read_table(parquet_files(partition.path)[0], schema=STORED_SPAN_SCHEMA)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plain=st.sets(st.sampled_from([c.name for c in _DECLARED])),
    unsummarized=st.sets(st.sampled_from([c.name for c in _DECLARED])),
    page_rows=st.sampled_from([None, 7, 64]),
)
def test_an_encoding_changes_no_value_read_back(
    tmp_path: Path, flushed_table: pa.Table, plain: set[str], unsummarized: set[str], page_rows: int | None
) -> None:
    """Any sets of plain and unsummarized columns (nested ones too), any page size: pyarrow and DuckDB read
    the rows written with the default encoding (DuckDB's lookup without the min/max it could prune by); the
    dictionary is off on exactly the leaves of the plain columns, the statistics on those of the others."""
    table = flushed_table
    base, changed = tmp_path / "base.parquet", tmp_path / "changed.parquet"
    write_parquet([table], table.schema, base, row_group_size=100, encoding=DEFAULT_ENCODING)
    encoding = Encoding(
        plain=frozenset(plain), unsummarized=frozenset(unsummarized), page_rows=page_rows, page_index=True
    )
    write_parquet([table], table.schema, changed, row_group_size=100, encoding=encoding)
    assert pq.read_table(changed).equals(pq.read_table(base))
    for chunk in _chunks(changed):
        _assert_declared(chunk, plain, unsummarized)
    with duckdb.connect() as con:
        for trace_id in table.column("trace_id").unique().to_pylist()[::60]:
            assert _rows(con, changed, trace_id) == _rows(con, base, trace_id)


def test_a_span_file_rewritten_by_a_session_deletion_keeps_the_span_encoding(tmp_path: Path) -> None:
    """`rewrite.replace_files` (a deleted session's rows taken out in place) lays out a span file as the
    writer and compaction do, and keeps the other rows."""
    from llmscope_collector.storage.rewrite import replace_files

    _flushed(tmp_path, flushes=1, spans=2 * SPAN_PAGE_ROWS)
    [partition] = list(iter_partitions(tmp_path))
    [path] = parquet_files(partition.path)
    table = pq.read_table(path)
    kept = table.slice(1)  # one span's rows gone
    replace_files(tmp_path, partition.path, {path: kept})
    [rewritten] = parquet_files(partition.path)
    assert rewritten != path
    _assert_span_encoding(rewritten)
    assert pq.read_table(rewritten).select(["span_id"]).equals(kept.select(["span_id"]))


def test_a_durable_write_is_the_file_pyarrow_writes_straight_to_disk(tmp_path: Path, flushed_table: pa.Table) -> None:
    """`write_durably` writes through a buffer (a few system calls, not a few per page): the same bytes as
    pyarrow's own file output, owner-only, and no temporary file left."""
    straight, durable = tmp_path / "straight.parquet", tmp_path / "durable.parquet"
    write_parquet([flushed_table], flushed_table.schema, straight, row_group_size=64, encoding=FLUSH_SPAN_ENCODING)
    write_durably(flushed_table, durable, row_group_size=64, encoding=FLUSH_SPAN_ENCODING)
    assert durable.read_bytes() == straight.read_bytes()
    assert durable.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["durable.parquet", "straight.parquet"]
