"""What a notification says: the one-line summary and the body each channel type expects.

The same `AlertEvent` feeds every channel, so a webhook consumer, a Slack channel and a mailbox
read the same facts; only the framing differs.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

import msgspec

from llmscope_collector.alerts.rules import UNITS
from llmscope_collector.alerts.store import AlertEvent

PAYLOAD_VERSION = 1
_SYMBOLS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


class WebhookPayload(msgspec.Struct, kw_only=True):
    """The JSON body of a generic webhook. `id` is the same on every retry of this notification:
    receivers dedupe on it. `type` is `alert.firing`, `alert.resolved` or `alert.renotify`."""

    version: int = PAYLOAD_VERSION
    id: str
    type: str
    summary: str
    event: AlertEvent


def _time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _number(value: float | None) -> str:
    return "no data" if value is None else f"{value:.6g}"


def summary(event: AlertEvent) -> str:
    """One line, e.g. `[FIRING error] Spend spike (cost_usd): 12.5 USD > 10 - project default`."""
    unit = UNITS[event.metric]
    if event.kind == "resolved":
        head = f"[RESOLVED] {event.rule_name} ({event.metric}): {_number(event.value)} {unit}"
    else:
        label = "FIRING" if event.kind == "firing" else "STILL FIRING"
        if event.metric == "no_data":
            condition = "no spans in the window"
        else:
            condition = f"{_number(event.value)} {unit} {_SYMBOLS[event.comparator]} {_number(event.threshold)}"
        head = f"[{label} {event.severity}] {event.rule_name} ({event.metric}): {condition}"
    return f"{head} - project {event.project}{_forecast_note(event)}"


def _forecast_note(event: AlertEvent) -> str:
    fc = event.forecast
    if fc is None:
        return ""
    note = f"; month so far {fc.spent:.6g}, projected {fc.projected_month_total:.6g} by month end"
    if fc.alert_crossed_at is not None and fc.alert_crossed_at > event.at:
        note += f", crossing the alert threshold around {_time(fc.alert_crossed_at)}"
    return note


def details(event: AlertEvent) -> str:
    return (
        f"rule {event.rule_id} · {event.previous_status} → {event.status} · {event.samples} samples · "
        f"window {_time(event.window_start)} to {_time(event.window_end)}"
    )


def webhook_body(delivery_id: str, event: AlertEvent) -> bytes:
    payload = WebhookPayload(id=delivery_id, type=f"alert.{event.kind}", summary=summary(event), event=event)
    return msgspec.json.encode(payload)


def slack_body(event: AlertEvent) -> bytes:
    """Slack incoming-webhook format: `text` is the fallback, `blocks` the rich message."""
    text = summary(event)
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": details(event)}]},
    ]
    return msgspec.json.encode({"text": text, "blocks": blocks})


def email_message(event: AlertEvent, sender: str, to: list[str], delivery_id: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = summary(event)[:250]
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["X-Llmscope-Delivery-Id"] = delivery_id
    body = [summary(event), "", details(event), "", "Event:", msgspec.json.format(msgspec.json.encode(event)).decode()]
    message.set_content("\n".join(body))
    return message
