"""A decode task's results cross the process boundary packed (`storage.batch.DecodedList`): all tables of
one schema in one IPC stream, all streams in one buffer. Each table must come back to its own part, equal
to the sent one (values, schema, metadata), whatever the mix of schemas, chunks, empty tables and errors."""

from __future__ import annotations

import pickle
import time
from multiprocessing.reduction import ForkingPickler

import pyarrow as pa
import pytest

from llmscope_collector.processors.decode import decode_bytes
from llmscope_collector.processors.pricing import PricesNeeded
from llmscope_collector.storage.batch import Decoded, DecodedBatch, DecodedList, DecodedPart, pack, unpack
from tests import otlp_factory as f
from tests.collector.durability.helpers import payload
from tests.collector.query.dataset import generate, otlp_span

_KINDS = ("spans", "content", "scores", "previews")


def _shipped(results: list[Decoded]) -> list[Decoded]:
    """As the pool sends a task's results back: pickled by multiprocessing's pickler, unpickled."""
    back = pickle.loads(ForkingPickler.dumps(DecodedList(results)))
    assert type(back) is list
    return back


def _assert_same(sent: list[Decoded], back: list[Decoded]) -> None:
    assert len(back) == len(sent)
    for a, b in zip(sent, back, strict=True):
        if isinstance(a, BaseException):
            assert type(b) is type(a) and b.args == a.args
            continue
        assert isinstance(b, DecodedBatch)
        assert (b.accepted, b.rejected, b.errors, b.marked) == (a.accepted, a.rejected, a.errors, a.marked)
        assert list(b.partitions) == list(a.partitions)
        for key, part in a.partitions.items():
            got = b.partitions[key]
            assert got.unstorable == part.unstorable
            for kind in _KINDS:
                want, have = getattr(part, kind), getattr(got, kind)
                if want is None:
                    assert have is None, kind
                    continue
                assert have.schema.equals(want.schema, check_metadata=True), kind
                assert have.to_pylist() == want.to_pylist(), kind


def _table(values: list[int], tag: str, metadata: dict[str, str] | None = None) -> pa.Table:
    schema = pa.schema([("n", pa.int64()), ("tag", pa.string())], metadata=metadata)
    return pa.table({"n": values, "tag": [f"{tag}-{v}" for v in values]}, schema=schema)


def test_decoded_requests_come_back_equal_each_to_its_own_record() -> None:
    """Real decodes (spans, content), several records: a framing off by one batch would swap their rows."""
    now = time.time_ns()
    sent: list[Decoded] = [
        decode_bytes(payload([bytes([n + 1, i + 1]) * 4 for i in range(n + 1)], start_ns=now + n), "default")
        for n in range(5)
    ]
    back = _shipped(sent)
    _assert_same(sent, back)
    for n, batch in enumerate(back):
        assert isinstance(batch, DecodedBatch)
        [part] = batch.partitions.values()
        assert part.spans.num_rows == n + 1


def test_tables_of_mixed_schemas_chunks_and_sizes_keep_their_own_rows() -> None:
    """Same kind, different schemas (metadata only, or columns): separate streams; a table of several
    chunks, an empty one, scores and previews on some parts only, exceptions between batches."""
    chunked = pa.concat_tables([_table([1, 2], "c"), _table([3], "c"), _table([4, 5, 6], "c")])
    assert chunked.column("n").num_chunks == 3
    other = pa.table({"x": pa.array(["a", None, "c"]), "y": pa.array([[1], [], None], pa.list_(pa.int32()))})
    sent: list[Decoded] = [
        DecodedBatch(
            {
                ("p", "2026-01-01"): DecodedPart(chunked, _table([10], "content"), [b'{"bad": 1}']),
                ("p", "2026-01-02"): DecodedPart(
                    _table([20, 21], "s", {"v": "4"}), _table([], "content"), scores=other, previews=_table([7], "pv")
                ),
            },
            accepted=9,
            rejected=1,
            errors=["one span had no trace id"],
            marked={"late": 2},
        ),
        PricesNeeded(frozenset({("openai", "gpt-x")})),
        ValueError("not a protobuf"),
        DecodedBatch({("q", "2026-01-01"): DecodedPart(_table([30, 31, 32], "s", {"v": "3"}), _table([40], "c"))}),
        DecodedBatch(),
    ]
    back = _shipped(sent)
    _assert_same(sent, back)
    needed = back[1]
    assert isinstance(needed, PricesNeeded) and needed.keys == frozenset({("openai", "gpt-x")})


