"""A plain OpenTelemetry app with no LLM at all: llmscope is a trace store first.

Two services: a frontend (manual spans, OTLP/gRPC) calls a real stdlib WSGI server instrumented with
OpenTelemetry's own `opentelemetry-instrumentation-wsgi` (OTLP/HTTP), whose handler makes child spans
of its own; one route answers 500 after a failing child. The whole tree must come back as one
waterfall with the right parents, kinds, services and error statuses, and no LLM columns or totals.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.trace import Status, StatusCode
from tests.interop.harness import AppPipeline, fetch_trace, get_json, hex_span_id, hex_trace_id
from tests.interop.scenarios import Bench, Package, http_get, wsgi_server

PACKAGE = Package(
    param="plain-otel",
    distribution="opentelemetry-instrumentation-wsgi",
    client="",
    instrumentor=lambda: None,
    dialect="OTel HTTP/DB semconv, no GenAI",
)


def _orders_app(tracer: trace.Tracer) -> Callable[..., list[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/orders":
            with tracer.start_as_current_span("SELECT shop.orders", kind=trace.SpanKind.CLIENT) as db:
                db.set_attribute("db.system.name", "postgresql")
                db.set_attribute("db.query.text", "SELECT id FROM orders WHERE user_id = $1")
            with tracer.start_as_current_span("render orders"):
                body = json.dumps({"orders": [1, 2]}).encode()
            start_response("200 OK", [("content-type", "application/json")])
            return [body]
        try:
            with tracer.start_as_current_span("charge card") as charge:
                charge.set_attribute("payment.provider", "simulated")
                raise ConnectionError("card processor unreachable")
        except ConnectionError:
            pass
        start_response("500 Internal Server Error", [("content-type", "text/plain")])
        return [b"payment failed"]

    return app


def test_http_span_tree_across_two_services(bench: Bench, front: AppPipeline) -> None:
    rec = bench.recorder
    api = bench.app
    app = OpenTelemetryMiddleware(_orders_app(api.tracer), tracer_provider=api.provider)
    with wsgi_server(app) as base, front.tracer.start_as_current_span("checkout") as root:
        ok_status, ok_client = http_get(front, f"{base}/orders")
        bad_status, bad_client = http_get(front, f"{base}/pay")
        root.set_status(Status(StatusCode.ERROR, "payment failed"))
    assert (ok_status, bad_status) == (200, 500)
    waterfall = fetch_trace(bench.server, hex_trace_id(root), front, api)
    by_id = {s["span_id"]: s for s in waterfall["spans"]}

    def parent_of(span_id: str) -> dict[str, Any]:
        return by_id[by_id[span_id]["parent_span_id"]]

    checkout = by_id[hex_span_id(root)]
    rec.ok("plain trace", len(waterfall["spans"]) == 8, f"spans: {sorted(s['name'] for s in by_id.values())}")
    rec.ok("plain trace", checkout["depth"] == 0 and checkout["parent_span_id"] is None, "checkout is not the root")
    rec.ok("plain trace", checkout["service_name"] == "frontend", f"root service {checkout['service_name']}")
    servers = [s for s in waterfall["spans"] if s["kind"] == "SERVER"]
    rec.ok("plain trace", len(servers) == 2, f"{len(servers)} SERVER spans")
    for client_span, status_code in ((ok_client, "UNSET"), (bad_client, "ERROR")):
        client = by_id[hex_span_id(client_span)]
        server = next((s for s in servers if s["parent_span_id"] == client["span_id"]), None)
        rec.ok("plain trace", server is not None, f"no SERVER span under {client['name']}")
        if server is None:
            continue
        rec.ok("plain trace", client["kind"] == "CLIENT" and client["depth"] == 1, f"{client['name']} kind/depth")
        rec.ok("plain trace", server["service_name"] == "llm-api", f"server service {server['service_name']}")
        rec.ok("plain trace", server["depth"] == 2, f"server depth {server['depth']}")
        rec.ok("plain trace", server["status_code"] == status_code, f"server status {server['status_code']}")
        kids = [by_id[k]["name"] for k in server["children"]]
        want = ["SELECT shop.orders", "render orders"] if status_code == "UNSET" else ["charge card"]
        rec.ok("plain trace", kids == want, f"server children {kids}")
    charge = next(s for s in waterfall["spans"] if s["name"] == "charge card")
    rec.ok("plain trace", charge["status_code"] == "ERROR", f"charge card status {charge['status_code']}")
    rec.ok("plain trace", parent_of(charge["span_id"])["kind"] == "SERVER", "charge card parent")
    rec.ok("plain trace", checkout["critical_path"], "the root is always on the critical path")
    rec.ok(
        "plain trace",
        all(s["operation"] is None and s["provider"] is None and s["input_tokens"] is None for s in by_id.values()),
        "a GenAI column is set on a span that is not an LLM call",
    )
    totals = waterfall["totals"]
    rec.ok("plain trace", totals["llm_calls"] == 0 and totals["input_tokens"] == 0, f"totals {totals}")
    rec.ok("plain trace", totals["error_count"] == 3, f"error_count {totals['error_count']} (checkout, server, charge)")
    listed = get_json(f"{bench.server.api_url}/v1/traces/{hex_trace_id(root)}")
    rec.ok("plain trace", listed["trace_id"] == hex_trace_id(root), "trace id round trip")
    rec.verify()
