"""Scores end to end: posted over the API and sent as OTel `gen_ai.evaluation.result` span events by
the stock OTel SDK, stored through the WAL, served on traces, spans, sessions and `/v1/scores`,
filtered on in the trace list, replaced by id, scoped to the project, and kept across SIGKILL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from llmscope_collector.processors.scores import score_row
from llmscope_collector.query.filters import InvalidFilter
from llmscope_collector.query.scores import parse_score_filter, score_filters
from llmscope_collector.server import EmbeddedServer


def _call(base: str, method: str, path: str, body: Any = None, project: str | None = None) -> tuple[int, Any]:
    headers = {"content-type": "application/json"}
    if project:
        headers["x-llmscope-project"] = project
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _evaluated_trace(server: EmbeddedServer, session: str) -> tuple[str, str]:
    """One span from the stock OTel SDK over OTLP/HTTP, evaluated by an instrumentation's event."""
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{server.http_port}/v1/traces")
    provider = TracerProvider(resource=Resource.create({"service.name": "scored-app"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "session.id": session}
    with provider.get_tracer("app").start_as_current_span("chat m", attributes=attrs) as span:
        span.add_event(
            "gen_ai.evaluation.result",
            {
                "gen_ai.evaluation.name": "relevance",
                "gen_ai.evaluation.score.value": 0.25,
                "gen_ai.evaluation.score.label": "low",
                "gen_ai.evaluation.explanation": "off topic",
            },
        )
        context = span.get_span_context()
    provider.shutdown()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def _names(scores: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in scores}


def test_scores_from_the_api_and_from_span_events_are_served_and_filtered(server: EmbeddedServer) -> None:
    base = server.api_url
    trace_id, span_id = _evaluated_trace(server, "sess-1")
    other_trace, _ = _evaluated_trace(server, "sess-2")
    status, body = _call(
        base,
        "POST",
        "/v1/scores/batch",
        {
            "scores": [
                {"name": "helpfulness", "value": 0.9, "trace_id": trace_id, "source": "human", "author": "ana"},
                {"name": "helpfulness", "value": 0.1, "trace_id": other_trace},
                {"name": "thumbs", "value": True, "trace_id": trace_id, "span_id": span_id, "comment": "nice"},
                {"name": "tone", "value": "friendly", "session_id": "sess-1", "source": "eval"},
            ]
        },
    )
    assert status == 201 and len(body["ids"]) == 4
    server.collector.flush()

    _, trace = _call(base, "GET", f"/v1/traces/{trace_id}")
    by_name = _names(trace["scores"])
    assert set(by_name) == {"helpfulness", "thumbs", "relevance"}
    assert by_name["helpfulness"] | {"id": None, "time_ns": None, "received_ns": None} == {
        "id": None,
        "trace_id": trace_id,
        "span_id": None,
        "session_id": None,
        "name": "helpfulness",
        "data_type": "numeric",
        "value": 0.9,
        "label": None,
        "comment": None,
        "source": "human",
        "author": "ana",
        "time_ns": None,
        "received_ns": None,
    }
    relevance = by_name["relevance"]  # the instrumentation's event: its span and session are the target
    assert (relevance["span_id"], relevance["session_id"], relevance["value"], relevance["label"]) == (
        span_id,
        "sess-1",
        0.25,
        "low",
    )
    assert (relevance["comment"], relevance["source"], relevance["data_type"]) == ("off topic", "eval", "numeric")

    _, span = _call(base, "GET", f"/v1/spans/{trace_id}/{span_id}")
    thumbs = _names(span["scores"])["thumbs"]
    expected = (1.0, "true", "boolean", "nice")
    assert (thumbs["value"], thumbs["label"], thumbs["data_type"], thumbs["comment"]) == expected

    _, session = _call(base, "GET", "/v1/sessions/sess-1")
    assert {s["name"] for s in session["scores"]} == {"tone", "relevance"}
    assert _names(session["scores"])["tone"]["label"] == "friendly"

    def listed(query: str) -> set[str]:
        status, page = _call(base, "GET", "/v1/traces?" + query)
        assert status == 200, page
        return {t["trace_id"] for t in page["traces"]}

    assert listed("score.helpfulness>=0.5") == {trace_id}
    assert listed("score.helpfulness<0.5") == {other_trace}
    assert listed("score.relevance=low") == {trace_id, other_trace}
    assert listed("score.thumbs=true&score.helpfulness>0.5") == {trace_id}
    assert listed("score.nothing>=0") == set()
    status, error = _call(base, "GET", "/v1/traces?score.tone>=friendly")
    assert status == 400 and "needs a number" in error["detail"]


def test_a_score_sent_again_with_its_id_replaces_the_first(server: EmbeddedServer) -> None:
    base = server.api_url
    trace_id = "ab" * 16
    score = {"id": "review-7", "name": "quality", "value": 2, "trace_id": trace_id}
    assert _call(base, "POST", "/v1/scores", score)[0] == 201
    server.collector.flush()
    assert _call(base, "POST", "/v1/scores", {**score, "value": 5, "comment": "revised"})[0] == 201
    server.collector.flush()
    _, listed = _call(base, "GET", f"/v1/scores?trace_id={trace_id}")
    assert [(s["id"], s["value"], s["comment"]) for s in listed["scores"]] == [("review-7", 5.0, "revised")]
    assert len(list((server.settings.data_dir / "scores").rglob("*.parquet"))) == 2  # both rows are kept


def test_scores_are_scoped_to_the_callers_project(server: EmbeddedServer) -> None:
    base = server.api_url
    trace_id = "cd" * 16
    assert _call(base, "POST", "/v1/scores", {"name": "q", "value": 1, "trace_id": trace_id}, "team-a")[0] == 201
    server.collector.flush()
    assert len(_call(base, "GET", f"/v1/scores?trace_id={trace_id}", project="team-a")[1]["scores"]) == 1
    assert _call(base, "GET", f"/v1/scores?trace_id={trace_id}", project="team-b")[1]["scores"] == []
    assert _call(base, "GET", "/v1/scores?name=q", project="team-a")[1]["scores"][0]["trace_id"] == trace_id


@pytest.mark.parametrize(
    ("score", "field"),
    [
        ({"name": "q", "value": 1}, "scores[0]"),
        ({"name": "q", "value": 1, "trace_id": "xyz"}, "scores[0].trace_id"),
        ({"name": "q", "value": 1, "session_id": "s", "span_id": "ab" * 8}, "scores[0].span_id"),
        ({"name": "", "value": 1, "trace_id": "ab" * 16}, "name"),
        ({"name": "q", "value": 1, "trace_id": "ab" * 16, "source": "robot"}, "source"),
    ],
)
def test_invalid_scores_are_400_naming_the_field(server: EmbeddedServer, score: dict[str, Any], field: str) -> None:
    status, body = _call(server.api_url, "POST", "/v1/scores", score)
    assert status == 400 and field in body["detail"], body


def test_score_filters_parse_as_the_query_string_splits_them() -> None:
    assert score_filters({"score.helpfulness>": "0.5"})[0] == parse_score_filter("score.helpfulness>=0.5")
    strict = score_filters({"score.x>0.5": ""})[0]
    assert (strict.name, strict.op, strict.value) == ("x", ">", 0.5)
    label = score_filters({"score.tone!": "rude", "attr.a": "b"})
    assert [(f.name, f.op, f.label) for f in label] == [("tone", "!=", "rude")]
    for bad in ("score.x", "score.x>=", "score.x>=nan", "score.x<abc"):
        with pytest.raises(InvalidFilter):
            parse_score_filter(bad)


@given(
    value=st.one_of(st.booleans(), st.floats(allow_nan=True), st.integers(-(10**6), 10**6), st.text(max_size=5)),
    label=st.one_of(st.none(), st.text(max_size=5)),
    declared=st.sampled_from([None, "boolean", "numeric", "categorical"]),
)
def test_any_evaluation_event_maps_to_a_valid_score_or_none(value: Any, label: str | None, declared: Any) -> None:
    attrs = {"gen_ai.evaluation.name": "n", "gen_ai.evaluation.score.value": value}
    if label is not None:
        attrs["gen_ai.evaluation.score.label"] = label
    if declared is not None:
        attrs["llmscope.score.data_type"] = declared
    row = score_row(attrs, 5, 6, ("ab" * 16, "cd" * 8, None))
    if row is None:
        return
    assert row["data_type"] in ("numeric", "boolean", "categorical")
    assert row["value"] is not None or row["label"]
    if row["value"] is not None:
        assert row["value"] == row["value"] and abs(row["value"]) != float("inf")
    if row["data_type"] == "boolean":
        assert (row["value"], row["label"]) in ((1.0, "true"), (0.0, "false"))
    again = score_row(attrs, 5, 7, ("ab" * 16, "cd" * 8, None))
    assert again is not None and again["id"] == row["id"]  # the same event is the same score


_STARTED = re.compile(r"API on (http://\S+) ")


def _start_child(data_dir: Path, flush_interval_s: str) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "llmscope_collector", "serve", "--data-dir", str(data_dir)]
    cmd += ["--otlp-grpc-port", "0", "--otlp-http-port", "0", "--api-port", "0"]
    env = {**os.environ, "LLMSCOPE_FLUSH_INTERVAL_S": flush_interval_s, "LLMSCOPE_AUTH": "off"}
    log = open(data_dir.parent / "collector.log", "a")  # noqa: SIM115  (closed with the process)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    log.close()
    assert proc.stdout is not None
    for line in proc.stdout:
        match = _STARTED.search(line)
        if match:
            return proc, match.group(1)
    proc.wait(10)
    raise AssertionError((data_dir.parent / "collector.log").read_text()[-3000:])


def test_an_acknowledged_score_survives_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    trace_id = "ef" * 16
    proc, base = _start_child(data_dir, "3600")  # no flush while it runs: an acked score is only in the WAL
    try:
        status, body = _call(base, "POST", "/v1/scores", {"name": "kept", "value": 0.5, "trace_id": trace_id})
        assert status == 201
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert not list(data_dir.glob("scores/**/*.parquet"))  # never flushed: only the WAL had it
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    proc, base = _start_child(data_dir, "0.2")
    try:
        deadline = time.monotonic() + 60
        scores: list[dict[str, Any]] = []
        while not scores:
            assert time.monotonic() < deadline, "the score was not replayed"
            scores = _call(base, "GET", f"/v1/scores?trace_id={trace_id}")[1]["scores"]
            time.sleep(0.2)
        assert [(s["id"], s["value"]) for s in scores] == [(body["ids"][0], 0.5)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
