"""Smoke test of the benchmark tooling at tiny sizes: every benchmark script imports and runs.

No timings are asserted (benchmarks only run in `nox -s bench`); this only keeps the scripts working.
They are imported as ordinary modules: a script broken by a change elsewhere fails here (it must not
turn into a skip).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import engines  # noqa: E402
import export  # noqa: E402
import gen_store  # noqa: E402
import hotpaths  # noqa: E402
import otlp_traces  # noqa: E402
import queries  # noqa: E402
import sdk_overhead  # noqa: E402
import stitch_window  # noqa: E402


def test_export_bench_exports_every_span_of_a_store(tmp_path: Path) -> None:
    import json

    import run_suite

    data = tmp_path / "store"
    spans = gen_store.generate(data, 300, days=2, workers=0, flush_rows=100, compact=False)["spans"]
    out = tmp_path / "export.json"
    assert export.main(["--data-dir", str(data), "--formats", "parquet,csv", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    for fmt in ("parquet", "csv"):
        assert figures["formats"][fmt]["all"]["rows"] == spans
        assert 0 < figures["formats"][fmt]["quarter"]["rows"] < spans
        assert figures["formats"][fmt]["all"]["server_peak_rss_mb"] > 0
    assert "| parquet |" in "\n".join(run_suite._render_export(figures))


def test_engines_bench_runs_both_engines_and_renders(tmp_path: Path) -> None:
    import run_suite

    data = tmp_path / "store"
    spans = gen_store.generate(data, 300, days=2, workers=0, flush_rows=100)["spans"]
    result = engines.run(data, samples=3, seed=1)
    assert result["spans"] == spans and result["clickhouse_bytes_per_span"] > 0
    for engine in ("duckdb", "clickhouse"):
        assert {"trace_list_p50", "cost_rollup_model_day_cpu_p50", "session_list_p95"} <= set(result[engine])
    text = "\n".join(run_suite._render_engines({str(spans): {**result, "store": {}}}))
    assert "| trace_list p50 / p95 |" in text and "spans/s" in text
    # A merged report keeps the last report's own notes, not the standing ones (written afresh) nor superseded ones.
    assert run_suite._kept_note("a note given with --note") and run_suite._kept_note("Merged report: ...")
    assert not run_suite._kept_note(run_suite.STANDING_NOTES[0])
    assert not run_suite._kept_note("ClickHouse as the query engine (issue 18, 1M only)")


def test_trace_generator_is_deterministic() -> None:
    def payloads() -> list[bytes]:
        return [r.SerializeToString() for r, _ in otlp_traces.requests(5, 6, 3, 1_700_000_000 * 10**9, 60.0)]

    first = payloads()
    assert first == payloads() and len(first) == 2


def test_store_generator_and_query_bench(tmp_path: Path) -> None:
    data = tmp_path / "store"
    result = gen_store.generate(data, 300, days=2, workers=0, flush_rows=100)
    assert result["spans"] >= 250
    figures = queries.in_process(data, runs=1, samples=2, seed=1)
    assert {"waterfall_p95", "trace_list_p50", "cost_rollup_model_day_p50", "session_list_p50"} <= set(figures)
    store = queries.TraceStore(data)
    try:
        (trace_id,) = queries.sample_trace_ids(data, 1, seed=1)
        waterfall = store.get_trace(trace_id, "default")
        assert waterfall is not None and waterfall.spans
    finally:
        store.close()


def test_store_generator_compacts_an_existing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    data = tmp_path / "store"
    gen_store.generate(data, 300, days=2, workers=0, flush_rows=100, compact=False)
    flushed = len(list((data / "spans").rglob("*.parquet")))
    assert gen_store.main(["--data-dir", str(data), "--compact-only"]) == 0
    files_in, files_out = json.loads(capsys.readouterr().out)["compaction_files_in_out"]
    assert files_in == flushed > files_out == len(list((data / "spans").rglob("*.parquet")))


def test_hot_path_bench_runs_against_the_last_commit(capsys: pytest.CaptureFixture[str]) -> None:
    hotpaths.main(["--requests", "1", "--traces-per-request", "3", "--repeat", "1", "--baseline", "HEAD"])
    out = capsys.readouterr().out
    assert "decode_payload (whole span, python decoder)" in out and "at HEAD:" in out and "% less now" in out
    assert "decode stages" in out and "rows → Arrow tables" in out


def test_stitch_window_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    stitch_window.main(["--traces", "40", "--repeat", "1"])
    out = capsys.readouterr().out
    assert "current: hook" in out and "B/LLM span" in out


def test_exporter_cost_bench_sends_through_both_protocols() -> None:
    result = sdk_overhead.export_cpu(batches=1, rounds=1)
    assert result["spans_per_round"] == 512
    assert set(result["cpu_us_per_span"]) == {"grpc", "http/protobuf"}
    assert all(isinstance(v, float) for v in result["cpu_us_per_span"].values())
