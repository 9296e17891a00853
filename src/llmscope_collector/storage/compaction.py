"""Compaction: merge a partition's small files into large ones, removing duplicate rows.

On a data dir the spans dataset is compacted; in cluster mode (storage.bucket_compaction) every
dataset, each by its `MergeRule`: duplicate spans, late duplicate marks and content items are
removed (by their keys), trace summary deltas and scores are only concatenated (deltas add up;
readers keep a score id's latest row).

Each flush writes one small file per partition, and DuckDB pays per file; compaction merges them
into files of up to `target_rows` / `target_bytes` (zstd, sorted by trace_id then start_ns, row
groups of `row_group_size`: `layout.SPAN_ROW_GROUP_ROWS`). While merging it removes every duplicate
(trace_id, span_id): within the merged files and against the partition's other files, so
exactly-once storage holds even for a retry the in-memory window missed. Files are rewritten with
the current schema (missing columns become nulls; unknown columns are kept), which is also how
files migrate to a new schema version, and (spans) in row groups of the current size: a file
written with larger ones is rewritten once, on its own.

Crash safety: outputs are written and fsynced under temporary names, then an intent file listing
inputs and outputs is made durable, then outputs are renamed in and inputs removed, then the
intent is deleted. `recover()` at start rolls an interrupted compaction forward (all outputs ready)
or back (otherwise). Inputs of a schema migration are moved to `compaction/backup/` instead of
deleted, so a migration can be rolled back by moving them back (see docs/collector.md).
Only files whose WAL range is committed are touched, so replay never depends on a merged file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from llmscope_collector.durable_io import fsync_dir, replace_durably, write_durably, write_durably_parts
from llmscope_collector.file_modes import make_private_dir
from llmscope_collector.storage.layout import (
    COMPACTED_PREFIX,
    COMPACTION_DIR,
    CONTENT_DIR,
    LLM_DUPS_DIR,
    SCORES_DIR,
    SPAN_ROW_GROUP_ROWS,
    SPANS_DIR,
    TRACES_DIR,
    Partition,
    compacted_part_path,
    encoding_of,
    iter_partitions,
    parquet_files,
    partition_dir,
    wal_range_of,
)
from llmscope_collector.storage.merge import MergedGroup, MergeRule, first_of_each, plan
from llmscope_collector.storage.schema import (
    CONTENT_SCHEMA,
    LLM_DUP_SCHEMA,
    SCHEMA_VERSION,
    SCORE_SCHEMA,
    STORED_SPAN_SCHEMA,
    TRACE_DELTA_SCHEMA,
)
from llmscope_collector.storage.tables import ensure_dir

log = logging.getLogger(__name__)

SCHEMA_VERSION_KEY = b"llmscope.schema_version"
COMPACTED_FROM_KEY = b"llmscope.compacted_from"
"""A merged file's metadata: the JSON list of the file names it replaced (readers such as the
ClickHouse loader and the summary index skip inputs a merged file names)."""
BACKUP_DIR = "backup"
SPILL_PREFIX = "spill-"
"""A merge's spill directory under `compaction/` (storage.merge), removed when the merge ends (or by `recover`)."""
BACKUP_KEEP_S = 7 * 86400
_KEY_COLUMNS = ["trace_id", "span_id"]


MERGE_RULES: dict[str, MergeRule] = {
    SPANS_DIR: MergeRule(STORED_SPAN_SCHEMA, ("trace_id", "span_id"), ("trace_id", "start_ns")),
    LLM_DUPS_DIR: MergeRule(LLM_DUP_SCHEMA, ("trace_id", "span_id"), ("trace_id", "span_id")),
    CONTENT_DIR: MergeRule(CONTENT_SCHEMA, ("hash",), ("hash",)),
    TRACES_DIR: MergeRule(TRACE_DELTA_SCHEMA, (), ("trace_id",)),
    SCORES_DIR: MergeRule(SCORE_SCHEMA, (), ("id",)),  # a later row of an id replaces it: keep all
}


