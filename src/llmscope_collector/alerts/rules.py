"""What an alert rule is, and the checks that turn a bad one into a 400 that says what to fix.

A rule watches one metric of one project over a sliding window (or the calendar month, for
budgets), compares it with a warning and an alert threshold, and notifies its channels when its
state changes. The shape follows Langfuse's Monitor (window, cadence, operator, alert/warning
thresholds, no-data policy, renotify, severity) over Helicone's metric set.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Annotated, Literal

import msgspec

Metric = Literal[
    "cost_usd",
    "tokens",
    "error_rate",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "ttft_p95",
    "request_count",
    "no_data",
    "score_avg",
]
METRICS: tuple[str, ...] = Metric.__args__  # type: ignore[attr-defined]
Comparator = Literal["gt", "gte", "lt", "lte"]
NoDataPolicy = Literal["ok", "keep", "alert"]
Severity = Literal["critical", "error", "warning", "info"]

MONTH = "month"
"""The window of a budget rule: from the first of the current calendar month (UTC) until now."""

# Metrics that add up over time: the month window and its forecast make sense for them only.
ADDITIVE_METRICS = frozenset({"cost_usd", "tokens", "request_count"})
UNITS: dict[str, str] = {
    "cost_usd": "USD",
    "tokens": "tokens",
    "error_rate": "fraction of LLM calls",
    "latency_p50": "ms",
    "latency_p95": "ms",
    "latency_p99": "ms",
    "ttft_p95": "ms",
    "request_count": "LLM calls",
    "no_data": "spans",
    "score_avg": "average value of the score `score`",
}

_DURATION_RE = re.compile(r"^(\d{1,7})([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EMAIL_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
_DAY = 86400.0

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Duration = Annotated[str, msgspec.Meta(description="A number and a unit: 30s, 5m, 1h, 1d")]


class RuleError(ValueError):
    """The rule cannot be accepted; the message names the field and the fix."""


class Filters(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Only spans matching every given value count. `model` matches the requested or the answering model."""

    model: Text | None = None
    provider: Text | None = None
    service: Text | None = None
    session: Text | None = None
    user: Text | None = None
    prompt_name: Text | None = None
    prompt_version: Text | None = None


