"""Rules fire and resolve on generated traffic read from real Parquet through DuckDB.

Time is the fake clock: the test writes spans at chosen instants and ticks the evaluator at
chosen instants, so a one-hour window costs nothing to wait for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from llmscope_collector.alerts.rules import Rule, RuleSpec
from llmscope_collector.alerts.service import AlertService
from llmscope_collector.alerts.signing import verify_signature
from llmscope_collector.alerts.store import AlertEvent

from .conftest import FakeClock, Receiver
from .traffic import T0, Call, steady, write_calls

SECRET = "webhook-secret-0123456789"
MIN = 60.0


def _rule(service: AlertService, **fields: Any) -> Rule:
    body = {"name": fields.pop("name", "rule"), "every": "1m"} | fields
    return service.create_rule("default", msgspec.convert(body, RuleSpec))


def _tick(service: AlertService, clock: FakeClock, at: float) -> list[AlertEvent]:
    clock.now = at
    return service.evaluator.tick()


def _kinds(service: AlertService, rule: Rule) -> list[str]:
    return [e.kind for e in reversed(service.events("default", rule_id=rule.id))]


def test_cost_spike_fires_with_a_signed_webhook_and_resolves(
    service: AlertService, clock: FakeClock, data_dir: Path, webhook: Receiver
) -> None:
    write_calls(data_dir, steady(T0 - 120 * MIN, T0, MIN, cost_usd=0.001))
    channel = {"type": "webhook", "url": webhook.url, "secret": SECRET}
    rule = _rule(
        service, name="Spend spike", metric="cost_usd", window="1h", alert_threshold=1.0, warning_threshold=0.5,
        severity="critical", channels=[channel],
    )  # fmt: skip
    assert _tick(service, clock, T0) == []
    assert service.state(rule.id).value == pytest.approx(0.06)

    write_calls(data_dir, steady(T0, T0 + 10 * MIN, 12, cost_usd=0.05))  # 50 calls, $2.50
    [event] = _tick(service, clock, T0 + 10 * MIN)
    assert (event.kind, event.level, event.severity) == ("firing", "alert", "critical")
    assert event.value == pytest.approx(2.5 + 0.05)
    assert event.threshold == 1.0 and event.samples == 100  # 50 steady calls + 50 in the spike

    received = webhook.next()
    ts, sig = received.headers["x-llmscope-timestamp"], received.headers["x-llmscope-signature"]
    assert verify_signature(SECRET, received.body, ts, sig)
    assert not verify_signature("another-secret-0123456789", received.body, ts, sig)
    payload = received.json()
    assert payload["type"] == "alert.firing" and payload["id"] == f"{event.id}-0"
    assert payload["event"]["rule_name"] == "Spend spike" and payload["event"]["value"] == pytest.approx(2.55)
    assert payload["summary"].startswith("[FIRING critical] Spend spike (cost_usd): 2.55 USD > 1")

    assert _tick(service, clock, T0 + 30 * MIN) == []  # still firing: no second notification
    [resolved] = _tick(service, clock, T0 + 75 * MIN)  # the spike has left the 1h window
    assert (resolved.kind, resolved.status, resolved.value) == ("resolved", "resolved", 0.0)
    assert webhook.next().json()["type"] == "alert.resolved"
    assert _kinds(service, rule) == ["firing", "resolved"]
    assert webhook.requests.empty()


def test_error_burst_goes_pending_then_firing_then_resolves(
    service: AlertService, clock: FakeClock, data_dir: Path
) -> None:
    write_calls(data_dir, steady(T0 - 30 * MIN, T0 + 60 * MIN, 30))
    write_calls(data_dir, steady(T0 + 2 * MIN, T0 + 6 * MIN, 10, error=True))  # 24 failed calls
    rule = _rule(service, metric="error_rate", window="5m", alert_threshold=0.2, **{"for": "2m"})

    assert _tick(service, clock, T0 + 1 * MIN) == []
    [pending] = _tick(service, clock, T0 + 4 * MIN)
    assert pending.kind == "pending" and pending.value == pytest.approx(12 / (12 + 10))  # errors / all calls
    assert _tick(service, clock, T0 + 5 * MIN) == []  # still inside `for`
    [firing] = _tick(service, clock, T0 + 6 * MIN)
    assert firing.kind == "firing"
    [resolved] = _tick(service, clock, T0 + 12 * MIN)
    assert resolved.kind == "resolved" and resolved.value == 0.0
    assert _kinds(service, rule) == ["pending", "firing", "resolved"]


def test_latency_regression_warns_then_alerts(service: AlertService, clock: FakeClock, data_dir: Path) -> None:
    write_calls(data_dir, steady(T0 - 20 * MIN, T0, 20, latency_s=0.8))
    write_calls(data_dir, steady(T0, T0 + 10 * MIN, 20, latency_s=2.5))
    write_calls(data_dir, steady(T0 + 10 * MIN, T0 + 20 * MIN, 20, latency_s=6.0))
    rule = _rule(service, metric="latency_p95", window="10m", alert_threshold=5000, warning_threshold=2000)

    assert _tick(service, clock, T0) == []
    assert service.state(rule.id).value == pytest.approx(800)
    [warning] = _tick(service, clock, T0 + 10 * MIN)
    assert (warning.kind, warning.level, warning.severity, warning.threshold) == ("firing", "warning", "warning", 2000)
    [alert] = _tick(service, clock, T0 + 20 * MIN)
    assert (alert.kind, alert.level, alert.severity) == ("firing", "alert", "error")
    assert alert.value == pytest.approx(6000)


def test_traffic_stop_fires_no_data_and_resolves_when_traffic_returns(
    service: AlertService, clock: FakeClock, data_dir: Path
) -> None:
    write_calls(data_dir, steady(T0 - 30 * MIN, T0, MIN))
    write_calls(data_dir, steady(T0, T0 + 30 * MIN, MIN, service="other-app"))  # not the watched service
    rule = _rule(service, metric="no_data", window="5m", filters={"service": "chatbot"})

    assert _tick(service, clock, T0) == []
    [silent] = _tick(service, clock, T0 + 6 * MIN)
    assert (silent.kind, silent.value) == ("firing", 0.0)
    assert silent.message.startswith("[FIRING error] rule (no_data): no spans in the window")
    write_calls(data_dir, [Call(at=T0 + 7 * MIN)])
    [back] = _tick(service, clock, T0 + 8 * MIN)
    assert back.kind == "resolved" and back.value == 2.0  # the agent span and its chat span
    assert _kinds(service, rule) == ["firing", "resolved"]


def test_nested_llm_spans_count_once_and_filters_apply(service: AlertService, clock: FakeClock, data_dir: Path) -> None:
    write_calls(data_dir, steady(T0 - 10 * MIN, T0, MIN, nested_duplicate=True, input_tokens=100, output_tokens=20))
    write_calls(data_dir, steady(T0 - 10 * MIN, T0, MIN, model="claude-sonnet-4", provider="anthropic", user="u1"))
    everything = _rule(service, metric="request_count", window="1h", alert_threshold=1000)
    tokens = _rule(service, metric="tokens", window="1h", alert_threshold=1e9, filters={"model": "gpt-4o"})
    by_user = _rule(service, metric="request_count", window="1h", alert_threshold=1000, filters={"user": "u1"})
    by_provider = _rule(
        service, metric="request_count", window="1h", alert_threshold=1000, filters={"provider": "anthropic"}
    )
    _tick(service, clock, T0)
    assert service.state(everything.id).value == 20  # 10 + 10 calls; the 10 nested duplicates are not counted
    assert service.state(tokens.id).value == 10 * 120
    assert service.state(by_user.id).value == 10
    assert service.state(by_provider.id).value == 10


def test_ttft_and_no_data_policy(service: AlertService, clock: FakeClock, data_dir: Path) -> None:
    write_calls(data_dir, steady(T0 - 5 * MIN, T0, 30, ttft_s=1.5))
    ttft = _rule(service, metric="ttft_p95", window="10m", alert_threshold=1000)
    silent_ok = _rule(service, metric="latency_p99", window="10m", alert_threshold=1000, no_data="ok")
    silent_alert = _rule(service, metric="latency_p99", window="10m", alert_threshold=1000, no_data="alert")
    [event] = _tick(service, clock, T0)
    assert event.rule_id == ttft.id and event.value == pytest.approx(1500)
    events = _tick(service, clock, T0 + 30 * MIN)  # nothing in the window any more
    assert {(e.rule_id, e.kind) for e in events} == {(ttft.id, "resolved"), (silent_alert.id, "firing")}
    assert service.state(silent_ok.id).status == "ok" and service.state(silent_ok.id).value is None
    assert service.state(silent_alert.id).value is None


def test_monthly_budget_forecasts_when_it_will_be_crossed(
    service: AlertService, clock: FakeClock, data_dir: Path
) -> None:
    month_start = T0 - 14.5 * 86400  # 2026-03-01 00:00 UTC
    write_calls(data_dir, steady(month_start, T0, 3600, cost_usd=1.0))  # $24 a day, $348 so far
    write_calls(data_dir, [Call(at=month_start - 3600, cost_usd=1000.0)])  # February: not this month's budget
    rule = _rule(service, metric="cost_usd", window="month", alert_threshold=500, warning_threshold=300)
    clock.now = T0
    _, observed, level, _ = service.test_rule("default", rule.id)
    assert observed.value == pytest.approx(348) and level == "warning"
    assert observed.window_start == month_start
    forecast = observed.forecast
    assert forecast is not None
    assert forecast.rate_per_day == pytest.approx(24)
    assert forecast.projected_month_total == pytest.approx(348 + 24 * 16.5)
    assert forecast.alert_crossed_at == pytest.approx(T0 + (500 - 348) / 24 * 86400)
    assert forecast.warning_crossed_at == T0  # already spent
    assert service.state(rule.id).status == "ok"  # testing does not change the rule's state
    [event] = _tick(service, clock, T0)
    assert event.forecast == forecast
    assert "projected 744 by month end, crossing the alert threshold around 2026-03-21 20:00 UTC" in event.message


def test_only_the_window_partitions_are_read_and_read_errors_are_recorded(
    service: AlertService, clock: FakeClock, data_dir: Path
) -> None:
    write_calls(data_dir, steady(T0 - 10 * MIN, T0, MIN))
    old = data_dir / "spans" / "project=default" / "date=2026-03-02"
    old.mkdir(parents=True)
    (old / "part-garbage.parquet").write_bytes(b"not parquet at all")
    recent = _rule(service, metric="request_count", window="1h", alert_threshold=100)
    budget = _rule(service, metric="request_count", window="month", alert_threshold=100)
    _tick(service, clock, T0)
    assert service.state(recent.id).value == 10 and service.state(recent.id).error is None
    failed = service.state(budget.id)
    assert failed.error is not None and failed.status == "ok" and failed.evaluated_at == T0


def test_rules_are_project_scoped_and_due_by_their_interval(
    service: AlertService, clock: FakeClock, data_dir: Path
) -> None:
    write_calls(data_dir, steady(T0 - 10 * MIN, T0, MIN), project="team-a")
    write_calls(data_dir, steady(T0 - 10 * MIN, T0, MIN, cost_usd=1.0), project="team-b")
    spec = msgspec.convert(
        {"name": "c", "metric": "cost_usd", "window": "1h", "alert_threshold": 5.0, "every": "5m"}, RuleSpec
    )
    rule_a, rule_b = service.create_rule("team-a", spec), service.create_rule("team-b", spec)
    [event] = _tick(service, clock, T0)
    assert event.rule_id == rule_b.id and event.project == "team-b"
    assert service.state(rule_a.id).value == pytest.approx(0.01)
    write_calls(data_dir, steady(T0, T0 + MIN, 1, cost_usd=1.0), project="team-a")
    assert _tick(service, clock, T0 + 2 * MIN) == []  # not due before 5m
    [later] = _tick(service, clock, T0 + 5 * MIN)
    assert later.rule_id == rule_a.id
    assert service.events("team-a") == [later] and rule_a.id not in {e.rule_id for e in service.events("team-b")}
