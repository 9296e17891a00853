"""Alert events and the notification outbox shared through the bucket (alerts.shared), against the
real S3 server: conditional writes hand each notification to one node, and a lease holder killed
with notifications queued leaves them to the next holder, which sends each once."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from llmscope_collector.alerts.outbox import Delivery
from llmscope_collector.alerts.rules import Channel
from llmscope_collector.alerts.shared import SharedAlerts, SharedOutbox, StateSet, _published
from llmscope_collector.alerts.store import AlertEvent
from llmscope_collector.control.document import SharedDocument
from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from llmscope_collector.storage.objects import ObjectStore, StorageUrl
from tests.cluster.conftest import S3Server
from tests.collector.alerts.conftest import LOOPBACK_ALLOWED
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.cluster

ADMIN = "cluster-admin-token-0123456789"


def _states(objects: ObjectStore, writer: str) -> SharedDocument[StateSet]:
    return SharedDocument(objects, "alerts/states.json", StateSet, StateSet, writer=writer)


def _event(rule_id: str, kind: str = "firing") -> AlertEvent:
    return msgspec.convert(
        {
            "project": "default",
            "rule_id": rule_id,
            "rule_name": rule_id,
            "kind": kind,
            "at": 1.0,
            "previous_status": "ok",
            "status": "firing",
            "level": "alert",
            "severity": "error",
            "metric": "error_rate",
            "comparator": "gt",
            "value": 1.0,
            "threshold": 0.5,
            "samples": 3,
            "window_start": 0.0,
            "window_end": 1.0,
            "message": "m",
        },
        AlertEvent,
    )


def test_racing_claims_hand_each_notification_to_one_node(bucket: ObjectStore) -> None:
    channels = [msgspec.convert({"type": "webhook", "url": f"http://127.0.0.1:9/{n}"}, Channel) for n in range(2)]
    events = [_event(f"r{n}") for n in range(10)] + [_event("quiet", kind="pending")]  # pending: history only
    _states(bucket, "seed").update(lambda s: _published(s, {}, events, {f"r{n}": channels for n in range(10)}, 0.0))
    seeded = _states(bucket, "check").load()
    assert [e.id for e in seeded.events] == list(range(1, 12)) and len(seeded.outbox) == 20

    claimed: dict[str, list[str]] = {"a": [], "b": []}

    def drain(node: str) -> None:
        outbox = SharedOutbox(_states(bucket, node), may_send=lambda: True)
        while batch := outbox.claim(time.time(), time.time() + 600, limit=3):
            claimed[node].extend(d.id for d in batch)

    threads = [threading.Thread(target=drain, args=(node,)) for node in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(claimed["a"]) & set(claimed["b"])  # never both
    assert sorted(claimed["a"] + claimed["b"]) == sorted(seeded.outbox)  # and none left out


@pytest.fixture
def alerting_replicas(settings: Settings, s3_env: S3Server, tmp_path: Path) -> Iterator[list[EmbeddedServer]]:
    url = s3_env.fresh_url()
    started: list[EmbeddedServer] = []
    try:
        for name in ("a", "b"):
            server = EmbeddedServer(
                dataclasses.replace(
                    settings,
                    data_dir=tmp_path / name,
                    storage=url,
                    collector_id=name,
                    auth="off",
                    admin_token=ADMIN,
                    decode_workers=0,
                    control_refresh_s=0.2,
                    alerts_tick_s=0.2,
                    lease_duration_s=6.0,
                    alerts_allow_destinations=LOOPBACK_ALLOWED,
                    alerts_delivery_timeout_s=2.0,
                    alerts_retry_base_s=0.05,
                )
            )
            server.start()
            started.append(server)
        yield started
    finally:
        for server in started:
            server.stop()


def _shared(server: EmbeddedServer) -> SharedAlerts:
    shared = server.collector.alerts.shared
    assert shared is not None
    return shared


def _eventually(check: Callable[[], object], what: str, limit_s: float = 60) -> None:
    """Poll until `check()` holds (a correctness wait with a generous limit, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def _events(server: EmbeddedServer) -> list[dict[str, object]]:
    with httpx.Client(base_url=server.api_url, timeout=10) as api:
        events: list[dict[str, object]] = api.get("/v1/alerts/events").json()
    return events


def test_a_killed_holders_queued_notification_is_sent_once_by_the_next_holder(
    alerting_replicas: list[EmbeddedServer], webhook: Receiver
) -> None:
    a, b = alerting_replicas
    _eventually(lambda: _shared(a).lease.held() or _shared(b).lease.held(), "an alerts lease holder")
    holder, other = (a, b) if _shared(a).lease.held() else (b, a)
    holder.collector.alerts.dispatcher.stop()  # it will queue the notification, and die before sending it
    rule = {
        "name": "nothing arrives",
        "metric": "no_data",  # no spans at all: fires at its first evaluation
        "window": "5m",
        "every": "5s",
        "channels": [{"type": "webhook", "url": webhook.url, "secret": "s" * 32}],
    }
    with httpx.Client(base_url=other.api_url, timeout=10) as api:  # created through the other replica
        created = api.post("/v1/alerts/rules", json=rule)
        assert created.status_code == 201, created.text
    states = _states(ObjectStore(StorageUrl.parse(a.settings.storage)), "check")
    _eventually(lambda: states.load().outbox, "the holder published the event and its notification")
    queued: list[Delivery] = list(states.load().outbox.values())
    assert [(d.status, d.attempts, d.event.kind) for d in queued] == [("pending", 0, "firing")]
    assert webhook.requests.empty()

    _shared(holder).lease.stop(release=False)  # killed: it renews no more and sends nothing
    _eventually(lambda: _shared(other).lease.held(), "the other node takes the lease")
    received = webhook.next(timeout=60)
    assert received.headers["x-llmscope-delivery-id"] == queued[0].id
    _eventually(lambda: not states.load().outbox, "the notification recorded as delivered")
    ticks = _shared(other).evaluated_ticks
    _eventually(lambda: _shared(other).evaluated_ticks > ticks + 5, "the new holder keeps evaluating")
    assert webhook.requests.empty()  # sent once: the firing rule stayed firing, no second event
    published = states.load().events
    assert [(e.id, e.kind) for e in published] == [(1, "firing")]
    assert [e["id"] for e in _events(a)] == [e["id"] for e in _events(b)] == [1]  # one history everywhere
