"""`DELETE /v1/sessions/{id}`: remove a session's traces from every dataset, for real.

The session's traces are found in the summary index and in the spans (a span may carry the
session id even where the trace summary has another). Every file holding one of their rows is
rewritten without those rows (`storage.rewrite`, crash-safe); captured content is removed when no
remaining span of the partition references it; so are the scores attached to the session, to one
of its traces or to one of their spans (`storage.rewrite.remove_scores`). A compaction running at the same moment could
merge a file just before it is rewritten, so the deletion checks afterwards and repeats once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from llmscope_collector.query import sql
from llmscope_collector.query.filters import check_session_id
from llmscope_collector.query.models import DeletionReport
from llmscope_collector.storage.bucket_deletion import BucketDeletions, DeletionPending
from llmscope_collector.storage.content import ContentRemoval
from llmscope_collector.storage.layout import LLM_DUPS_DIR, SPANS_DIR, TRACES_DIR, project_glob
from llmscope_collector.storage.rewrite import remove_content, remove_scores, remove_traces

if TYPE_CHECKING:
    from llmscope_collector.query.store import TraceStore

_TRACE_DATASETS = (SPANS_DIR, TRACES_DIR, LLM_DUPS_DIR)


class Tally:
    """What a removal from the files did: counts, and the content hashes removed as orphans by (project, date)."""

    def __init__(self) -> None:
        self.spans = 0
        self.content = 0
        self.files = 0
        self.scores = 0
        self.hashes: dict[tuple[str, str], set[str]] = defaultdict(set)  # (project, date) → removed spans' hashes
        self.orphans: dict[tuple[str, str], set[str]] = {}

    def report(self, session_id: str, traces: int) -> DeletionReport:
        return DeletionReport(
            session_id=session_id,
            traces_deleted=traces,
            spans_deleted=self.spans,
            content_items_deleted=self.content,
            files_rewritten=self.files,
            scores_deleted=self.scores,
        )


def delete_session(
    store: TraceStore, project: str, session_id: str, content_removal: ContentRemoval | None = None
) -> DeletionReport:
    """`content_removal`: the writer's, when a collector writes into the store's data dir (`remove_from_files`)."""
    check_session_id(session_id)
    with store.deletion_lock:
        trace_ids = session_trace_ids(store, project, session_id)
        tally = remove_from_files(store, project, session_id, trace_ids, content_removal)
        store.index.invalidate()
    return tally.report(session_id, len(trace_ids))


DeletionNotFinished = DeletionPending
"""A cluster deletion recorded (its tombstone stored) but not executed in time: the API answers 503."""


def delete_from_bucket(
    deletions: BucketDeletions, synced: Callable[[], None], timeout_s: float, project: str, session_id: str
) -> DeletionReport:
    """Cluster mode (`--storage`): the session out of the bucket's objects (storage.bucket_deletion: a
    tombstone, then the compaction lease holder's rewrite committed by a deletion manifest); `synced`
    brings this replica's mirror up to the committed deletion before the answer, so its next query
    (either engine) no longer sees the session."""
    check_session_id(session_id)
    manifest = deletions.delete_session(project, session_id, timeout_s)
    synced()
    return DeletionReport(
        session_id=session_id,
        traces_deleted=len(manifest.trace_ids),
        spans_deleted=manifest.spans_deleted,
        content_items_deleted=manifest.content_items_deleted,
        files_rewritten=len(manifest.rewrites),
        scores_deleted=manifest.scores_deleted,
    )


def remove_from_files(
    store: TraceStore,
    project: str,
    session_id: str,
    trace_ids: list[str],
    content_removal: ContentRemoval | None = None,
) -> Tally:
    """Rewrite every file of the project holding a row of `trace_ids` without those rows, then drop the
    content no remaining span of its partition references and the session's scores (the engine-neutral
    part of a deletion: the ClickHouse engine runs it too, over the files it loads from). The caller
    serializes deletions. `content_removal` is the running collector's writer's (None: no collector
    writes here): its content store must forget the items removed, or it would skip them for later spans."""
    tally = Tally()
    for _ in range(2):
        if not trace_ids:
            break
        for dataset in _TRACE_DATASETS:
            _remove_traces(store, project, dataset, trace_ids, tally)
        if not _still_stored(store, project, trace_ids):
            break
    _remove_orphan_content(store, tally, content_removal)
    _remove_scores(store, project, session_id, trace_ids, tally)
    return tally


def session_trace_ids(store: TraceStore, project: str, session_id: str, *, summaries: bool = True) -> list[str]:
    """The traces of the session: those whose summary names it, and those with a span that does."""
    ids = {r["trace_id"] for r in store.rows(project, sql.SPAN_SESSION_TRACE_IDS, {"session": session_id})}
    if summaries:
        ids |= {
            r["trace_id"] for r in store.table_rows(sql.SESSION_TRACE_IDS, {"project": project, "session": session_id})
        }
    return sorted(ids)


def _files_with(store: TraceStore, project: str, dataset: str, trace_ids: list[str]) -> list[Path]:
    rows = store.rows(project, sql.FILES_WITH_TRACES, {"trace_ids": trace_ids}, dataset)
    return sorted(Path(r["filename"]) for r in rows)


def _still_stored(store: TraceStore, project: str, trace_ids: list[str]) -> bool:
    return bool(_files_with(store, project, SPANS_DIR, trace_ids))


def _remove_traces(store: TraceStore, project: str, dataset: str, trace_ids: list[str], tally: Tally) -> None:
    removed = remove_traces(store.data_dir, _files_with(store, project, dataset, trace_ids), trace_ids)
    tally.files += removed.files
    if dataset == SPANS_DIR:
        tally.spans += removed.rows
    for partition, hashes in removed.hashes.items():
        tally.hashes[partition] |= hashes


def _remove_orphan_content(store: TraceStore, tally: Tally, content_removal: ContentRemoval | None) -> None:
    """Drop content items no remaining span of their partition references, with the writer's flushes held
    off from the scan until its content store has forgotten them (`ParquetSpanWriter.content_removal`)."""
    with content_removal() if content_removal is not None else nullcontext(_forget_nothing) as forget:
        for (project, date), hashes in tally.hashes.items():
            spans_glob = project_glob(store.data_dir, SPANS_DIR, project, date)
            still = set()
            if spans_glob is not None:
                still = {r["hash"] for r in store._rows(sql.REFERENCED_HASHES, {"glob": spans_glob}) if r["hash"]}
            orphans = hashes - still
            if orphans:
                removed = remove_content(store.data_dir, project, date, orphans)
                forget(project, date, orphans)
                tally.content += removed.rows
                tally.files += removed.files
                tally.orphans[(project, date)] = orphans


def _forget_nothing(project: str, date: str, hashes: set[str]) -> None:
    """No collector writes into the store: nothing remembers content as stored."""


def _remove_scores(store: TraceStore, project: str, session_id: str, trace_ids: list[str], tally: Tally) -> None:
    """The session's scores; a second pass finds what a compaction running meanwhile may have merged
    into a new file just before the first pass read the old one (normally nothing)."""
    for _ in range(2):
        removed = remove_scores(store.data_dir, project, trace_ids, session_id)
        tally.scores += removed.rows
        tally.files += removed.files
        if not removed.rows:
            break
