"""Tenant isolation: with API keys required, no data route returns another project's data.

Two projects each get a corpus through OTLP/gRPC with their own key. Project B's data carries
markers (trace ids, service, session and prompt names) that project A's data never has; every GET
route of the served OpenAPI document is called with A's key, its path parameters filled with B's
identifiers, and no response may contain a B marker. Project keys are created through the admin API.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmscope_collector.server import EmbeddedServer
from tests.collector.query.conftest import query_settings
from tests.collector.query.dataset import GenTrace, export, generate, get, ok

ADMIN = "admin-token-for-tenant-tests"
B_SERVICE = "tenant-b-secret-service"
B_SESSION = "tenant-b-secret-session"
B_PROMPT = "tenant-b-secret-prompt"


def _mark_b(traces: list[GenTrace]) -> list[GenTrace]:
    for trace in traces:
        trace.service = B_SERVICE
        trace.session = B_SESSION
        for span in trace.spans:
            span.service = B_SERVICE
            span.attrs["session.id"] = B_SESSION
            if span.is_llm:
                span.attrs["gen_ai.prompt.name"] = B_PROMPT
                span.attrs["gen_ai.prompt.version"] = "7"
    return traces


def _post(server: EmbeddedServer, path: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        server.api_url + path,
        data=json.dumps(body).encode(),
        headers={"authorization": f"Bearer {ADMIN}", "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


class Tenants:
    def __init__(self, server: EmbeddedServer, a: list[GenTrace], b: list[GenTrace], keys: dict[str, str]) -> None:
        self.server, self.a, self.b, self.keys = server, a, b, keys

    def headers(self, project: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[project]}"}


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    settings = query_settings(tmp_path_factory, auth="required", admin_token=ADMIN)
    a, b = generate(11, 40), _mark_b(generate(12, 40))
    with EmbeddedServer(settings) as server:
        keys = {}
        for project in ("team-a", "team-b"):
            _post(server, "/v1/projects", {"name": project})
            keys[project] = _post(server, f"/v1/projects/{project}/keys", {"name": "tests"})["key"]
        export(server, a, metadata=(("authorization", f"Bearer {keys['team-a']}"),))
        export(server, b, metadata=(("authorization", f"Bearer {keys['team-b']}"),))
        yield Tenants(server, a, b, keys)


def _b_markers(t: Tenants) -> list[str]:
    return [
        B_SERVICE,
        B_SESSION,
        B_PROMPT,
        "team-b",
        *(tr.trace_id for tr in t.b),
        *(s.span_id for tr in t.b for s in tr.spans),
    ]


def _fill(path: str, t: Tenants) -> str:
    victim = t.b[0]
    values = {
        "trace_id": victim.trace_id,
        "span_id": victim.spans[0].span_id,
        "session_id": B_SESSION,
        "name": B_PROMPT,
    }
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


def test_no_get_route_returns_another_projects_data(tenants: Tenants) -> None:
    schema = ok(tenants.server, "/schema/openapi.json")
    markers = _b_markers(tenants)
    checked = []
    for path, item in schema["paths"].items():
        if "get" not in item or not path.startswith("/v1/") or path.startswith("/v1/projects"):
            continue
        if path == "/v1/traces/stream":  # Server-Sent Events: read the backfill of a short stream
            text = _raw(tenants, path + "?backfill=200&max_s=0.5&interval_ms=100")
            assert "event: trace" in text and not [m for m in markers if m in text]
            checked.append(path)
            continue
        if path == "/v1/traces/values":  # every field's values: team-a's own, never team-b's
            for field in ("service", "model", "provider", "session", "user", "tag"):
                body = ok(tenants.server, f"{path}?field={field}&limit=1000", tenants.headers("team-a"))
                text = json.dumps(body)
                assert not [m for m in markers if m in text], field
                if field == "service":
                    assert {v["value"] for v in body["values"]} == {tr.service for tr in tenants.a}
                    assert sum(v["traces"] for v in body["values"]) == len(tenants.a)
            b_services = ok(tenants.server, f"{path}?field=service", tenants.headers("team-b"))["values"]
            assert b_services == [{"value": B_SERVICE, "traces": len(tenants.b)}]
            checked.append(path)
            continue
        if path == "/v1/export":  # JSON lines / CSV / Parquet, not one JSON document
            b_texts = _b_texts(tenants)
            assert b_texts
            for query in (
                "",
                "?level=spans",
                "?format=csv&level=spans",
                "?format=parquet&level=spans",
                "?level=spans&content=true",
                "?format=parquet&level=spans&content=true",
                "?session=" + B_SESSION,
            ):
                text = _raw(tenants, path + query)
                assert "trace_id" in text or "session" in query, query  # team-a's own rows are there
                assert not [m for m in [*markers, *b_texts] if m in text and m not in query], query
            checked.append(path)
            continue
        for query in ("", "?limit=1000", "?group_by=project", "?group_by=session", "?q=the", "?session=" + B_SESSION):
            url = _fill(path, tenants) + query
            status, body = get(tenants.server, url, tenants.headers("team-a"))
            assert status < 500, (url, body)
            text = json.dumps(body)
            leaked = [m for m in markers if m in text and m not in url]  # a 404 may echo the id asked for
            assert not leaked, (url, leaked[:3])
            checked.append(path)
    assert {
        "/v1/traces",
        "/v1/traces/values",
        "/v1/traces/{trace_id}",
        "/v1/spans/{trace_id}/{span_id}",
        "/v1/sessions",
        "/v1/sessions/{session_id}",
        "/v1/costs",
        "/v1/metrics/summary",
        "/v1/metrics/timeseries",
        "/v1/prompts",
        "/v1/prompts/{name}/versions",
        "/v1/export",
        "/v1/scores",
    } <= set(checked)


def _raw(t: Tenants, path: str) -> str:
    """The body as text (a Parquet file: its rows as JSON)."""
    req = urllib.request.Request(t.server.api_url + path, headers=t.headers("team-a"))
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = resp.read()
    if "format=parquet" in path:
        return json.dumps(pq.read_table(pa.BufferReader(body)).to_pylist(), default=str)
    return str(body.decode())


def _b_texts(t: Tenants) -> list[str]:
    """The captured texts only team-b's spans hold."""
    a_texts = {s.text for tr in t.a for s in tr.spans}
    return sorted({s.text for tr in t.b for s in tr.spans if s.text} - a_texts)


