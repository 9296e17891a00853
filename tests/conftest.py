"""Shared fixtures: a temp data dir and an embedded server on ephemeral ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from tests.webhook_receiver import Receiver

# Bugs in telemetry code must fail tests instead of being swallowed.
os.environ.setdefault("LLMSCOPE_RAISE_INTERNAL_ERRORS", "1")

# Speed is measured by `nox -s bench`, never by a test: no per-example deadline, which a loaded
# 2-core machine would otherwise turn into random failures. In CI the examples are derandomized too,
# so a run is reproducible; locally hypothesis keeps exploring new ones.
_NOT_TIMED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
hypothesis_settings.register_profile("dev", **_NOT_TIMED)  # type: ignore[arg-type]
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True, **_NOT_TIMED)  # type: ignore[arg-type]
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        host="127.0.0.1",
        otlp_grpc_port=0,
        otlp_http_port=0,
        api_port=0,
        data_dir=tmp_path / "data",
        flush_interval_s=0.2,
    )


@pytest.fixture
def server(settings: Settings) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(settings)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    """A webhook endpoint on 127.0.0.1 for alert channels (alert and cluster tests), closed after the test."""
    receiver = Receiver()
    try:
        yield receiver
    finally:
        receiver.close()