def test_dictionary_columns_keep_each_tables_own_dictionary() -> None:
    """Dictionary arrays of one schema in one stream: each table's dictionary comes back with its rows."""
    first = pa.table({"d": pa.array(["a", "b", "a"]).dictionary_encode()})
    second = pa.table({"d": pa.array(["z", "y"]).dictionary_encode()})
    sent: list[Decoded] = [
        DecodedBatch({("p", "d"): DecodedPart(first, second)}),
        DecodedBatch({("p", "e"): DecodedPart(second, first)}),
    ]
    _assert_same(sent, _shipped(sent))


@pytest.mark.parametrize("results", [[], [ValueError("only errors")]])
def test_a_task_without_tables_round_trips(results: list[Decoded]) -> None:
    _assert_same(results, _shipped(results))


def _llm_records(count: int) -> list[Decoded]:
    """Real decodes of generated LLM traces (spans, content and previews), `count` requests of two traces."""
    traces = generate(7, 2 * count, start_ns=time.time_ns())
    return [
        decode_bytes(
            f.request([otlp_span(s) for t in traces[2 * n : 2 * n + 2] for s in t.spans]).SerializeToString(), "p"
        )
        for n in range(count)
    ]


def _buffers(table: pa.Table) -> int:
    return sum(len(chunk.buffers()) for column in table.columns for chunk in column.chunks)


def test_a_shipped_tables_held_bytes_are_its_record_bodies_at_least_its_buffers() -> None:
    """What the writer counts a buffered table as (`DecodedPart.held_bytes`): known for each table as it came
    back, never less than the buffers it references (so a bound on it bounds memory at least as tightly),
    at most their padding to 8 bytes more, and all of them together the streams' bytes but for each
    stream's schema, end and record batch metadata (what the collector holds for the task)."""
    sent = _llm_records(4)
    streams, packed = pack(sent)
    back = unpack([s.to_pybytes() for s in streams], packed)
    held = batches = 0
    for batch in back:
        assert isinstance(batch, DecodedBatch)
        for part in batch.partitions.values():
            assert part.previews is not None and part.content.num_rows  # all kinds are exercised
            for table in (part.spans, part.content, part.previews):
                size = part.held_bytes(table)
                assert size is not None
                assert table.get_total_buffer_size() <= size <= table.get_total_buffer_size() + 7 * _buffers(table)
                held += size
                batches += len(table.to_batches())
            assert part.held_bytes(part.spans.slice(1)) is None  # a table made since: the writer measures it
    readers = [pa.ipc.open_stream(s) for s in streams]
    framing = sum(len(r.schema.serialize()) + 8 for r in readers)  # a schema message and the end marker
    metadata = [len(b.serialize()) - pa.ipc.read_message(b.serialize()).body.size for r in readers for b in r]
    assert len(metadata) == batches
    assert held == sum(s.size for s in streams) - framing - sum(metadata)


def test_a_part_not_unpacked_has_no_known_size() -> None:
    """Decoded here (inline) or pickled alone: the writer measures its tables itself."""
    [batch] = _llm_records(1)
    assert isinstance(batch, DecodedBatch)
    [part] = batch.partitions.values()
    back = pickle.loads(pickle.dumps(part))
    assert part.held_bytes(part.spans) is None and back.held_bytes(back.spans) is None