def test_each_key_sees_exactly_its_own_project(tenants: Tenants) -> None:
    for project, corpus in (("team-a", tenants.a), ("team-b", tenants.b)):
        headers = tenants.headers(project)
        listed = ok(tenants.server, "/v1/traces?limit=1000", headers)["traces"]
        assert {t["trace_id"] for t in listed} == {t.trace_id for t in corpus}
        costs = ok(tenants.server, "/v1/costs?group_by=project", headers)
        assert [g["key"]["project"] for g in costs["groups"]] == [project]
        assert costs["total"]["llm_calls"] == sum(len(t.llm()) for t in corpus)
        summary = ok(tenants.server, "/v1/metrics/summary", headers)
        assert summary["requests"] == sum(len(t.llm()) for t in corpus)
        own = corpus[0]
        assert ok(tenants.server, f"/v1/traces/{own.trace_id}", headers)["project"] == project


def test_project_header_cannot_switch_a_key_to_another_project(tenants: Tenants) -> None:
    headers = {**tenants.headers("team-a"), "x-llmscope-project": "team-b"}
    listed = ok(tenants.server, "/v1/traces?limit=1000", headers)["traces"]
    assert {t["trace_id"] for t in listed} == {t.trace_id for t in tenants.a}
    assert get(tenants.server, f"/v1/traces/{tenants.b[0].trace_id}", headers)[0] == 404


def test_without_a_valid_key_data_routes_are_401(tenants: Tenants) -> None:
    for headers in ({}, {"authorization": "Bearer not-a-key"}, {"authorization": "Basic abc"}):
        for path in ("/v1/traces", "/v1/sessions", "/v1/costs", "/v1/metrics/summary", "/v1/prompts"):
            status, body = get(tenants.server, path, headers)
            assert status == 401 and body["error"] == "unauthenticated", (path, headers)


def test_admin_token_reads_a_named_project(tenants: Tenants) -> None:
    headers = {"authorization": f"Bearer {ADMIN}", "x-llmscope-project": "team-b"}
    listed = ok(tenants.server, "/v1/traces?limit=1000", headers)["traces"]
    assert {t["trace_id"] for t in listed} == {t.trace_id for t in tenants.b}


def test_arrow_answers_and_the_client_are_scoped_to_the_key(tenants: Tenants) -> None:
    """`llmscope.Client` (the Arrow IPC answers of the trace list, spans and scores) sees its key's project."""
    import llmscope

    b_trace = tenants.b[0].trace_id
    body = {"scores": [{"name": "tenant-b-secret-score", "value": 1, "trace_id": b_trace}]}
    req = urllib.request.Request(
        tenants.server.api_url + "/v1/scores/batch",
        data=json.dumps(body).encode(),
        headers={**tenants.headers("team-b"), "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201
    tenants.server.collector.flush()
    markers = [*_b_markers(tenants), "tenant-b-secret-score"]
    a = llmscope.Client(tenants.server.api_url, tenants.keys["team-a"], project="team-b")  # the header is ignored
    tables = {"traces": a.traces(), "spans": a.spans(), "scores": a.scores(), "b-session": a.traces(session=B_SESSION)}
    assert set(tables["traces"]["trace_id"].to_pylist()) == {t.trace_id for t in tenants.a}
    assert set(tables["spans"]["trace_id"].to_pylist()) == {t.trace_id for t in tenants.a}
    for name, table in tables.items():
        text = json.dumps(table.to_pylist(), default=str)
        assert not [m for m in markers if m in text], name
    admin = llmscope.Client(tenants.server.api_url, ADMIN, project="team-b")
    assert set(admin.traces()["trace_id"].to_pylist()) == {t.trace_id for t in tenants.b}
    assert admin.scores(name="tenant-b-secret-score")["trace_id"].to_pylist() == [b_trace]
    with pytest.raises(llmscope.ClientError) as refused:
        llmscope.Client(tenants.server.api_url, "not-a-key").spans()
    assert refused.value.status == 401


def test_delete_cannot_reach_another_project(tenants: Tenants) -> None:
    """A deletes "its" copy of B's session id: nothing of B's is removed (runs last: it deletes A's data)."""
    status, _ = get(tenants.server, f"/v1/sessions/{B_SESSION}", tenants.headers("team-a"), method="DELETE")
    assert status == 404
    shared = next(t.session for t in tenants.a if t.session)
    status, report = get(tenants.server, f"/v1/sessions/{shared}", tenants.headers("team-a"), method="DELETE")
    assert status == 200 and report["traces_deleted"] == sum(1 for t in tenants.a if t.session == shared)
    b_listed = ok(tenants.server, "/v1/traces?limit=1000", tenants.headers("team-b"))["traces"]
    assert {t["trace_id"] for t in b_listed} == {t.trace_id for t in tenants.b}
