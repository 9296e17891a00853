"""Sessions over real HTTP: the list (metrics, order, cursor, filters), one session with its traces,
and DELETE, which must erase the session's rows from the Parquet files themselves."""

from __future__ import annotations

import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from llmscope_collector.server import EmbeddedServer
from tests.collector.query.conftest import query_settings
from tests.collector.query.dataset import GenTrace, export, generate, get, ok
from tests.collector.query.test_rollups import _quantile

SEED = 4242


@pytest.fixture(scope="module")
def corpus() -> list[GenTrace]:
    return generate(SEED, 90)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, corpus: list[GenTrace]) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(query_settings(tmp_path_factory)) as srv:
        export(srv, corpus)
        yield srv


def _sessions(corpus: list[GenTrace]) -> dict[str, list[GenTrace]]:
    by: dict[str, list[GenTrace]] = defaultdict(list)
    for trace in corpus:
        if trace.session:
            by[trace.session].append(trace)
    return by


def _check_summary(got: dict[str, Any], traces: list[GenTrace]) -> None:
    assert got["trace_count"] == len(traces)
    assert got["first_activity_unix_nano"] == min(t.start_ns for t in traces)
    assert got["last_activity_unix_nano"] == max(t.end_ns for t in traces)
    assert got["span_count"] == sum(len(t.spans) for t in traces)
    assert got["llm_calls"] == sum(len(t.llm()) for t in traces)
    assert got["total_tokens"] == sum(t.total_tokens for t in traces)
    assert got["error_count"] == sum(t.error_count for t in traces)
    assert got["error_traces"] == sum(1 for t in traces if t.error_count)
    known = [t.cost for t in traces if t.cost is not None]
    unknown = sum(1 for t in traces for s in t.llm() if s.model == "mystery-model-9")
    assert got["cost_unknown"] == unknown
    if known:
        assert abs(Decimal(str(got["cost_usd"])) - sum(known, Decimal(0))) < Decimal("1e-9")
    durations = [float(t.duration_ns) for t in traces]
    assert got["latency"]["p50_ms"] == pytest.approx(_quantile(durations, 0.5) / 1e6)  # type: ignore[operator]
    assert got["latency"]["p95_ms"] == pytest.approx(_quantile(durations, 0.95) / 1e6)  # type: ignore[operator]


