"""`/v1/alerts`: alert rules of the caller's project, their history and undeliverable notifications.

Rules are validated here with 400s that name the field; the work is in `alerts.service`. Times in
these bodies are Unix seconds (as in the webhook payloads). Webhook secrets are never returned.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, FromPath, FromQuery, Parameter

from llmscope_collector.alerts.budget import Forecast
from llmscope_collector.alerts.outbox import Delivery, UnknownDelivery
from llmscope_collector.alerts.rules import Channel, Rule, RuleError, RuleSpec, redacted
from llmscope_collector.alerts.service import AlertService
from llmscope_collector.alerts.state import Level, RuleState
from llmscope_collector.alerts.store import AlertEvent, UnknownRule
from llmscope_collector.api.schemas import ErrorBody

RuleBody = Annotated[RuleSpec, Body(description="An alert rule; see docs/alerts.md")]
Limit = Annotated[int, Parameter(ge=1, le=1000, description="At most this many, newest first")]


class RuleView(Rule, kw_only=True):
    """A rule as stored (secrets removed) with where it stands now."""

    state: RuleState


class RuleTestResult(msgspec.Struct, kw_only=True):
    """One evaluation made on request; the rule's state is not changed. `level` is None when the
    metric had no data (the rule's `no_data` policy then decides)."""

    rule_id: str
    evaluated_at: float
    value: float | None
    level: Level | None
    samples: int
    window_start: float
    window_end: float
    forecast: Forecast | None = None


class DeadLetter(msgspec.Struct, kw_only=True):
    """A notification that could not be delivered after its last attempt. `last_error` names the
    receiver's host and the network error for the admin token only; project keys get a generic
    sentence (so failed deliveries cannot be used to probe the collector's network)."""

    id: str
    rule_id: str
    event_id: int
    channel: Channel
    attempts: int
    last_error: str | None
    created_at: float
    updated_at: float
    event: AlertEvent


def _view(rule: Rule, state: RuleState) -> RuleView:
    fields = msgspec.structs.asdict(rule) | {"channels": redacted(rule.channels)}
    return RuleView(**fields, state=state)


def _dead_letter(delivery: Delivery, admin: bool) -> DeadLetter:
    return DeadLetter(
        id=delivery.id,
        rule_id=delivery.rule_id,
        event_id=delivery.event_id,
        channel=redacted([delivery.channel])[0],
        attempts=delivery.attempts,
        last_error=delivery.last_error if admin else delivery.public_error or _GENERIC_ERROR,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
        event=delivery.event,
    )


_GENERIC_ERROR = "delivery failed"


def _error(status: int, error: str, detail: str) -> Response[bytes]:
    body = msgspec.json.encode(ErrorBody(status_code=status, error=error, detail=detail))
    return Response(content=body, status_code=status, media_type="application/json")


def _invalid_rule(_: Request[Any, Any, Any], exc: RuleError) -> Response[bytes]:
    return _error(400, "invalid_rule", str(exc))


def _invalid_body(_: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    """Say which field is wrong (`alert_threshold: Expected float | null, got str`), not just "invalid"."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    problems = [f"{e['key']}: {e['message']}" if e.get("key") else str(e.get("message", e)) for e in extra]
    return _error(400, "invalid_rule", "; ".join(problems) or str(exc.detail))


def _not_found(_: Request[Any, Any, Any], exc: LookupError) -> Response[bytes]:
    what = "alert rule" if isinstance(exc, UnknownRule) else "dead letter"
    return _error(404, "not_found", f"{what} {exc.args[0]} does not exist in this project")


_BAD = {400: ResponseSpec(data_container=ErrorBody, description="Invalid rule; `detail` names the field")}
_MISSING = {404: ResponseSpec(data_container=ErrorBody, description="No such rule in the caller's project")}


class AlertController(Controller):
    path = "/v1/alerts"
    tags = ["alerts"]
    exception_handlers = {
        RuleError: _invalid_rule,
        ValidationException: _invalid_body,
        UnknownRule: _not_found,
        UnknownDelivery: _not_found,
    }

    @post("/rules", operation_id="createAlertRule", responses=_BAD, sync_to_thread=True)
    def create_rule(
        self, alerts: NamedDependency[AlertService], caller_project: NamedDependency[str], data: RuleBody
    ) -> RuleView:
        rule = alerts.create_rule(caller_project, data)
        return _view(rule, alerts.state(rule.id))

    @get("/rules", operation_id="listAlertRules", sync_to_thread=True)
    def list_rules(self, alerts: NamedDependency[AlertService], caller_project: NamedDependency[str]) -> list[RuleView]:
        return [_view(rule, alerts.state(rule.id)) for rule in alerts.rules_of(caller_project)]

    @get("/rules/{rule_id:str}", operation_id="getAlertRule", responses=_MISSING, sync_to_thread=True)
    def get_rule(
        self, alerts: NamedDependency[AlertService], caller_project: NamedDependency[str], rule_id: FromPath[str]
    ) -> RuleView:
        return _view(alerts.rule(caller_project, rule_id), alerts.state(rule_id))

    @put("/rules/{rule_id:str}", operation_id="replaceAlertRule", responses=_BAD | _MISSING, sync_to_thread=True)
    def replace_rule(
        self,
        alerts: NamedDependency[AlertService],
        caller_project: NamedDependency[str],
        rule_id: FromPath[str],
        data: RuleBody,
    ) -> RuleView:
        """Replace the whole rule. A webhook given without `secret` keeps its current secret."""
        rule = alerts.replace_rule(caller_project, rule_id, data)
        return _view(rule, alerts.state(rule.id))

    @delete("/rules/{rule_id:str}", operation_id="deleteAlertRule", responses=_MISSING, sync_to_thread=True)
    def delete_rule(
        self, alerts: NamedDependency[AlertService], caller_project: NamedDependency[str], rule_id: FromPath[str]
    ) -> None:
        alerts.delete_rule(caller_project, rule_id)

    @post(
        "/rules/{rule_id:str}/test",
        operation_id="testAlertRule",
        summary="Evaluate the rule once now and return the value it saw",
        responses=_MISSING,
        status_code=200,
        sync_to_thread=True,
    )
    def test_rule(
        self, alerts: NamedDependency[AlertService], caller_project: NamedDependency[str], rule_id: FromPath[str]
    ) -> RuleTestResult:
        rule, observed, level, now = alerts.test_rule(caller_project, rule_id)
        return RuleTestResult(
            rule_id=rule.id,
            evaluated_at=now,
            value=observed.value,
            level=level,
            samples=observed.samples,
            window_start=observed.window_start,
            window_end=observed.window_end,
            forecast=observed.forecast,
        )

    @get("/events", operation_id="listAlertEvents", sync_to_thread=True)
    def list_events(
        self,
        alerts: NamedDependency[AlertService],
        caller_project: NamedDependency[str],
        rule_id: FromQuery[str | None] = None,
        before: Annotated[int | None, Parameter(ge=1, le=2**63 - 1, description="Page: ids below this")] = None,
        limit: Limit = 100,
    ) -> list[AlertEvent]:
        """State changes, newest first; `before=<last id seen>` pages back."""
        return alerts.events(caller_project, rule_id=rule_id, before_id=before, limit=limit)

    @get("/dead-letters", operation_id="listAlertDeadLetters", sync_to_thread=True)
    def list_dead_letters(
        self,
        alerts: NamedDependency[AlertService],
        caller_project: NamedDependency[str],
        caller_is_admin: NamedDependency[bool],
        limit: Limit = 100,
    ) -> list[DeadLetter]:
        return [_dead_letter(d, caller_is_admin) for d in alerts.dead_letters(caller_project, limit)]

    @post(
        "/dead-letters/{delivery_id:str}/redeliver",
        operation_id="redeliverAlertNotification",
        summary="Queue a dead letter again with a fresh set of attempts",
        responses={404: ResponseSpec(data_container=ErrorBody, description="No such dead letter")},
        status_code=202,
        sync_to_thread=True,
    )
    def redeliver(
        self,
        alerts: NamedDependency[AlertService],
        caller_project: NamedDependency[str],
        caller_is_admin: NamedDependency[bool],
        delivery_id: FromPath[str],
    ) -> DeadLetter:
        return _dead_letter(alerts.redeliver(caller_project, delivery_id), caller_is_admin)
