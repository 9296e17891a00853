"""`GET /v1/export` and `llmscope export`: the trace list's filters select, every page is walked, the
rows stream as JSON lines or CSV with the API structs' columns, over real HTTP from a real server."""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from llmscope_collector.api.controllers import export
from llmscope_collector.cli import main
from llmscope_collector.server import EmbeddedServer
from tests import otlp_factory as f


def _send(server: EmbeddedServer, traces: int, service: str) -> list[str]:
    """`traces` traces of a root span and one child each, over OTLP/HTTP."""
    start = time.time_ns()
    spans, ids = [], []
    for n in range(traces):
        trace_id, root = f.new_trace_id(), f.new_span_id()
        ids.append(trace_id.hex())
        spans.append(f.span(trace_id, root, "root", start + n, start + n + 2_000_000))
        spans.append(f.span(trace_id, f.new_span_id(), "child", start + n + 1, start + n + 1_000_000, parent=root))
    body = f.request(spans, service=service).SerializeToString()
    req = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}/v1/traces", data=body, headers={"content-type": "application/x-protobuf"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    return ids


def _get(server: EmbeddedServer, query: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(f"{server.api_url}/v1/export?{query}", timeout=30) as resp:
        return resp.headers["content-type"], resp.read()


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "PAGE", 3)  # the walk crosses many pages with a handful of traces


@pytest.mark.usefixtures("small_pages")
def test_export_streams_every_selected_trace_and_span(server: EmbeddedServer, tmp_path: Path) -> None:
    search = _send(server, 7, "search")
    other = _send(server, 2, "billing")
    server.collector.flush()
    req = urllib.request.Request(
        f"{server.api_url}/v1/scores/batch",
        data=json.dumps({"scores": [{"name": "q", "value": 1, "trace_id": t} for t in search[:4]]}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=10).close()
    server.collector.flush()

    media, body = _get(server, "format=jsonl")
    rows = [json.loads(line) for line in body.splitlines()]
    assert media.startswith("application/x-ndjson")
    assert sorted(r["trace_id"] for r in rows) == sorted(search + other)
    assert [r["start_time_unix_nano"] for r in rows] == sorted(r["start_time_unix_nano"] for r in rows)
    assert list(rows[0]) == list(export.TRACE_COLUMNS)

    _, body = _get(server, "format=jsonl&service=search&level=spans")
    spans = [json.loads(line) for line in body.splitlines()]
    assert len(spans) == 14 and {s["trace_id"] for s in spans} == set(search)
    assert {s["name"] for s in spans} == {"root", "child"}

    media, body = _get(server, "format=csv&level=spans&service=billing")
    table = list(csv.reader(io.StringIO(body.decode())))
    assert media.startswith("text/csv") and tuple(table[0]) == export.SPAN_COLUMNS
    assert len(table) == 1 + 4 and {row[0] for row in table[1:]} == set(other)

    out = tmp_path / "scored.csv"
    code = main(["export", "--url", server.api_url, "--format", "csv", "--filter", "score.q>=1", "-o", str(out)])
    assert code == 0
    exported = list(csv.DictReader(out.open()))
    assert sorted(r["trace_id"] for r in exported) == sorted(search[:4])
    assert all(json.loads(r["services"]) == ["search"] for r in exported)  # lists are JSON in a cell


def test_export_refuses_invalid_filters_before_streaming(server: EmbeddedServer) -> None:
    for query in ("format=xml", "level=rows", "min_cost=abc", "score.x>=abc"):
        with pytest.raises(urllib.error.HTTPError) as info:
            _get(server, query)
        assert info.value.code == 400, query
    assert main(["export", "--url", server.api_url, "--filter", "noequals"]) == 2
