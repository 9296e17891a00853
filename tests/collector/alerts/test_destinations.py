"""Alert destinations: no webhook to loopback, private or link-local addresses unless the operator
allows it, checked when a rule is saved and again (resolved once, connected to the checked
address) at each delivery; dead letters shown to project keys name no host."""

from __future__ import annotations

import dataclasses
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from llmscope_collector.alerts.channels import REFUSED, UNREACHABLE
from llmscope_collector.alerts.destinations import DestinationPolicy, DestinationRefused, parse_allow_list
from llmscope_collector.alerts.rules import RuleSpec
from llmscope_collector.alerts.service import AlertService
from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings, SettingsError

from .conftest import LOOPBACK_ALLOWED, Receiver, wait_for
from .test_api import _export_llm_calls
from .traffic import T0, steady, write_calls

SECRET = "destination-test-secret-01234"
ADMIN = "destination-test-admin-token"
MIN = 60.0
PUBLIC = "93.184.216.34"  # a global address; never connected to by these tests

NOT_PUBLIC = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "224.0.0.1",
    "[::1]",
    "[fe80::1]",
    "[fc00::1]",
    "[::ffff:127.0.0.1]",
]


@pytest.mark.parametrize("host", NOT_PUBLIC)
def test_non_public_addresses_are_refused_unless_allowed(host: str) -> None:
    url = f"http://{host}:8000/hook"
    with pytest.raises(DestinationRefused, match="LLMSCOPE_ALERTS_ALLOW_DESTINATIONS"):
        DestinationPolicy().check_url(url)
    everything = DestinationPolicy.from_allow_list("0.0.0.0/0, ::/0")
    assert everything.pin(url).address == host.strip("[]")


def test_public_addresses_and_allowed_hosts_pass() -> None:
    assert DestinationPolicy().pin(f"https://{PUBLIC}/x?y=1").target == "/x?y=1"
    resolve = {"hooks.internal": ["10.0.0.7"], "other.internal": ["10.0.0.8"]}
    policy = DestinationPolicy.from_allow_list("hooks.internal", lambda host, _: resolve[host])
    assert policy.pin("http://hooks.internal/h").address == "10.0.0.7"
    with pytest.raises(DestinationRefused):
        policy.pin("http://other.internal/h")
    networks = DestinationPolicy.from_allow_list("10.0.0.8/30", lambda host, _: resolve[host])
    assert networks.pin("http://other.internal/h").address == "10.0.0.8"


def test_a_name_with_one_forbidden_address_uses_an_allowed_one() -> None:
    policy = DestinationPolicy(resolve=lambda host, port: ["127.0.0.1", PUBLIC])
    assert policy.pin("http://mixed.example/h").address == PUBLIC


def test_the_allow_list_setting_is_checked_at_start(tmp_path: Path) -> None:
    assert parse_allow_list(" hooks.internal , 10.0.0.0/8,::1 ")[0] == frozenset({"hooks.internal"})
    for bad in ("10.0.0.0/33", "not a host!", "http://x"):
        settings = Settings(data_dir=tmp_path, alerts_allow_destinations=bad)
        with pytest.raises(SettingsError, match="LLMSCOPE_ALERTS_ALLOW_DESTINATIONS"):
            settings.validate(check_ports=False)
    env = {"LLMSCOPE_ALERTS_ALLOW_DESTINATIONS": "127.0.0.0/8"}
    assert Settings.from_env(env).alerts_allow_destinations == "127.0.0.0/8"


# --- over the API, with keys required ---


def _request(server: EmbeddedServer, method: str, path: str, token: str, body: Any = None, **headers: str) -> Any:
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"authorization": f"Bearer {token}", "content-type": "application/json", **headers}
    request = urllib.request.Request(server.api_url + path, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@dataclasses.dataclass
class KeyedServer:
    server: EmbeddedServer
    key: str

    def call(self, method: str, path: str, body: Any = None) -> Any:
        return _request(self.server, method, path, self.key, body)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return _request(self.server, method, path, ADMIN, body, **{"x-llmscope-project": "team"})


def _keyed_server(settings: Settings, allow: str) -> Iterator[KeyedServer]:
    settings = dataclasses.replace(settings, auth="required", admin_token=ADMIN, alerts_allow_destinations=allow)
    with EmbeddedServer(settings) as server:
        store = server.collector.receivers.auth_store
        store.create_project("team")
        _, key = store.create_key("team")
        yield KeyedServer(server, key)


@pytest.fixture
def strict(settings: Settings) -> Iterator[KeyedServer]:
    """Keys required; no allow-list: only public destinations."""
    yield from _keyed_server(settings, "")


@pytest.fixture
def loopback_allowed(settings: Settings) -> Iterator[KeyedServer]:
    yield from _keyed_server(settings, LOOPBACK_ALLOWED)


def _rule(url: str) -> dict[str, Any]:
    channel = {"type": "webhook", "url": url, "secret": SECRET}
    return {"name": "errors", "metric": "error_rate", "window": "5m", "alert_threshold": 0.5, "channels": [channel]}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "169.254.169.254", "10.0.0.1"])
