"""Compaction on real Parquet files: merge, sort, dedupe (also against other files), schema upgrade
with unknown columns kept, crash recovery of an interrupted swap, and readers racing with it."""

from __future__ import annotations

import threading
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmscope_collector.pipeline import DecodeIntoParquet
from llmscope_collector.processors.decode_pool import DecodePool
from llmscope_collector.processors.stitch import Stitcher, removal_deltas
from llmscope_collector.query.filters import TraceQuery
from llmscope_collector.query.store import TraceStore
from llmscope_collector.storage import compaction
from llmscope_collector.storage.compaction import CompactionOptions, Compactor
from llmscope_collector.storage.dedupe import RecentSpanIds
from llmscope_collector.storage.layout import COMPACTION_DIR, iter_partitions, parquet_files
from llmscope_collector.storage.parquet_writer import ParquetSpanWriter
from llmscope_collector.storage.schema import SCHEMA_VERSION, SPAN_SCHEMA
from llmscope_collector.wal.segment import WalRecord
from tests.collector.durability.helpers import payload, stored_counts

START = 1_700_000_000 * 10**9  # 2023-11-14


class Files:
    """Writes flush files the way the collector does, one WAL range per flush."""

    def __init__(self, data_dir: Path, window: int = 0) -> None:
        self.writer = ParquetSpanWriter(data_dir, RecentSpanIds(window))
        self.sink = DecodeIntoParquet(self.writer, DecodePool(0))
        self.lsn = 0

    def flush(self, *bodies: bytes) -> None:
        start = self.lsn
        for body in bodies:
            self.sink.consume([WalRecord(self.lsn, self.lsn + 1, "default", body)])
            self.lsn += 1
        self.writer.flush(start, self.lsn)


def _ids(n: int, seed: int) -> list[bytes]:
    return [(seed * 1000 + i + 1).to_bytes(8, "big") for i in range(n)]


def _partition(data_dir: Path) -> Path:
    [partition] = list(iter_partitions(data_dir))
    return partition.path


def _compactor(data_dir: Path, committed: int = 1 << 62, **options: int) -> Compactor:
    return Compactor(data_dir, CompactionOptions(**options), committed_lsn=lambda: committed)


def test_small_files_become_one_sorted_file_without_duplicates(tmp_path: Path) -> None:
    files = Files(tmp_path)
    for n in range(6):
        # A retry in a later flush (the writer drops one within a flush), with the window off: 5 dups each.
        files.flush(payload(_ids(10, n), start_ns=START + n))
        files.flush(payload(_ids(5, n), start_ns=START + n))
    assert stored_counts(tmp_path) == (90, 60)
    stats = _compactor(tmp_path, row_group_size=16).run_once()
    assert (stats.files_in, stats.files_out, stats.rows_in, stats.rows_out) == (12, 1, 90, 60)
    [output] = parquet_files(_partition(tmp_path))
    assert output.name.startswith("compact-")
    table = pq.read_table(output)
    assert table.column("trace_id").to_pylist() == sorted(table.column("trace_id").to_pylist())
    assert pq.read_metadata(output).row_group(0).num_rows == 16
    assert table.schema.metadata[b"llmscope.schema_version"] == SCHEMA_VERSION.encode()
    assert stored_counts(tmp_path) == (60, 60)
    assert _compactor(tmp_path).run_once().files_in == 0  # nothing left to do


def test_a_duplicate_of_a_span_in_a_large_file_is_removed(tmp_path: Path) -> None:
    files = Files(tmp_path)
    files.flush(payload(_ids(40, 1), start_ns=START))
    files.flush(payload(_ids(3, 1) + _ids(2, 2), start_ns=START))
    files.flush(payload(_ids(2, 3), start_ns=START))
    stats = _compactor(tmp_path, target_rows=60).run_once()  # the 40-row file is "large": rewritten alone
    assert (stats.files_in, stats.rows_in, stats.rows_out) == (3, 47, 44)
    assert stored_counts(tmp_path) == (44, 44)
    assert _compactor(tmp_path, target_rows=60).run_once().files_in == 0  # checked once, then left alone


