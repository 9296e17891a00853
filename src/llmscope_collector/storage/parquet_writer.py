"""Buffers decoded spans and writes them as immutable Parquet files, one per partition per flush.

The WAL consumer calls this class in WAL order: `add` and `seal` on its own thread, `write` of each
sealed flush on its flush thread (one at a time, in order; `add` meanwhile buffers the next flush
apart). Each flush covers one WAL range `[wal_start, wal_end)`; every file it writes carries that
range in its name and metadata, and is written to a temporary name, fsynced, renamed into place and
its directory fsynced, so when `write` returns the rows are durable and the consumer may advance the
WAL cursor past them.
Duplicates (same project, trace_id, span_id) are dropped on the way in against a window of
recently seen ids; spans a previous process already stored for that WAL range are skipped.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from llmscope_collector.storage.batch import DecodedBatch, DecodedPart, PartitionKey
from llmscope_collector.storage.content import ContentStore, ForgetContent
from llmscope_collector.storage.dedupe import KeyWindow, span_keys_of
from llmscope_collector.storage.derived import with_derived
from llmscope_collector.storage.layout import SCORES_DIR, SPAN_ROW_GROUP_ROWS, SPANS_DIR
from llmscope_collector.storage.schema import SCORE_SCHEMA, SPAN_SCHEMA
from llmscope_collector.storage.tables import LocalTables, TableSink, ensure_dir
from llmscope_collector.storage.wal_ranges import META_WAL_END, META_WAL_START, WalCoverage

log = logging.getLogger(__name__)

QUARANTINE_DIR = "quarantine"
# The order of a span file's rows (a stable sort of the flush's rows): its previews are put in the same
# order (they carry their span's `trace_id` and `start_ns`), so "the first row" means the same for both.
_FILE_ORDER = [("trace_id", "ascending"), ("start_ns", "ascending")]


class FlushHook(Protocol):
    """Runs inside each flush, on the writer's thread (implemented by `processors.stitch.Stitcher`).

    `before_write` gets a partition's rows before its span file and returns them with `llm_dup`
    set; `after_write` follows a durable span file (with its rows' `DecodedPart.previews`, in the order of
    the file's rows); `kept_previews` gives them for the spans `keep` keeps of a part (`spans`: those),
    when the writer drops retried ones;
    `after_flush` ends the flush; `repair` gets, at start, the stored WAL ranges replay will skip.
    """

    def before_write(self, key: PartitionKey, spans: pa.Table) -> pa.Table: ...

    def after_write(
        self, key: PartitionKey, spans: pa.Table, wal_start: int, wal_end: int, previews: pa.Table | None = None
    ) -> None: ...

    def kept_previews(self, part: DecodedPart, keep: list[bool], spans: pa.Table) -> pa.Table | None: ...

    def after_flush(self, wal_start: int, wal_end: int) -> None: ...

    def repair(self, ranges: dict[PartitionKey, list[tuple[int, int]]]) -> int: ...


class _Buffer:
    """One partition's decoded parts waiting for the next flush."""

    def __init__(self) -> None:
        self.spans: list[pa.Table] = []
        self.content: list[pa.Table] = []
        self.scores: list[pa.Table] = []
        self.previews: list[pa.Table] = []
        self.unstorable: list[bytes] = []
        self.rows = 0
        self.bytes = 0

    def extend(self, later: _Buffer) -> None:
        """Append a later buffer of the same partition (a failed flush's leftovers come first)."""
        self.spans += later.spans
        self.content += later.content
        self.scores += later.scores
        self.previews += later.previews
        self.unstorable += later.unstorable
        self.rows += later.rows
        self.bytes += later.bytes


@dataclasses.dataclass
class SealedFlush:
    """One flush's partitions, taken out of the writer by `ParquetSpanWriter.seal` (what a failed
    `write` did not write stays in `buffers`); `window_keys`: the span keys given to the dedupe window
    while they were buffered; `rows`: the rows they held when sealed."""

    buffers: dict[PartitionKey, _Buffer]
    window_keys: int
    rows: int


class ParquetSpanWriter:
    """Span sink that owns the flush files under the data dir (the WAL consumer's: `add`/`seal` on one
    thread, `write` on one other, module docstring)."""

    def __init__(
        self,
        data_dir: Path,
        recent: KeyWindow,
        *,
        row_group_size: int = SPAN_ROW_GROUP_ROWS,
        hook: FlushHook | None = None,
        content: ContentStore | None = None,
        tables: TableSink | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._tables = tables or LocalTables(data_dir)
        self._hook = hook
        self._recent = recent
        self._content = content or ContentStore(data_dir, tables=self._tables)
        self._content_lock = threading.Lock()  # a partition's write vs a deletion's orphan scan (`content_removal`)
        self._row_group_size = row_group_size
        self._coverage = WalCoverage()
        self._buffer: dict[PartitionKey, _Buffer] = {}
        # Exact dedupe within a flush, whatever the window size: while the window has been given at most its
        # capacity of keys since the flush began it still holds every buffered one (`KeyWindow`), and its
        # answers are exact alone; past that, a set of the buffered keys (`_first_unbuffered`). The window
        # is the writer's: nothing else adds keys to it while the consumer runs.
        self._window_keys = 0
        self._buffered_keys: set[bytes] | None = None
        self._buffered_rows = 0
        self._buffered_bytes = 0
        self.rows_written = 0
        self.files_written = 0
        self.duplicates_dropped = 0
        self.replay_skipped = 0
        self.rows_quarantined = 0
        self.scores_written = 0

    @property
    def content(self) -> ContentStore:
        return self._content

    @contextmanager
    def content_removal(self) -> Iterator[ForgetContent]:
        """Held by a deletion (another thread) while it finds the content items no stored span references,
        removes them and makes the content store forget them (the yielded `forget(project, date, hashes)`);
        a `storage.content.ContentRemoval`.

        The content store skips an item its partition stored recently; without this, a flush could skip
        an item just before the deletion removed it, or skip it later for a new span sending the same
        message, and that span would point at content that is gone. Flushes wait meanwhile (the WAL
        keeps accepting)."""
        with self._content_lock:
            yield self._content.forget

    def skip_stored(self, coverage: WalCoverage) -> None:
        """Spans of these (partition, WAL range) pairs are already in files: replay must not write them again."""
        self._coverage = coverage
        if self._hook is not None:
            self._hook.repair(coverage.ranges)

    @property
    def buffered_rows(self) -> int:
        return self._buffered_rows

    @property
    def buffered_bytes(self) -> int:
        """Arrow bytes of the buffered spans and content: what a flush holds in memory besides them
        (the consumer flushes at a byte bound too, since span and content sizes vary by orders of magnitude)."""
        return self._buffered_bytes

    def add(self, batch: DecodedBatch, lsn: int) -> int:
        """Buffer the spans of the WAL record at `lsn` that are not stored yet; returns how many."""
        added = 0
        for key, part in batch.partitions.items():
            keys = _span_keys(key[0], part.spans)
            if part.scores is not None and part.scores.num_rows:
                # Not skipped on replay (coverage knows span files only): a score written twice is one
                # score, since readers keep one row per score id.
                self._buffer.setdefault(key, _Buffer()).scores.append(part.scores)
                added += part.scores.num_rows
            if self._coverage and self._coverage.contains(key, lsn):
                self._recent.add_batch(keys)
                self._window_keys += len(keys)
                self.replay_skipped += len(keys)
                continue
            added += self._buffer_new(key, part, keys)
        return added

    def _buffer_new(self, key: PartitionKey, part: DecodedPart, keys: list[bytes]) -> int:
        keep = self._recent.add_batch(keys)
        self._window_keys += len(keys)
        if self._window_keys > self._recent.capacity:  # the window may have forgotten a buffered key
            keep = self._first_unbuffered(keys, keep)
        kept = keep.count(True)
        self.duplicates_dropped += len(keys) - kept
        buffer = self._buffer.setdefault(key, _Buffer())
        buffer.unstorable.extend(part.unstorable)
        if not kept and not part.unstorable:
            return 0
        spans = part.spans if kept == len(keys) else part.spans.filter(pa.array(keep))
        buffer.spans.append(spans)
        buffer.content.append(part.content)
        size = _held_bytes(part, spans) + _held_bytes(part, part.content)
        previews = None  # only the hook reads them
        if self._hook is not None and part.previews is not None and part.previews.num_rows:
            previews = part.previews if kept == len(keys) else self._hook.kept_previews(part, keep, spans)
        if previews is not None and previews.num_rows:
            buffer.previews.append(previews)
            size += _held_bytes(part, previews)
        buffer.rows += kept
        buffer.bytes += size
        self._buffered_rows += kept
        self._buffered_bytes += size
        return kept

    def _first_unbuffered(self, keys: list[bytes], fresh: list[bool]) -> list[bool]:
        """`fresh` (the window's answers) and not buffered yet, nor earlier in `keys` (rare: a window smaller
        than a flush, or off)."""
        buffered = self._buffered_keys
        if buffered is None:  # the keys of every buffered span, from the buffered rows
            buffered = self._buffered_keys = {
                span_key
                for (project, _), buffer in self._buffer.items()
                for spans in buffer.spans
                for span_key in _span_keys(project, spans)
            }
        keep = []
        for new, span_key in zip(fresh, keys, strict=True):
            new = new and span_key not in buffered
            if new:
                buffered.add(span_key)
            keep.append(new)
        return keep

    def seal(self) -> SealedFlush:
        """Take everything buffered as one flush's content; later `add`s buffer for the next flush.

        The WAL consumer seals on its own thread and writes on its flush thread, so decoding and
        buffering go on while a flush writes (a flush's wall time is mostly waiting for the cores the
        decode workers use; the workers would otherwise sit idle once their reads are done)."""
        sealed = SealedFlush(self._buffer, self._window_keys, self._buffered_rows)
        self._buffer = {}
        self._buffered_keys, self._window_keys = None, 0
        self._buffered_rows = self._buffered_bytes = 0
        return sealed

    def write(self, sealed: SealedFlush, wal_start: int, wal_end: int) -> int:
        """Durably write a sealed flush's partitions as files holding WAL range `[wal_start, wal_end)`.

        Safe beside `add` on another thread (they share no buffer). On an error the partitions not yet
        written stay in `sealed`; the caller retries with the same range. Writes are one at a time, in
        WAL order (the stitcher's state follows the flushes)."""
        written = 0
        for key in list(sealed.buffers):
            written += self._write_partition(key, sealed.buffers[key], wal_start, wal_end)
            del sealed.buffers[key]
        if self._hook is not None:
            self._hook.after_flush(wal_start, wal_end)
        self._tables.commit_flush(wal_start, wal_end)  # a bucket's manifest: the flush is one unit
        return written

    def flush(self, wal_start: int, wal_end: int) -> int:
        """`seal` then `write`, for callers that add and flush on one thread; on an error what was not
        written is buffered again (before anything added since), to be written by the next flush."""
        sealed = self.seal()
        try:
            return self.write(sealed, wal_start, wal_end)
        except BaseException:
            self._unseal(sealed)
            raise

    def _unseal(self, sealed: SealedFlush) -> None:
        newer, self._buffer = self._buffer, sealed.buffers
        for key, buffer in newer.items():
            self._buffer.setdefault(key, _Buffer()).extend(buffer)
        self._window_keys += sealed.window_keys  # since the oldest buffered span
        self._buffered_keys = None  # made again from the buffered rows if needed
        self._buffered_rows = sum(b.rows for b in self._buffer.values())
        self._buffered_bytes = sum(b.bytes for b in self._buffer.values())

    def _write_partition(self, key: PartitionKey, buffer: _Buffer, wal_start: int, wal_end: int) -> int:
        project, date = key
        if buffer.unstorable:
            self._set_aside(buffer.unstorable, wal_start, wal_end)
            buffer.unstorable = []
        if buffer.scores:  # before the spans: replay skips a range whose span file exists
            self._write_scores(key, pa.concat_tables(buffer.scores), wal_start, wal_end)
            buffer.scores = []
        if not buffer.rows:
            return 0
        # One chunk (the parts' copy is held instead of them): the hook's, the sort's and the derivations'
        # array operations then run once, not once per part.
        table = pa.concat_tables(buffer.spans).combine_chunks()
        buffer.spans = [table]
        if self._hook is not None:
            table = self._hook.before_write(key, table)
        table = with_derived(table.sort_by(_FILE_ORDER))  # derived after the sort: not taken with the rows
        metadata: dict[bytes | str, bytes | str] = dict(SPAN_SCHEMA.metadata or {})
        metadata.update({META_WAL_START: str(wal_start), META_WAL_END: str(wal_end)})
        table = table.replace_schema_metadata(metadata)
        name = self._tables.part_name(wal_start, wal_end)
        with self._content_lock:  # the content's "stored" and the spans' references, seen together by a deletion
            if buffer.content:  # content first: a durable span never points at missing content
                content_name = self._tables.part_name(wal_start, wal_end)  # a deterministic key in a bucket
                self._content.write(project, date, pa.concat_tables(buffer.content), name=content_name)
                buffer.content = []
            self._tables.write(SPANS_DIR, project, date, name, table, row_group_size=self._row_group_size)
        if self._hook is not None:
            previews = pa.concat_tables(buffer.previews).sort_by(_FILE_ORDER) if buffer.previews else None
            self._hook.after_write(key, table, wal_start, wal_end, previews)
        self.rows_written += table.num_rows
        self.files_written += 1
        return int(table.num_rows)

    def _write_scores(self, key: PartitionKey, scores: pa.Table, wal_start: int, wal_end: int) -> None:
        metadata: dict[bytes | str, bytes | str] = dict(SCORE_SCHEMA.metadata or {})
        metadata.update({META_WAL_START: str(wal_start), META_WAL_END: str(wal_end)})
        name = self._tables.part_name(wal_start, wal_end)
        table = scores.replace_schema_metadata(metadata)
        self._tables.write(SCORES_DIR, key[0], key[1], name, table, row_group_size=self._row_group_size)
        self.scores_written += scores.num_rows

    def _set_aside(self, lines: list[bytes], wal_start: int, wal_end: int) -> None:
        """Rows Arrow could not store (found at decode) go to `quarantine/spans-<walstart>-<walend>.jsonl`."""
        directory = self._data_dir / QUARANTINE_DIR
        ensure_dir(directory)
        with open(directory / f"spans-{wal_start:016x}-{wal_end:016x}.jsonl", "ab") as fh:
            fh.write(b"\n".join(lines) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.rows_quarantined += len(lines)
        log.error("%d span(s) could not be stored; kept in %s", len(lines), directory)


def _held_bytes(part: DecodedPart, table: pa.Table) -> int:
    """What holding `table` (of `part`, or made from it) costs: the bytes its IPC records took when it came from
    a decode worker (`DecodedPart.held_bytes`, known there: no walk of its buffers on this thread), else the
    bytes of the buffers it references (`Table.nbytes` counts only the referenced ranges, which for the
    IPC-read tables of the decode workers cost ~1.5 us a span to find; this is the same within ~0.3% there)."""
    known = part.held_bytes(table)
    return int(table.get_total_buffer_size()) if known is None else known


def _span_keys(project: str, spans: pa.Table) -> list[bytes]:
    return span_keys_of(project, spans.column("trace_id"), spans.column("span_id"))


def remove_stale_temp_files(partitions: list[Path]) -> int:
    """Delete `*.tmp` leftovers of writes a crash interrupted (never visible to readers)."""
    removed = 0
    for directory in partitions:
        for entry in os.scandir(directory):
            if entry.name.endswith(".tmp"):
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
    return removed