@dataclasses.dataclass(frozen=True)
class CompactionOptions:
    target_rows: int = 500_000
    target_bytes: int = 128 * 1024 * 1024
    row_group_size: int = SPAN_ROW_GROUP_ROWS


@dataclasses.dataclass
class CompactionStats:
    partitions: int = 0
    files_in: int = 0
    files_out: int = 0
    rows_in: int = 0
    rows_out: int = 0
    duplicates_removed: int = 0
    errors: int = 0

    def add(self, other: CompactionStats) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


class _Intent(msgspec.Struct, kw_only=True):
    partition: str
    inputs: list[str]
    outputs: list[str]
    backup: str | None = None
    corrections: list[str] = msgspec.field(default_factory=list)
    """Paths of trace summary correction files (another dataset's directory) renamed in with the outputs."""


RemovalDeltas = Callable[[pa.Table], pa.Table]
"""Span rows left out as duplicates → the trace summary deltas that cancel what they added
(processors.stitch.removal_deltas, handed in by the pipeline: storage does not import processors)."""


@dataclasses.dataclass(frozen=True)
class _FileInfo:
    path: Path
    rows: int
    size: int
    schema_version: str | None
    row_group_rows: int = 0
    """Rows of its largest row group."""


def _needs_rewrite(info: _FileInfo, checked: bool = True, row_group_rows: int | None = None) -> bool:
    """A file worth rewriting on its own: an outdated schema, row groups larger than `row_group_rows`
    (files of an older layout: a point lookup decodes a whole row group), or (`checked`: a dataset with
    duplicate keys) a flush file never checked against the partition's other files (the ingest window
    is bounded; a retry it missed is removed here, once)."""
    if info.schema_version != SCHEMA_VERSION:
        return True
    if row_group_rows is not None and info.row_group_rows > row_group_rows:
        return True
    return checked and not info.path.name.startswith(COMPACTED_PREFIX)


