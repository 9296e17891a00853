"""Session deletion in cluster mode (`--storage`), against the real S3 server: the session's rows are
removed from the bucket itself (storage.bucket_deletion: a tombstone, then a rewrite of every object
holding them committed by a deletion manifest), and nothing else changes.

"No text left" is checked in every object of the bucket's prefix: each Parquet object cell by cell
(zstd-compressed, so a byte search would prove nothing), every other object (manifests, control
documents) byte by byte."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmscope_collector.query.deletion import DeletionNotFinished, delete_from_bucket
from llmscope_collector.query.models import DeletionReport
from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from llmscope_collector.storage.bucket_deletion import BucketDeletions, session_digest
from llmscope_collector.storage.manifests import DELETION_PREFIX, TOMBSTONE_PREFIX, DeletionManifest
from llmscope_collector.storage.objects import ObjectStore, StorageUrl
from tests.cluster.conftest import S3Server, hold_compaction_lease
from tests.collector.query.conftest import query_settings
from tests.collector.query.dataset import GenTrace, export, generate
from tests.collector.test_no_copy_after_delete import _raw_hits, _scores, _session_texts, resent_by_another_session

pytestmark = pytest.mark.cluster

VICTIM = "sess-3"


def _settings(tmp_path_factory: pytest.TempPathFactory, s3_env: S3Server, **overrides: object) -> Settings:
    return query_settings(
        tmp_path_factory,
        storage=s3_env.fresh_url(),
        collector_id="d1",
        lease_duration_s=3.0,
        bucket_sync_interval_s=0.5,
        **overrides,
    )


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory, s3_env: S3Server) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(_settings(tmp_path_factory, s3_env)) as server:
        yield server


@pytest.fixture(params=["duckdb", "chdb"])
def any_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, s3_env: S3Server
) -> Iterator[EmbeddedServer]:
    """A bucket-mode server answering with DuckDB over its mirror, or with ClickHouse (chdb) loading it."""
    engine = "" if request.param == "duckdb" else f"chdb://{tmp_path_factory.mktemp('chdb')}"
    with EmbeddedServer(_settings(tmp_path_factory, s3_env, query_engine=engine)) as server:
        yield server


def _bucket(server: EmbeddedServer) -> ObjectStore:
    return ObjectStore(StorageUrl.parse(server.settings.storage))


def bucket_hits(bucket: ObjectStore, texts: Iterable[str]) -> dict[str, list[str]]:
    """Which objects of the prefix hold which of `texts` (Parquet cells, or the raw bytes of other objects)."""
    wanted = list(texts)
    hits: dict[str, list[str]] = {}
    for info in bucket.list(""):
        try:
            data = bucket.get(info.key)
        except FileNotFoundError:
            continue  # deleted since the listing (a deletion or compaction finishing meanwhile)
        if info.key.endswith(".parquet"):
            body = json.dumps(pq.read_table(pa.BufferReader(data)).to_pylist(), default=str)
        else:
            body = data.decode("utf-8", "replace")
        for text in wanted:
            if text in body:
                hits.setdefault(text, []).append(info.key)
    return hits


def answers(server: EmbeddedServer, drop: Collection[str] = (), session: str = VICTIM) -> dict[str, Any]:
    """What the API serves of every trace but `drop`, every session but `session`, and their scores."""
    with httpx.Client(base_url=server.api_url, timeout=60) as api:
        traces = [
            t for t in api.get("/v1/traces", params={"limit": 1000}).json()["traces"] if t["trace_id"] not in drop
        ]
        got: dict[str, Any] = {"traces": sorted(traces, key=lambda t: t["trace_id"])}
        for trace in got["traces"]:
            got[trace["trace_id"]] = api.get(f"/v1/traces/{trace['trace_id']}").json()
        sessions = api.get("/v1/sessions", params={"limit": 1000}).json()["sessions"]
        got["sessions"] = sorted((s for s in sessions if s["session_id"] != session), key=lambda s: s["session_id"])
        for s in got["sessions"]:
            got["session " + s["session_id"]] = api.get(f"/v1/sessions/{s['session_id']}").json()
        scores = api.get("/v1/scores", params={"limit": 1000}).json()["scores"]
        got["scores"] = sorted(
            (s for s in scores if s.get("session_id") != session and s.get("trace_id") not in drop),
            key=lambda s: s["id"],
        )
    return got


def _post_scores(server: EmbeddedServer, scores: list[dict[str, Any]]) -> None:
    with httpx.Client(base_url=server.api_url, timeout=30) as api:
        for score in scores:
            assert api.post("/v1/scores", json=score).status_code == 201


def _victim(corpus: list[GenTrace]) -> tuple[set[str], set[str]]:
    """The victim's traces, and the texts only its spans hold (not even inside another span's text)."""
    traces = {t.trace_id for t in corpus if t.session == VICTIM}
    others = [x for t in corpus if t.session != VICTIM for s in t.spans for x in (s.text, s.answer)]
    texts = {text for text in _session_texts(corpus, VICTIM) if not any(text in other for other in others)}
    assert traces and texts
    return traces, texts


def _stored(server: EmbeddedServer, corpus: list[GenTrace]) -> set[str]:
    """The corpus in several flushes (several objects per partition), with scores on the victim and others."""
    for lo in range(0, len(corpus), 10):
        export(server, corpus[lo : lo + 10])
        server.collector.flush()
    victim_scores, kept_scores = _scores(corpus, VICTIM)
    _post_scores(server, [*victim_scores, *kept_scores])
    server.collector.flush()
    return {s["comment"] for s in victim_scores}


def test_a_deleted_sessions_text_is_in_no_object_and_every_other_answer_is_unchanged(
    any_engine: EmbeddedServer,
) -> None:
    cluster = any_engine
    corpus = generate(31, 60, step_s=1200)  # several date partitions
    traces, texts = _victim(corpus)
    texts |= _stored(cluster, corpus)
    bucket = _bucket(cluster)
    assert set(bucket_hits(bucket, texts)) == texts  # every text stored before the deletion
    before = answers(cluster, drop=traces)
    hold_compaction_lease(cluster)

    with httpx.Client(base_url=cluster.api_url, timeout=120) as api:
        response = api.delete(f"/v1/sessions/{VICTIM}")
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["traces_deleted"] == len(traces) and report["spans_deleted"] > 0, report
        assert report["content_items_deleted"] > 0 and report["scores_deleted"] == 3 and report["files_rewritten"] > 0
        assert api.get(f"/v1/sessions/{VICTIM}").status_code == 404
        assert api.delete(f"/v1/sessions/{VICTIM}").status_code == 404  # nothing left to delete

    assert bucket_hits(bucket, texts) == {}
    assert bucket_hits(bucket, [f'"{VICTIM}"', f"{VICTIM}"]) == {}  # not even its id: deletion records hash it
    assert answers(cluster) == before
    assert len(list(bucket.list(TOMBSTONE_PREFIX))) == 2 and len(list(bucket.list(DELETION_PREFIX))) == 2


def test_a_deletion_interrupted_at_each_step_is_finished_by_the_next_run(cluster: EmbeddedServer) -> None:
    """A crash after the rewrites were stored (before the commit), then a crash after the commit (the
    replaced objects still there): readers see the session whole until the commit, then not at all;
    the next run finishes each."""
    corpus = generate(41, 40, step_s=1200)
    traces, texts = _victim(corpus)
    texts |= _stored(cluster, corpus)
    before = answers(cluster, drop=traces)
    with_victim = answers(cluster, session="")
    bucket = _bucket(cluster)
    mirror = cluster.collector.cluster.mirror if cluster.collector.cluster else None
    assert mirror is not None and cluster.collector.control is not None
    durable = cluster.collector._durable
    assert durable is not None
    durable.maintenance.stop()  # this test runs each step itself

    class Crash(Exception):
        pass

    class CrashingStore(ObjectStore):
        """The bucket, failing at one step as a crash would stop there."""

        def __init__(self, fail_on: str) -> None:
            super().__init__(bucket.url)
            self.fail_on = fail_on

        def put_new(self, key: str, data: bytes) -> bool:
            if self.fail_on == "commit" and key.startswith(DELETION_PREFIX):
                raise Crash(key)
            return super().put_new(key, data)

        def delete(self, key: str) -> None:
            if self.fail_on == "delete":
                raise Crash(key)
            super().delete(key)

    def deleter(fail_on: str) -> BucketDeletions:
        return BucketDeletions(CrashingStore(fail_on), mirror, node="n", may_run=lambda: True)

    deletion_id = deleter("").request("default", session_digest(VICTIM), traces)
    with pytest.raises(Crash):
        deleter("commit").run_pending()
    assert answers(cluster, session="") == with_victim  # rewrites stored, not committed: not shown
    assert bucket_hits(bucket, texts)
    with pytest.raises(Crash):
        deleter("delete").run_pending()  # committed this time, then stopped before deleting what it replaced
    cluster.collector.sync_bucket()
    assert answers(cluster) == before  # the commit alone switches every reader
    assert bucket_hits(bucket, texts)  # ... but the replaced objects are still in the bucket
    assert deleter("").run_pending() == 0  # nothing pending: it finishes the swap
    assert bucket_hits(bucket, texts) == {}
    manifest = mirror.manifests.deletions()[deletion_id]
    assert set(manifest.trace_ids) == traces and manifest.scores_deleted == 3
    cluster.collector.sync_bucket()
    assert answers(cluster) == before


def test_spans_another_collector_still_held_do_not_bring_the_session_back(
    tmp_path_factory: pytest.TempPathFactory, s3_env: S3Server
) -> None:
    """Collector B holds spans of the session in its write-ahead log when A executes the deletion. B's next
    flush, made without having seen the tombstone (its mirror sync stopped: the window of a flush that read
    the tombstones just before one was written), stores them, then finds the tombstone, re-opens it, and A
    removes them; spans of the session B receives afterwards are dropped before they are stored. Neither
    leaves any of the session's text in the bucket; the other sessions stay whole."""
    url = s3_env.fresh_url()
    common = {"storage": url, "lease_duration_s": 3.0, "bucket_sync_interval_s": 0.5}
    corpus = generate(51, 40, step_s=1200)
    traces, texts = _victim(corpus)
    late = [dataclasses.replace(t, spans=t.spans[1:]) for t in corpus if t.session == VICTIM and len(t.spans) > 1]
    early = [dataclasses.replace(t, spans=t.spans[:1]) if t.session == VICTIM else t for t in corpus]
    assert late
    settings_a = query_settings(tmp_path_factory, collector_id="ca", **common)
    settings_b = query_settings(tmp_path_factory, collector_id="cb", flush_interval_s=3600.0, **common)
    with EmbeddedServer(settings_a) as a:
        hold_compaction_lease(a)
        with EmbeddedServer(settings_b) as b:
            export(a, early)
            a.collector.flush()
            before = answers(a, drop=traces)
            with pytest.MonkeyPatch.context() as patch:  # sent, acknowledged, not flushed (a long flush interval)
                patch.setattr(b.collector, "flush", lambda timeout=0.0: 0)
                export(b, late)
            durable = b.collector._durable
            assert durable is not None
            durable.maintenance.stop()  # B's mirror no longer syncs: its flush cannot know the tombstone before
            with httpx.Client(base_url=a.api_url, timeout=120) as api:
                response = api.delete(f"/v1/sessions/{VICTIM}")
            assert response.status_code == 200, response.text
            b.collector.flush()  # stores what it held, then finds the tombstone it had not honoured
            assert b.collector.flush_check is not None and b.collector.flush_check.reopened == 1
            bucket = _bucket(a)
            assert _wait(lambda: not bucket_hits(bucket, texts), timeout_s=60), bucket_hits(bucket, texts)
            export(b, late)  # a retry of the same spans, after B knows the tombstone
            b.collector.flush()
            assert b.collector.tombstones is not None and b.collector.tombstones.spans_dropped > 0
            assert b.collector.flush_check.reopened == 1
            assert bucket_hits(bucket, texts) == {}
            a.collector.sync_bucket()
            assert answers(a) == before


