"""The notification outbox: one row per (state change, channel), delivered by the dispatcher.

The evaluator only inserts rows (in the transaction that records the state change), so a slow or
dead receiver can never hold it up. The row id `<event id>-<channel index>` makes enqueueing
idempotent: one notification per state change and channel. Rows move pending → delivered, or
pending → dead after the last failed attempt (the dead-letter record, kept for inspection and
manual redelivery).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from typing import Any, Literal, Protocol

import msgspec

from llmscope_collector.alerts.db import AlertDb
from llmscope_collector.alerts.rules import Channel
from llmscope_collector.alerts.store import AlertEvent

OutboxStatus = Literal["pending", "delivered", "dead"]
DELIVERED_KEPT_S = 7 * 86400.0
DEAD_KEPT_S = 30 * 86400.0

_INSERT = """INSERT OR IGNORE INTO outbox
(id, project, rule_id, event_id, channel, payload, status, attempts, next_at, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, 0, ?, ?)"""
_COLUMNS = """id, project, rule_id, event_id, channel, payload, status, attempts, next_at, last_error,
created_at, updated_at, public_error"""
_DUE = f"SELECT {_COLUMNS} FROM outbox WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?"  # noqa: S608
_LEASE = "UPDATE outbox SET next_at = ? WHERE id = ? AND status = 'pending'"
_NEXT_DUE = "SELECT min(next_at) FROM outbox WHERE status = 'pending'"
_DELIVERED = """UPDATE outbox SET status = 'delivered', attempts = ?, last_error = NULL, public_error = NULL,
updated_at = ? WHERE id = ?"""
_RETRY = "UPDATE outbox SET attempts = ?, next_at = ?, last_error = ?, public_error = ?, updated_at = ? WHERE id = ?"
_DEAD = """UPDATE outbox SET status = 'dead', attempts = ?, last_error = ?, public_error = ?, updated_at = ?
WHERE id = ?"""
_LIST = f"""SELECT {_COLUMNS} FROM outbox WHERE project = ? AND status = ?
ORDER BY updated_at DESC, id LIMIT ?"""  # noqa: S608
_REDELIVER = """UPDATE outbox SET status = 'pending', attempts = 0, next_at = 0, updated_at = ?
WHERE id = ? AND project = ? AND status = 'dead'"""
_GET = f"SELECT {_COLUMNS} FROM outbox WHERE id = ? AND project = ?"  # noqa: S608
_PRUNE = "DELETE FROM outbox WHERE (status = 'delivered' AND updated_at < ?) OR (status = 'dead' AND updated_at < ?)"

_channel_decoder = msgspec.json.Decoder(Channel)
_event_decoder = msgspec.json.Decoder(AlertEvent)


class UnknownDelivery(LookupError):
    """No dead letter with this id in the caller's project."""


class Delivery(msgspec.Struct, kw_only=True):
    """One notification to one channel. Times are Unix seconds."""

    id: str
    project: str
    rule_id: str
    event_id: int
    channel: Channel
    event: AlertEvent
    status: OutboxStatus
    attempts: int
    next_at: float
    last_error: str | None
    created_at: float
    updated_at: float
    public_error: str | None = None
    """`last_error` without host, address or OS detail: what a project key is shown."""


def _delivery(row: tuple[Any, ...]) -> Delivery:
    id_, project, rule_id, event_id, channel, payload, status, attempts, next_at, error, created, updated, public = row
    return Delivery(
        id=id_,
        project=project,
        rule_id=rule_id,
        event_id=event_id,
        channel=_channel_decoder.decode(channel),
        event=_event_decoder.decode(payload),
        status=status,
        attempts=attempts,
        next_at=next_at,
        last_error=error,
        created_at=created,
        updated_at=updated,
        public_error=public,
    )


class DeliveryQueue(Protocol):
    """What the dispatcher and the API need of an outbox: this node's (`Outbox`, SQLite) or, in
    cluster mode, the one shared through the bucket (alerts.shared.SharedOutbox)."""

    def claim(
        self, now: float, lease_until: float, *, exclude: Collection[str] = (), limit: int = 50
    ) -> list[Delivery]: ...

    def next_due_at(self) -> float | None: ...

    def delivered(self, delivery_id: str, attempts: int, now: float) -> None: ...

    def retry_later(
        self, delivery_id: str, attempts: int, at: float, error: str, now: float, public: str | None = None
    ) -> None: ...

    def dead(self, delivery_id: str, attempts: int, error: str, now: float, public: str | None = None) -> None: ...

    def listing(self, project: str, status: OutboxStatus, limit: int = 100) -> list[Delivery]: ...

    def redeliver(self, project: str, delivery_id: str, now: float) -> Delivery: ...

    def prune(self, now: float) -> None: ...


class Outbox:
    def __init__(self, db: AlertDb) -> None:
        self._db = db

    @staticmethod
    def enqueue(conn: sqlite3.Connection, event: AlertEvent, channels: list[Channel], now: float) -> int:
        """Inside the caller's transaction; returns how many rows are new."""
        payload = msgspec.json.encode(event)
        added = 0
        for index, channel in enumerate(channels):
            row = (f"{event.id}-{index}", event.project, event.rule_id, event.id, msgspec.json.encode(channel))
            added += conn.execute(_INSERT, (*row, payload, now, now)).rowcount
        return added

    def claim(
        self, now: float, lease_until: float, *, exclude: Collection[str] = (), limit: int = 50
    ) -> list[Delivery]:
        """Due rows, leased until `lease_until`: not due again before then, so a row whose sender is
        still busy is not picked twice, and one whose process died is retried after the lease."""
        with self._db.transaction() as conn:
            rows = conn.execute(_DUE, (now, limit + len(exclude))).fetchall()
            claimed = [d for d in map(_delivery, rows) if d.id not in exclude][:limit]
            for delivery in claimed:
                conn.execute(_LEASE, (lease_until, delivery.id))
        return claimed

    def next_due_at(self) -> float | None:
        with self._db.read() as conn:
            row = conn.execute(_NEXT_DUE).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def delivered(self, delivery_id: str, attempts: int, now: float) -> None:
        with self._db.transaction() as conn:
            conn.execute(_DELIVERED, (attempts, now, delivery_id))

    def retry_later(
        self, delivery_id: str, attempts: int, at: float, error: str, now: float, public: str | None = None
    ) -> None:
        with self._db.transaction() as conn:
            conn.execute(_RETRY, (attempts, at, error, public, now, delivery_id))

    def dead(self, delivery_id: str, attempts: int, error: str, now: float, public: str | None = None) -> None:
        with self._db.transaction() as conn:
            conn.execute(_DEAD, (attempts, error, public, now, delivery_id))

    def listing(self, project: str, status: OutboxStatus, limit: int = 100) -> list[Delivery]:
        """Newest first."""
        with self._db.read() as conn:
            rows = conn.execute(_LIST, (project, status, limit)).fetchall()
        return [_delivery(r) for r in rows]

    def redeliver(self, project: str, delivery_id: str, now: float) -> Delivery:
        """Put a dead letter back in the queue with a fresh set of attempts."""
        with self._db.transaction() as conn:
            if conn.execute(_REDELIVER, (now, delivery_id, project)).rowcount == 0:
                raise UnknownDelivery(delivery_id)
            row = conn.execute(_GET, (delivery_id, project)).fetchone()
        return _delivery(row)

    def prune(self, now: float) -> None:
        with self._db.transaction() as conn:
            conn.execute(_PRUNE, (now - DELIVERED_KEPT_S, now - DEAD_KEPT_S))
