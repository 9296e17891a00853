"""API error contract and health over real HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from llmscope_collector.server import EmbeddedServer
from tests.collector.receivers.clients import grpc_export, valid_request


def _get(server: EmbeddedServer, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(server.api_url + path, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.parametrize("bad", ["xyz", "0" * 32, "a" * 31, "g" * 32, "a" * 33])
def test_malformed_trace_id_is_400(server: EmbeddedServer, bad: str) -> None:
    status, body = _get(server, f"/v1/traces/{bad}")
    assert status == 400
    assert body["error"] == "invalid_trace_id" and "32 hexadecimal" in body["detail"]


def test_unknown_trace_is_404_json(server: EmbeddedServer) -> None:
    status, body = _get(server, "/v1/traces/" + "ab" * 16)
    assert status == 404
    assert body == {"status_code": 404, "error": "not_found", "detail": f"trace {'ab' * 16} is not stored (yet)"}


def test_health_and_openapi(server: EmbeddedServer) -> None:
    status, body = _get(server, "/health")
    assert status == 200 and body["status"] == "ok" and body["spans"] == 0
    status, schema = _get(server, "/schema/openapi.json")
    assert status == 200
    assert "/v1/traces/{trace_id}" in schema["paths"]


def test_health_counts_spans_from_the_footers_and_traces_only_when_asked(server: EmbeddedServer) -> None:
    for spans in (2, 3, 4):  # three traces
        grpc_export(server, valid_request(spans))
    server.collector.flush()
    server.collector.flush()  # a second file: the footers of every file add up
    grpc_export(server, valid_request(5))
    server.collector.flush()
    status, probe = _get(server, "/health")
    assert status == 200 and probe["status"] == "ok" and probe["spans"] == 14 and "traces" not in probe
    status, detail = _get(server, "/health?traces=true")
    assert status == 200 and detail["spans"] == 14 and detail["traces"] == 4
