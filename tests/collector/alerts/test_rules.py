"""Rule validation: every rejection names the field and how to fix it."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from llmscope_collector.alerts.rules import RuleError, RuleSpec, WebhookChannel, keep_secrets, timing, validate

SECRET = "s3cr3t-s3cr3t-s3cr3t"


def _spec(**fields: Any) -> RuleSpec:
    body = {"name": "r", "metric": "cost_usd", "alert_threshold": 10.0} | fields
    return msgspec.convert(body, RuleSpec)


def test_a_complete_rule_is_accepted_and_its_durations_parsed() -> None:
    spec = _spec(
        window="1h",
        every="30s",
        comparator="gte",
        warning_threshold=5.0,
        cooldown="10m",
        renotify="2h",
        no_data="keep",
        severity="critical",
        filters={"model": "gpt-4o", "prompt_name": "support", "prompt_version": "3"},
        channels=[{"type": "webhook", "url": "https://example.test/hook", "secret": SECRET}],
        **{"for": "5m"},
    )
    validate(spec, email_enabled=False)
    t = timing(spec)
    assert (t.window_s, t.every_s, t.for_s, t.cooldown_s, t.renotify_s) == (3600, 30, 300, 600, 7200)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"window": "5 minutes"}, "window must be a number and a unit"),
        ({"window": "10s"}, "window must be between 1m and 31d"),
        ({"window": "month", "metric": "latency_p95"}, "window 'month' is for budgets"),
        ({"every": "1s"}, "every must be between 5s and 1d"),
        ({"renotify": "10s"}, "renotify must be 0s (never) or between 1m and 7d"),
        ({"alert_threshold": None}, "alert_threshold is required for metric cost_usd (USD)"),
        ({"alert_threshold": -1.0}, "alert_threshold must be a finite number >= 0"),
        ({"metric": "error_rate", "alert_threshold": 5.0}, "0.05 means 5%"),
        ({"warning_threshold": 20.0}, "warning_threshold must be below alert_threshold with comparator gt"),
        ({"comparator": "lt", "warning_threshold": 5.0}, "warning_threshold must be above alert_threshold"),
        ({"metric": "no_data"}, "metric no_data takes no thresholds"),
        ({"channels": [{"type": "webhook", "url": "https://h.test/x"}]}, "channels[0].secret is required"),
        ({"channels": [{"type": "webhook", "url": "https://h.test/x", "secret": "short"}]}, "16 to 256 characters"),
        ({"channels": [{"type": "slack", "url": "ftp://h.test/x"}]}, "channels[0].url must be an http:// or https://"),
        ({"channels": [{"type": "email", "to": ["a@b.test"]}]}, "email needs an SMTP server"),
    ],
)
def test_invalid_rules_say_what_to_fix(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=None) as err:
        validate(_spec(**fields), email_enabled=False)
    assert message in str(err.value)


def test_email_addresses_are_checked_when_smtp_is_configured() -> None:
    validate(_spec(channels=[{"type": "email", "to": ["oncall@example.test"]}]), email_enabled=True)
    with pytest.raises(RuleError, match="'not-an-address' is not an email address"):
        validate(_spec(channels=[{"type": "email", "to": ["not-an-address"]}]), email_enabled=True)


def test_no_data_rule_needs_no_threshold() -> None:
    validate(_spec(metric="no_data", alert_threshold=None, window="15m"), email_enabled=False)


def test_replacing_without_a_secret_keeps_the_one_for_the_same_url() -> None:
    old = _spec(channels=[{"type": "webhook", "url": "https://h.test/a", "secret": SECRET}])
    new = _spec(
        channels=[{"type": "webhook", "url": "https://h.test/a"}, {"type": "webhook", "url": "https://h.test/b"}]
    )
    kept = keep_secrets(new, old)
    assert kept.channels[0] == WebhookChannel(url="https://h.test/a", secret=SECRET)
    with pytest.raises(RuleError, match=r"channels\[1\].secret is required"):
        validate(kept, email_enabled=False)
