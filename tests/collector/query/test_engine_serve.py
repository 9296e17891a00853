"""`llmscope serve --query-engine chdb://` answers every data route of the API as the DuckDB engine does.

The server under test ingests the corpus and answers with ClickHouse (chdb, in this process); the
same app over a DuckDB store of the same data dir (litestar's test client, no second collector) is
the reference. Every GET data route of the OpenAPI schema is asked, with the query strings that
select each kind of answer.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from llmscope_collector.alerts.metrics import MetricReader
from llmscope_collector.alerts.rules import RuleSpec
from llmscope_collector.api.app import create_app
from llmscope_collector.query.clickhouse.metrics import ClickHouseMetricReader
from llmscope_collector.query.clickhouse.store import ClickHouseStore
from llmscope_collector.query.db import Database
from llmscope_collector.query.store import TraceStore
from llmscope_collector.server import EmbeddedServer
from llmscope_collector.storage.layout import CONTENT_DIR, LLM_DUPS_DIR, SPANS_DIR, TRACES_DIR
from tests.collector.query.conftest import query_settings
from tests.collector.query.dataset import NS, T0_NS, GenTrace, export, generate, get, ok

DATASETS = (SPANS_DIR, TRACES_DIR, CONTENT_DIR, LLM_DUPS_DIR)
DATA_ROUTES = ("/v1/traces", "/v1/spans", "/v1/sessions", "/v1/costs", "/v1/metrics", "/v1/prompts")
QUERIES = {  # the query strings that select each kind of answer of a route (others: none)
    "/v1/traces": (
        "",
        "?sort=cost&order=asc&limit=5",
        "?q=banana",
        "?status=error&session=sess-2",
        "?attr.app.tier=gold",
    ),
    "/v1/sessions": ("", "?limit=2"),
    "/v1/costs": ("", "?group_by=model,day", "?group_by=user,prompt", "?group_by=session"),
    "/v1/metrics/timeseries": ("?interval=1h&group_by=model", "?interval=1d"),
}


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _ordered(body: Any) -> Any:
    """Cost groups in a fixed order: groups tied on cost and calls come in either order."""
    if isinstance(body, dict) and "groups" in body:
        return {**body, "groups": sorted(body["groups"], key=lambda g: json.dumps(g["key"], sort_keys=True))}
    return body


@pytest.fixture(scope="module")
def corpus() -> list[GenTrace]:
    return generate(4242, 40, step_s=900)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, corpus: list[GenTrace]) -> Iterator[EmbeddedServer]:
    chdb_dir = tmp_path_factory.mktemp("chdb")
    settings = query_settings(tmp_path_factory, query_engine=f"chdb://{chdb_dir}")
    with EmbeddedServer(settings) as server:
        assert isinstance(server.store, ClickHouseStore)
        export(server, corpus)
        yield server


@pytest.fixture(scope="module")
def reference(served: EmbeddedServer) -> Iterator[TestClient[Any]]:
    store = TraceStore(served.settings.data_dir)
    try:
        with TestClient(app=create_app(store)) as client:
            yield client
    finally:
        store.close()


def _paths(served: EmbeddedServer, corpus: list[GenTrace]) -> list[str]:
    trace = next(t for t in corpus if len(t.spans) > 2)
    values = {
        "trace_id": trace.trace_id,
        "span_id": trace.spans[1].span_id,
        "session_id": "sess-1",
        "name": "greet",
    }
    paths = []
    for path, item in ok(served, "/schema/openapi.json")["paths"].items():
        data = path.startswith(DATA_ROUTES) and path != "/v1/traces/stream"
        if "get" in item and data:
            paths.append(re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path))
    return paths


def test_every_get_route_answers_as_duckdb(
    served: EmbeddedServer, reference: TestClient[Any], corpus: list[GenTrace]
) -> None:
    asked = []
    for path in _paths(served, corpus):
        for query in QUERIES.get(path, ("",)):
            status, body = get(served, path + query)
            expected = reference.get(path + query)
            assert status == expected.status_code, (path + query, body)
            if status == 200:
                assert _close(_ordered(body), _ordered(expected.json())), path + query
            asked.append(path)
    assert {
        "/v1/traces",
        "/v1/sessions",
        "/v1/costs",
        "/v1/metrics/summary",
        "/v1/metrics/timeseries",
        "/v1/prompts",
        "/v1/prompts/greet/versions",
        "/v1/sessions/sess-1",
    } <= set(asked)
    assert any(p.startswith("/v1/spans/") for p in asked) and any(p.startswith("/v1/traces/") for p in asked)


def test_the_alert_rules_are_evaluated_on_the_clickhouse_engine(served: EmbeddedServer) -> None:
    alerts = served.collector.alerts
    assert isinstance(alerts.evaluator._reader, ClickHouseMetricReader)  # wired by the server, from the settings
    end = T0_NS / NS + 40 * 900
    db = Database()
    try:
        files = MetricReader(served.settings.data_dir, db)
        for metric, threshold in (("cost_usd", 0.0001), ("latency_p95", 1.0), ("request_count", 1.0)):
            body = {"name": metric, "metric": metric, "window": "1d", "alert_threshold": threshold}
            spec = msgspec.convert(body, RuleSpec)
            rule = alerts.create_rule("default", spec)
            observed, level = alerts.evaluator.observe(rule, end)
            expected = files.observe(rule, end)
            assert level == "alert" and observed.samples == expected.samples > 0
            assert observed.value == pytest.approx(expected.value, rel=1e-9)
    finally:
        db.close()


def test_the_arrow_answers_are_the_same_on_clickhouse(served: EmbeddedServer, reference: TestClient[Any]) -> None:
    """`llmscope.Client`'s tables (the Arrow IPC answers) from the ClickHouse engine equal DuckDB's."""
    import urllib.request

    import pyarrow as pa

    accept = {"accept": "application/vnd.apache.arrow.stream"}
    for path in (
        "/v1/traces?sort=cost&order=asc",
        "/v1/traces?service=search&limit=7",
        "/v1/spans",
        "/v1/spans?q=banana",
    ):
        with urllib.request.urlopen(urllib.request.Request(served.api_url + path, headers=accept), timeout=60) as resp:
            actual = pa.ipc.open_stream(resp).read_all()
        expected = pa.ipc.open_stream(reference.get(path, headers=accept).content).read_all()
        assert actual.num_rows > 0, path
        assert _close(actual.to_pylist(), expected.to_pylist()), path


def test_a_session_is_deleted_from_the_tables_and_the_files_as_duckdb_deletes_it(
    served: EmbeddedServer, corpus: list[GenTrace], tmp_path: Path
) -> None:
    """DELETE /v1/sessions/{id} on ClickHouse gives DuckDB's report (over a copy of the same files), then
    every route answers as DuckDB over its copy; the files hold nothing of the session any more, and the
    rewritten files are not loaded again (their rows were in the tables already). Runs last: it deletes."""
    copy = tmp_path / "copy"
    for dataset in DATASETS:
        if (served.settings.data_dir / dataset).is_dir():
            shutil.copytree(served.settings.data_dir / dataset, copy / dataset)
    duck = TraceStore(copy)
    try:
        expected = msgspec.to_builtins(duck.delete_session("default", "sess-1"))
        assert expected["traces_deleted"] > 0 and expected["content_items_deleted"] > 0
        loaded = served.store.loader.objects_loaded  # type: ignore[attr-defined]
        status, report = get(served, "/v1/sessions/sess-1", method="DELETE")
        assert (status, report) == (200, expected)
        with TestClient(app=create_app(duck)) as reference:
            for path in _paths(served, corpus):
                for query in QUERIES.get(path, ("",)):
                    status, body = get(served, path + query)
                    answer = reference.get(path + query)
                    assert status == answer.status_code, (path + query, body)
                    if status == 200:
                        assert _close(_ordered(body), _ordered(answer.json())), path + query
        assert get(served, "/v1/sessions/sess-1")[0] == 404
        assert get(served, "/v1/sessions/sess-1", method="DELETE")[0] == 404
        served.store.loader.refresh()  # type: ignore[attr-defined]
        assert served.store.loader.objects_loaded == loaded  # type: ignore[attr-defined]
    finally:
        duck.close()
    files = TraceStore(served.settings.data_dir)
    try:
        assert files.get_session("default", "sess-1") is None
    finally:
        files.close()


def test_the_export_is_the_same_on_clickhouse(served: EmbeddedServer) -> None:
    """`GET /v1/export` lists the traces through the ClickHouse engine and reads spans and content from
    the files: the same rows as with DuckDB, at both levels."""
    import urllib.request

    from llmscope_collector.query.export import ExportReader

    store, exports = TraceStore(served.settings.data_dir), ExportReader(served.settings.data_dir)
    try:
        with TestClient(app=create_app(store, exports=exports)) as client:
            for query in ("format=jsonl", "format=jsonl&level=spans&content=true", "format=csv&level=spans"):
                with urllib.request.urlopen(f"{served.api_url}/v1/export?{query}", timeout=60) as resp:
                    body = resp.read()
                expected = client.get(f"/v1/export?{query}")
                assert expected.status_code == 200 and body, query
                if "csv" in query:
                    assert body == expected.content, query
                    continue
                rows = [json.loads(line) for line in body.splitlines()]
                assert len(rows) > 10 and _close(rows, [json.loads(line) for line in expected.content.splitlines()])
    finally:
        store.close()
        exports.close()
