"""Cluster mode's flush-side half of session deletion (storage.bucket_deletion.TombstoneFilter) on real
decoded batches: what a collector buffers after a tombstone holds none of the session's spans, content
items or trace-list previews, and everything else exactly as decoded (previews still paired with their
spans by position, which the writer relies on)."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from llmscope_collector.processors.decode import decode_request
from llmscope_collector.storage.batch import DecodedBatch
from llmscope_collector.storage.bucket_deletion import TombstoneFilter, session_digest
from llmscope_collector.storage.manifests import SessionTombstone
from tests import otlp_factory as f
from tests.collector.query.dataset import GenTrace, generate, otlp_span


class _Tombstones:
    """The one thing the filter reads of the manifest index: the tombstones it holds."""

    def __init__(self, tombstones: dict[str, SessionTombstone]) -> None:
        self._tombstones = tombstones

    def tombstones(self) -> dict[str, SessionTombstone]:
        return dict(self._tombstones)


def _decoded(traces: list[GenTrace]) -> DecodedBatch:
    spans = [otlp_span(s) for t in traces for s in t.spans]
    return decode_request(f.request(spans, service="svc"), "default")


def _rows(batch: DecodedBatch, table: str) -> list[dict[str, object]]:
    return [row for part in batch.partitions.values() for row in getattr(part, table).to_pylist()]


@pytest.mark.parametrize("seed", [3, 17, 29])
def test_a_batch_after_a_tombstone_keeps_everything_but_the_session(seed: int) -> None:
    corpus = generate(seed, 40, step_s=30)  # one or two date partitions, every session mixed in each
    victim = "sess-3"
    gone = {t.trace_id for t in corpus if t.session == victim}
    assert gone and len(gone) < len(corpus)
    before = _decoded(corpus)
    assert any(part.previews is not None for part in before.partitions.values())
    tombstone = SessionTombstone(project="default", session_sha256=session_digest(victim), deleted_unix_ns=2**62)
    after = TombstoneFilter(_Tombstones({"d1": tombstone})).apply(_decoded(corpus))  # type: ignore[arg-type]

    kept_spans = [r for r in _rows(before, "spans") if r["trace_id"] not in gone]
    assert _rows(after, "spans") == kept_spans
    for part in after.partitions.values():
        assert part.previews is not None
        spans = part.spans
        for row in part.previews.to_pylist():  # each preview row still names its own span's position
            assert spans.column("trace_id")[row["row"]].as_py() == row["trace_id"] not in gone
            assert spans.column("start_ns")[row["row"]].as_py() == row["start_ns"]
        referenced = set(pc.struct_field(pc.list_flatten(spans.column("content_refs")), "hash").to_pylist())
        assert set(part.content.column("hash").to_pylist()) == referenced  # nothing only the session used
    kept_previews = [
        {k: v for k, v in r.items() if k != "row"} for r in _rows(before, "previews") if r["trace_id"] not in gone
    ]
    assert [{k: v for k, v in r.items() if k != "row"} for r in _rows(after, "previews")] == kept_previews


def test_spans_of_the_session_that_start_after_its_deletion_are_a_new_conversation() -> None:
    corpus = generate(5, 30, step_s=30)
    victim = "sess-3"
    mine = [t for t in corpus if t.session == victim]
    cutoff = min(t.start_ns for t in mine) + 1  # only the session's first trace started by then
    tombstone = SessionTombstone(project="default", session_sha256=session_digest(victim), deleted_unix_ns=cutoff)
    after = TombstoneFilter(_Tombstones({"d1": tombstone})).apply(_decoded(corpus))  # type: ignore[arg-type]
    traces = {r["trace_id"] for r in _rows(after, "spans")}
    first = min(mine, key=lambda t: t.start_ns)
    assert first.trace_id not in traces and {t.trace_id for t in mine if t is not first} <= traces
