"""Rewrite a partition's files without some rows (deletion), crash-safely.

The query layer finds what to delete (which traces, which files hold them, which content is no
longer referenced); the files are rewritten here, by storage, the only writer of the datasets.

The same protocol as compaction (`storage.compaction`): new files are written and fsynced under
temporary names, an intent listing inputs and outputs is made durable in `<data_dir>/compaction/`,
then outputs are renamed in and inputs removed. `compaction.recover()` at start finishes or undoes
an interrupted rewrite, so a reader never sees both the old and the new file after a crash.
A rewritten flush file keeps its WAL range in its name and metadata, so replay still skips it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llmscope_collector.durable_io import replace_durably, write_durably
from llmscope_collector.file_modes import make_private_dir
from llmscope_collector.storage.compaction import _Intent, _roll_forward
from llmscope_collector.storage.layout import (
    COMPACTION_DIR,
    CONTENT_DIR,
    SCORES_DIR,
    SPAN_ROW_GROUP_ROWS,
    encoding_of,
    iter_partitions,
    parquet_files,
    partition_dir,
    partition_of_key,
)

_RANGED = re.compile(r"^(part-[0-9a-f]{16}-[0-9a-f]{16}-)[0-9a-f]{12}\.parquet$")


def _new_name(name: str) -> str:
    ranged = _RANGED.match(name)
    if ranged:
        return f"{ranged.group(1)}{uuid.uuid4().hex[:12]}.parquet"
    prefix = name.split("-", 1)[0] if "-" in name else "part"
    return f"{prefix}-{uuid.uuid4().hex}.parquet"


def replace_files(data_dir: Path, partition: Path, replacements: Mapping[Path, pa.Table | None]) -> None:
    """Replace each file of `partition` by its table (None or no rows: remove it), as one atomic step; laid out
    as compaction lays out the dataset's files (row groups, pages), so a rewritten span file serves point
    lookups as fast as the others."""
    encoding = encoding_of(partition.relative_to(data_dir).parts[0])
    outputs: list[str] = []
    for path, table in replacements.items():
        if table is None or table.num_rows == 0:
            continue
        name = _new_name(path.name)
        rewritten = _rewritten_from(table, path.name)
        write_durably(rewritten, partition / (name + ".tmp"), row_group_size=SPAN_ROW_GROUP_ROWS, encoding=encoding)
        outputs.append(name)
    intent = _Intent(partition=str(partition), inputs=[p.name for p in replacements], outputs=outputs)
    intents = data_dir / COMPACTION_DIR
    make_private_dir(intents)
    intent_path = intents / f"rewrite-{uuid.uuid4().hex[:16]}.json"
    replace_durably(msgspec.json.encode(intent), intent_path)
    _roll_forward(intent)
    intent_path.unlink()


REWRITTEN_FROM = b"llmscope.rewritten_from"


def _rewritten_from(table: pa.Table, name: str) -> pa.Table:
    """The table with `name` added to the names of the files it is a rewrite of (JSON list in its metadata):
    a reader that loads files by name (the ClickHouse loader) knows the rows were already loaded."""
    meta = dict(table.schema.metadata or {})
    names = [*json.loads(meta.get(REWRITTEN_FROM, b"[]")), name]
    meta[REWRITTEN_FROM] = json.dumps(names).encode()
    return table.replace_schema_metadata(meta)


@dataclasses.dataclass
class Removed:
    """What a removal took out: rows, files rewritten (or removed) and, for span files, the content
    hashes the removed rows referenced, by (project, date) partition (candidates for removal too)."""

    rows: int = 0
    files: int = 0
    hashes: dict[tuple[str, str], set[str]] = dataclasses.field(default_factory=dict)


def remove_traces(data_dir: Path, files: Iterable[Path], trace_ids: Collection[str]) -> Removed:
    """Rewrite `files` (of any dataset with a `trace_id` column) without the rows of `trace_ids`."""
    return remove_rows(data_dir, files, "trace_id", trace_ids)


def remove_rows(data_dir: Path, files: Iterable[Path], column: str, values: Collection[str]) -> Removed:
    """Rewrite `files` without the rows whose `column` is one of `values` (span files: their content
    hashes are collected, for the caller to remove what no remaining span references)."""
    wanted = pa.array(sorted(values), type=pa.string())
    removed = Removed()
    by_partition: dict[Path, dict[Path, pa.Table | None]] = {}
    for path in files:
        table = pq.read_table(path)
        gone = pc.fill_null(pc.is_in(table.column(column), value_set=wanted), False)
        count = int(pc.sum(gone).as_py() or 0)
        if not count:
            continue
        removed.rows += count
        if "content_refs" in table.column_names:
            _collect_hashes(data_dir, path, table.filter(gone), removed)
        by_partition.setdefault(path.parent, {})[path] = table.filter(pc.invert(gone))
    for partition, replacements in by_partition.items():
        replace_files(data_dir, partition, replacements)
        removed.files += len(replacements)
    return removed


def remove_scores(data_dir: Path, project: str, trace_ids: Collection[str], session_id: str) -> Removed:
    """Rewrite the project's score files without the scores of a deleted session: those attached to the
    session or to one of its traces (or their spans). Every stored version of such a score goes (the
    rows sharing its id), so an earlier version attached elsewhere does not resurface as the latest.

    Storage alone (no query engine): the files are small, and every engine keeps them as Parquet."""
    files = [
        f for part in iter_partitions(data_dir, SCORES_DIR) if part.project == project for f in parquet_files(part.path)
    ]
    traces = pa.array(sorted(trace_ids), type=pa.string())
    ids: set[str] = set()
    for path in files:
        table = pq.read_table(path, columns=["id", "trace_id", "session_id"])
        hit = pc.or_kleene(
            pc.is_in(table.column("trace_id"), value_set=traces), pc.equal(table.column("session_id"), session_id)
        )
        ids.update(v for v in table.column("id").filter(pc.fill_null(hit, False)).to_pylist() if v is not None)
    if not ids:
        return Removed()
    return remove_rows(data_dir, files, "id", ids)


def _collect_hashes(data_dir: Path, span_file: Path, rows: pa.Table, removed: Removed) -> None:
    place = partition_of_key(span_file.relative_to(data_dir).as_posix())
    if place is None:
        raise ValueError(f"{span_file} is not a partition file of {data_dir}")
    hashes = removed.hashes.setdefault((place[1], place[2]), set())
    for refs in rows.column("content_refs").to_pylist():
        hashes.update(r["hash"] for r in refs or ())


def remove_content(data_dir: Path, project: str, date: str, hashes: Collection[str]) -> Removed:
    """Rewrite one content partition without the items of `hashes` (the caller checked that no
    remaining span references them)."""
    partition = partition_dir(data_dir, project, date, CONTENT_DIR)
    orphans = pa.array(sorted(hashes), type=pa.string())
    removed = Removed()
    replacements: dict[Path, pa.Table | None] = {}
    for path in parquet_files(partition):
        table = pq.read_table(path)
        gone = pc.is_in(table.column("hash"), value_set=orphans)
        count = int(pc.sum(gone).as_py() or 0)
        if count:
            removed.rows += count
            replacements[path] = table.filter(pc.invert(gone))
    if replacements:
        replace_files(data_dir, partition, replacements)
        removed.files += len(replacements)
    return removed
