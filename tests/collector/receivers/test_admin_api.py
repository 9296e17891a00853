"""`/v1/projects` admin API over real HTTP: the admin token, key lifecycle, JSON errors; `caller_project`."""

from __future__ import annotations

import httpx
import pytest

from llmscope_collector.server import EmbeddedServer
from tests.collector.receivers.clients import post, valid_request


def _client(server: EmbeddedServer, token: str | None = None) -> httpx.Client:
    admin = server.collector.receivers.policy.admin.value if token is None else token
    return httpx.Client(base_url=server.api_url, headers={"authorization": f"Bearer {admin}"}, timeout=10)


def test_project_and_key_lifecycle(server: EmbeddedServer) -> None:
    with _client(server) as api:
        created = api.post("/v1/projects", json={"name": "team-a", "rate_limit_spans_per_s": 100})
        assert created.status_code == 201 and created.json()["rate_limit_spans_per_s"] == 100
        assert [p["name"] for p in api.get("/v1/projects").json()] == ["default", "team-a"]
        key = api.post("/v1/projects/team-a/keys", json={"name": "ci"}).json()
        assert key["key"].startswith(key["prefix"] + "_") and key["project"] == "team-a"
        listed = api.get("/v1/projects/team-a/keys").json()
        assert listed[0]["id"] == key["id"] and "key" not in listed[0] and listed[0]["last_used_at"] is None
        assert post(server, valid_request(1), x_llmscope_api_key=key["key"]).status_code == 200
        assert api.get("/v1/projects/team-a/keys").json()[0]["last_used_at"] is not None
        assert api.get("/v1/projects/team-a").json()["active_keys"] == 1
        assert api.delete(f"/v1/projects/team-a/keys/{key['id']}").status_code == 204
        assert post(server, valid_request(1), x_llmscope_api_key=key["key"]).status_code == 401
        assert api.get("/v1/projects/team-a/keys").json()[0]["revoked_at"] is not None
        patched = api.patch("/v1/projects/team-a", json={"rate_limit_spans_per_s": None, "rate_limit_burst": 5})
        assert patched.json()["rate_limit_spans_per_s"] is None and patched.json()["rate_limit_burst"] == 5


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("post", "/v1/projects", {"name": "no spaces"}, 400, "invalid_name"),
        ("post", "/v1/projects", {"name": "default"}, 409, "conflict"),
        ("post", "/v1/projects", {"nom": "x"}, 400, "invalid_parameter"),
        ("post", "/v1/projects", {"name": "x", "rate_limit_spans_per_s": -1}, 400, "invalid_parameter"),
        ("get", "/v1/projects/nope", None, 404, "not_found"),
        ("post", "/v1/projects/nope/keys", {}, 404, "not_found"),
        ("delete", "/v1/projects/default/keys/000000000000", None, 404, "not_found"),
    ],
)
def test_errors_are_json(server: EmbeddedServer, method: str, path: str, body: object, status: int, error: str) -> None:
    with _client(server) as api:
        response = api.request(method.upper(), path, json=body)
    assert response.status_code == status
    assert response.json()["error"] == error and response.json()["detail"]


def test_admin_token_required_and_project_keys_forbidden(server: EmbeddedServer) -> None:
    assert httpx.get(server.api_url + "/v1/projects", timeout=10).status_code == 401
    with _client(server, "lsa_wrong-token") as api:
        assert api.get("/v1/projects").status_code == 401
    _, key = server.collector.receivers.auth_store.create_key("default")
    with _client(server, key) as api:
        response = api.get("/v1/projects")
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