def test_session_list_metrics_order_and_pages(server: EmbeddedServer, corpus: list[GenTrace]) -> None:
    want = _sessions(corpus)
    listed: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        body = ok(server, "/v1/sessions?" + urllib.parse.urlencode(query))
        listed.extend(body["sessions"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [s["session_id"] for s in listed] == sorted(
        want, key=lambda k: (max(t.end_ns for t in want[k]), k), reverse=True
    )
    for row in listed:
        _check_summary(row, want[row["session_id"]])


def test_session_list_filters(server: EmbeddedServer, corpus: list[GenTrace]) -> None:
    """Filters pick sessions (one of their traces matches); each row still describes the whole session."""
    middle = sorted(t.start_ns for t in corpus)[45]
    cases: list[tuple[str, Callable[[GenTrace], bool]]] = [
        ("user=u-1", lambda t: t.user == "u-1"),
        (f"from={middle}", lambda t: t.end_ns >= middle),
        (f"to={middle}", lambda t: t.start_ns < middle),
        (f"to={middle}&user=u-2", lambda t: t.start_ns < middle and t.user == "u-2"),
    ]
    sessions = _sessions(corpus)
    for query, keep in cases:
        body = ok(server, f"/v1/sessions?{query}&limit=100")
        want = {t.session for t in corpus if t.session and keep(t)}
        assert {s["session_id"] for s in body["sessions"]} == want, query
        for row in body["sessions"]:
            _check_summary(row, sessions[row["session_id"]])


def test_one_session_with_its_traces_in_order(server: EmbeddedServer, corpus: list[GenTrace]) -> None:
    traces = _sessions(corpus)["sess-2"]
    body = ok(server, "/v1/sessions/sess-2")
    _check_summary(body["session"], traces)
    assert [t["trace_id"] for t in body["traces"]] == [
        t.trace_id for t in sorted(traces, key=lambda t: (t.start_ns, t.trace_id))
    ]
    assert body["traces_truncated"] is False
    short = ok(server, "/v1/sessions/sess-2?limit=2")
    assert len(short["traces"]) == 2 and short["traces_truncated"] is True
    status, err = get(server, "/v1/sessions/never-seen")
    assert status == 404 and err["error"] == "not_found"


def _rows_of(data_dir: Path, dataset: str, trace_ids: set[str]) -> int:
    files = list((data_dir / dataset).glob("project=*/date=*/*.parquet"))
    assert files, dataset
    count = 0
    for path in files:
        column = pq.read_table(path, columns=["trace_id"]).column("trace_id").to_pylist()
        count += sum(1 for tid in column if tid in trace_ids)
    return count


def _content_hashes(data_dir: Path) -> set[str]:
    hashes: set[str] = set()
    for path in (data_dir / "content").glob("project=*/date=*/*.parquet"):
        hashes.update(pq.read_table(path, columns=["hash"]).column("hash").to_pylist())
    return hashes


def test_delete_session_erases_its_rows_from_parquet(server: EmbeddedServer, corpus: list[GenTrace]) -> None:
    """Runs last in this module: it deletes sess-5."""
    victims = _sessions(corpus)["sess-5"]
    ids = {t.trace_id for t in victims}
    others = {t.trace_id for t in corpus} - ids
    data_dir = server.settings.data_dir
    assert _rows_of(data_dir, "spans", ids) == sum(len(t.spans) for t in victims)
    assert _rows_of(data_dir, "traces", ids) > 0
    before_other_spans = _rows_of(data_dir, "spans", others)
    victim_texts = {s.text for t in victims for s in t.spans if s.text}
    kept_texts = {s.text for t in corpus if t.trace_id in others for s in t.spans if s.text}
    hashes_before = _content_hashes(data_dir)

    status, report = get(server, "/v1/sessions/sess-5", method="DELETE")
    assert status == 200, report
    assert report["session_id"] == "sess-5" and report["traces_deleted"] == len(victims)
    assert report["spans_deleted"] == sum(len(t.spans) for t in victims) and report["files_rewritten"] > 0

    # The files no longer hold the rows: spans, summaries, and content no other span references.
    assert _rows_of(data_dir, "spans", ids) == 0 and _rows_of(data_dir, "traces", ids) == 0
    assert _rows_of(data_dir, "spans", others) == before_other_spans
    hashes_after = _content_hashes(data_dir)
    only_victims = victim_texts - kept_texts
    assert len(hashes_before) - len(hashes_after) == report["content_items_deleted"] >= len(only_victims) > 0
    # ... and the API agrees.
    assert get(server, "/v1/sessions/sess-5")[0] == 404
    assert get(server, "/v1/sessions/sess-5", method="DELETE")[0] == 404
    for trace_id in list(ids)[:5]:
        assert get(server, f"/v1/traces/{trace_id}")[0] == 404
    listed = {t["trace_id"] for t in ok(server, "/v1/traces?limit=1000")["traces"]}
    assert listed == others
    assert "sess-5" not in {s["session_id"] for s in ok(server, "/v1/sessions?limit=100")["sessions"]}
    assert not ok(server, "/v1/traces?q=" + urllib.parse.quote(next(iter(only_victims))))["traces"]
    costs = ok(server, "/v1/costs?group_by=session")
    assert "sess-5" not in {g["key"]["session"] for g in costs["groups"]}
    assert ok(server, "/health?traces=true")["traces"] == len(others)


def test_new_spans_after_deletion_are_listed(server: EmbeddedServer) -> None:
    later = generate(SEED + 1, 5)
    export(server, later)
    listed = {t["trace_id"] for t in ok(server, "/v1/traces?limit=1000")["traces"]}
    assert {t.trace_id for t in later} <= listed
