"""With API keys required, server-wide detail needs the admin token: `/metrics` (every project's
name and span count) and the counts and ingest state of `/health`; the bare liveness status of
`/health` stays open. On loopback with keys optional both stay open (tests elsewhere rely on it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from tests.collector.receivers.clients import grpc_export, valid_request

ADMIN = "server-detail-admin-token"


@pytest.fixture
def keyed(settings: Settings) -> Iterator[tuple[EmbeddedServer, str]]:
    with EmbeddedServer(dataclasses.replace(settings, auth="required", admin_token=ADMIN)) as server:
        store = server.collector.receivers.auth_store
        store.create_project("secret-team")
        _, key = store.create_key("secret-team")
        grpc_export(server, valid_request(2), metadata=(("authorization", f"Bearer {key}"),))
        yield server, key


def _get(server: EmbeddedServer, path: str, token: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.get(server.api_url + path, headers=headers, timeout=10)


def test_metrics_need_the_admin_token_when_keys_are_required(keyed: tuple[EmbeddedServer, str]) -> None:
    server, key = keyed
    anonymous = _get(server, "/metrics")
    assert anonymous.status_code == 401 and "secret-team" not in anonymous.text
    with_key = _get(server, "/metrics", key)
    assert with_key.status_code == 403 and "secret-team" not in with_key.text
    assert _get(server, "/metrics", "not-the-token").status_code == 401
    admin = _get(server, "/metrics", ADMIN)
    assert admin.status_code == 200
    assert 'llmscope_ingest_spans_accepted_total{project="secret-team"} 2' in admin.text


def test_health_detail_needs_the_admin_token_and_liveness_stays_open(keyed: tuple[EmbeddedServer, str]) -> None:
    server, key = keyed
    server.collector.flush()
    for token in (None, key):
        probe = _get(server, "/health", token)
        assert probe.status_code == 200
        assert probe.json() == {"status": "ok", "storage": "ok", "version": probe.json()["version"]}
    detail = _get(server, "/health", ADMIN).json()
    assert detail["status"] == "ok" and detail["spans"] == 2 and detail["ingest"]["spans_written"] == 2


def test_loopback_without_required_keys_keeps_both_open(server: EmbeddedServer) -> None:
    grpc_export(server, valid_request(1))
    assert 'llmscope_ingest_spans_accepted_total{project="default"} 1' in _get(server, "/metrics").text
    assert _get(server, "/health").json()["ingest"]["accepting"] is True
