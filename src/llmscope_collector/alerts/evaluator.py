"""Evaluates due rules on a schedule inside the collector, and records what changed.

Each tick reads every enabled rule whose `every` has elapsed, runs its one metric query, advances
its state machine and — in one transaction — saves the state, the event and the outbox rows
for the channels. It never sends anything itself: `on_enqueued` wakes the dispatcher.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import duckdb
import msgspec

from llmscope_collector.alerts import messages
from llmscope_collector.alerts.db import AlertDb
from llmscope_collector.alerts.metrics import Observation, RuleMetrics
from llmscope_collector.alerts.outbox import Outbox
from llmscope_collector.alerts.rules import Rule, breaches, timing
from llmscope_collector.alerts.state import (
    NOTIFIED_KINDS,
    Level,
    RuleState,
    Step,
    advance,
    level_under_policy,
)
from llmscope_collector.alerts.store import AlertEvent, RuleStore
from llmscope_collector.query.backend import QueryFailed

log = logging.getLogger(__name__)


def level_of(rule: Rule, value: float | None) -> Level | None:
    """The level `value` puts the rule at; None when the metric had no data."""
    if rule.metric == "no_data":
        return "alert" if value == 0 else "ok"
    if value is None:
        return None
    if rule.alert_threshold is not None and breaches(rule.comparator, value, rule.alert_threshold):
        return "alert"
    if rule.warning_threshold is not None and breaches(rule.comparator, value, rule.warning_threshold):
        return "warning"
    return "ok"


def _threshold(rule: Rule, level: Level) -> float | None:
    return {"alert": rule.alert_threshold, "warning": rule.warning_threshold}.get(level)


def _severity(rule: Rule, level: Level) -> str:
    return {"alert": rule.severity, "warning": "warning"}.get(level, "info")


def build_event(rule: Rule, prev: RuleState, step: Step, observed: Observation, now: float) -> AlertEvent:
    """The history record (and notification payload) of one state change."""
    assert step.event is not None
    about = prev.level if step.event in ("resolved", "cleared") else step.state.level
    event = AlertEvent(
        project=rule.project,
        rule_id=rule.id,
        rule_name=rule.name,
        kind=step.event,
        at=now,
        previous_status=prev.status,
        status=step.state.status,
        level=step.state.level,
        severity=_severity(rule, step.state.level),
        metric=rule.metric,
        comparator=rule.comparator,
        value=observed.value,
        threshold=_threshold(rule, about),
        samples=observed.samples,
        window_start=observed.window_start,
        window_end=observed.window_end,
        forecast=observed.forecast,
        message="",
    )
    return msgspec.structs.replace(event, message=messages.summary(event))


class Evaluator:
    def __init__(
        self,
        db: AlertDb,
        rules: RuleStore,
        reader: RuleMetrics,
        *,
        on_enqueued: Callable[[], None],
        tick_s: float,
        clock: Callable[[], float] = time.time,
        enqueue: bool = True,
    ) -> None:
        self._db = db
        self._enqueue = enqueue  # False in cluster mode: the shared outbox is filled when events are published
        self._rules = rules
        self._reader = reader
        self._on_enqueued = on_enqueued
        self._tick_s = tick_s
        self._clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run `tick()` every `tick_s` seconds in a background thread (not at all if `tick_s` is 0)."""
        if self._tick_s <= 0:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="llmscope-alert-eval", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:
                log.exception("alert evaluation tick failed; next tick in %.0f s", self._tick_s)
            if self._stopping.wait(self._tick_s):
                return

    def tick(self, now: float | None = None) -> list[AlertEvent]:
        """Evaluate every enabled rule that is due at `now`; returns the events recorded."""
        now = self._clock() if now is None else now
        events: list[AlertEvent] = []
        for rule in self._rules.all_projects():
            if rule.enabled and now >= self._rules.state(rule.id).next_eval_at:
                event = self.evaluate(rule, now)
                if event is not None:
                    events.append(event)
        return events

    def observe(self, rule: Rule, now: float | None = None) -> tuple[Observation, Level | None]:
        """What the rule sees now, without changing its state (`POST .../test`)."""
        observed = self._reader.observe(rule, self._clock() if now is None else now)
        return observed, level_of(rule, observed.value)

    def evaluate(self, rule: Rule, now: float) -> AlertEvent | None:
        """Evaluate one rule, record its new state and event; returns the event, if any."""
        prev = self._rules.state(rule.id)
        every_s = timing(rule).every_s
        try:
            observed = self._reader.observe(rule, now)
        except (duckdb.Error, QueryFailed) as err:  # recorded on the rule; the next tick tries again
            log.warning("alert rule %s (%s) could not be evaluated: %s", rule.id, rule.name, err)
            failed = msgspec.structs.replace(prev, evaluated_at=now, next_eval_at=now + every_s, error=str(err)[:500])
            self._commit(rule, failed, None, now)
            return None
        level = level_under_policy(level_of(rule, observed.value), rule.no_data, prev)
        step = advance(prev, level, now, timing(rule))
        state = msgspec.structs.replace(
            step.state, value=observed.value, evaluated_at=now, next_eval_at=now + every_s, error=None
        )
        event = build_event(rule, prev, step, observed, now) if step.event else None
        return self._commit(rule, state, event, now)

    def _commit(self, rule: Rule, state: RuleState, event: AlertEvent | None, now: float) -> AlertEvent | None:
        notify = False
        with self._db.transaction() as conn:
            if not RuleStore.is_current(conn, rule):
                return None  # deleted or replaced meanwhile: the next tick evaluates the new version
            RuleStore.save_state(conn, rule.id, state)
            if event is None:
                return None
            event = msgspec.structs.replace(event, id=RuleStore.add_event(conn, event))
            if self._enqueue and event.kind in NOTIFIED_KINDS and rule.channels:
                notify = Outbox.enqueue(conn, event, rule.channels, now) > 0
        if notify:
            self._on_enqueued()
        return event
