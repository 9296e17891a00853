"""Contract tests against a real ClickHouse server: the same equivalence checks as with chdb, over HTTP.

Runs when `LLMSCOPE_TEST_CLICKHOUSE_URL` names a server (e.g. `clickhouse://default:@127.0.0.1:8123/llmscope`;
docs/scale.md says how to start one), and is skipped with that reason otherwise: no current ClickHouse
server installs from the registries this project's environments reach. The tests use a database of
their own (`<db>_t<random>`, dropped after) and send the collector's files with each load statement
(`input()`), so the server needs no access to the test's disk or to a bucket.
"""

from __future__ import annotations

import os
import urllib.parse
import uuid
from collections.abc import Iterator

import pytest

from llmscope_collector.query.clickhouse.client import connect
from llmscope_collector.query.clickhouse.loader import Loader, UploadSource
from llmscope_collector.query.clickhouse.store import ClickHouseStore
from llmscope_collector.server import EmbeddedServer
from tests.collector.query.conftest import query_settings
from tests.collector.query.dataset import generate
from tests.collector.query.test_engine_equivalence import (
    ADMIN,
    FIXED_SEED,
    FIXED_STEP_S,
    FIXED_TRACES,
    Engines,
    _every_query,
)

URL_VARIABLE = "LLMSCOPE_TEST_CLICKHOUSE_URL"


def _test_database_url(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    database = f"{parts.path.strip('/') or 'llmscope'}_t{uuid.uuid4().hex[:10]}"
    return urllib.parse.urlunsplit(parts._replace(path="/" + database)), database


@pytest.fixture(scope="module")
def server_engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    url = os.environ.get(URL_VARIABLE, "")
    if not url:
        pytest.skip(f"no ClickHouse server: set {URL_VARIABLE}=clickhouse://user:password@host:8123/db (docs/scale.md)")
    settings = query_settings(tmp_path_factory, auth="required", admin_token=ADMIN)
    test_url, database = _test_database_url(url)
    client, _ = connect(test_url, settings.data_dir)
    try:
        client.use(database)
        with EmbeddedServer(settings) as server:
            store = ClickHouseStore(client, Loader(client, UploadSource(settings.data_dir)))
            engines = Engines(server, store)
            engines.new_project(generate(FIXED_SEED, FIXED_TRACES, step_s=FIXED_STEP_S), late_parents=True)
            yield engines
    finally:
        client.command(f"DROP DATABASE IF EXISTS {database}", {})  # a name made above
        client.close()


def test_every_query_is_the_same_on_a_clickhouse_server(server_engines: Engines) -> None:
    _every_query(server_engines, "gen0", generate(FIXED_SEED, FIXED_TRACES, step_s=FIXED_STEP_S))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_stores_are_the_same_on_a_clickhouse_server(server_engines: Engines, seed: int) -> None:
    traces = generate(seed, 12, step_s=61)
    _every_query(server_engines, server_engines.new_project(traces, late_parents=seed % 2 == 1), traces)


def test_loading_again_loads_nothing_on_a_clickhouse_server(server_engines: Engines) -> None:
    loader = server_engines.clickhouse.loader
    loader.refresh()
    again = Loader(server_engines.clickhouse.client, UploadSource(server_engines.server.settings.data_dir))
    again.refresh()
    assert again.objects_loaded == 0 and again.loaded == loader.loaded