def test_files_not_yet_committed_in_the_wal_are_left_alone(tmp_path: Path) -> None:
    files = Files(tmp_path)
    for n in range(3):
        files.flush(payload(_ids(4, n), start_ns=START))
    assert _compactor(tmp_path, committed=1).run_once().files_in == 1  # only the first flush's file
    assert _compactor(tmp_path, committed=2).run_once().files_in == 2  # its output and the second one
    assert len(parquet_files(_partition(tmp_path))) == 2  # the third, uncommitted, untouched


def _old_schema_file(partition: Path, ids: list[bytes]) -> None:
    """A file from an older release: fewer columns, version 1, plus a column this release does not know."""
    rows = len(ids)
    table = pa.table(
        {
            "trace_id": [(i * 2).hex() for i in ids],
            "span_id": [i.hex() for i in ids],
            "name": ["legacy"] * rows,
            "start_ns": pa.array([START] * rows, pa.int64()),
            "future_column": [f"kept-{n}" for n in range(rows)],
        }
    ).replace_schema_metadata({"llmscope.schema_version": "1"})
    pq.write_table(table, partition / "part-legacy.parquet")


def test_old_files_are_rewritten_with_the_current_schema_keeping_unknown_columns(tmp_path: Path) -> None:
    files = Files(tmp_path)
    files.flush(payload(_ids(3, 1), start_ns=START))
    partition = _partition(tmp_path)
    _old_schema_file(partition, _ids(4, 2))
    _compactor(tmp_path).run_once()
    [output] = parquet_files(partition)
    table = pq.read_table(output)
    assert table.schema.names[: len(SPAN_SCHEMA)] == SPAN_SCHEMA.names
    assert sorted(v for v in table.column("future_column").to_pylist() if v) == [f"kept-{n}" for n in range(4)]
    legacy = table.filter(pa.compute.equal(table.column("name"), "legacy"))
    assert legacy.num_rows == 4 and set(legacy.column("ttft_s").to_pylist()) == {None}
    # A migration keeps the old files as a backup until they expire.
    backups = list((tmp_path / COMPACTION_DIR / compaction.BACKUP_DIR).rglob("*.parquet"))
    assert len(backups) == 2


def test_a_file_of_larger_row_groups_is_rewritten_once_in_the_current_ones(tmp_path: Path) -> None:
    files = Files(tmp_path)
    for n in range(3):
        files.flush(payload(_ids(20, n), start_ns=START + n))
    _compactor(tmp_path, row_group_size=100, target_rows=100).run_once()  # an older release's layout
    partition = _partition(tmp_path)
    [before] = parquet_files(partition)
    assert pq.read_metadata(before).num_row_groups == 1
    rows = pq.read_table(before)
    stats = _compactor(tmp_path, row_group_size=16, target_rows=100).run_once()  # large (60 rows): alone
    assert (stats.files_in, stats.rows_in, stats.rows_out, stats.duplicates_removed) == (1, 60, 60, 0)
    [after] = parquet_files(partition)
    meta = pq.read_metadata(after)
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [16, 16, 16, 12]
    assert pq.read_table(after).equals(rows)  # the same rows, in the same order
    assert not list((tmp_path / COMPACTION_DIR).rglob("*.parquet"))  # no backup: nothing was migrated
    assert _compactor(tmp_path, row_group_size=16, target_rows=100).run_once().files_in == 0  # once


def _interrupted_swap(tmp_path: Path, renamed: bool, output_ready: bool = True) -> tuple[Path, list[Path]]:
    files = Files(tmp_path)
    for n in range(3):
        files.flush(payload(_ids(4, n), start_ns=START))
    partition = _partition(tmp_path)
    inputs = parquet_files(partition)
    merged = pa.concat_tables([pq.read_table(p) for p in inputs])
    output = partition / "compact-000000000001.parquet"
    if output_ready:
        pq.write_table(merged, output if renamed else output.with_name(output.name + ".tmp"))
    intent = {"partition": str(partition), "inputs": [p.name for p in inputs], "outputs": [output.name]}
    (tmp_path / COMPACTION_DIR).mkdir()
    (tmp_path / COMPACTION_DIR / "abc.json").write_bytes(msgspec.json.encode(intent))
    return output, inputs


