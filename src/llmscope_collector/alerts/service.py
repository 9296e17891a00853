"""`AlertService`: the alerts subsystem as the collector runs it and the API calls it.

Wires the store, the metric reader, the evaluator and the dispatcher together, and holds the
operations behind `/v1/alerts` so that the controller only translates HTTP.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from llmscope_collector.alerts.channels import Senders, SmtpConfig
from llmscope_collector.alerts.db import AlertDb
from llmscope_collector.alerts.destinations import DestinationPolicy, DestinationRefused
from llmscope_collector.alerts.dispatcher import Dispatcher
from llmscope_collector.alerts.evaluator import Evaluator
from llmscope_collector.alerts.metrics import MetricReader, Observation
from llmscope_collector.alerts.outbox import Delivery, DeliveryQueue, Outbox
from llmscope_collector.alerts.rules import EmailChannel, Rule, RuleError, RuleSpec, keep_secrets, validate
from llmscope_collector.alerts.shared import SharedAlerts
from llmscope_collector.alerts.state import Level, RuleState
from llmscope_collector.alerts.store import AlertEvent, RuleStore
from llmscope_collector.control.document import Refresher
from llmscope_collector.query.db import Database
from llmscope_collector.query.store import SPILL_DIR
from llmscope_collector.settings import Settings

if TYPE_CHECKING:
    from llmscope_collector.query.backend import QueryBackend

log = logging.getLogger(__name__)


class DeliveryOptions(msgspec.Struct, kw_only=True, frozen=True):
    timeout_s: float = 10.0
    max_attempts: int = 6
    retry_base_s: float = 2.0
    workers: int = 4


class AlertService:
    def __init__(
        self,
        data_dir: Path,
        *,
        smtp: SmtpConfig | None = None,
        tick_s: float = 5.0,
        delivery: DeliveryOptions | None = None,
        destinations: DestinationPolicy | None = None,
        clock: Callable[[], float] = time.time,
        spans_dir: Path | None = None,
        shared: SharedAlerts | None = None,
        engine: QueryBackend | None = None,
    ) -> None:
        delivery = delivery or DeliveryOptions()
        self.smtp = smtp or SmtpConfig()
        self.destinations = destinations or DestinationPolicy()
        self._clock = clock
        self._db = AlertDb(data_dir)
        self.rules = RuleStore(self._db)
        # Cluster mode: events and notifications are the cluster's, in the bucket (alerts.shared).
        self.outbox: DeliveryQueue = shared.outbox if shared is not None else Outbox(self._db)
        self._duck = Database(threads=1, memory_limit="512MB", spill_dir=data_dir / SPILL_DIR)
        self.dispatcher = Dispatcher(
            self.outbox,
            Senders(self.smtp, timeout_s=delivery.timeout_s, destinations=self.destinations).send,
            timeout_s=delivery.timeout_s,
            workers=delivery.workers,
            max_attempts=delivery.max_attempts,
            retry_base_s=delivery.retry_base_s,
        )
        files = MetricReader(spans_dir or data_dir, self._duck)  # spans_dir: cluster mode's bucket mirror
        # The query engine the API reads (`--query-engine`) answers the rules too, so a rule sees what the UI shows.
        reader = engine.rule_metrics(files) if engine is not None else files
        self.evaluator = Evaluator(
            self._db,
            self.rules,
            reader,
            on_enqueued=self.dispatcher.wake,
            tick_s=tick_s,
            clock=clock,
            enqueue=shared is None,
        )
        # Cluster mode: rules and states live in the bucket, and only the lease holder evaluates.
        self.shared = shared
        if shared is not None:
            shared.on_published = self.dispatcher.wake
        self._shared_ticks = (
            Refresher("alert-tick", tick_s, lambda: shared.tick(self.rules, self.evaluator))
            if shared is not None and tick_s > 0
            else None
        )
        self._running = False
        self._closed = False

    @classmethod
    def from_settings(
        cls, settings: Settings, shared: SharedAlerts | None = None, engine: QueryBackend | None = None
    ) -> AlertService:
        smtp = SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            sender=settings.smtp_from,
        )
        delivery = DeliveryOptions(
            timeout_s=settings.alerts_delivery_timeout_s,
            max_attempts=settings.alerts_delivery_attempts,
            retry_base_s=settings.alerts_retry_base_s,
            workers=settings.alerts_delivery_workers,
        )
        destinations = DestinationPolicy.from_allow_list(settings.alerts_allow_destinations)
        from llmscope_collector.storage.cluster import query_dir

        return cls(
            settings.data_dir,
            smtp=smtp,
            tick_s=settings.alerts_tick_s,
            delivery=delivery,
            destinations=destinations,
            spans_dir=query_dir(settings),
            shared=shared,
            engine=engine,
        )

    def start(self) -> None:
        self.dispatcher.start()
        if self.shared is None:
            self.evaluator.start()
        else:
            self.shared.pull_rules(self.rules)
            self.shared.lease.start()
            if self._shared_ticks is not None:
                self._shared_ticks.start()
        self._running = True

    def stop(self) -> None:
        """Stop evaluating, finish sends in progress, close the databases. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._running:
            self.evaluator.stop()
            if self._shared_ticks is not None:
                self._shared_ticks.stop()
            if self.shared is not None:
                self.shared.lease.stop(release=True)  # the next node takes over at once
            self.dispatcher.stop()
        self._duck.close()
        self._db.close()

    # --- rules ---

    def _validate(self, spec: RuleSpec) -> None:
        """The rule's own checks, then where its URLs point (refused before anything is stored)."""
        validate(spec, email_enabled=self.smtp.enabled)
        for index, channel in enumerate(spec.channels):
            if isinstance(channel, EmailChannel):
                continue
            try:
                self.destinations.check_url(channel.url)
            except DestinationRefused as exc:
                raise RuleError(f"channels[{index}].url: {exc}") from None

    def create_rule(self, project: str, spec: RuleSpec) -> Rule:
        self._validate(spec)
        now = self._clock()
        fields = msgspec.structs.asdict(spec)
        rule = Rule(**fields, id=uuid.uuid4().hex, project=project, created_at=now, updated_at=now)
        if self.shared is not None:
            self.shared.create(self.rules, rule)
        else:
            self.rules.create(rule)
        return rule

    def _fresh(self) -> None:
        """Cluster mode: copy the bucket's rules in before answering (other replicas may have changed
        them since the last tick); when the bucket cannot be read, answer from the local copy."""
        if self.shared is None:
            return
        try:
            self.shared.pull_rules(self.rules)
        except Exception:
            log.warning("alert rules could not be read from the bucket; answering from the local copy", exc_info=True)

    def rules_of(self, project: str) -> list[Rule]:
        self._fresh()
        return self.rules.of_project(project)

    def rule(self, project: str, rule_id: str) -> Rule:
        self._fresh()
        return self.rules.get(project, rule_id)

    def delete_rule(self, project: str, rule_id: str) -> None:
        if self.shared is not None:
            self.shared.delete(self.rules, project, rule_id)
        else:
            self.rules.delete(project, rule_id)

    def replace_rule(self, project: str, rule_id: str, spec: RuleSpec) -> Rule:
        old = self.rule(project, rule_id)
        spec = keep_secrets(spec, old)
        self._validate(spec)
        updated_at = max(self._clock(), old.updated_at + 1e-6)  # a new version, even within one clock tick
        fields = msgspec.structs.asdict(spec)
        rule = Rule(**fields, id=rule_id, project=project, created_at=old.created_at, updated_at=updated_at)
        if self.shared is not None:
            self.shared.replace(self.rules, rule)
        else:
            self.rules.replace(rule)
        return rule

    def state(self, rule_id: str) -> RuleState:
        return self.rules.state(rule_id)

    def test_rule(self, project: str, rule_id: str) -> tuple[Rule, Observation, Level | None, float]:
        """Evaluate once, now, without touching the rule's state; returns what it saw and when."""
        rule = self.rule(project, rule_id)
        now = self._clock()
        observed, level = self.evaluator.observe(rule, now)
        return rule, observed, level, now

    # --- history and deliveries ---

    def events(
        self, project: str, *, rule_id: str | None = None, before_id: int | None = None, limit: int = 100
    ) -> list[AlertEvent]:
        if self.shared is not None:  # the cluster's history, whichever node recorded it
            return self.shared.events(project, rule_id=rule_id, before_id=before_id, limit=limit)
        return self.rules.events(project, rule_id=rule_id, before_id=before_id, limit=limit)

    def dead_letters(self, project: str, limit: int = 100) -> list[Delivery]:
        return self.outbox.listing(project, "dead", limit)

    def redeliver(self, project: str, delivery_id: str) -> Delivery:
        delivery = self.outbox.redeliver(project, delivery_id, self._clock())
        self.dispatcher.wake()
        return delivery