class Compactor:
    """Merges small files per partition; `committed_lsn` says which flush files are safe to touch."""

    def __init__(
        self,
        data_dir: Path,
        options: CompactionOptions,
        committed_lsn: Callable[[], int],
        *,
        datasets: tuple[str, ...] = (SPANS_DIR,),
        removal_deltas: RemovalDeltas | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._opts = options
        self._committed = committed_lsn
        self._datasets = datasets
        self._removal_deltas = removal_deltas
        self._intents = data_dir / COMPACTION_DIR
        self.totals = CompactionStats()

    # -- planning -------------------------------------------------------------------------------

    def run_once(self, stop: threading.Event | None = None) -> CompactionStats:
        """One pass over every partition; stops early (between partitions) when `stop` is set."""
        stats = CompactionStats()
        for spill in self._intents.glob(f"{SPILL_PREFIX}*"):  # of a merge a crash interrupted (never renamed in)
            shutil.rmtree(spill, ignore_errors=True)
        for dataset in self._datasets:
            for partition in iter_partitions(self._data_dir, dataset):
                if stop is not None and stop.is_set():
                    break
                try:
                    stats.add(self.compact_partition(partition))
                except Exception:
                    stats.errors += 1
                    log.exception("compaction of %s failed; its files are unchanged", partition.path)
        self._expire_backups()
        self.totals.add(stats)
        return stats

    def compact_partition(self, partition: Partition) -> CompactionStats:
        stats = CompactionStats()
        infos = self._eligible(partition.path)
        rule = MERGE_RULES[partition.dataset]
        relayout = partition.dataset == SPANS_DIR  # (the point lookups that pay for a row group's size)
        for group in self._groups(infos, checked=bool(rule.keys), relayout=relayout):
            others = [p for p in parquet_files(partition.path) if p not in {i.path for i in group}]
            stats.add(self._merge(partition, group, others))
        return stats

    def _eligible(self, partition: Path) -> list[_FileInfo]:
        committed = self._committed()
        infos = []
        for path in parquet_files(partition):
            wal_range = wal_range_of(path.name)
            if wal_range is not None and wal_range[1] > committed:
                continue  # replay may still need to know this file exists as it is
            info = _file_info(path)
            if info is not None:
                infos.append(info)
        return infos

    def _groups(self, infos: list[_FileInfo], *, checked: bool = True, relayout: bool = False) -> list[list[_FileInfo]]:
        """Runs of small files up to the target size; a lone file only when it needs a rewrite (an
        outdated schema, an unchecked flush file, `relayout`: row groups above `row_group_size`)."""
        small = [i for i in infos if i.rows < self._opts.target_rows // 2 and i.size < self._opts.target_bytes // 2]
        groups: list[list[_FileInfo]] = []
        current: list[_FileInfo] = []
        rows = size = 0
        for info in small:
            if current and (rows + info.rows > self._opts.target_rows or size + info.size > self._opts.target_bytes):
                groups.append(current)
                current, rows, size = [], 0, 0
            current.append(info)
            rows += info.rows
            size += info.size
        if current:
            groups.append(current)
        row_groups = self._opts.row_group_size if relayout else None
        alone = [[i] for i in infos if i not in small and _needs_rewrite(i, checked, row_groups)]
        return [g for g in groups if len(g) > 1 or _needs_rewrite(g[0], checked, row_groups)] + alone

    def _expire_backups(self) -> None:
        _expire_backups_in(self._intents / BACKUP_DIR, time.time())

    # -- merging --------------------------------------------------------------------------------

    def _merge(self, partition: Partition, group: list[_FileInfo], others: list[Path]) -> CompactionStats:
        """Merge `group` in bounded memory (storage.merge: its keys, then one output row group at a time)."""
        rule = MERGE_RULES[partition.dataset]
        merged = plan([info.path for info in group], rule, others)
        inputs = json.dumps(sorted(info.path.name for info in group)).encode()
        metadata = {SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), COMPACTED_FROM_KEY: inputs}
        merged.schema = merged.schema.with_metadata(metadata)
        counted = partition.dataset == SPANS_DIR and self._removal_deltas is not None
        migrating = any(info.schema_version != SCHEMA_VERSION for info in group)
        spill = self._intents / f"{SPILL_PREFIX}{uuid.uuid4().hex[:16]}"
        make_private_dir(spill)
        try:
            removed = merged.spill(spill, self._opts.target_rows, self._opts.row_group_size, keep_removed=counted)
            self._swap(partition, [i.path for i in group], merged, backup=migrating, removed=removed)
        finally:
            shutil.rmtree(spill, ignore_errors=True)
        out_files = -(-merged.num_rows // self._opts.target_rows) if merged.num_rows else 0
        log.info(
            "compacted %d files (%d rows) of %s into %d (%d rows)",
            len(group),
            merged.rows_in,
            partition.path,
            out_files,
            merged.num_rows,
        )
        return CompactionStats(
            partitions=1,
            files_in=len(group),
            files_out=out_files,
            rows_in=merged.rows_in,
            rows_out=merged.num_rows,
            duplicates_removed=merged.rows_in - merged.num_rows,
        )

    def _swap(
        self, partition: Partition, inputs: list[Path], merged: MergedGroup, *, backup: bool, removed: pa.Table
    ) -> None:
        """Write outputs, record the intent, rename outputs in, retire inputs, forget the intent.
        (`removed`: the duplicate rows left out; for spans, their summary deltas are cancelled.)"""
        outputs = []
        for row_groups in merged.files():
            path = compacted_part_path(partition.path)
            tmp = path.with_name(path.name + ".tmp")
            write_durably_parts(
                row_groups,
                merged.schema,
                tmp,
                row_group_size=self._opts.row_group_size,
                encoding=encoding_of(partition.dataset),
            )
            outputs.append(path)
        corrections = self._write_correction(partition, removed)
        intent_id = uuid.uuid4().hex[:16]
        backup_dir = self._intents / BACKUP_DIR / intent_id if backup else None
        intent = _Intent(
            partition=str(partition.path),
            inputs=[p.name for p in inputs],
            outputs=[p.name for p in outputs],
            backup=str(backup_dir) if backup_dir else None,
            corrections=[str(p) for p in corrections],
        )
        make_private_dir(self._intents)
        intent_path = self._intents / f"{intent_id}.json"
        replace_durably(msgspec.json.encode(intent), intent_path)
        _roll_forward(intent)
        intent_path.unlink()

    def _write_correction(self, partition: Partition, removed: pa.Table) -> list[Path]:
        """Duplicate spans left out: a trace summary delta cancelling what their copies added, under a
        temporary name in the partition's `traces` directory (renamed in with the outputs)."""
        if not removed.num_rows or partition.dataset != SPANS_DIR or self._removal_deltas is None:
            return []
        directory = partition_dir(self._data_dir, partition.project, partition.date, TRACES_DIR)
        ensure_dir(directory)
        path = compacted_part_path(directory)
        write_durably(self._removal_deltas(removed), path.with_name(path.name + ".tmp"), row_group_size=64_000)
        return [path]


def _file_info(path: Path) -> _FileInfo | None:
    try:
        meta = pq.read_metadata(path)
        size = path.stat().st_size
    except (OSError, ValueError) as exc:
        log.warning("compaction skips %s: %s", path, exc)
        return None
    version = (meta.metadata or {}).get(SCHEMA_VERSION_KEY)
    largest = max((meta.row_group(i).num_rows for i in range(meta.num_row_groups)), default=0)
    return _FileInfo(path, meta.num_rows, size, version.decode() if version else None, largest)


def drop_duplicate_spans(table: pa.Table) -> pa.Table:
    """Keep the first row of each (trace_id, span_id)."""
    return table.filter(first_of_each(table, tuple(_KEY_COLUMNS)))


def _roll_forward(intent: _Intent) -> None:
    partition = Path(intent.partition)
    for name in intent.outputs:
        tmp = partition / (name + ".tmp")
        if tmp.exists():
            os.replace(tmp, partition / name)
    fsync_dir(partition)
    for correction in map(Path, intent.corrections):
        tmp = correction.with_name(correction.name + ".tmp")
        if tmp.exists():
            os.replace(tmp, correction)
            fsync_dir(correction.parent)
    backup = Path(intent.backup) if intent.backup else None
    if backup is not None:
        make_private_dir(backup)
    for name in intent.inputs:
        source = partition / name
        if not source.exists():
            continue
        if backup is not None:
            shutil.move(str(source), backup / f"{partition.parent.name}_{partition.name}_{name}")
        else:
            source.unlink()
    fsync_dir(partition)


def _roll_back(intent: _Intent) -> None:
    partition = Path(intent.partition)
    for name in intent.outputs:
        (partition / name).unlink(missing_ok=True)
        (partition / (name + ".tmp")).unlink(missing_ok=True)
    for correction in map(Path, intent.corrections):
        correction.unlink(missing_ok=True)
        correction.with_name(correction.name + ".tmp").unlink(missing_ok=True)
    if partition.exists():
        fsync_dir(partition)


def recover(data_dir: Path) -> int:
    """Finish or undo compactions a crash interrupted; returns how many intents were resolved."""
    intents_dir = data_dir / COMPACTION_DIR
    if not intents_dir.is_dir():
        return 0
    resolved = 0
    for path in sorted(intents_dir.glob("*.json")):
        try:
            intent = msgspec.json.decode(path.read_bytes(), type=_Intent)
        except (OSError, msgspec.DecodeError) as exc:
            log.error("unreadable compaction intent %s (%s); leaving the files as they are", path, exc)
            path.unlink()
            continue
        partition = Path(intent.partition)
        ready = all((partition / n).exists() or (partition / (n + ".tmp")).exists() for n in intent.outputs) and all(
            p.exists() or p.with_name(p.name + ".tmp").exists() for p in map(Path, intent.corrections)
        )
        if ready:
            _roll_forward(intent)
        else:
            _roll_back(intent)
        path.unlink()
        resolved += 1
    return resolved


def _expire_backups_in(root: Path, now: float) -> None:
    if not root.is_dir():
        return
    for entry in root.iterdir():
        try:
            if now - entry.stat().st_mtime > BACKUP_KEEP_S:
                shutil.rmtree(entry)
        except OSError as exc:
            log.warning("cannot remove old compaction backup %s: %s", entry, exc)