class WebhookChannel(
    msgspec.Struct, tag="webhook", tag_field="type", kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """JSON POST signed with HMAC-SHA256 (see `alerts.signing`). `secret` is write-only: never returned."""

    url: str
    secret: str | None = None


class SlackChannel(msgspec.Struct, tag="slack", tag_field="type", kw_only=True, forbid_unknown_fields=True):
    """A Slack (or Mattermost, Discord `/slack`, ...) incoming-webhook URL."""

    url: str


class EmailChannel(msgspec.Struct, tag="email", tag_field="type", kw_only=True, forbid_unknown_fields=True):
    """Mail through the collector's SMTP server (`LLMSCOPE_SMTP_*`)."""

    to: list[str]


Channel = WebhookChannel | SlackChannel | EmailChannel


class RuleSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST /v1/alerts/rules` and `PUT /v1/alerts/rules/{id}`."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    metric: Metric
    window: Duration = "5m"
    comparator: Comparator = "gt"
    alert_threshold: float | None = None
    warning_threshold: float | None = None
    for_: Duration = msgspec.field(name="for", default="0s")
    every: Duration = "1m"
    cooldown: Duration = "0s"
    renotify: Duration = "0s"
    no_data: NoDataPolicy = "ok"
    severity: Severity = "error"
    filters: Filters = msgspec.field(default_factory=Filters)
    score: Text | None = None  # the score name, for metric score_avg
    channels: list[Channel] = msgspec.field(default_factory=list)
    enabled: bool = True


class Rule(RuleSpec, kw_only=True):
    """A stored rule: the spec plus identity. Times are Unix seconds."""

    id: str
    project: str
    created_at: float
    updated_at: float


@dataclasses.dataclass(frozen=True)
class Timing:
    """A rule's durations in seconds; `window_s` is None for the calendar-month window."""

    window_s: float | None
    every_s: float
    for_s: float
    cooldown_s: float
    renotify_s: float


def parse_duration(text: str, field: str) -> float:
    match = _DURATION_RE.match(text.strip())
    if match is None:
        raise RuleError(f"{field} must be a number and a unit (s, m, h or d), such as 30s, 5m, 1h, 1d; got {text!r}")
    return float(int(match.group(1)) * _UNIT_S[match.group(2)])


def timing(spec: RuleSpec) -> Timing:
    """Durations of an already validated spec."""
    return Timing(
        window_s=None if spec.window == MONTH else parse_duration(spec.window, "window"),
        every_s=parse_duration(spec.every, "every"),
        for_s=parse_duration(spec.for_, "for"),
        cooldown_s=parse_duration(spec.cooldown, "cooldown"),
        renotify_s=parse_duration(spec.renotify, "renotify"),
    )


def validate(spec: RuleSpec, *, email_enabled: bool) -> None:
    """Raise `RuleError` naming the first problem; `email_enabled` says whether SMTP is configured."""
    _check_timing(spec)
    _check_thresholds(spec)
    _check_score(spec)
    for index, channel in enumerate(spec.channels):
        _check_channel(channel, f"channels[{index}]", email_enabled)
    if len(spec.channels) > 10:
        raise RuleError("a rule has at most 10 channels")


def _within(value: float, low: float, high: float, field: str, hint: str) -> None:
    if not low <= value <= high:
        raise RuleError(f"{field} must be {hint}")


def _check_timing(spec: RuleSpec) -> None:
    if spec.window == MONTH:
        if spec.metric not in ADDITIVE_METRICS:
            raise RuleError(f"window 'month' is for budgets: metric must be one of {sorted(ADDITIVE_METRICS)}")
    else:
        window = parse_duration(spec.window, "window")
        _within(window, 60, 31 * _DAY, "window", "between 1m and 31d, or 'month' for a calendar-month budget")
    t = timing(spec)
    _within(t.every_s, 5, _DAY, "every", "between 5s and 1d")
    _within(t.for_s, 0, _DAY, "for", "between 0s and 1d")
    _within(t.cooldown_s, 0, 7 * _DAY, "cooldown", "between 0s and 7d")
    if t.renotify_s != 0:
        _within(t.renotify_s, 60, 7 * _DAY, "renotify", "0s (never) or between 1m and 7d")


def _check_score(spec: RuleSpec) -> None:
    """`score_avg` averages the scores named `score` given in the window; span filters do not apply."""
    if spec.metric != "score_avg":
        if spec.score is not None:
            raise RuleError("score is only for metric score_avg")
        return
    if spec.score is None:
        raise RuleError("score is required for metric score_avg: the name of the score to average")
    if spec.filters != Filters():
        raise RuleError("filters do not apply to metric score_avg (it reads scores, not spans)")


def _check_thresholds(spec: RuleSpec) -> None:
    alert, warning = spec.alert_threshold, spec.warning_threshold
    if spec.metric == "no_data":
        if alert is not None or warning is not None:
            raise RuleError("metric no_data takes no thresholds: it fires when the window holds no matching span")
        return
    if alert is None:
        raise RuleError(f"alert_threshold is required for metric {spec.metric} ({UNITS[spec.metric]})")
    for name, value in (("alert_threshold", alert), ("warning_threshold", warning)):
        if value is None:
            continue
        if not math.isfinite(value) or value < 0:
            raise RuleError(f"{name} must be a finite number >= 0, got {value}")
        if spec.metric == "error_rate" and value > 1:
            raise RuleError(f"{name} of error_rate is a fraction: 0.05 means 5%; got {value}")
    if warning is not None and breaches(spec.comparator, warning, alert) and warning != alert:
        order = "below" if spec.comparator in ("gt", "gte") else "above"
        raise RuleError(f"warning_threshold must be {order} alert_threshold with comparator {spec.comparator}")


def _check_channel(channel: Channel, field: str, email_enabled: bool) -> None:
    if isinstance(channel, EmailChannel):
        if not email_enabled:
            raise RuleError(f"{field}: email needs an SMTP server; set LLMSCOPE_SMTP_HOST (see docs/alerts.md)")
        if not 1 <= len(channel.to) <= 20:
            raise RuleError(f"{field}.to must list 1 to 20 addresses")
        for address in channel.to:
            if not _EMAIL_RE.match(address):
                raise RuleError(f"{field}.to: {address!r} is not an email address")
        return
    if not channel.url.startswith(("http://", "https://")) or len(channel.url) > 2048:
        raise RuleError(f"{field}.url must be an http:// or https:// URL of at most 2048 characters")
    if isinstance(channel, WebhookChannel):
        if channel.secret is None:
            raise RuleError(f"{field}.secret is required: every webhook is signed (16 to 256 characters)")
        if not 16 <= len(channel.secret) <= 256:
            raise RuleError(f"{field}.secret must be 16 to 256 characters long")


def breaches(comparator: Comparator, value: float, threshold: float) -> bool:
    """Whether `value` is on the alerting side of `threshold`."""
    if comparator == "gt":
        return value > threshold
    if comparator == "gte":
        return value >= threshold
    if comparator == "lt":
        return value < threshold
    return value <= threshold


def keep_secrets(new: RuleSpec, old: RuleSpec | None) -> RuleSpec:
    """On replace, a webhook given without a secret keeps the secret the rule had for the same URL,
    so clients can PUT back what GET returned (GET never shows secrets)."""
    if old is None:
        return new
    known = {c.url: c.secret for c in old.channels if isinstance(c, WebhookChannel) and c.secret}
    channels: list[Channel] = [
        msgspec.structs.replace(c, secret=known.get(c.url)) if isinstance(c, WebhookChannel) and c.secret is None else c
        for c in new.channels
    ]
    return msgspec.structs.replace(new, channels=channels)


def redacted(channels: list[Channel]) -> list[Channel]:
    """The channels as the API shows them: webhook secrets removed."""
    return [msgspec.structs.replace(c, secret=None) if isinstance(c, WebhookChannel) else c for c in channels]
