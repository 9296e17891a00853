"""Projects and API keys: the durable store, the auth modes, and keys on both receivers."""

from __future__ import annotations

import dataclasses
import json
import stat
from pathlib import Path

import grpc
import pytest

from llmscope_collector.auth import (
    AlreadyExists,
    AuthPolicy,
    AuthStore,
    InvalidName,
    UnknownKey,
    effective_mode,
    load_admin_token,
)
from llmscope_collector.errors import Unauthenticated
from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from tests.collector.receivers.clients import accepted, grpc_export, post, valid_request


def test_store_persists_projects_and_only_key_digests(tmp_path: Path) -> None:
    store = AuthStore(tmp_path / "auth" / "projects.json")
    store.create_project("team-a", rate_limit_spans_per_s=50.0)
    record, key = store.create_key("team-a", "ci")
    assert key.startswith("lsk_") and store.verify(key) == "team-a"
    store.close()
    raw = (tmp_path / "auth" / "projects.json").read_text()
    assert key not in raw and record.digest in raw
    assert stat.S_IMODE((tmp_path / "auth" / "projects.json").stat().st_mode) == 0o600
    reopened = AuthStore(tmp_path / "auth" / "projects.json")
    assert [p.name for p in reopened.projects()] == ["default", "team-a"]
    assert reopened.rate_limit("team-a") == (50.0, None)
    assert reopened.verify(key) == "team-a"
    assert reopened.keys_of("team-a")[0].last_used_at is not None


def test_store_rejects_bad_names_duplicates_unknown_and_tampered_keys(tmp_path: Path) -> None:
    store = AuthStore(tmp_path / "p.json")
    with pytest.raises(InvalidName):
        store.create_project("../etc")
    with pytest.raises(AlreadyExists):
        store.create_project("default")
    record, key = store.create_key("default")
    assert store.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert store.verify("lsk_nothex_" + "x" * 40) is None and store.verify("") is None
    store.revoke_key("default", record.id)
    assert store.verify(key) is None
    with pytest.raises(UnknownKey):
        store.revoke_key("default", "000000000000")


def test_admin_token_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_admin_token(tmp_path, "")
    again = load_admin_token(tmp_path, "")
    assert first.source == "generated" and again.source == "file" and first.value == again.value
    assert first.value in first.describe() and again.value not in again.describe()
    assert load_admin_token(tmp_path, "x" * 20).matches("x" * 20)
    with pytest.raises(ValueError):
        load_admin_token(tmp_path, "short")


def test_modes() -> None:
    assert effective_mode("auto", "127.0.0.1") == "optional"
    assert effective_mode("auto", "::1") == "optional"
    assert effective_mode("auto", "0.0.0.0") == "required"
    assert effective_mode("off", "0.0.0.0") == "optional"
    assert effective_mode("required", "127.0.0.1") == "required"


def test_policy_resolution(tmp_path: Path) -> None:
    store = AuthStore(tmp_path / "p.json")
    store.create_project("a")
    _, key = store.create_key("a")
    policy = AuthPolicy(store, load_admin_token(tmp_path, ""), setting="auto", host="127.0.0.1")
    assert policy.project_for({}.get) == "default"
    assert policy.project_for({"x-llmscope-project": "b"}.get) == "b"
    assert policy.project_for({"authorization": f"Bearer {key}", "x-llmscope-project": "b"}.get) == "a"
    assert policy.project_for({"x-llmscope-api-key": key}.get) == "a"
    for bad in ({"authorization": "Basic abc"}, {"authorization": "Bearer nope"}, {"x-llmscope-project": "../x"}):
        with pytest.raises(Unauthenticated):
            policy.project_for(bad.get)
    required = AuthPolicy(store, policy.admin, setting="required", host="127.0.0.1")
    with pytest.raises(Unauthenticated, match="API key is required"):
        required.project_for({}.get)


@pytest.fixture
def keyed_server(settings: Settings) -> EmbeddedServer:
    return EmbeddedServer(dataclasses.replace(settings, auth="required"))


def test_keys_on_both_receivers_stamp_the_project_and_revocation_is_immediate(keyed_server: EmbeddedServer) -> None:
    with keyed_server as server:
        store = server.collector.receivers.auth_store
        store.create_project("team-a")
        record, key = store.create_key("team-a")
        with pytest.raises(grpc.RpcError) as info:
            grpc_export(server, valid_request(1))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert post(server, valid_request(1)).status_code == 401
        grpc_export(server, valid_request(2), metadata=(("authorization", f"Bearer {key}"),))
        assert post(server, valid_request(3), x_llmscope_api_key=key).status_code == 200
        assert accepted(server, "team-a") == 5 and accepted(server, "default") == 0
        store.revoke_key("team-a", record.id)
        with pytest.raises(grpc.RpcError) as info:
            grpc_export(server, valid_request(1), metadata=(("x-llmscope-api-key", key),))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        response = post(server, valid_request(1), authorization=f"Bearer {key}")
        assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")


def test_loopback_rejects_a_wrong_key_but_accepts_none(server: EmbeddedServer) -> None:
    assert post(server, valid_request(1)).status_code == 200
    assert post(server, valid_request(1), authorization="Bearer lsk_000000000000_" + "a" * 43).status_code == 401
    assert accepted(server) == 1


def test_auth_file_on_disk_is_valid_json(server: EmbeddedServer) -> None:
    doc = json.loads((server.settings.data_dir / "auth" / "projects.json").read_text())
    assert doc["version"] == 1 and doc["projects"][0]["name"] == "default"


def test_settings_reject_unknown_auth_and_log_modes(settings: Settings) -> None:
    from llmscope_collector.settings import SettingsError

    for bad in ({"auth": "maybe"}, {"log_format": "xml"}, {"rate_limit_spans_per_s": -1}, {"http_max_body_bytes": 0}):
        with pytest.raises(SettingsError):
            dataclasses.replace(settings, **bad).validate(check_ports=False)  # type: ignore[arg-type]
    same_port = dataclasses.replace(settings, otlp_grpc_port=5555, otlp_http_port=5555)
    with pytest.raises(SettingsError, match="must differ"):
        same_port.validate(check_ports=False)