def test_a_project_key_cannot_create_a_rule_to_an_internal_address(
    strict: KeyedServer, webhook: Receiver, host: str
) -> None:
    port = webhook.url.split(":")[2].split("/")[0]
    status, answer = strict.call("POST", "/v1/alerts/rules", _rule(f"http://{host}:{port}/hook"))
    assert status == 400 and answer["error"] == "invalid_rule"
    assert answer["detail"].startswith("channels[0].url: ") and "LLMSCOPE_ALERTS_ALLOW_DESTINATIONS" in answer["detail"]
    slack = _rule("x") | {"channels": [{"type": "slack", "url": f"http://{host}:{port}/slack"}]}
    assert strict.call("POST", "/v1/alerts/rules", slack)[0] == 400
    assert strict.call("GET", "/v1/alerts/rules") == (200, [])
    assert webhook.requests.empty()


def test_dead_letters_show_project_keys_no_host_and_the_admin_the_detail(loopback_allowed: KeyedServer) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert loopback_allowed.call("POST", "/v1/alerts/rules", _rule(f"http://127.0.0.1:{closed}/hook"))[0] == 201
    server = loopback_allowed.server
    _export_llm_calls(server, errors=3, ok=0, metadata=(("authorization", f"Bearer {loopback_allowed.key}"),))
    assert len(server.collector.alerts.evaluator.tick()) == 1
    [letter] = wait_for(lambda: loopback_allowed.call("GET", "/v1/alerts/dead-letters")[1], timeout=30)
    assert letter["last_error"] == UNREACHABLE and "127.0.0.1" not in json.dumps(letter["last_error"])
    [detail] = loopback_allowed.admin("GET", "/v1/alerts/dead-letters")[1]
    assert f"cannot reach 127.0.0.1:{closed}" in detail["last_error"]


# --- at delivery ---


def _spike_rule(service: AlertService, url: str) -> None:
    body = {"name": "Spend", "metric": "cost_usd", "window": "1h", "alert_threshold": 1.0}
    channels = [{"type": "webhook", "url": url, "secret": SECRET}]
    service.create_rule("default", msgspec.convert(body | {"channels": channels}, RuleSpec))


def test_a_name_resolving_to_loopback_is_refused_at_delivery(
    make_service: Callable[..., AlertService], data_dir: Path, webhook: Receiver
) -> None:
    """The rule was saved while loopback was allowed; the operator then narrowed the allow-list."""
    write_calls(data_dir, steady(T0 - 10 * MIN, T0, MIN, cost_usd=0.5))
    before = make_service()
    _spike_rule(before, webhook.url.replace("127.0.0.1", "localhost"))
    before.stop()
    service = make_service(destinations=DestinationPolicy())
    assert len(service.evaluator.tick(T0)) == 1
    [dead] = wait_for(lambda: service.dead_letters("default"))
    assert dead.attempts == 1 and dead.public_error == REFUSED  # not retried: it cannot become allowed
    assert dead.last_error is not None and dead.last_error.startswith("localhost is (or resolves to) a loopback")
    assert webhook.requests.empty()


def test_a_rebinding_name_is_refused_and_an_allowed_one_is_pinned_with_its_host_kept(
    make_service: Callable[..., AlertService], data_dir: Path, webhook: Receiver
) -> None:
    """A name public when the rule is saved and loopback at delivery (DNS rebinding) is refused;
    an allowed name is connected to at the address that was checked, with its own Host header."""
    answers = {"rebind.example": [[PUBLIC], ["127.0.0.1"]], "hooks.internal": [["127.0.0.1"]] * 2}

    def resolve(host: str, port: int) -> list[str]:
        return answers[host].pop(0)

    write_calls(data_dir, steady(T0 - 10 * MIN, T0, MIN, cost_usd=0.5))
    service = make_service(destinations=DestinationPolicy.from_allow_list("hooks.internal", resolve))
    port = int(webhook.url.split(":")[2].split("/")[0])
    _spike_rule(service, f"http://rebind.example:{port}/hook")
    _spike_rule(service, f"http://hooks.internal:{port}/hook")
    assert len(service.evaluator.tick(T0)) == 2
    received = webhook.next()
    assert received.headers["host"] == f"hooks.internal:{port}" and received.path == "/hook"
    [dead] = wait_for(lambda: service.dead_letters("default"))
    assert dead.public_error == REFUSED and "rebind.example" in (dead.last_error or "")
    assert webhook.requests.empty()
