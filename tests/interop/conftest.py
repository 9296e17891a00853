"""Interop tests run only inside `nox -s interop`: each param's venv holds one third-party
instrumentation, so only that param's test file is collected (LLMSCOPE_INTEROP names it).

The default `nox -s tests` run sets no LLMSCOPE_INTEROP and collects nothing here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

_PARAM = os.environ.get("LLMSCOPE_INTEROP", "")
_OWN_FILE = f"test_{_PARAM.replace('-', '_')}.py"
collect_ignore_glob = [p.name for p in Path(__file__).parent.glob("test_*.py") if p.name != _OWN_FILE]

if _PARAM:
    # Content capture on, as a user who wants prompts in llmscope sets it (read at instrument time).
    # Only inside an interop run: the default run imports this conftest too and must not see it.
    os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")

    from tests.interop.harness import AppPipeline, Recorder, write_results
    from tests.interop.scenarios import Bench, Package

    from llmscope_collector.server import EmbeddedServer
    from llmscope_sim import SimulatedProvider

    _recorders: list[Recorder] = []
    _packages: list[Package] = []

    @pytest.fixture
    def sim() -> Iterator[SimulatedProvider]:
        with SimulatedProvider(seed=11) as provider:
            yield provider

    @pytest.fixture
    def app(server: EmbeddedServer) -> Iterator[AppPipeline]:
        pipeline = AppPipeline(server, "llm-api", transport="http")
        yield pipeline
        pipeline.shutdown()

    @pytest.fixture
    def front(server: EmbeddedServer) -> Iterator[AppPipeline]:
        """A second service (the caller), exporting over OTLP/gRPC."""
        pipeline = AppPipeline(server, "frontend", transport="grpc")
        yield pipeline
        pipeline.shutdown()

    @pytest.fixture
    def bench(
        request: pytest.FixtureRequest, server: EmbeddedServer, sim: SimulatedProvider, app: AppPipeline
    ) -> Bench:
        package: Package = request.module.PACKAGE
        recorder = Recorder()
        _recorders.append(recorder)
        if package not in _packages:
            _packages.append(package)
        return Bench(server=server, sim=sim, app=app, package=package, recorder=recorder)

    def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
        """Write this param's matrix row (even when a check failed: the row then says which)."""
        if _packages:
            package = _packages[0]
            write_results(package.param, package.distribution, [package.client], _recorders, package.dialect)
