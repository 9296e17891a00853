"""Delivery to real receivers: retries, dead letters, Slack and email formats, deduplication, and
a hanging receiver that must not hold up the evaluator."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from llmscope_collector.alerts.outbox import Outbox
from llmscope_collector.alerts.rules import Rule, RuleSpec
from llmscope_collector.alerts.service import AlertService
from llmscope_collector.alerts.signing import verify_signature

from .conftest import FakeClock, Receiver, SmtpServer, wait_for
from .traffic import T0, steady, write_calls

SECRET = "webhook-secret-0123456789"
MIN = 60.0


def _spend_rule(service: AlertService, channels: list[dict[str, Any]], name: str = "Spend") -> Rule:
    body = {"name": name, "metric": "cost_usd", "window": "1h", "alert_threshold": 1.0, "channels": channels}
    return service.create_rule("default", msgspec.convert(body, RuleSpec))


def _webhook(receiver: Receiver) -> dict[str, Any]:
    return {"type": "webhook", "url": receiver.url, "secret": SECRET}


def _spike(data_dir: Path) -> None:
    write_calls(data_dir, steady(T0 - 10 * MIN, T0, MIN, cost_usd=0.5))


def _deliveries(service: AlertService, status: str) -> list[Any]:
    return service.outbox.listing("default", status)  # type: ignore[arg-type]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_failures_are_retried_with_the_same_id_and_fresh_signatures(
    service: AlertService, clock: FakeClock, data_dir: Path, webhook: Receiver
) -> None:
    _spike(data_dir)
    webhook.statuses = [500, 503]
    _spend_rule(service, [_webhook(webhook)])
    [event] = service.evaluator.tick(T0)
    attempts = [webhook.next() for _ in range(3)]
    assert {a.json()["id"] for a in attempts} == {f"{event.id}-0"}
    assert {a.headers["x-llmscope-delivery-id"] for a in attempts} == {f"{event.id}-0"}
    for attempt in attempts:
        headers = attempt.headers
        assert verify_signature(SECRET, attempt.body, headers["x-llmscope-timestamp"], headers["x-llmscope-signature"])
    [done] = wait_for(lambda: _deliveries(service, "delivered"))
    assert done.attempts == 3 and done.last_error is None


def test_a_rejected_notification_is_dead_at_once_and_can_be_redelivered(
    service: AlertService, clock: FakeClock, data_dir: Path, webhook: Receiver
) -> None:
    _spike(data_dir)
    webhook.statuses = [400]
    _spend_rule(service, [_webhook(webhook)])
    service.evaluator.tick(T0)
    [dead] = wait_for(lambda: service.dead_letters("default"))
    assert dead.attempts == 1 and dead.last_error == f"HTTP 400 from {webhook.url.split('/')[2]}"
    assert service.dead_letters("another-project") == []
    service.redeliver("default", dead.id)
    assert [webhook.next().json()["id"] for _ in range(2)] == [dead.id, dead.id]
    wait_for(lambda: _deliveries(service, "delivered"))
    assert service.dead_letters("default") == []


def test_an_unreachable_receiver_ends_as_a_dead_letter_after_the_last_attempt(
    service: AlertService, clock: FakeClock, data_dir: Path
) -> None:
    _spike(data_dir)
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    _spend_rule(service, [{"type": "webhook", "url": url, "secret": SECRET}])
    service.evaluator.tick(T0)
    [dead] = wait_for(lambda: service.dead_letters("default"))
    assert dead.attempts == 3 and dead.last_error is not None and "cannot reach 127.0.0.1" in dead.last_error


def test_a_hanging_receiver_does_not_hold_up_evaluation_or_other_channels(
    service: AlertService, clock: FakeClock, data_dir: Path, webhook: Receiver
) -> None:
    stuck = Receiver()
    try:
        stuck.hang()
        _spike(data_dir)
        _spend_rule(service, [_webhook(stuck)], name="to the stuck receiver")
        _spend_rule(service, [_webhook(webhook)], name="to the healthy receiver")
        assert len(service.evaluator.tick(T0)) == 2
        assert webhook.next().json()["event"]["rule_name"] == "to the healthy receiver"
        assert stuck.held.wait(10)
        resolved = service.evaluator.tick(T0 + 2 * 3600)  # while the stuck receiver still holds its request
        assert [e.kind for e in resolved] == ["resolved", "resolved"]
        assert webhook.next().json()["type"] == "alert.resolved"
        assert stuck.requests.empty()
    finally:
        stuck.close()


def test_one_notification_per_state_change_even_when_enqueued_twice(
    service: AlertService, clock: FakeClock, data_dir: Path, webhook: Receiver
) -> None:
    _spike(data_dir)
    rule = _spend_rule(service, [_webhook(webhook)])
    [event] = service.evaluator.tick(T0)
    for minute in range(1, 6):  # still firing: evaluated, not notified again
        assert service.evaluator.tick(T0 + minute * MIN) == []
    webhook.next()
    with service._db.transaction() as conn:  # a replay of the same state change adds nothing
        assert Outbox.enqueue(conn, event, rule.channels, T0) == 0
    [delivery] = wait_for(lambda: _deliveries(service, "delivered"))
    assert delivery.id == f"{event.id}-0"
    assert webhook.requests.empty()


def test_rules_states_and_history_survive_a_restart(
    make_service: Callable[..., AlertService], clock: FakeClock, data_dir: Path, webhook: Receiver
) -> None:
    first = make_service()
    _spike(data_dir)
    rule = _spend_rule(first, [_webhook(webhook)])
    first.evaluator.tick(T0)
    webhook.next()
    first.stop()
    second = make_service()
    assert second.rules.get("default", rule.id) == rule
    assert second.state(rule.id).status == "firing"
    assert second.evaluator.tick(T0 + 5 * MIN) == []  # already firing before the restart: no second page
    assert [e.kind for e in second.events("default")] == ["firing"]
    assert webhook.requests.empty()


def test_slack_gets_an_incoming_webhook_message(
    service: AlertService, clock: FakeClock, data_dir: Path, webhook: Receiver
) -> None:
    _spike(data_dir)
    _spend_rule(service, [{"type": "slack", "url": webhook.url}], name="Slack spend")
    service.evaluator.tick(T0)
    body = webhook.next().json()
    assert body["text"].startswith("[FIRING error] Slack spend (cost_usd): 5 USD > 1")
    assert body["blocks"][0] == {"type": "section", "text": {"type": "mrkdwn", "text": body["text"]}}
    assert "ok → firing" in body["blocks"][1]["elements"][0]["text"]


def test_email_goes_through_the_smtp_server(
    make_service: Callable[..., AlertService], clock: FakeClock, data_dir: Path, smtpd: SmtpServer
) -> None:
    service = make_service(smtp=smtpd.config)
    _spike(data_dir)
    channels = [{"type": "email", "to": ["oncall@example.test", "lead@example.test"]}]
    rule = _spend_rule(service, channels, name="Mail spend")
    [event] = service.evaluator.tick(T0)
    recipients, message = smtpd.next()
    assert recipients == ["oncall@example.test", "lead@example.test"]
    assert message["Subject"] == event.message and message["From"] == "alerts@llmscope.test"
    assert message["X-Llmscope-Delivery-Id"] == f"{event.id}-0"
    assert f"rule {rule.id}" in message.get_payload()


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_an_smtp_server_without_tls_is_retried_then_dead(
    make_service: Callable[..., AlertService], clock: FakeClock, data_dir: Path, smtpd: SmtpServer, tls: str
) -> None:
    service = make_service(smtp=dataclasses.replace(smtpd.config, tls=tls))  # the test server speaks plain SMTP
    _spike(data_dir)
    _spend_rule(service, [{"type": "email", "to": ["oncall@example.test"]}])
    service.evaluator.tick(T0)
    [dead] = wait_for(lambda: service.dead_letters("default"))
    assert dead.last_error is not None and dead.last_error.startswith("SMTP")
    assert smtpd.mailbox.messages.empty()
