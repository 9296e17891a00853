"""Alert rules, rule states, events and the notification outbox shared by every replica in cluster
mode, evaluated and delivered by one node at a time.

The bucket holds the truth in two documents changed with conditional writes (control.document):
`control/alerts/rules.json` (every project's rules, written by whichever replica's API was called)
and `control/alerts/states.json` (each rule's state, the recent events and the outbox of pending
and dead notifications, written by the evaluating node). Each replica keeps its alerts SQLite
database as a local copy of the rules and states: the API and the evaluator read it unchanged.

Every tick (`alerts_tick_s`) a replica copies the rules in; the holder of the `alerts` lease
(control.lease) then evaluates and publishes, in **one** conditional write, the new states, the
events of the state changes (numbered there: ids are the cluster's) and one outbox row per event
and channel. So an event is recorded exactly once: a holder killed before that write published
nothing, and its successor, which continues from the last published states, makes the same change
and records it; a holder killed after it has published everything, and its successor continues
from there (a firing rule stays firing instead of paging again).

Notifications are sent by the holder's dispatcher from the shared outbox (`SharedOutbox`): a row
is claimed with a conditional write (its `next_at` moved past the send's timeout) before it is
sent and removed (or marked dead) with another, so no two nodes send the same row; a holder killed
with rows queued leaves them to the next holder, which sends each once. A holder killed in the
middle of a send leaves its claim, retried after the claim expires with the same delivery id
(receivers dedupe on it), as on a single node.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection

import msgspec

from llmscope_collector.alerts.evaluator import Evaluator
from llmscope_collector.alerts.outbox import DEAD_KEPT_S, Delivery, OutboxStatus, UnknownDelivery
from llmscope_collector.alerts.rules import Channel, Rule
from llmscope_collector.alerts.state import NOTIFIED_KINDS, RuleState
from llmscope_collector.alerts.store import AlertEvent, RuleStore, UnknownRule
from llmscope_collector.control.document import SharedDocument
from llmscope_collector.control.lease import Lease
from llmscope_collector.storage.objects import ObjectStore

log = logging.getLogger(__name__)

LEASE_NAME = "alerts"
SHARED_EVENTS_KEPT = 1000
"""Events kept in the shared document (the newest, all projects): it is written on every tick."""


class RuleSet(msgspec.Struct, kw_only=True):
    rules: list[Rule] = msgspec.field(default_factory=list)


class StateSet(msgspec.Struct, kw_only=True):
    states: dict[str, RuleState] = msgspec.field(default_factory=dict)
    events: list[AlertEvent] = msgspec.field(default_factory=list)  # oldest first
    next_event_id: int = 1
    outbox: dict[str, Delivery] = msgspec.field(default_factory=dict)  # pending and dead, by id


class SharedAlerts:
    """The cluster side of `AlertService`: rule changes go to the bucket, ticks run under the lease."""

    def __init__(self, objects: ObjectStore, *, node: str, lease_duration_s: float) -> None:
        self.node = node
        self.rules_doc = SharedDocument(objects, "alerts/rules.json", RuleSet, RuleSet, writer=node)
        self.states_doc = SharedDocument(objects, "alerts/states.json", StateSet, StateSet, writer=node)
        self.lease = Lease(objects, LEASE_NAME, holder=node, duration_s=lease_duration_s)
        self.outbox = SharedOutbox(self.states_doc, may_send=self.lease.held)
        self.on_published: Callable[[], None] = lambda: None  # wakes the dispatcher (AlertService)
        self._leading = False
        self._unpublished: list[AlertEvent] = []  # evaluated, not yet in the bucket
        self._lock = threading.Lock()  # one tick at a time (the scheduled one and a test's)
        self.evaluated_ticks = 0  # ticks this node evaluated as the holder

    # --- rule changes from the API: the bucket first, then this replica's copy ---

    def create(self, store: RuleStore, rule: Rule) -> None:
        self.rules_doc.update(lambda s: s.rules.append(rule))
        self.pull_rules(store)

    def replace(self, store: RuleStore, rule: Rule) -> None:
        def change(s: RuleSet) -> None:
            index = _index_of(s, rule.project, rule.id)
            s.rules[index] = rule

        self.rules_doc.update(change)
        self.pull_rules(store)

    def delete(self, store: RuleStore, project: str, rule_id: str) -> None:
        def change(s: RuleSet) -> None:
            del s.rules[_index_of(s, project, rule_id)]

        self.rules_doc.update(change)
        self.pull_rules(store)

    def pull_rules(self, store: RuleStore) -> None:
        store.mirror(self.rules_doc.load().rules)

    # --- the scheduled tick ---

    def tick(self, store: RuleStore, evaluator: Evaluator) -> None:
        """Copy the rules in; evaluate and publish the states, events and notifications if this node
        holds the lease, else copy the states in."""
        with self._lock:
            self.pull_rules(store)
            if not self.lease.held():
                self._leading = False
                self._unpublished.clear()  # the holder's published states win: it records them
                store.put_states(self.states_doc.load().states)
                return
            if not self._leading:  # just became the holder: continue from the last published states
                store.put_states(self.states_doc.load().states)
                self._leading = True
            self._unpublished.extend(evaluator.tick())
            self.evaluated_ticks += 1
            if self.lease.held():  # lapsed meanwhile: the new holder's states win
                self._publish(store)

    def _publish(self, store: RuleStore) -> None:
        states, events = store.all_states(), list(self._unpublished)
        channels = {rule.id: rule.channels for rule in store.all_projects()}
        now = time.time()
        self.states_doc.update(lambda s: _published(s, states, events, channels, now))
        self._unpublished.clear()
        if any(event.kind in NOTIFIED_KINDS for event in events):
            self.on_published()

    def events(
        self, project: str, *, rule_id: str | None = None, before_id: int | None = None, limit: int = 100
    ) -> list[AlertEvent]:
        """The cluster's events of `project`, newest first; page with `before_id`."""
        before = before_id if before_id is not None else 2**63 - 1
        found = []
        for event in reversed(self.states_doc.load().events):
            if event.project == project and event.id < before and (rule_id is None or event.rule_id == rule_id):
                found.append(event)
                if len(found) >= limit:
                    break
        return found