def _wait(condition: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_a_deletion_no_lease_holder_executes_in_time_answers_503_and_a_retry_gets_its_report(
    cluster: EmbeddedServer,
) -> None:
    """While no node executes deletions (the lease holder gone) the request records its tombstone and
    gives up after its timeout (the API's 503); a retried DELETE joins that pending deletion instead of
    asking again, and answers with its counts once a holder executed it."""
    corpus = generate(61, 20, step_s=1200)
    traces, _texts = _victim(corpus)
    export(cluster, corpus)
    durable = cluster.collector._durable
    assert durable is not None and cluster.collector.cluster is not None
    durable.maintenance.stop()  # no deletions task on this node: as if the lease holder were gone
    mirror = cluster.collector.cluster.mirror
    requester = BucketDeletions(_bucket(cluster), mirror, node="asker", may_run=lambda: False)
    with pytest.raises(DeletionNotFinished):
        delete_from_bucket(requester, cluster.collector.sync_bucket, 1.0, "default", VICTIM)
    (pending,) = mirror.manifests.pending_deletions()
    assert requester.pending_for("default", session_digest(VICTIM)) == pending
    holder = BucketDeletions(_bucket(cluster), mirror, node="holder", may_run=lambda: True)
    joined = threading.Event()
    wait = requester.wait

    def waiting(deletion_id: str, timeout_s: float) -> DeletionManifest:
        assert deletion_id == pending  # the retry waits for the pending deletion
        joined.set()
        return wait(deletion_id, timeout_s)

    reports: list[DeletionReport] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(requester, "wait", waiting)
        retry = threading.Thread(
            target=lambda: reports.append(
                delete_from_bucket(requester, cluster.collector.sync_bucket, 60.0, "default", VICTIM)
            )
        )
        retry.start()
        assert joined.wait(30)
        assert holder.run_pending() == 1
        retry.join()
    (report,) = reports
    assert report.traces_deleted == len(traces) and report.spans_deleted > 0
    assert len(mirror.manifests.tombstones()) == 1  # the retry asked nothing new


def test_a_collector_that_crashed_before_its_tombstone_check_makes_it_at_start(
    tmp_path_factory: pytest.TempPathFactory, s3_env: S3Server
) -> None:
    """B stores the session's spans in a flush made without the tombstone and stops before checking it
    and before its WAL cursor moved (its cursor file lost: what a crash between the manifest and the
    cursor leaves). At start B checks its flushes beyond the cursor, re-opens the deletion, and A
    removes the spans."""
    url = s3_env.fresh_url()
    common = {"storage": url, "lease_duration_s": 3.0, "bucket_sync_interval_s": 0.5}
    corpus = generate(71, 30, step_s=1200)
    traces, texts = _victim(corpus)
    late = [dataclasses.replace(t, spans=t.spans[1:]) for t in corpus if t.session == VICTIM and len(t.spans) > 1]
    early = [dataclasses.replace(t, spans=t.spans[:1]) if t.session == VICTIM else t for t in corpus]
    settings_a = query_settings(tmp_path_factory, collector_id="ca", **common)
    settings_b = query_settings(tmp_path_factory, collector_id="cb", flush_interval_s=3600.0, **common)
    with EmbeddedServer(settings_a) as a:
        hold_compaction_lease(a)
        export(a, early)
        before = answers(a, drop=traces)
        b = EmbeddedServer(settings_b)
        b.start()
        try:
            durable = b.collector._durable
            assert durable is not None and b.collector.cluster is not None
            durable.maintenance.stop()
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(b.collector, "flush", lambda timeout=0.0: 0)
                export(b, late)
            with httpx.Client(base_url=a.api_url, timeout=120) as api:
                assert api.delete(f"/v1/sessions/{VICTIM}").status_code == 200
            b.collector.cluster.tables.after_commit = None  # the check a crash cut off
            b.collector.flush()  # stores what it held: the session's spans are in the bucket again
        finally:
            b.stop()
        bucket = _bucket(a)
        assert bucket_hits(bucket, texts)
        (b.settings.data_dir / "wal" / "cursor").unlink()  # the cursor never moved past that flush
        with EmbeddedServer(settings_b) as restarted:
            assert restarted.collector.flush_check is not None and restarted.collector.flush_check.reopened == 1
            assert _wait(lambda: not bucket_hits(bucket, texts), timeout_s=60), bucket_hits(bucket, texts)
        a.collector.sync_bucket()
        assert answers(a) == before


def test_every_collector_settles_its_wal_when_a_session_is_deleted(
    tmp_path_factory: pytest.TempPathFactory, s3_env: S3Server
) -> None:
    """The raw requests a collector received stay in its write-ahead log until their segment fills up;
    a collector that sees a new tombstone settles its WAL, as the replica that got the DELETE does, so
    no copy of the session's text waits in any collector's WAL either."""
    url = s3_env.fresh_url()
    common = {"storage": url, "lease_duration_s": 3.0, "bucket_sync_interval_s": 0.5}
    corpus = generate(81, 30, step_s=1200)
    _traces, texts = _victim(corpus)
    with EmbeddedServer(query_settings(tmp_path_factory, collector_id="ca", **common)) as a:
        hold_compaction_lease(a)
        with EmbeddedServer(query_settings(tmp_path_factory, collector_id="cb", **common)) as b:
            export(b, corpus)  # stored, and still in B's active WAL segment as received
            wal = b.settings.data_dir / "wal"
            assert _raw_hits(wal, texts)
            with httpx.Client(base_url=a.api_url, timeout=120) as api:
                assert api.delete(f"/v1/sessions/{VICTIM}").status_code == 200
            assert _wait(lambda: not _raw_hits(wal, texts)), _raw_hits(wal, texts)
            assert bucket_hits(_bucket(a), texts) == {}


def test_content_a_deleted_session_held_is_stored_again_for_a_later_span(cluster: EmbeddedServer) -> None:
    """As over a data dir (tests/collector/test_no_copy_after_delete.py): the deletion manifest's removed
    content is forgotten by the writer's recent-hash window, so the same message sent later is stored again."""
    corpus = generate(31, 60)
    said, later = resent_by_another_session(corpus, VICTIM)
    _stored(cluster, corpus)
    hold_compaction_lease(cluster)
    with httpx.Client(base_url=cluster.api_url, timeout=120) as api:
        response = api.delete(f"/v1/sessions/{VICTIM}")
        assert response.status_code == 200 and response.json()["content_items_deleted"] > 0, response.text
        assert said.text not in bucket_hits(_bucket(cluster), [said.text])
        export(cluster, [later])
        cluster.collector.flush()
        cluster.collector.sync_bucket()
        span = api.get(f"/v1/spans/{later.trace_id}/{later.spans[0].span_id}")
        assert span.status_code == 200 and said.text in json.dumps(span.json()["attributes"]), span.text
