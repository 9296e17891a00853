"""One populated server per test module: the generated corpus sent through OTLP/gRPC, flushed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from tests.collector.query.dataset import GenTrace, export, generate

SEED = 20260315
N_TRACES = 160


def query_settings(tmp: pytest.TempPathFactory, **overrides: object) -> Settings:
    base = Settings(
        host="127.0.0.1",
        otlp_grpc_port=0,
        otlp_http_port=0,
        api_port=0,
        data_dir=tmp.mktemp("query") / "data",
        flush_interval_s=0.2,  # (a long interval makes Collector.flush() wait for it: see the report on wal.log)
        compaction_interval_s=0,
        retention_days=0,
        retention_interval_s=0,
        alerts_tick_s=0,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def corpus() -> list[GenTrace]:
    return generate(SEED, N_TRACES)


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory, corpus: list[GenTrace]) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(query_settings(tmp_path_factory)) as server:
        export(server, corpus)
        yield server
