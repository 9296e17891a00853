"""`/v1/alerts` over real HTTP on the embedded server, and one path from OTLP ingest to a webhook."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import grpc
import pytest

from llmscope_collector.alerts.signing import verify_signature
from llmscope_collector.server import EmbeddedServer
from tests import otlp_factory as f

from .conftest import Receiver

SECRET = "api-test-secret-0123456789"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _call(
    server: EmbeddedServer, method: str, path: str, body: Any = None, project: str | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"} | ({"x-llmscope-project": project} if project else {})
    request = urllib.request.Request(server.api_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _rule_body(**fields: Any) -> dict[str, Any]:
    return {"name": "errors", "metric": "error_rate", "window": "5m", "alert_threshold": 0.5} | fields


def test_crud_with_secrets_never_returned(server: EmbeddedServer, webhook: Receiver) -> None:
    channel = {"type": "webhook", "url": webhook.url, "secret": SECRET}
    status, created = _call(server, "POST", "/v1/alerts/rules", _rule_body(channels=[channel], **{"for": "2m"}))
    assert status == 201
    rule_id = created["id"]
    assert created["channels"] == [{"type": "webhook", "url": webhook.url}]
    assert created["for"] == "2m" and created["project"] == "default"
    assert created["state"]["status"] == "ok"

    assert _call(server, "GET", "/v1/alerts/rules")[1] == [created]
    status, fetched = _call(server, "GET", f"/v1/alerts/rules/{rule_id}")
    assert status == 200 and fetched == created

    replacement = {k: v for k, v in fetched.items() if k not in {"id", "project", "created_at", "updated_at", "state"}}
    replacement["alert_threshold"] = 0.25
    status, replaced = _call(server, "PUT", f"/v1/alerts/rules/{rule_id}", replacement)
    assert status == 200 and replaced["alert_threshold"] == 0.25 and replaced["created_at"] == created["created_at"]
    stored = server.collector.alerts.rules.get("default", rule_id)
    assert stored.channels[0].secret == SECRET  # type: ignore[union-attr]  # kept from the original

    assert _call(server, "GET", f"/v1/alerts/rules/{rule_id}", project="other-team")[0] == 404
    assert _call(server, "GET", "/v1/alerts/rules", project="other-team") == (200, [])
    assert _call(server, "DELETE", f"/v1/alerts/rules/{rule_id}")[0] == 204
    status, body = _call(server, "GET", f"/v1/alerts/rules/{rule_id}")
    assert status == 404 and body["detail"] == f"alert rule {rule_id} does not exist in this project"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (_rule_body(window="5 min"), "window must be a number and a unit (s, m, h or d)"),
        (_rule_body(alert_threshold="high"), "alert_threshold: Expected `float | null`, got `str`"),
        (_rule_body(metric="vibes"), "metric: Invalid enum value 'vibes'"),
        (_rule_body(treshold=1), "Object contains unknown field `treshold`"),
        (_rule_body(channels=[{"type": "sms", "to": "+1"}]), "Invalid value 'sms'"),
        (_rule_body(channels=[{"type": "email", "to": ["a@b.test"]}]), "email needs an SMTP server"),
    ],
)
def test_invalid_rules_are_400_naming_the_field(server: EmbeddedServer, body: dict[str, Any], detail: str) -> None:
    status, answer = _call(server, "POST", "/v1/alerts/rules", body)
    assert status == 400 and answer["error"] == "invalid_rule"
    assert detail in answer["detail"]


def _export_llm_calls(server: EmbeddedServer, errors: int, ok: int, metadata: tuple[tuple[str, str], ...] = ()) -> None:
    now = time.time_ns()
    spans = []
    for i in range(errors + ok):
        trace_id, root, call = f.new_trace_id(), f.new_span_id(), f.new_span_id()
        start = now - (i + 1) * 1_000_000_000
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.provider.name": "openai"}
        # A call that succeeded reports usage; without any (and no error) it is not a call (issue 16's rule).
        attrs.update({"gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 3})
        spans.append(f.span(trace_id, root, "agent", start, start + 900_000_000))
        spans.append(f.span(trace_id, call, "chat gpt-4o", start + 1, start + 800_000_000, root, attrs, 3, i < errors))
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)(
            f.request(spans).SerializeToString(), timeout=10, metadata=metadata
        )
    server.collector.flush()


def test_ingested_error_burst_is_tested_fired_notified_and_in_history(
    server: EmbeddedServer, webhook: Receiver
) -> None:
    channel = {"type": "webhook", "url": webhook.url, "secret": SECRET}
    rule_id = _call(server, "POST", "/v1/alerts/rules", _rule_body(channels=[channel]))[1]["id"]
    _export_llm_calls(server, errors=6, ok=4)

    status, seen = _call(server, "POST", f"/v1/alerts/rules/{rule_id}/test")
    assert status == 200
    assert (seen["value"], seen["level"], seen["samples"]) == (0.6, "alert", 10)
    assert _call(server, "GET", f"/v1/alerts/rules/{rule_id}")[1]["state"]["status"] == "ok"  # test changes nothing

    [event] = server.collector.alerts.evaluator.tick()
    received = webhook.next()
    headers = received.headers
    assert verify_signature(SECRET, received.body, headers["x-llmscope-timestamp"], headers["x-llmscope-signature"])
    assert received.json()["event"]["value"] == 0.6

    status, events = _call(server, "GET", f"/v1/alerts/events?rule_id={rule_id}")
    assert status == 200 and [(e["id"], e["kind"], e["status"]) for e in events] == [(event.id, "firing", "firing")]
    assert _call(server, "GET", "/v1/alerts/events", project="other-team") == (200, [])
    assert _call(server, "GET", f"/v1/alerts/rules/{rule_id}")[1]["state"]["status"] == "firing"


def test_dead_letters_are_listed_without_secrets_and_redelivered(server: EmbeddedServer, webhook: Receiver) -> None:
    webhook.statuses = [410]
    channel = {"type": "webhook", "url": webhook.url, "secret": SECRET}
    _call(server, "POST", "/v1/alerts/rules", _rule_body(channels=[channel]))
    _export_llm_calls(server, errors=3, ok=0)
    server.collector.alerts.evaluator.tick()
    first = webhook.next()
    deadline = time.monotonic() + 10
    while not (letters := _call(server, "GET", "/v1/alerts/dead-letters")[1]) and time.monotonic() < deadline:
        time.sleep(0.01)
    [letter] = letters
    assert letter["channel"] == {"type": "webhook", "url": webhook.url}
    assert letter["last_error"] == "the receiver answered HTTP 4xx"  # no key, no admin token: no host shown
    status, queued = _call(server, "POST", f"/v1/alerts/dead-letters/{letter['id']}/redeliver")
    assert status == 202 and queued["id"] == letter["id"]
    assert webhook.next().json()["id"] == first.json()["id"]
    assert _call(server, "POST", "/v1/alerts/dead-letters/nope/redeliver")[0] == 404
