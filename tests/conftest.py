"""Shared fixtures: a temp data dir and an embedded server on ephemeral ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings

# Bugs in telemetry code must fail tests instead of being swallowed.
os.environ.setdefault("LLMSCOPE_RAISE_INTERNAL_ERRORS", "1")


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
