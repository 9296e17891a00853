# ruff: noqa: RUF001 - the report it checks is typeset: multiplication signs for ratios
"""The Phoenix-beside-llmscope ingest bench (`benchmarks/peer_ingest.py`) without Phoenix: its fixed load
(every request once, span ids never repeated), its stored-span count read from a live SQLite database in WAL
mode, the figures and ratios it derives, the suite's rendering of them, and one small llmscope-only run.

No timings are asserted; Phoenix itself runs only in `nox -s bench` (its venv is ~600 MB).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import ingest  # noqa: E402
import peer_ingest  # noqa: E402
import run_suite  # noqa: E402


def _span_ids(body: bytes) -> list[bytes]:
    request = ExportTraceServiceRequest.FromString(body)
    return [s.span_id for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]


def test_fixed_load_sends_each_request_once_and_never_repeats_a_span_id() -> None:
    bodies, counts = peer_ingest.fixed_requests(700, 10, seed=3)
    warm_bodies, _ = peer_ingest.fixed_requests(100, 10, seed=4)
    assert sum(counts) >= 700 and sum(counts[:-1]) < 700  # just enough requests
    sent: list[bytes] = []
    lock = threading.Lock()

    def make(_: int) -> ingest.Sender:
        def send(body: bytes) -> bool:
            with lock:
                sent.append(body)
            return True

        return send

    load, counter = ingest.Load(), ingest.Counter()
    pool = ingest.drive(make, bodies, counts, 4, hex_marker=False, load=load, counter=counter, limit=len(bodies))
    for t in pool:
        t.join(30)
    assert not any(t.is_alive() for t in pool)
    assert len(sent) == len(bodies) and sum(d[2] for d in load.done) == sum(counts)
    ids = [i for body in sent for i in _span_ids(body)]
    assert len(ids) == len(set(ids)) == sum(counts)
    assert not set(ids) & {i for body in warm_bodies for i in _span_ids(body)}  # the warm-up's are other spans
    traces = {ExportTraceServiceRequest.FromString(b).resource_spans[0].scope_spans[0].spans[0].trace_id for b in sent}
    assert len(traces) == len(sent)  # each send carries its own trace ids (the marker swapped per send)


def test_phoenix_stored_counts_rows_committed_by_another_connection(tmp_path: Path) -> None:
    db = tmp_path / "phoenix.db"
    count = peer_ingest.phoenix_stored(db)
    assert count() == 0  # no database yet: nothing stored
    writer = sqlite3.connect(db)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("CREATE TABLE spans (id INTEGER PRIMARY KEY, span_id TEXT UNIQUE)")
    writer.executemany("INSERT INTO spans (span_id) VALUES (?)", [(f"s{i}",) for i in range(7)])
    writer.commit()
    assert count() == 7
    writer.execute("INSERT INTO spans (span_id) VALUES ('late')")  # not committed: not stored
    assert count() == 7
    writer.commit()
    assert count() == 8
    writer.close()
    assert peer_ingest.database_bytes(db) == sum(p.stat().st_size for p in tmp_path.glob("phoenix.db*"))


def _run(stored_at: list[tuple[float, int]], sent: int, cpu_s: float, rss: float) -> peer_ingest.FixedLoadResult:
    return peer_ingest.FixedLoadResult(
        spans_sent=sent,
        spans_acked=sent,
        spans_stored=stored_at[-1][1],
        seconds_to_acked=stored_at[0][0],
        seconds_to_stored=stored_at[-1][0],
        capped=stored_at[-1][1] < sent,
        progress=stored_at,
        slowest_read_s=0.01,
        refused=0,
        errors=[],
        cpu_s=cpu_s,
        peak_rss_mb=rss,
        main_process_peak_rss_mb=rss,
        peak_pss_mb=rss,
        idle_rss_mb=rss / 2,
        idle_pss_mb=rss / 2,
    )


def test_figures_and_ratios_follow_from_the_progress() -> None:
    fast = peer_ingest.summarize(_run([(0.5, 0), (1.0, 400), (2.0, 1000)], 1000, 0.1, 300.0))
    slow = peer_ingest.summarize(_run([(1.0, 0), (5.0, 100), (45.0, 900), (50.0, 1000)], 1000, 10.0, 600.0))
    assert fast["stored_spans_per_s"] == 1000 / 2.0 and slow["stored_spans_per_s"] == 1000 / 50.0
    assert slow["stored_spans_per_s_middle"] == (900 - 100) / (45.0 - 5.0)  # 10% seen at 5 s, 90% at 45 s
    assert fast["stored_spans_per_s_middle"] == (1000 - 400) / (2.0 - 1.0)
    assert slow["cpu_us_per_stored_span"] == 10.0 / 1000 * 1e6
    r = peer_ingest.ratios(fast, slow)
    assert r["stored_spans_per_s"] == 25.0 and r["peak_rss_mb"] == 0.5
    assert r["cpu_us_per_stored_span"] == fast["cpu_us_per_stored_span"] / slow["cpu_us_per_stored_span"]
    capped = peer_ingest.summarize(_run([(1.0, 0), (600.0, 50)], 1000, 1.0, 1.0))
    assert capped["capped"] and capped["stored_spans_per_s_middle"] is None  # never reached 10%


def test_the_suite_renders_phoenix_beside_the_ingest_figures() -> None:
    llm = peer_ingest.summarize(_run([(0.1, 0), (0.5, 500), (1.0, 2000)], 2000, 0.2, 400.0))
    phx = peer_ingest.summarize(_run([(2.0, 0), (5.0, 300), (20.0, 2000)], 2000, 12.0, 900.0))
    phx.update(version=peer_ingest.PHOENIX_VERSION, startup_s=40.0, database_bytes_per_span=5000.0)
    cfg = {"spans_sent": 2000, "requests": 10, "spans_per_request": 200.0, "proto_bytes_per_request": 300_000}
    cfg.update(protocol="grpc", threads=8, warmup_spans_sent=400, phoenix_version=peer_ingest.PHOENIX_VERSION)
    peers = {"config": cfg, "llmscope": llm, "phoenix": phx, "ratios": peer_ingest.ratios(llm, phx)}
    ingest_part = {"grpc": {"written_spans_per_s": {"median": 30_000.0}}}
    text = "\n".join(run_suite._render_ingest_peers(json.loads(json.dumps(peers)), ingest_part))
    assert f"| Spans/s stored, end to end (2,000 spans: first send → all stored) | 2,000 | 100 | {20:,.2f}× |" in text
    assert f"**{30_000 / 100:,.0f}×**" in text  # sustained llmscope over Phoenix's stored rate
    row = run_suite._ingest_peer_summary(peers, ingest_part)
    assert row is not None and row[1] == "300×"
    failed = run_suite._render_ingest_peers({"error": "failed: timeout"}, ingest_part)
    assert any("Not measured: failed: timeout" in line for line in failed)
    assert run_suite._ingest_peer_summary({"error": "x"}, ingest_part) is None


def test_llmscope_alone_through_the_peer_harness(tmp_path: Path) -> None:
    out = tmp_path / "peers.json"
    args = ["--systems", "llmscope", "--spans", "300", "--warmup-spans", "50", "--threads", "2", "--json", str(out)]
    assert peer_ingest.main(args) == 0
    result = json.loads(out.read_text())
    llm = result["llmscope"]
    assert "error" not in llm, llm
    assert llm["spans_stored"] == llm["spans_acked"] == llm["spans_sent"] == result["config"]["spans_sent"] >= 300
    assert not llm["capped"] and llm["peak_rss_mb"] >= llm["idle_rss_mb"] > 0
    assert "phoenix" not in result and "ratios" not in result
