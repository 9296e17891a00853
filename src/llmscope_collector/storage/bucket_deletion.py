"""Session deletion in cluster mode: the session's rows removed from the bucket, the system of record.

A data dir rewrites its files in place (storage.rewrite); a bucket's objects are immutable and shared
by every collector and replica, so a deletion there is two records (proto/cluster/v1/manifest.proto):

1. **The tombstone** (`manifests/tombstones/<id>.pb`, create-only), written by the replica that got
   the `DELETE`: the session, the traces found, and the time of the request. From then on every
   collector drops those rows from what it flushes (`TombstoneFilter`), so spans still in a
   collector's write-ahead log, or still in an app's export queue, do not bring the session back.
2. **The execution**, by the holder of the compaction lease only (so it never races a compaction
   merging the same objects; it runs on the maintenance thread that compacts): every shown object
   holding a row of the session's traces (spans, trace summary deltas, late duplicate marks), the
   content items no remaining span of their partition references, and the scores of the session or
   its traces is rewritten without them under a key derived from the deletion and the object it
   replaces (`del-<digest>.parquet`, create-only); then one `DeletionManifest` names every rewrite
   (the commit point: readers switch to all of them at once, as for a compaction); then the replaced
   objects are deleted.

A crash before the manifest leaves rewrites no manifest names (never shown): the tombstone is still
pending, and the next run (this node's, or the next lease holder's) makes the same keys again (a
create-only PUT refused: described as stored) and commits. A crash after it leaves replaced objects
nobody shows; the next run deletes them. The replica that asked waits for the manifest and answers
with its counts.

A flush that read the tombstones before one was written and committed after its execution swept
the bucket would keep the session's rows: so after each flush the collector lists the tombstones
again, and when a new one matches a row it just stored it re-opens it (a new tombstone repeating
it, `reopens`), which the lease holder executes like any other (`FlushCheck`). A collector does the
same at start for its flushes beyond its WAL cursor (a crash between a flush and that check).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llmscope_collector.storage.batch import DecodedBatch, DecodedPart
from llmscope_collector.storage.compaction import COMPACTED_FROM_KEY
from llmscope_collector.storage.layout import (
    CONTENT_DIR,
    LLM_DUPS_DIR,
    SCORES_DIR,
    SPAN_ROW_GROUP_ROWS,
    SPANS_DIR,
    TRACES_DIR,
    encoding_of,
    iter_partitions,
    parquet_files,
    partition_key,
    partition_of_key,
)
from llmscope_collector.storage.manifests import (
    DeletionManifest,
    ManifestIndex,
    RemovedContent,
    Rewrite,
    SessionTombstone,
    StoredObject,
    deletion_key,
    describe,
    describe_stored,
)
from llmscope_collector.storage.mirror import BucketMirror
from llmscope_collector.storage.objects import ObjectStore, parquet_bytes, read_parquet
from llmscope_collector.storage.rewrite import REWRITTEN_FROM
from llmscope_collector.storage.schema import SCHEMA_VERSION

log = logging.getLogger(__name__)

DELETED_PREFIX = "del-"
_TRACE_DATASETS = (SPANS_DIR, TRACES_DIR, LLM_DUPS_DIR)


def new_deletion_id(now_ns: int) -> str:
    """`<time:016x>-<random>`: sorts by request time; unique without coordination."""
    return f"{now_ns:016x}-{secrets.token_hex(6)}"


class DeletionPending(RuntimeError):
    """The tombstone is stored (new flushes drop the session's rows) but no lease holder executed it in time."""


class BucketDeletions:
    """Requests session deletions (any replica) and executes them (the compaction lease holder)."""

    def __init__(
        self,
        objects: ObjectStore,
        mirror: BucketMirror,
        *,
        node: str,
        may_run: Callable[[], bool],
        row_group_size: int = SPAN_ROW_GROUP_ROWS,
    ) -> None:
        self.objects = objects
        self._objects = objects
        self._mirror = mirror
        self._manifests: ManifestIndex = mirror.manifests
        self._node = node
        self._may_run = may_run
        self._row_group_size = row_group_size
        self._finished: set[str] = set()  # deletion ids whose replaced objects are known to be gone
        self.executed = 0

    # -- any replica ------------------------------------------------------------------------------

    def request(self, project: str, session: bytes, trace_ids: Iterable[str], *, reopens: str = "") -> str:
        """Store the tombstone of the session whose id hashes to `session` (create-only); returns the deletion id."""
        now = time.time_ns()
        tombstone = SessionTombstone(
            project=project,
            session_sha256=session,
            trace_ids=sorted(set(trace_ids)),
            deleted_unix_ns=now,
            node=self._node,
            reopens=reopens,
        )
        deletion_id = new_deletion_id(now)
        if not self._manifests.put_tombstone(deletion_id, tombstone):  # pragma: no cover - random ids
            raise RuntimeError(f"deletion id {deletion_id} exists already")
        return deletion_id

    def delete_session(self, project: str, session_id: str, timeout_s: float) -> DeletionManifest:
        """Request the deletion (or join one of the session still pending) and wait for its execution."""
        session = session_digest(session_id)
        deletion_id = self.pending_for(project, session)
        if deletion_id is None:
            self._mirror.sync()  # what any collector stored up to now
            now = SessionTombstone(session_sha256=session, deleted_unix_ns=time.time_ns())
            traces = session_traces(self._mirror.root, project, Rules([now]))
            deletion_id = self.request(project, session, traces)
        return self.wait(deletion_id, timeout_s)

    def pending_for(self, project: str, session: bytes) -> str | None:
        """The oldest deletion of this session requested and not executed yet (a retried DELETE waits for it)."""
        self._manifests.refresh()
        for deletion_id, tombstone in self._manifests.pending_deletions().items():
            if (tombstone.project, tombstone.session_sha256) == (project, session) and not tombstone.reopens:
                return deletion_id
        return None

    def wait(self, deletion_id: str, timeout_s: float, *, poll_s: float = 0.25) -> DeletionManifest:
        """The deletion's manifest once the lease holder committed it; `DeletionPending` after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            manifest = self._manifests.read_deletion(deletion_id)
            if manifest is not None:
                return manifest
            if time.monotonic() >= deadline:
                raise DeletionPending(
                    f"deletion {deletion_id} is requested (collectors drop the session's new spans) but the"
                    " compaction lease holder has not executed it yet; retry the DELETE for its report"
                )
            time.sleep(poll_s)

    # -- the compaction lease holder (maintenance thread) -----------------------------------------

    def run_pending(self, stop: threading.Event | None = None) -> int:
        """Execute every pending tombstone and finish interrupted swaps, while this node holds the lease."""
        if not self._may_run():
            return 0
        self._mirror.sync()
        self._finish_swaps()
        done = 0
        for deletion_id, tombstone in self._manifests.pending_deletions().items():
            if (stop is not None and stop.is_set()) or not self._may_run():
                break
            self.execute(deletion_id, tombstone)
            done += 1
        return done

    def execute(self, deletion_id: str, tombstone: SessionTombstone) -> DeletionManifest:
        """Rewrite every shown object holding the session's rows, commit, delete what was replaced."""
        sweep = _Sweep(self._mirror.root, tombstone)
        rewrites = [self._rewrite(deletion_id, key, table) for key, table in sweep.replacements.items()]
        manifest = DeletionManifest(
            project=tombstone.project,
            session_sha256=tombstone.session_sha256,
            trace_ids=sorted(sweep.trace_ids),
            deleted_unix_ns=tombstone.deleted_unix_ns,
            rewrites=rewrites,
            removed_content=[
                RemovedContent(project=tombstone.project, date=date, hashes=sorted(hashes))
                for date, hashes in sorted(sweep.orphans.items())
            ],
            spans_deleted=sweep.spans,
            content_items_deleted=sweep.content,
            scores_deleted=sweep.scores,
            schema_version=SCHEMA_VERSION,
            node=self._node,
        )
        if not self._may_run():
            raise RuntimeError("the compaction lease lapsed; the next holder executes this deletion")
        manifest.created_unix_ns = time.time_ns()
        if self._objects.put_new(deletion_key(deletion_id), manifest.SerializeToString()):  # the commit point
            self._manifests.remember_deletion(deletion_id, manifest)
        else:
            stored = self._manifests.read_deletion(deletion_id)  # another run committed it first
            manifest = stored if stored is not None else manifest
        self._delete_replaced(deletion_id, manifest)
        self._mirror.sync()
        self.executed += 1
        log.info(
            "deleted session %s… of project %r: %d traces, %d spans, %d content items, %d scores, %d objects",
            tombstone.session_sha256.hex()[:12],
            tombstone.project,
            len(manifest.trace_ids),
            manifest.spans_deleted,
            manifest.content_items_deleted,
            manifest.scores_deleted,
            len(manifest.rewrites),
        )
        return manifest

    def _rewrite(self, deletion_id: str, key: str, table: pa.Table) -> Rewrite:
        rewrite = Rewrite(replaces=key)
        if not table.num_rows:
            return rewrite
        directory, name = key.rsplit("/", 1)
        digest = hashlib.sha256(f"{deletion_id}\n{key}".encode()).hexdigest()[:16]
        out_key = f"{directory}/{DELETED_PREFIX}{digest}.parquet"
        meta = {k: v for k, v in (table.schema.metadata or {}).items() if k not in (COMPACTED_FROM_KEY, REWRITTEN_FROM)}
        meta[REWRITTEN_FROM] = json.dumps([name]).encode()  # a loader that loaded `name` knows these rows
        located = partition_of_key(key)  # (laid out as compaction lays out the dataset's files)
        encoding = encoding_of(located[0] if located else "")
        table = table.replace_schema_metadata(meta)
        data = parquet_bytes(table, row_group_size=self._row_group_size, encoding=encoding)
        if self._objects.put_new(out_key, data):
            rewrite.object.CopyFrom(describe(out_key, data, table.num_rows))
        else:  # an interrupted run of this deletion stored it
            rewrite.object.CopyFrom(describe_stored(self._objects, out_key))
        return rewrite

    def _delete_replaced(self, deletion_id: str, manifest: DeletionManifest) -> None:
        for rewrite in manifest.rewrites:
            try:
                self._objects.delete(rewrite.replaces)
            except FileNotFoundError:
                pass
        self._finished.add(deletion_id)

    def _finish_swaps(self) -> None:
        """Delete the objects a committed deletion replaced that are still listed (a crash after its commit)."""
        listed = self._mirror.listed
        for deletion_id, manifest in self._manifests.deletions().items():
            if deletion_id in self._finished:
                continue
            for rewrite in manifest.rewrites:
                if rewrite.replaces in listed:
                    log.info("finishing an interrupted deletion: deleting %s", rewrite.replaces)
                    self._objects.delete(rewrite.replaces)
            self._finished.add(deletion_id)


class _Sweep:
    """What one tombstone removes from the objects of a mirror: the new table of each object it changes."""

    def __init__(self, root: Path, tombstone: SessionTombstone) -> None:
        self._root = root
        self._tombstone = tombstone
        self.replacements: dict[str, pa.Table] = {}
        self.orphans: dict[str, set[str]] = {}  # date → content hashes removed
        self.spans = self.content = self.scores = 0
        self._rules = Rules([tombstone])
        self.trace_ids = set(tombstone.trace_ids) | session_traces(root, tombstone.project, self._rules)
        if self.trace_ids:
            hashes = self._remove_traces()
            self._remove_orphans(hashes)
        self._remove_scores()

    def _files(self, dataset: str) -> list[Path]:
        return [
            path
            for part in iter_partitions(self._root, dataset)
            if part.project == self._tombstone.project
            for path in parquet_files(part.path)
        ]

    def _key(self, path: Path) -> str:
        return path.relative_to(self._root).as_posix()

    def _remove_traces(self) -> dict[str, set[str]]:
        """Every row of the traces out of the trace datasets; returns the removed spans' content hashes by date."""
        wanted = pa.array(sorted(self.trace_ids), pa.string())
        hashes: dict[str, set[str]] = {}
        for dataset in _TRACE_DATASETS:
            for path in self._files(dataset):
                if not pc.any(pc.is_in(pq.read_table(path, columns=["trace_id"]).column("trace_id"), wanted)).as_py():
                    continue
                table = pq.read_table(path)
                gone = pc.fill_null(pc.is_in(table.column("trace_id"), value_set=wanted), False)
                self.replacements[self._key(path)] = table.filter(pc.invert(gone))
                if dataset == SPANS_DIR:
                    self.spans += int(pc.sum(gone).as_py() or 0)
                    date = path.parent.name.removeprefix("date=")
                    hashes.setdefault(date, set()).update(_content_hashes(table.filter(gone)))
        return hashes

    def _remove_orphans(self, hashes: dict[str, set[str]]) -> None:
        """The removed spans' content items that no remaining span of their partition references."""
        for date, candidates in hashes.items():
            still: set[str] = set()
            spans_dir = self._root / partition_key(self._tombstone.project, date, SPANS_DIR)
            for path in parquet_files(spans_dir):
                kept = self.replacements.get(self._key(path))
                table = kept if kept is not None else pq.read_table(path, columns=["content_refs"])
                still |= _content_hashes(table)
            orphans = candidates - still
            if not orphans:
                continue
            wanted = pa.array(sorted(orphans), pa.string())
            for path in parquet_files(self._root / partition_key(self._tombstone.project, date, CONTENT_DIR)):
                table = pq.read_table(path)
                gone = pc.fill_null(pc.is_in(table.column("hash"), value_set=wanted), False)
                count = int(pc.sum(gone).as_py() or 0)
                if count:
                    self.content += count
                    self.replacements[self._key(path)] = table.filter(pc.invert(gone))
            self.orphans[date] = orphans

    def _remove_scores(self) -> None:
        """Every stored version of a score on the session or one of its traces (as a data dir's deletion)."""
        files = self._files(SCORES_DIR)
        ids: set[str] = set()
        traces = pa.array(sorted(self.trace_ids), pa.string())
        for path in files:
            table = pq.read_table(path, columns=["id", "trace_id", "session_id"])
            hit = pc.or_(
                pc.fill_null(pc.is_in(table.column("trace_id"), value_set=traces), False),
                self._rules.session_rows_any(table),
            )
            ids.update(v for v in table.column("id").filter(hit).to_pylist() if v is not None)
        if not ids:
            return
        wanted = pa.array(sorted(ids), pa.string())
        for path in files:
            table = pq.read_table(path)
            gone = pc.fill_null(pc.is_in(table.column("id"), value_set=wanted), False)
            count = int(pc.sum(gone).as_py() or 0)
            if count:
                self.scores += count
                self.replacements[self._key(path)] = table.filter(pc.invert(gone))


def session_digest(session_id: str) -> bytes:
    """How deletion records name a session: SHA-256 of its id (never the id itself)."""
    return hashlib.sha256(session_id.encode()).digest()


def session_traces(root: Path, project: str, rules: Rules) -> set[str]:
    """Traces of a mirror with a span (or a summary delta) of a covered session started by its deletion."""
    found: set[str] = set()
    for dataset in (SPANS_DIR, TRACES_DIR):
        for part in iter_partitions(root, dataset):
            if part.project != project:
                continue
            for path in parquet_files(part.path):
                table = pq.read_table(path, columns=["trace_id", "session_id", "start_ns"])
                found.update(
                    v for v in table.column("trace_id").filter(rules.session_rows(table, "start_ns")).to_pylist() if v
                )
    return found


def _previews_of_kept(previews: pa.Table, keep: pa.ChunkedArray | pa.Array) -> pa.Table:
    """The preview rows of the kept spans, their `row` (a span's position in its part) renumbered to the
    kept spans' positions (the writer pairs them by it)."""
    keep = keep.combine_chunks() if isinstance(keep, pa.ChunkedArray) else keep
    positions = pc.subtract(pc.cumulative_sum(keep.cast(pa.int32())), 1)
    rows = previews.column("row")
    previews = previews.filter(pc.take(keep, rows))
    renumbered = pc.take(positions, previews.column("row")).cast(rows.type)
    return previews.set_column(previews.schema.get_field_index("row"), "row", renumbered)


def _content_hashes(spans: pa.Table) -> set[str]:
    refs = spans.column("content_refs")
    flat = pc.list_flatten(refs)
    if not len(flat):
        return set()
    return {h for h in pc.struct_field(flat, "hash").to_pylist() if h}


# -- the flush path ----------------------------------------------------------------------------


class Rules:
    """What some tombstones of one project cover: their traces, and each session (by digest) up to the
    latest of its deletion times. One set and one map, so a batch is checked against any number of
    tombstones with one hash per distinct session id."""

    def __init__(self, tombstones: Iterable[SessionTombstone] = ()) -> None:
        self.trace_ids: set[str] = set()
        self.sessions: dict[bytes, int] = {}
        for tombstone in tombstones:
            self.add(tombstone)

    def add(self, tombstone: SessionTombstone) -> None:
        self.trace_ids.update(tombstone.trace_ids)
        cutoff = self.sessions.get(tombstone.session_sha256, tombstone.deleted_unix_ns)
        self.sessions[tombstone.session_sha256] = max(cutoff, tombstone.deleted_unix_ns)

    def session_rows_any(self, table: pa.Table) -> pa.Array:
        """Rows of a covered session whatever their time (a deletion removes every stored score of the session)."""
        column = table.column("session_id")
        ids = [v for v in pc.unique(column).to_pylist() if v is not None and session_digest(v) in self.sessions]
        return pc.fill_null(pc.is_in(column, value_set=pa.array(ids, pa.string())), False)

    def session_rows(self, table: pa.Table, time_column: str) -> pa.Array:
        """Rows of a covered session whose `time_column` is at or before that session's deletion time."""
        column = table.column("session_id")
        hit = pa.array([False] * table.num_rows, pa.bool_())
        for value in pc.unique(column).to_pylist():
            cutoff = self.sessions.get(session_digest(value)) if value is not None else None
            if cutoff is None:
                continue
            early = pc.fill_null(pc.less_equal(table.column(time_column), cutoff), True)
            hit = pc.or_(hit, pc.fill_null(pc.and_kleene(pc.equal(column, value), early), False))
        return hit

    def traces_in(self, spans: pa.Table) -> set[str]:
        """The traces of `spans` covered: named by a tombstone, or with a span of a covered session."""
        present = set(pc.unique(spans.column("trace_id")).to_pylist())
        traces = present & self.trace_ids
        traces.update(spans.column("trace_id").filter(self.session_rows(spans, "start_ns")).to_pylist())
        return {t for t in traces if t}

    def scores_in(self, scores: pa.Table, traces: Collection[str] = ()) -> pa.Array:
        """Scores on a covered trace (or one of `traces`), or on a covered session received by its deletion."""
        on_traces = pc.is_in(scores.column("trace_id"), pa.array(sorted({*traces, *self.trace_ids}), pa.string()))
        return pc.or_(pc.fill_null(on_traces, False), self.session_rows(scores, "received_ns"))


class TombstoneFilter:
    """Drops tombstoned rows from a collector's decoded batches before they are buffered for a flush.

    Reads the tombstones the manifest index holds (refreshed by every mirror sync and by `FlushCheck`
    after each flush); `generation` counts those applied so far, so the check after a flush knows which
    tombstones the flush's batches may not have honoured."""

    def __init__(self, manifests: ManifestIndex) -> None:
        self._manifests = manifests
        self._lock = threading.Lock()
        self._order: list[str] = []
        self._known: set[str] = set()
        self._rules: dict[str, Rules] = {}  # by project
        self.spans_dropped = 0
        self.scores_dropped = 0

    def generation(self) -> int:
        with self._lock:
            return len(self._order)

    def since(self, generation: int) -> list[str]:
        """The ids of the tombstones applied from `generation` on."""
        with self._lock:
            return list(self._order[generation:])

    def learn(self) -> None:
        """Take in the tombstones the index holds now (`generation` counts them)."""
        with self._lock:
            self._update()

    def _update(self) -> None:
        for deletion_id, tombstone in self._manifests.tombstones().items():
            if deletion_id not in self._known:
                self._known.add(deletion_id)
                self._order.append(deletion_id)
                self._rules.setdefault(tombstone.project, Rules()).add(tombstone)

    def apply(self, batch: DecodedBatch) -> DecodedBatch:
        """`batch` without the rows of any tombstone known now (the same object when nothing matched)."""
        with self._lock:
            self._update()
            if not self._rules:
                return batch
            for key, part in list(batch.partitions.items()):
                rules = self._rules.get(key[0])
                if rules is not None:
                    batch.partitions[key] = self._filtered(part, rules)
        return batch

    def _filtered(self, part: DecodedPart, rules: Rules) -> DecodedPart:
        spans = part.spans
        traces = rules.traces_in(spans)
        if traces:
            gone = pc.fill_null(pc.is_in(spans.column("trace_id"), pa.array(sorted(traces), pa.string())), False)
            self.spans_dropped += int(pc.sum(gone).as_py() or 0)
            keep = pc.invert(gone)
            spans = spans.filter(keep)
            kept = pa.array(sorted(_content_hashes(spans)), pa.string())
            part.content = part.content.filter(pc.fill_null(pc.is_in(part.content.column("hash"), kept), False))
            part.spans = spans
            if part.previews is not None:
                part.previews = _previews_of_kept(part.previews, keep)
        if part.scores is not None and part.scores.num_rows:
            hit = rules.scores_in(part.scores, traces)
            dropped = int(pc.sum(hit).as_py() or 0)
            if dropped:
                self.scores_dropped += dropped
                part.scores = part.scores.filter(pc.invert(hit))
        return part


class FlushCheck:
    """After a flush is committed: re-open each tombstone the flush did not honour that matches a row it stored.

    A flush's batches were filtered with the tombstones known when each was buffered; one written since
    may have been executed before this flush's manifest was stored, so its sweep missed these objects.
    Its rows are then in the bucket: a new tombstone repeating it is requested, and the lease holder's
    next run removes them (normally nothing matches: the tombstone's session has no new rows here)."""

    def __init__(self, deletions: BucketDeletions, manifests: ManifestIndex, tombstones: TombstoneFilter) -> None:
        self._deletions = deletions
        self._manifests = manifests
        self._filter = tombstones
        self._floor = 0  # the filter's generation when the batches of the next flush began to be buffered
        self.reopened = 0

    def after_flush(self, objects: list[StoredObject]) -> None:
        """One LIST of the tombstones; the flush's objects are read only when a tombstone is new to it."""
        floor, self._floor = self._floor, self._filter.generation()
        try:
            self._manifests.refresh_tombstones()
            applied = set(self._filter.since(0))
            unseen = [*self._filter.since(floor), *(d for d in self._manifests.tombstones() if d not in applied)]
            if unseen:
                self.reopen_matching(dict.fromkeys(unseen), objects)
        except Exception:
            self._floor = min(self._floor, floor)  # the next flush's check covers these tombstones again
            log.exception("the tombstone check after a flush failed; the next flush repeats it")

    def at_start(self, objects: list[StoredObject]) -> None:
        """A collector's flushes beyond its WAL cursor (a crash may have come before their check) against
        every tombstone."""
        if objects:
            self.reopen_matching(self._manifests.tombstones(), objects)

    def reopen_matching(self, deletion_ids: Iterable[str], objects: list[StoredObject]) -> None:
        tombstones = self._manifests.tombstones()
        candidates = {d: tombstones[d] for d in deletion_ids if d in tombstones}
        for stored in objects:
            if not candidates:
                return
            mine = {d: t for d, t in candidates.items() if t.project == stored.project}
            if not mine or stored.dataset not in (SPANS_DIR, SCORES_DIR):
                continue
            table = read_parquet(self._deletions.objects.get(stored.key))
            for deletion_id, tombstone in mine.items():
                rules = Rules([tombstone])
                if stored.dataset == SPANS_DIR:
                    hit = bool(rules.traces_in(table))
                else:
                    hit = bool(pc.any(rules.scores_in(table)).as_py())
                if hit:
                    log.warning("a flush stored rows of deleted sessions (deletion %s): re-opened", deletion_id)
                    self._deletions.request(
                        tombstone.project, tombstone.session_sha256, tombstone.trace_ids, reopens=deletion_id
                    )
                    self.reopened += 1
                    del candidates[deletion_id]