def test_recovery_rolls_an_interrupted_compaction_forward(tmp_path: Path) -> None:
    for renamed in (False, True):
        data = tmp_path / str(renamed)
        output, _inputs = _interrupted_swap(data, renamed=renamed)
        assert compaction.recover(data) == 1
        assert parquet_files(output.parent) == [output]
        assert stored_counts(data) == (12, 12)
        assert not list((data / COMPACTION_DIR).glob("*.json"))


def test_recovery_rolls_back_when_an_output_never_became_durable(tmp_path: Path) -> None:
    output, inputs = _interrupted_swap(tmp_path, renamed=False, output_ready=False)
    assert compaction.recover(tmp_path) == 1
    assert parquet_files(output.parent) == inputs
    assert stored_counts(tmp_path) == (12, 12)


batches = st.lists(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=12), min_size=1, max_size=10)


@given(batches=batches, window=st.integers(min_value=0, max_value=8))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_after_compaction_every_span_is_stored_exactly_once(
    tmp_path_factory: object, batches: list, window: int
) -> None:
    """Whatever duplicates the bounded window lets through, compaction leaves each span once."""
    data = tmp_path_factory.mktemp("data")  # type: ignore[attr-defined]
    files = Files(data, window=window)
    for batch in batches:
        files.flush(payload([n.to_bytes(8, "big") for n in batch], start_ns=START))
    _compactor(data, target_rows=25).run_once()
    unique = len({n for batch in batches for n in batch})
    assert stored_counts(data) == (unique, unique)


def test_queries_racing_with_compaction_never_fail(tmp_path: Path) -> None:
    files = Files(tmp_path)
    store = TraceStore(tmp_path)
    compactor = _compactor(tmp_path)
    errors: list[BaseException] = []
    done = threading.Event()

    def query() -> None:
        while not done.is_set():
            try:
                store.counts()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                return

    reader = threading.Thread(target=query)
    reader.start()
    try:
        for n in range(25):
            files.flush(payload(_ids(3, n), start_ns=START))
            compactor.run_once()
        spans = store.counts().spans  # footers read as files came, forgotten as compaction removed them
    finally:
        done.set()
        reader.join()
        store.close()
    assert errors == []
    assert stored_counts(tmp_path) == (75, 75) and spans == 75


@pytest.mark.parametrize("crash", [False, True])
def test_a_removed_duplicate_span_is_no_longer_counted_in_its_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash: bool
) -> None:
    """A retry the dedupe window missed was stored, and summed into its trace, twice: compaction keeps
    one copy and writes the delta cancelling the other's, so the trace counts each span once (also
    when a crash interrupts the swap after its intent: recovery renames the correction in with it)."""
    stitcher = Stitcher(tmp_path)
    writer = ParquetSpanWriter(tmp_path, RecentSpanIds(0), hook=stitcher)
    sink = DecodeIntoParquet(writer, DecodePool(0))
    trace = b"\x07" * 16
    bodies = [payload(_ids(6, 1), trace_id=trace, start_ns=START), payload(_ids(4, 1), trace_id=trace, start_ns=START)]
    for lsn, body in enumerate(bodies):  # the second: a retry of part of the first, in a later flush
        sink.consume([WalRecord(lsn, lsn + 1, "default", body)])
        writer.flush(lsn, lsn + 1)

    def span_count() -> int:
        [summary] = TraceStore(tmp_path).list_traces("default", TraceQuery(limit=10)).traces
        return summary.span_count

    assert span_count() == 10
    compactor = Compactor(tmp_path, CompactionOptions(), committed_lsn=lambda: 2, removal_deltas=removal_deltas)
    if crash:
        with monkeypatch.context() as patch:
            patch.setattr(compaction, "_roll_forward", _killed)
            assert compactor.run_once().errors == 1
        assert span_count() == 10  # nothing renamed in yet
        assert compaction.recover(tmp_path) == 1
    else:
        assert compactor.run_once().duplicates_removed == 4
    assert stored_counts(tmp_path) == (6, 6) and span_count() == 6
    [correction] = [p for p in (tmp_path / "traces").rglob("compact-*.parquet")]
    assert pq.read_table(correction).column("span_count").to_pylist() == [-4]


def _killed(intent: object) -> None:
    raise OSError("killed after the intent was made durable")
