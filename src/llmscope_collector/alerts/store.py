"""Rules, their states and the history of state changes, in the alerts database.

Methods that take a `conn` run inside a transaction the caller holds (see `evaluator`), so a
state change and its event are written together with the notifications they cause.
"""

from __future__ import annotations

import sqlite3

import msgspec

from llmscope_collector.alerts.budget import Forecast
from llmscope_collector.alerts.db import AlertDb
from llmscope_collector.alerts.rules import Comparator, Metric, Rule
from llmscope_collector.alerts.state import EventKind, Level, RuleState, Status

EVENTS_KEPT_PER_PROJECT = 10_000

_INSERT_RULE = "INSERT INTO rules (id, project, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
_UPDATE_RULE = "UPDATE rules SET body = ?, updated_at = ? WHERE id = ? AND project = ?"
_DELETE_RULE = "DELETE FROM rules WHERE id = ? AND project = ?"
_DELETE_STATE = "DELETE FROM rule_states WHERE rule_id = ?"
_GET_RULE = "SELECT body FROM rules WHERE id = ? AND project = ?"
_LIST_RULES = "SELECT body FROM rules WHERE project = ? ORDER BY created_at, id"
_ALL_RULES = "SELECT body FROM rules ORDER BY created_at, id"
_RULE_VERSION = "SELECT updated_at FROM rules WHERE id = ?"
_GET_STATE = "SELECT body FROM rule_states WHERE rule_id = ?"
_ALL_STATES = "SELECT rule_id, body FROM rule_states"
_ALL_VERSIONS = "SELECT id, updated_at FROM rules"
_DELETE_RULE_ANY = "DELETE FROM rules WHERE id = ?"
_PUT_STATE = """INSERT INTO rule_states (rule_id, body) VALUES (?, ?)
ON CONFLICT (rule_id) DO UPDATE SET body = excluded.body"""
_INSERT_EVENT = "INSERT INTO events (project, rule_id, at, kind, body) VALUES (?, ?, ?, ?, ?)"
_LIST_EVENTS = """SELECT id, body FROM events WHERE project = ? AND id < ? AND (? IS NULL OR rule_id = ?)
ORDER BY id DESC LIMIT ?"""
_PRUNE_EVENTS = """DELETE FROM events WHERE project = ? AND id <=
(SELECT id FROM events WHERE project = ? ORDER BY id DESC LIMIT 1 OFFSET ?)"""

_rule_decoder = msgspec.json.Decoder(Rule)
_state_decoder = msgspec.json.Decoder(RuleState)


class UnknownRule(LookupError):
    """No rule with this id in the caller's project."""


class AlertEvent(msgspec.Struct, kw_only=True):
    """One change of a rule's state, as kept in history and sent to channels. Times are Unix seconds.

    `severity` is the rule's severity when the alert threshold is crossed, `warning` for the warning
    threshold and `info` for a resolution; `threshold` is the one crossed (None when resolved)."""

    id: int = 0
    project: str
    rule_id: str
    rule_name: str
    kind: EventKind
    at: float
    previous_status: Status
    status: Status
    level: Level
    severity: str
    metric: Metric
    comparator: Comparator
    value: float | None
    threshold: float | None
    samples: int
    window_start: float
    window_end: float
    forecast: Forecast | None = None
    message: str


_event_decoder = msgspec.json.Decoder(AlertEvent)


