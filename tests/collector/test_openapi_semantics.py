"""HTTP semantics the OpenAPI document promises, found by schemathesis (issue 15 item 12): a 405
names the allowed methods, OPTIONS lists every method of a path, documented parameter rules are in
the schema, and a body the schema marks optional may be left out. The full schemathesis run is
`nox -s schemathesis` (in .ci/run)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings

ADMIN = "openapi-semantics-admin-token"
HEADERS = {"authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def admin_server(settings: Settings) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(dataclasses.replace(settings, admin_token=ADMIN)) as server:
        yield server


def _schema(server: EmbeddedServer) -> dict[str, Any]:
    return dict(httpx.get(server.api_url + "/schema/openapi.json", timeout=10).json())


def _methods(item: dict[str, Any]) -> set[str]:
    return {m.upper() for m in item if m in {"get", "put", "post", "delete", "patch"}}


def test_options_and_405_list_every_method_of_every_documented_path(admin_server: EmbeddedServer) -> None:
    paths = _schema(admin_server)["paths"]
    assert "/v1/alerts/rules" in paths
    for template, item in paths.items():
        path = template.replace("{", "").replace("}", "")  # any value fills a path parameter
        documented = _methods(item)
        options = httpx.request("OPTIONS", admin_server.api_url + path, headers=HEADERS, timeout=10)
        assert options.status_code == 204, template
        allowed = {m.strip() for m in options.headers["allow"].split(",")}
        assert documented | {"OPTIONS"} <= allowed, template
        unused = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in allowed)
        refused = httpx.request(unused, admin_server.api_url + path, headers=HEADERS, timeout=10)
        assert refused.status_code == 405, (template, unused)
        assert {m.strip() for m in refused.headers["allow"].split(",")} == allowed, template


def test_documented_parameter_rules_are_in_the_schema_and_enforced(admin_server: EmbeddedServer) -> None:
    paths = _schema(admin_server)["paths"]
    [q] = [p for p in paths["/v1/traces"]["get"]["parameters"] if p["name"] == "q"]
    assert (q["schema"]["minLength"], q["schema"]["maxLength"]) == (1, 1000)
    for value in ("", "x" * 1001):
        answer = httpx.get(admin_server.api_url + "/v1/traces", params={"q": value}, timeout=10)
        assert answer.status_code == 400 and answer.json()["detail"].startswith("q: ")
    assert httpx.get(admin_server.api_url + "/v1/traces", params={"q": "x" * 1000}, timeout=10).status_code == 200
    [session_id] = [p for p in paths["/v1/sessions/{session_id}"]["get"]["parameters"] if p["in"] == "path"]
    assert session_id["schema"]["maxLength"] == 512


def test_a_key_can_be_created_without_a_body_as_the_schema_says(admin_server: EmbeddedServer) -> None:
    body = _schema(admin_server)["paths"]["/v1/projects/{name}/keys"]["post"]["requestBody"]
    assert body["required"] is False
    url = admin_server.api_url + "/v1/projects"
    assert httpx.post(url, json={"name": "bodyless"}, headers=HEADERS, timeout=10).status_code == 201
    created = httpx.post(url + "/bodyless/keys", headers=HEADERS, timeout=10)
    assert created.status_code == 201 and created.json()["key"].startswith("lsk_")
    named = httpx.post(url + "/bodyless/keys", json={"name": "ci"}, headers=HEADERS, timeout=10)
    assert named.status_code == 201 and named.json()["name"] == "ci"
