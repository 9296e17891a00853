"""Real receivers for alert notifications (HTTP webhook, SMTP) and an alert service on a fake clock."""

from __future__ import annotations

import dataclasses
import queue
import time
from collections.abc import Callable, Iterator
from email.message import Message
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from llmscope_collector.alerts.channels import SmtpConfig
from llmscope_collector.alerts.destinations import DestinationPolicy
from llmscope_collector.alerts.service import AlertService, DeliveryOptions
from llmscope_collector.settings import Settings
from tests.webhook_receiver import Receiver

from .traffic import T0

__all__ = ["Receiver"]  # the alert tests import it from here; it lives in tests/webhook_receiver.py


class FakeClock:
    """Time the test moves by hand (Unix seconds)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class _Mailbox:
    """aiosmtpd handler keeping every message received."""

    def __init__(self) -> None:
        self.messages: queue.Queue[tuple[list[str], Message]] = queue.Queue()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.put((list(envelope.rcpt_tos), BytesParser().parsebytes(envelope.content)))
        return "250 OK"


class _Smtpd(Controller):
    """aiosmtpd bound to an ephemeral port (the stock controller only knows the port it was given)."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclasses.dataclass
class SmtpServer:
    mailbox: _Mailbox
    config: SmtpConfig

    def next(self, timeout: float = 10.0) -> tuple[list[str], Message]:
        return self.mailbox.messages.get(timeout=timeout)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll until `predicate()` is truthy; fails the test after `timeout` (a hang, not a timing check)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def smtpd() -> Iterator[SmtpServer]:
    mailbox = _Mailbox()
    controller = _Smtpd(mailbox, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        config = SmtpConfig(host="127.0.0.1", port=controller.port, tls="none", sender="alerts@llmscope.test")
        yield SmtpServer(mailbox, config)
    finally:
        controller.stop()


FAST_DELIVERY = DeliveryOptions(timeout_s=2.0, max_attempts=3, retry_base_s=0.01, workers=4)
LOOPBACK_ALLOWED = "127.0.0.0/8"
"""The receivers here listen on loopback, which alert destinations may reach only when allowed."""


@pytest.fixture
def make_service(data_dir: Path, clock: FakeClock) -> Iterator[Callable[..., AlertService]]:
    """Alert services on the fake clock; evaluation only when the test ticks; each one stopped at the end."""
    started: list[AlertService] = []

    def make(**kwargs: Any) -> AlertService:
        kwargs.setdefault("tick_s", 0)
        kwargs.setdefault("delivery", FAST_DELIVERY)
        kwargs.setdefault("destinations", DestinationPolicy.from_allow_list(LOOPBACK_ALLOWED))
        service = AlertService(kwargs.pop("data_dir", data_dir), clock=clock, **kwargs)
        service.start()
        started.append(service)
        return service

    yield make
    for service in started:
        service.stop()


@pytest.fixture
def service(make_service: Callable[..., AlertService]) -> AlertService:
    return make_service()


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The shared test settings (tests/conftest.py), with the scheduler off: these tests tick by hand,
    and loopback receivers allowed."""
    return dataclasses.replace(
        settings,
        data_dir=tmp_path / "server-data",
        alerts_allow_destinations=LOOPBACK_ALLOWED,
        alerts_tick_s=0,
        alerts_retry_base_s=0.01,
        alerts_delivery_timeout_s=2.0,
    )
