"""`ContentKinds` reads the same (kind, bytes) refs as DuckDB's `list_transform` of `content_refs` did, for
traces anywhere in a file: first or last rows of a row group, across a row-group boundary, without content."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from llmscope_collector.durable_io import write_parquet
from llmscope_collector.query.content_kinds import ContentKinds
from llmscope_collector.storage.schema import SPAN_COLUMNS

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
    sizes = [None if r is None else sum(x["bytes"] or 0 for x in r) for r in refs]
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