class RuleStore:
    def __init__(self, db: AlertDb) -> None:
        self._db = db

    # --- rules (API) ---

    def create(self, rule: Rule) -> None:
        with self._db.transaction() as conn:
            body = msgspec.json.encode(rule)
            conn.execute(_INSERT_RULE, (rule.id, rule.project, body, rule.created_at, rule.updated_at))

    def replace(self, rule: Rule) -> None:
        """Store the new version; the state is kept and the rule is evaluated again at the next tick."""
        with self._db.transaction() as conn:
            cur = conn.execute(_UPDATE_RULE, (msgspec.json.encode(rule), rule.updated_at, rule.id, rule.project))
            if cur.rowcount == 0:
                raise UnknownRule(rule.id)
            state = self._state(conn, rule.id)
            state.next_eval_at = 0.0
            self.save_state(conn, rule.id, state)

    def delete(self, project: str, rule_id: str) -> None:
        with self._db.transaction() as conn:
            if conn.execute(_DELETE_RULE, (rule_id, project)).rowcount == 0:
                raise UnknownRule(rule_id)
            conn.execute(_DELETE_STATE, (rule_id,))

    def get(self, project: str, rule_id: str) -> Rule:
        with self._db.read() as conn:
            row = conn.execute(_GET_RULE, (rule_id, project)).fetchone()
        if row is None:
            raise UnknownRule(rule_id)
        return _rule_decoder.decode(row[0])

    def of_project(self, project: str) -> list[Rule]:
        with self._db.read() as conn:
            rows = conn.execute(_LIST_RULES, (project,)).fetchall()
        return [_rule_decoder.decode(r[0]) for r in rows]

    def all_projects(self) -> list[Rule]:
        """Every project's rules (the evaluator's view)."""
        with self._db.read() as conn:
            rows = conn.execute(_ALL_RULES).fetchall()
        return [_rule_decoder.decode(r[0]) for r in rows]

    def mirror(self, rules: list[Rule]) -> None:
        """Make the stored rules exactly `rules` (cluster mode: the bucket's rule set is the truth).
        A rule whose version changed is evaluated again at the next tick, as after `replace`."""
        wanted = {rule.id: rule for rule in rules}
        with self._db.transaction() as conn:
            stored = dict(conn.execute(_ALL_VERSIONS).fetchall())
            for rule_id in stored.keys() - wanted.keys():
                conn.execute(_DELETE_RULE_ANY, (rule_id,))
                conn.execute(_DELETE_STATE, (rule_id,))
            for rule in wanted.values():
                if rule.id not in stored:
                    body = msgspec.json.encode(rule)
                    conn.execute(_INSERT_RULE, (rule.id, rule.project, body, rule.created_at, rule.updated_at))
                elif stored[rule.id] != rule.updated_at:
                    conn.execute(_UPDATE_RULE, (msgspec.json.encode(rule), rule.updated_at, rule.id, rule.project))
                    state = self._state(conn, rule.id)
                    state.next_eval_at = 0.0
                    self.save_state(conn, rule.id, state)

    def all_states(self) -> dict[str, RuleState]:
        with self._db.read() as conn:
            rows = conn.execute(_ALL_STATES).fetchall()
        return {rule_id: _state_decoder.decode(body) for rule_id, body in rows}

    def put_states(self, states: dict[str, RuleState]) -> None:
        """Overwrite the states of the rules stored here with `states` (others are ignored)."""
        with self._db.transaction() as conn:
            known = {row[0] for row in conn.execute(_ALL_VERSIONS).fetchall()}
            for rule_id, state in states.items():
                if rule_id in known:
                    self.save_state(conn, rule_id, state)

    # --- states ---

    def state(self, rule_id: str) -> RuleState:
        with self._db.read() as conn:
            return self._state(conn, rule_id)

    @staticmethod
    def _state(conn: sqlite3.Connection, rule_id: str) -> RuleState:
        row = conn.execute(_GET_STATE, (rule_id,)).fetchone()
        return RuleState() if row is None else _state_decoder.decode(row[0])

    @staticmethod
    def is_current(conn: sqlite3.Connection, rule: Rule) -> bool:
        """False when the rule was deleted or replaced since it was read: drop that evaluation."""
        row = conn.execute(_RULE_VERSION, (rule.id,)).fetchone()
        return row is not None and row[0] == rule.updated_at

    @staticmethod
    def save_state(conn: sqlite3.Connection, rule_id: str, state: RuleState) -> None:
        conn.execute(_PUT_STATE, (rule_id, msgspec.json.encode(state)))

    # --- events ---

    @staticmethod
    def add_event(conn: sqlite3.Connection, event: AlertEvent) -> int:
        """Insert; returns the event id (increasing, never reused) and keeps the newest events only."""
        cur = conn.execute(
            _INSERT_EVENT, (event.project, event.rule_id, event.at, event.kind, msgspec.json.encode(event))
        )
        event_id = cur.lastrowid
        assert event_id is not None
        conn.execute(_PRUNE_EVENTS, (event.project, event.project, EVENTS_KEPT_PER_PROJECT))
        return event_id

    def events(
        self, project: str, *, rule_id: str | None = None, before_id: int | None = None, limit: int = 100
    ) -> list[AlertEvent]:
        """Newest first; page with `before_id` (the last id of the previous page)."""
        before = before_id if before_id is not None else 2**63 - 1
        with self._db.read() as conn:
            rows = conn.execute(_LIST_EVENTS, (project, before, rule_id, rule_id, limit)).fetchall()
        return [msgspec.structs.replace(_event_decoder.decode(body), id=event_id) for event_id, body in rows]