def _published(
    target: StateSet,
    states: dict[str, RuleState],
    events: list[AlertEvent],
    channels: dict[str, list[Channel]],
    now: float,
) -> None:
    """The holder's tick applied to the shared document: states, events numbered, outbox rows."""
    target.states = states
    for event in events:
        numbered = msgspec.structs.replace(event, id=target.next_event_id)
        target.next_event_id += 1
        target.events.append(numbered)
        if event.kind not in NOTIFIED_KINDS:
            continue
        for index, channel in enumerate(channels.get(event.rule_id, ())):
            delivery_id = f"{numbered.id}-{index}"
            target.outbox[delivery_id] = Delivery(
                id=delivery_id,
                project=event.project,
                rule_id=event.rule_id,
                event_id=numbered.id,
                channel=channel,
                event=numbered,
                status="pending",
                attempts=0,
                next_at=0.0,
                last_error=None,
                created_at=now,
                updated_at=now,
            )
    del target.events[:-SHARED_EVENTS_KEPT]


class SharedOutbox:
    """The outbox rows of the shared states document, for the dispatcher and the API (`DeliveryQueue`).

    Only the lease holder claims rows (`may_send`); every change is a conditional write of the
    document (control.document), so two nodes never claim the same row."""

    def __init__(self, document: SharedDocument[StateSet], *, may_send: Callable[[], bool]) -> None:
        self._doc = document
        self._may_send = may_send

    def claim(
        self, now: float, lease_until: float, *, exclude: Collection[str] = (), limit: int = 50
    ) -> list[Delivery]:
        """Due rows, their `next_at` moved to `lease_until` in one conditional write (not due again
        before then: a row whose sender died is retried after it, by this node or the next holder)."""
        if not self._may_send() or not _due(self._doc.load(), now, exclude, limit):
            return []

        def change(s: StateSet) -> list[Delivery]:
            claimed = _due(s, now, exclude, limit)
            for delivery in claimed:
                s.outbox[delivery.id] = msgspec.structs.replace(delivery, next_at=lease_until)
            return claimed

        return self._doc.update(change)[1] if self._may_send() else []

    def next_due_at(self) -> float | None:
        if not self._may_send():
            return None
        pending = [d.next_at for d in self._doc.load().outbox.values() if d.status == "pending"]
        return min(pending) if pending else None

    def delivered(self, delivery_id: str, attempts: int, now: float) -> None:
        self._doc.update(lambda s: s.outbox.pop(delivery_id, None))

    def retry_later(
        self, delivery_id: str, attempts: int, at: float, error: str, now: float, public: str | None = None
    ) -> None:
        fields = {"attempts": attempts, "next_at": at, "last_error": error, "public_error": public, "updated_at": now}
        self._doc.update(lambda s: _changed(s, delivery_id, fields))

    def dead(self, delivery_id: str, attempts: int, error: str, now: float, public: str | None = None) -> None:
        fields = {"attempts": attempts, "last_error": error, "public_error": public, "updated_at": now}
        self._doc.update(lambda s: _changed(s, delivery_id, {"status": "dead", **fields}))

    def listing(self, project: str, status: OutboxStatus, limit: int = 100) -> list[Delivery]:
        """Newest first."""
        rows = [d for d in self._doc.load().outbox.values() if d.project == project and d.status == status]
        return sorted(rows, key=lambda d: (-d.updated_at, d.id))[:limit]

    def redeliver(self, project: str, delivery_id: str, now: float) -> Delivery:
        def change(s: StateSet) -> Delivery:
            row = s.outbox.get(delivery_id)
            if row is None or row.project != project or row.status != "dead":
                raise UnknownDelivery(delivery_id)
            again = msgspec.structs.replace(row, status="pending", attempts=0, next_at=0.0, updated_at=now)
            s.outbox[delivery_id] = again
            return again

        return self._doc.update(change)[1]

    def prune(self, now: float) -> None:
        """Drop dead letters older than the single node keeps them (delivered rows are removed at once)."""

        def expired(d: Delivery) -> bool:
            return d.status == "dead" and d.updated_at < now - DEAD_KEPT_S

        def change(s: StateSet) -> None:
            s.outbox = {k: d for k, d in s.outbox.items() if not expired(d)}

        if any(expired(d) for d in self._doc.load().outbox.values()):
            self._doc.update(change)


def _due(s: StateSet, now: float, exclude: Collection[str], limit: int) -> list[Delivery]:
    due = [d for d in s.outbox.values() if d.status == "pending" and d.next_at <= now and d.id not in exclude]
    return sorted(due, key=lambda d: (d.next_at, d.id))[:limit]


def _changed(s: StateSet, delivery_id: str, fields: dict[str, object]) -> None:
    row = s.outbox.get(delivery_id)
    if row is not None:
        s.outbox[delivery_id] = msgspec.structs.replace(row, **fields)


def _index_of(rules: RuleSet, project: str, rule_id: str) -> int:
    for index, rule in enumerate(rules.rules):
        if rule.id == rule_id and rule.project == project:
            return index
    raise UnknownRule(rule_id)
