"""Shared control state and leases against the real S3 server (the Ceph RADOS Gateway).

Projects, keys and alert rules created through one replica are what every replica uses; two
conditional updates racing on one document both survive; the lease lets one node evaluate alerts
at a time and another take over when the holder stops renewing.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from llmscope_collector.alerts.shared import SharedAlerts, StateSet
from llmscope_collector.control.cluster import SharedControl
from llmscope_collector.control.document import SharedDocument
from llmscope_collector.control.lease import HOLD_FRACTION, Lease
from llmscope_collector.processors.stitch import removal_deltas
from llmscope_collector.query.filters import TraceQuery
from llmscope_collector.query.store import TraceStore
from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from llmscope_collector.storage.bucket_compaction import BucketCompactor
from llmscope_collector.storage.cluster import query_dir
from llmscope_collector.storage.compaction import CompactionOptions
from llmscope_collector.storage.mirror import BucketMirror
from llmscope_collector.storage.objects import ObjectStore, StorageUrl
from tests import otlp_factory as f
from tests.cluster.conftest import S3Server
from tests.collector.durability.helpers import payload, stored_counts
from tests.collector.receivers.clients import post, valid_request

pytestmark = pytest.mark.cluster

ADMIN = "cluster-admin-token-0123456789"


class Counter(msgspec.Struct):
    items: list[str] = msgspec.field(default_factory=list)


def _document(bucket: ObjectStore, writer: str) -> SharedDocument[Counter]:
    return SharedDocument(bucket, "test/counter.json", Counter, Counter, writer=writer)


def test_two_racing_conditional_updates_both_survive(bucket: ObjectStore) -> None:
    """Both writers read the same version; one write wins, the other is refused (412), re-reads
    and applies its change again on top: both changes are in the document."""
    first, second = _document(bucket, "a"), _document(bucket, "b")
    both_read = threading.Barrier(2)
    waited: set[str] = set()

    def change_for(name: str) -> Callable[[Counter], None]:
        def change(body: Counter) -> None:
            if name not in waited:  # the first attempt of each waits until both have read
                waited.add(name)
                both_read.wait(timeout=30)
            body.items.append(name)

        return change

    threads = [
        threading.Thread(target=doc.update, args=(change_for(name),)) for doc, name in ((first, "a"), (second, "b"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(_document(bucket, "c").load().items) == ["a", "b"]
    assert first.conflicts + second.conflicts == 1


def test_many_writers_lose_no_change(bucket: ObjectStore) -> None:
    docs = [_document(bucket, f"w{i}") for i in range(4)]

    def write(doc: SharedDocument[Counter], index: int) -> None:
        for n in range(8):
            item = f"{index}-{n}"
            doc.update(functools.partial(_append, item=item))

    threads = [threading.Thread(target=write, args=(doc, i)) for i, doc in enumerate(docs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    items = _document(bucket, "check").load().items
    assert sorted(items) == sorted(f"{i}-{n}" for i in range(4) for n in range(8))


def _append(body: Counter, item: str) -> None:
    body.items.append(item)


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_lease_goes_to_one_node_and_moves_when_the_holder_stops_renewing(bucket: ObjectStore) -> None:
    clock = ManualClock()
    a = Lease(bucket, "job", holder="a", duration_s=9.0, clock=clock)
    b = Lease(bucket, "job", holder="b", duration_s=9.0, clock=clock)
    assert a.poll() and a.held()
    assert not b.poll() and not b.held()
    clock.now += 3
    assert a.poll() and not b.poll()  # renewed: b starts counting again from this version
    clock.now += 8.9
    assert not b.poll()  # a stopped renewing 8.9 s ago, less than its duration
    assert not a.held()  # but a already counts itself out (after 2/3 of the duration)
    clock.now += 0.1
    assert b.poll() and b.held() and b.takeovers == 1
    assert not a.poll() and not a.held()  # a is back: the lease is b's now
    b.release()
    assert a.poll() and a.held()  # released: taken at once, no waiting


def test_a_holder_counts_itself_out_before_anyone_may_take_over(bucket: ObjectStore) -> None:
    clock = ManualClock()
    a = Lease(bucket, "job", holder="a", duration_s=6.0, clock=clock)
    assert a.poll()
    clock.now += 6.0 * HOLD_FRACTION - 0.01
    assert a.held()
    clock.now += 0.01
    assert not a.held()


@pytest.fixture
def replica_settings(settings: Settings, s3_env: S3Server, tmp_path: Path) -> Callable[[str], Settings]:
    url = s3_env.fresh_url()

    def make(name: str) -> Settings:
        return dataclasses.replace(
            settings,
            data_dir=tmp_path / name,
            storage=url,
            collector_id=name,
            auth="required",
            admin_token=ADMIN,
            decode_workers=0,
            control_refresh_s=0.2,
            alerts_tick_s=0.2,
            lease_duration_s=6.0,  # renewals late by seconds on a loaded machine must not move it
        )

    return make


@pytest.fixture
def replicas(replica_settings: Callable[[str], Settings]) -> Iterator[tuple[EmbeddedServer, EmbeddedServer]]:
    started: list[EmbeddedServer] = []
    try:
        for name in ("a", "b"):
            server = EmbeddedServer(replica_settings(name))
            server.start()
            started.append(server)
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def _admin(server: EmbeddedServer) -> httpx.Client:
    return httpx.Client(base_url=server.api_url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=10)


def _eventually(check: Callable[[], bool], what: str, limit_s: float = 60) -> None:
    """Poll until `check()` holds (a correctness wait with a generous limit, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def test_a_key_created_on_one_replica_authenticates_on_another(replicas: tuple[EmbeddedServer, EmbeddedServer]) -> None:
    a, b = replicas
    with _admin(a) as api:
        assert api.post("/v1/projects", json={"name": "team-x"}).status_code == 201
        key = api.post("/v1/projects/team-x/keys", json={"name": "ci"}).json()
    assert post(b, valid_request(1), x_llmscope_api_key="lsk_unknown_key").status_code == 401
    _eventually(lambda: post(b, valid_request(1), x_llmscope_api_key=key["key"]).status_code == 200, "key on b")
    with _admin(b) as api:
        assert [p["name"] for p in api.get("/v1/projects").json()] == ["default", "team-x"]
        assert api.delete(f"/v1/projects/team-x/keys/{key['id']}").status_code == 204  # revoked through b
    _eventually(lambda: post(a, valid_request(1), x_llmscope_api_key=key["key"]).status_code == 401, "revoked on a")
    raw = ObjectStore(StorageUrl.parse(a.settings.storage)).get("control/auth.json")
    document = msgspec.json.decode(raw)
    assert [k["id"] for k in document["body"]["keys"]] == [key["id"]]
    assert key["key"].encode() not in raw and document["body"]["keys"][0]["digest"]  # stored as a digest only


def _shared(server: EmbeddedServer) -> SharedAlerts:
    shared = server.collector.alerts.shared
    assert shared is not None
    return shared


def _rule(name: str) -> dict[str, object]:
    return {"name": name, "metric": "error_rate", "window": "5m", "alert_threshold": 0.5, "every": "5s"}


def test_a_rule_created_on_one_replica_is_listed_and_evaluated_once(
    replicas: tuple[EmbeddedServer, EmbeddedServer], s3_env: S3Server
) -> None:
    a, b = replicas
    with _admin(a) as api:
        created = api.post("/v1/alerts/rules", json=_rule("errors"), headers={"x-llmscope-project": "default"})
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    with _admin(b) as api:
        listed = api.get("/v1/alerts/rules").json()
        assert [r["id"] for r in listed] == [rule_id]
        renamed = api.put(f"/v1/alerts/rules/{rule_id}", json=_rule("errors, renamed"))
        assert renamed.status_code == 200, renamed.text
    with _admin(a) as api:
        assert [r["name"] for r in api.get("/v1/alerts/rules").json()] == ["errors, renamed"]
    shared = {s: _shared(s) for s in (a, b)}
    states = SharedDocument(
        ObjectStore(StorageUrl.parse(a.settings.storage)), "alerts/states.json", StateSet, StateSet, writer="test"
    )
    _eventually(lambda: rule_id in states.load().states, "the rule's state published")
    _eventually(lambda: any(s.lease.held() for s in shared.values()), "a holder")
    holder, other = (a, b) if shared[a].lease.held() else (b, a)
    evaluated = shared[holder].evaluated_ticks
    _eventually(lambda: shared[holder].evaluated_ticks > evaluated + 3, "more ticks on the holder")
    assert shared[other].evaluated_ticks == 0
    # the holder stops renewing (killed, or cut off from the bucket) without releasing the lease:
    # it stops evaluating by itself once its hold lapses, and the other node takes over
    shared[holder].lease.stop(release=False)
    _eventually(lambda: shared[other].lease.held(), "the other node takes over")
    _eventually(lambda: shared[other].evaluated_ticks > 0, "the new holder evaluates")
    assert not shared[holder].lease.held()
    # the new holder continued from the published state (not from scratch) and publishes its own
    before = states.load().states[rule_id]
    assert before.evaluated_at is not None and before.next_eval_at == before.evaluated_at + 5
    _eventually(lambda: (states.load().states[rule_id].evaluated_at or 0.0) > (before.evaluated_at or 0.0), "again")
    with _admin(other) as api:
        assert api.get(f"/v1/alerts/rules/{rule_id}").json()["state"]["evaluated_at"] is not None
    with _admin(other) as api:
        assert api.delete(f"/v1/alerts/rules/{rule_id}").status_code == 204
    with _admin(holder) as api:
        assert api.get("/v1/alerts/rules").json() == []


@pytest.fixture
def compacting_replicas(
    replica_settings: Callable[[str], Settings],
) -> Iterator[tuple[EmbeddedServer, EmbeddedServer]]:
    started: list[EmbeddedServer] = []
    try:
        for name in ("a", "b"):
            settings = dataclasses.replace(
                replica_settings(name),
                auth="off",
                compaction_interval_s=0.3,
                bucket_sync_interval_s=0.2,
                lease_duration_s=8.0,  # renewals late by seconds on a loaded machine must not move it
            )
            server = EmbeddedServer(settings)
            server.start()
            started.append(server)
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def _send_flushed(servers: tuple[EmbeddedServer, ...], batches: int, spans: int) -> int:
    """`batches` requests to each server, each flushed to its own objects; returns the spans sent."""
    sent = 0
    for _ in range(batches):
        for server in servers:
            assert post(server, payload([f.new_span_id() for _ in range(spans)])).status_code == 200
            server.collector.flush()
            sent += spans
    return sent


def _span_objects(bucket: ObjectStore) -> tuple[int, int]:
    """(flush objects, merged objects) in the bucket's spans dataset."""
    names = [info.key.rsplit("/", 1)[1] for info in bucket.list("spans/")]
    return sum(n.startswith("part-") for n in names), sum(n.startswith("compact-") for n in names)


def test_one_node_compacts_and_another_takes_over(
    compacting_replicas: tuple[EmbeddedServer, EmbeddedServer], tmp_path: Path
) -> None:
    a, b = compacting_replicas
    bucket = ObjectStore(StorageUrl.parse(a.settings.storage))
    sent = _send_flushed((a, b), batches=4, spans=5)
    _eventually(lambda: _span_objects(bucket)[0] == 0, "every flush object of both collectors merged")
    assert _span_objects(bucket)[1] >= 1
    leases = {s: _control(s).compaction_lease for s in (a, b)}
    holder, other = (a, b) if leases[a].held() else (b, a)
    # (a pass adds to its totals after its deletions, which the bucket shows first)
    _eventually(lambda: holder.collector.compactor.totals.files_in >= 8, "the holder's totals")
    assert other.collector.compactor.totals.files_in == 0 and other.collector.compactor.runs == 0
    assert _bucket_counts(bucket, tmp_path / "m1") == (sent, sent)  # nothing lost, nothing twice
    leases[holder].stop(release=False)  # the holder stops renewing
    _eventually(lambda: leases[other].held(), "the other node takes over compaction")
    sent += _send_flushed((a, b), batches=2, spans=5)
    _eventually(lambda: _span_objects(bucket)[0] == 0, "the new flush objects merged by the new holder")
    _eventually(lambda: other.collector.compactor.totals.files_in >= 4, "the new holder's totals")
    assert _bucket_counts(bucket, tmp_path / "m2") == (sent, sent)
    for server in (a, b):  # every replica's queries see each span once
        server.collector.flush()
        assert stored_counts(query_dir(server.settings)) == (sent, sent)


def _control(server: EmbeddedServer) -> SharedControl:
    control = server.collector.control
    assert control is not None
    return control


def _bucket_counts(bucket: ObjectStore, root: Path) -> tuple[int, int]:
    """(rows, distinct spans) a fresh replica's mirror shows."""
    mirror = BucketMirror(bucket, root)
    mirror.sync()
    return stored_counts(root)


class DeletesFail(ObjectStore):
    """The bucket as a node sees it when it dies right after storing a merged object."""

    def delete(self, key: str) -> None:
        raise OSError(f"killed before deleting {key}")


def test_a_compaction_interrupted_after_its_put_is_finished_by_the_next_run(
    replica_settings: Callable[[str], Settings], tmp_path: Path
) -> None:
    a_settings, b_settings = (
        dataclasses.replace(replica_settings(name), auth="off", compaction_interval_s=0)  # no scheduled run
        for name in ("a", "b")
    )
    with EmbeddedServer(a_settings) as a, EmbeddedServer(b_settings) as b:
        sent = _send_flushed((a,), batches=3, spans=4)
        dup = payload([f.new_span_id() for _ in range(4)])
        for server in (a, b):  # a retry re-routed to another collector: stored by both
            assert post(server, dup).status_code == 200
        for server in (a, b):
            server.collector.flush()
            server.collector._publish_cursor()
        sent += 4
    url = StorageUrl.parse(a_settings.storage)
    bucket = ObjectStore(url)
    assert _bucket_counts(bucket, tmp_path / "before") == (sent + 4, sent)

    def compactor(objects: ObjectStore, root: Path) -> BucketCompactor:
        mirror = BucketMirror(objects, root)
        options = CompactionOptions()
        return BucketCompactor(objects, mirror, options, may_run=lambda: True, removal_deltas=removal_deltas)

    interrupted = compactor(DeletesFail(url), tmp_path / "m1").run_once()
    assert interrupted.errors >= 1 and _span_objects(bucket) == (5, 1)  # merged stored, inputs left
    # Committed by its manifest: readers already show the merged object and not its inputs.
    assert _bucket_counts(bucket, tmp_path / "committed") == (sent, sent)
    compactor(bucket, tmp_path / "m2").run_once()
    assert _span_objects(bucket) == (0, 1)  # the next run deleted the inputs the manifest replaced
    assert _bucket_counts(bucket, tmp_path / "after") == (sent, sent)  # and the re-routed duplicate is gone
    # ... from the trace summaries too: its second copy's delta is cancelled by the correction delta.
    traces = TraceStore(tmp_path / "after").list_traces("default", TraceQuery(limit=100)).traces
    assert sum(t.span_count for t in traces) == sent
