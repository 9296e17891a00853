"""`DELETE /v1/sessions/{id}`: remove a session's traces from every dataset, for real.

The session's traces are found in the summary index and in the spans (a span may carry the
session id even where the trace summary has another). Every file holding one of their rows is
rewritten without those rows (`storage.rewrite`, crash-safe); captured content is removed when no
remaining span of the partition references it. A compaction running at the same moment could
merge a file just before it is rewritten, so the deletion checks afterwards and repeats once.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llmscope_collector.query import sql
from llmscope_collector.query.filters import check_session_id
from llmscope_collector.query.models import DeletionReport
from llmscope_collector.storage.layout import project_glob
from llmscope_collector.storage.rewrite import replace_files

if TYPE_CHECKING:
    from llmscope_collector.query.store import TraceStore

_LOCK = threading.Lock()
_TRACE_DATASETS = ("spans", "traces", "llm_dups")


class _Tally:
    def __init__(self) -> None:
        self.spans = 0
        self.content = 0
        self.files = 0
        self.hashes: dict[Path, set[str]] = defaultdict(set)  # content partition → hashes of removed spans


def delete_session(store: TraceStore, project: str, session_id: str) -> DeletionReport:
    check_session_id(session_id)
    with _LOCK:
        trace_ids = _session_trace_ids(store, project, session_id)
        tally = _Tally()
        for _ in range(2):
            if not trace_ids:
                break
            for dataset in _TRACE_DATASETS:
                _remove_traces(store, project, dataset, trace_ids, tally)
            if not _still_stored(store, project, trace_ids):
                break
        _remove_orphan_content(store, tally)
        store.index.invalidate()
    return DeletionReport(
        session_id=session_id,
        traces_deleted=len(trace_ids),
        spans_deleted=tally.spans,
        content_items_deleted=tally.content,
        files_rewritten=tally.files,
    )


def _session_trace_ids(store: TraceStore, project: str, session_id: str) -> list[str]:
    ids = {r["trace_id"] for r in store.table_rows(sql.SESSION_TRACE_IDS, {"project": project, "session": session_id})}
    ids |= {r["trace_id"] for r in store.rows(project, sql.SPAN_SESSION_TRACE_IDS, {"session": session_id})}
    return sorted(ids)


def _files_with(store: TraceStore, project: str, dataset: str, trace_ids: list[str]) -> list[Path]:
    rows = store.rows(project, sql.FILES_WITH_TRACES, {"trace_ids": trace_ids}, dataset)
    return sorted(Path(r["filename"]) for r in rows)


def _still_stored(store: TraceStore, project: str, trace_ids: list[str]) -> bool:
    return bool(_files_with(store, project, "spans", trace_ids))


def _remove_traces(store: TraceStore, project: str, dataset: str, trace_ids: list[str], tally: _Tally) -> None:
    wanted = pa.array(trace_ids, type=pa.string())
    by_partition: dict[Path, dict[Path, pa.Table | None]] = defaultdict(dict)
    for path in _files_with(store, project, dataset, trace_ids):
        table = pq.read_table(path)
        gone = pc.is_in(table.column("trace_id"), value_set=wanted)
        if dataset == "spans":
            _collect_hashes(table.filter(gone), path, tally)
            tally.spans += int(pc.sum(gone).as_py() or 0)
        by_partition[path.parent][path] = table.filter(pc.invert(gone))
    for partition, replacements in by_partition.items():
        replace_files(store.data_dir, partition, replacements)
        tally.files += len(replacements)


def _collect_hashes(removed: pa.Table, span_file: Path, tally: _Tally) -> None:
    if "content_refs" not in removed.column_names:
        return
    content_partition = _content_partition(span_file)
    for refs in removed.column("content_refs").to_pylist():
        tally.hashes[content_partition].update(r["hash"] for r in refs or ())


def _content_partition(span_file: Path) -> Path:
    """spans/project=P/date=D/file → content/project=P/date=D."""
    date_dir = span_file.parent
    return date_dir.parent.parent.parent / "content" / date_dir.parent.name / date_dir.name


def _remove_orphan_content(store: TraceStore, tally: _Tally) -> None:
    """Drop content items no remaining span of their partition references."""
    for partition, hashes in tally.hashes.items():
        project = partition.parent.name.removeprefix("project=")
        date = partition.name.removeprefix("date=")
        spans_glob = project_glob(store.data_dir, "spans", project, date)
        still = set()
        if spans_glob is not None:
            still = {r["hash"] for r in store._rows(sql.REFERENCED_HASHES, {"glob": spans_glob}) if r["hash"]}
        orphans = pa.array(sorted(hashes - still), type=pa.string())
        if len(orphans) == 0 or not partition.is_dir():
            continue
        replacements: dict[Path, pa.Table | None] = {}
        for path in sorted(partition.glob("*.parquet")):
            table = pq.read_table(path)
            gone = pc.is_in(table.column("hash"), value_set=orphans)
            removed = int(pc.sum(gone).as_py() or 0)
            if removed:
                tally.content += removed
                replacements[path] = table.filter(pc.invert(gone))
        if replacements:
            replace_files(store.data_dir, partition, replacements)
            tally.files += len(replacements)
