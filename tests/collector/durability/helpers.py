"""Shared helpers for the durability tests: OTLP payloads with known span ids, counting what is stored, and
comparing decoded batches (the decode pool's files tests)."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from llmscope_collector.storage.batch import Decoded, DecodedBatch
from llmscope_collector.storage.layout import has_span_files, spans_glob
from tests import otlp_factory as f

DAY_NS = 86_400 * 10**9


def payload(span_ids: list[bytes], trace_id: bytes | None = None, start_ns: int | None = None) -> bytes:
    """One request with one span per id, all in `trace_id`, else each in a trace derived from its id.

    Deriving the trace from the span id makes a resent id the same span, as a client retry would be.
    """
    start = start_ns if start_ns is not None else time.time_ns()
    spans = [
        f.span(trace_id or sid * 2, sid, f"op-{i}", start + i, start + i + 1_000_000) for i, sid in enumerate(span_ids)
    ]
    return f.request(spans).SerializeToString()


def stored_counts(data_dir: Path) -> tuple[int, int]:
    """(rows, distinct (trace_id, span_id)) over every span file, via DuckDB."""
    if not has_span_files(data_dir):
        return 0, 0
    with duckdb.connect() as con:
        row = con.execute(
            "SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM read_parquet($glob, union_by_name = true)",
            {"glob": spans_glob(data_dir)},
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def stored_span_ids(data_dir: Path) -> list[str]:
    if not has_span_files(data_dir):
        return []
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT span_id FROM read_parquet($glob, union_by_name = true)", {"glob": spans_glob(data_dir)}
        ).fetchall()
    return [r[0] for r in rows]


def decode_items(records: int, spans: int, projects: int = 1) -> list[tuple[str, bytes]]:
    """`records` decode-task items of `spans` spans each, unique span ids, over `projects` projects
    (`default`, or `project-0`, `project-1`, ... when more than one)."""
    now = time.time_ns()
    return [
        (
            "default" if projects == 1 else f"project-{r % projects}",
            payload([(r * spans + s + 1).to_bytes(8, "big") for s in range(spans)], start_ns=now + r),
        )
        for r in range(records)
    ]


def assert_same_batches(got: list[Decoded], want: list[Decoded]) -> None:
    """Decoded batches equal: counts, errors, partitions, and each partition's span and content rows."""
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert isinstance(a, DecodedBatch) and isinstance(b, DecodedBatch)
        assert (a.accepted, a.rejected, a.errors) == (b.accepted, b.rejected, b.errors)
        assert list(a.partitions) == list(b.partitions)
        for key, part in a.partitions.items():
            other = b.partitions[key]
            assert part.spans.schema.equals(other.spans.schema, check_metadata=True)
            assert part.spans.to_pylist() == other.spans.to_pylist()
            assert part.content.to_pylist() == other.content.to_pylist()
