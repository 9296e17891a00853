"""`ContentKinds` reads the same (kind, bytes) refs as DuckDB's `list_transform` of `content_refs` did, for
traces anywhere in a file: first or last rows of a row group, across a row-group boundary, without content.
The derived `content_sizes` column holds the same, and data dirs written before it serve the same waterfalls."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.durable_io import write_parquet
from llmscope_collector.query import sql
from llmscope_collector.query.content_kinds import ContentKinds
from llmscope_collector.query.store import TraceStore
from llmscope_collector.server import EmbeddedServer
from llmscope_collector.storage.compaction import CompactionOptions, Compactor
from llmscope_collector.storage.derived import derived_column
from llmscope_collector.storage.schema import DERIVED_SPAN_COLUMNS, SCHEMA_VERSION, SPAN_COLUMNS, STORED_SPAN_SCHEMA
from tests.collector.query.dataset import GenTrace

_REFS = next(c.type for c in SPAN_COLUMNS if c.name == "content_refs")
_KINDS = ("system", "input", "output", "tool")


def _span_file(path: Path, rng: random.Random) -> list[str]:
    """Traces of 1-7 spans (sorted by trace id, as span files are) in row groups of 5 rows; a span has no
    refs (both columns null), or 1-4 refs, some with no size."""
    trace_ids, refs = [], []
    for t in range(40):
        for _ in range(rng.randint(1, 7)):
            trace_ids.append(f"{t:032x}")
            count = rng.choice([0, 0, 1, 2, 4])
            refs.append(
                [
                    {
                        "kind": rng.choice(_KINDS),
                        "source": "attr",
                        "hash": f"{rng.getrandbits(128):032x}",
                        "bytes": rng.choice([None, rng.randint(1, 5000)]),
                    }
                    for _ in range(count)
                ]
                or None
            )
    sizes = [None if r is None else sum(int(x["bytes"] or 0) for x in r) for r in refs]
    table = pa.table(
        {"trace_id": trace_ids, "content_refs": pa.array(refs, _REFS), "content_bytes": pa.array(sizes, pa.int64())}
    )
    write_parquet([table], table.schema, path, row_group_size=5)
    return sorted(set(trace_ids))


def _rows(path: Path, trace_id: str) -> list[dict[str, Any]]:
    query = """SELECT content_bytes, filename, file_row_number,
                      list_transform(content_refs, lambda r: {'kind': r.kind, 'bytes': r.bytes}) AS expected
               FROM read_parquet($p, filename = true, file_row_number = true) WHERE trace_id = $t"""
    with duckdb.connect() as conn:
        result = conn.execute(query, {"p": str(path), "t": trace_id})
        names = [d[0] for d in result.description or ()]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def test_the_refs_kinds_and_sizes_are_duckdbs_for_every_trace(tmp_path: Path) -> None:
    path = tmp_path / "spans.parquet"
    trace_ids = _span_file(path, random.Random(5))
    kinds = ContentKinds()
    spans = 0
    for trace_id in trace_ids:
        rows = _rows(path, trace_id)
        kinds.fill(rows)
        spans += len(rows)
        assert [r["content"] for r in rows] == [r["expected"] for r in rows]
        assert all(r.keys() == {"expected", "content"} for r in rows)  # the locating columns are dropped
    assert spans > 100


def test_a_file_without_content_refs_gives_no_content(tmp_path: Path) -> None:
    """A span file of a schema before `content_refs` (none in this store's history, but read by name)."""
    path = tmp_path / "old.parquet"
    table = pa.table({"trace_id": ["a" * 32], "content_bytes": pa.array([12], pa.int64())})
    write_parquet([table], table.schema, path, row_group_size=5)
    rows = [{"trace_id": "a" * 32, "content_bytes": 12, "filename": str(path), "file_row_number": 0}]
    ContentKinds().fill(rows)
    assert rows == [{"trace_id": "a" * 32, "content": None}]


# -- the derived `content_sizes` column and the files written before it ------------------------------------


def _decoded(sizes: pa.Array | pa.ChunkedArray) -> list[Any]:
    return [
        None
        if v is None
        else [None if p is None else dict(zip(("kind", "bytes"), p, strict=True)) for p in json.loads(v)]
        for v in sizes.to_pylist()
    ]


def test_the_derived_sizes_are_duckdbs_kinds_and_sizes_of_the_refs(tmp_path: Path) -> None:
    """`content_sizes` as the writer derives it, of whole tables and of slices of them (compaction conforms
    batches of a file), is the refs' (kind, bytes) as JSON, null exactly where the refs are."""
    path = tmp_path / "spans.parquet"
    _span_file(path, random.Random(8))
    table = pq.read_table(path)
    with duckdb.connect() as conn:
        expected = conn.execute(
            "SELECT list_transform(content_refs, lambda r: {'kind': r.kind, 'bytes': r.bytes}) FROM read_parquet($p)",
            {"p": str(path)},
        ).fetchall()
    rng = random.Random(9)
    for _ in range(30):
        start = rng.randrange(table.num_rows)
        length = rng.randint(0, table.num_rows - start)
        for part in (table.slice(start, length), table.slice(start, length).combine_chunks().to_batches()):
            data = part if isinstance(part, pa.Table) else pa.Table.from_batches(part, table.schema)
            sizes = derived_column("content_sizes", data)
            assert sizes is not None
            assert sizes.type == STORED_SPAN_SCHEMA.field("content_sizes").type
            assert _decoded(sizes) == [e[0] for e in expected[start : start + length]]
    assert derived_column("content_sizes", table.drop_columns(["content_refs"])) is None
    assert derived_column("trace_id", table) is None


_ref = st.none() | st.fixed_dictionaries(
    {
        "kind": st.none() | st.text(),
        "source": st.just("a"),
        "hash": st.just("h"),
        "bytes": st.none() | st.integers(-(2**63), 2**63 - 1),
    }
)


@given(refs=st.lists(st.none() | st.lists(_ref, max_size=4), max_size=12), start=st.integers(0, 12))
@settings(max_examples=200, deadline=None)
def test_the_derived_sizes_hold_any_kind_and_size(refs: list[Any], start: int) -> None:
    """Kinds needing JSON escapes (quotes, backslashes, control characters), null kinds, sizes and refs."""
    data = pa.table({"content_refs": pa.array(refs, _REFS)}).slice(min(start, len(refs)))
    sizes = derived_column("content_sizes", data)
    assert sizes is not None
    want = [
        None if r is None else [None if x is None else {"kind": x["kind"], "bytes": x["bytes"]} for x in r]
        for r in refs
    ]
    assert _decoded(sizes) == want[min(start, len(refs)) :]


def _as_version_3(table: pa.Table) -> pa.Table:
    """Span rows as a file of schema version 3 has them (no derived columns)."""
    meta = {**(table.schema.metadata or {}), b"llmscope.schema_version": b"3"}
    return table.drop_columns([c.name for c in DERIVED_SPAN_COLUMNS]).replace_schema_metadata(meta)


def _old_copy(src: Path, dst: Path, *, mixed: bool) -> None:
    """A copy of data dir `src` whose span files are of schema version 3; `mixed`: half of each file's rows
    in a version-3 file, the other half in a current one, side by side in the partition."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("wal", "tmp"))
    for path in sorted(dst.glob("spans/project=*/date=*/*.parquet")):
        table = pq.read_table(path)
        half = table.num_rows // 2 if mixed else table.num_rows
        old = _as_version_3(table.slice(0, half))
        write_parquet([old], old.schema, path, row_group_size=5)
        if mixed:
            current = table.slice(half)
            write_parquet([current], current.schema, path.with_name("current-" + path.name), row_group_size=5)


def _waterfalls(data_dir: Path, trace_ids: list[str]) -> list[bytes]:
    store = TraceStore(data_dir)
    try:
        return [msgspec.json.encode(store.get_trace(t)) for t in trace_ids]
    finally:
        store.close()


def test_span_files_without_the_sizes_give_the_same_waterfalls(
    populated: EmbeddedServer, corpus: list[GenTrace], tmp_path: Path
) -> None:
    """Data dirs of schema version 3 (no `content_sizes`: every file, or beside current files in a partition)
    serve byte-identical waterfalls, read from the refs; compaction fills the column in their files."""
    data_dir = populated.settings.data_dir
    trace_ids = [t.trace_id for t in corpus]
    current = _waterfalls(data_dir, trace_ids)
    assert sum(b.count(b'"bytes"') for b in current) > 50  # (traces with content among them)
    for name, mixed in (("old", False), ("mixed", True)):
        _old_copy(data_dir, tmp_path / name, mixed=mixed)
        assert _waterfalls(tmp_path / name, trace_ids) == current, name
    Compactor(tmp_path / "old", CompactionOptions(), lambda: 2**62).run_once()
    for path in (tmp_path / "old").glob("spans/project=*/date=*/*.parquet"):
        table = pq.read_table(path)
        assert table.schema.metadata[b"llmscope.schema_version"] == SCHEMA_VERSION.encode()
        derived = derived_column("content_sizes", table.drop_columns(["content_sizes"]))
        assert derived is not None and table.column("content_sizes").to_pylist() == derived.to_pylist()
        assert table.column("content_sizes").null_count < table.num_rows
    assert _waterfalls(tmp_path / "old", trace_ids) == current


def test_a_store_remembers_partitions_without_the_sizes_until_they_change(
    populated: EmbeddedServer, corpus: list[GenTrace], tmp_path: Path
) -> None:
    """One store over a version-3 data dir: once a partition's query has failed for want of `content_sizes`, its
    next waterfalls read the refs straight away (no failing query first), the same bytes; compaction rewrites
    the partitions (a new state of each), and the sizes serve them again, the same bytes still."""
    trace_ids = [t.trace_id for t in corpus]
    current = _waterfalls(populated.settings.data_dir, trace_ids)
    data_dir = tmp_path / "old"
    _old_copy(populated.settings.data_dir, data_dir, mixed=False)
    store = TraceStore(data_dir)
    queries: list[str] = []
    rows = store.trace_rows

    def logged(project: str, query: str, params: dict[str, Any], **how: Any) -> list[dict[str, Any]]:
        queries.append(query)
        return rows(project, query, params, **how)

    store.trace_rows = logged  # type: ignore[method-assign]
    try:

        def passed() -> tuple[list[bytes], list[str]]:
            queries.clear()
            return [msgspec.json.encode(store.get_trace(t)) for t in trace_ids], list(queries)

        first, first_queries = passed()
        again, again_queries = passed()
        assert first == again == current
        assert sql.TRACE_SPANS in first_queries and sql.TRACE_SPANS not in again_queries
        assert again_queries.count(sql.TRACE_SPANS_LOCATED) >= len(trace_ids)
        Compactor(data_dir, CompactionOptions(), lambda: 2**62).run_once()
        compacted, compacted_queries = passed()
        assert compacted == current
        assert sql.TRACE_SPANS_LOCATED not in compacted_queries
    finally:
        store.close()
