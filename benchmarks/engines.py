"""The same queries on both engines over one generated store (gen_store.py): DuckDB and ClickHouse (chdb).

    python benchmarks/engines.py --data-dir /tmp/store [--samples 30] [--json out.json]

Per engine: the cold start (DuckDB: the first trace page, which loads the summary index; ClickHouse:
loading every object of the store into its tables, once: also as spans loaded per second; then the time
its background merges took to settle, `merges_settled`, before any query is timed), then p50/p95
of `--samples` waterfalls (trace ids sampled by seed) and of repeated trace pages, cost roll-ups by
model and day, and session pages, each with the median process CPU time of its calls beside (`*_cpu_p50`:
every engine thread of this process; steadier than wall time on a shared machine). For ClickHouse also
the bytes its tables take on disk per span (compressed, all datasets), the basis of the cluster sizing
in docs/scale.md. One process: chdb runs in it, like the API would. `run_suite.py --only engines` runs
it per store size into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from queries import PROJECT, pct, sample_trace_ids

from llmscope_collector.query.backend import QueryBackend
from llmscope_collector.query.clickhouse.client import ChdbClient
from llmscope_collector.query.clickhouse.loader import DirectorySource, Loader
from llmscope_collector.query.clickhouse.store import ClickHouseStore
from llmscope_collector.query.filters import TimeRange, TraceQuery
from llmscope_collector.query.store import TraceStore


def _ms(fn: Callable[[], Any]) -> float:
    return _timed(fn)[0]


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall ms, process CPU ms) of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - start) * 1000.0, (time.process_time() - cpu) * 1000.0


def _figures(name: str, timed: list[tuple[float, float]]) -> dict[str, float]:
    walls, cpus = [w for w, _ in timed], [c for _, c in timed]
    return {f"{name}_p50": pct(walls, 0.5), f"{name}_p95": pct(walls, 0.95), f"{name}_cpu_p50": pct(cpus, 0.5)}


def measure(store: QueryBackend, ids: list[str], samples: int) -> dict[str, float]:
    figures = _figures("waterfall", [_timed(lambda t=trace_id: store.get_trace(t, PROJECT)) for trace_id in ids])
    calls: dict[str, Callable[[], Any]] = {
        "trace_list": lambda: store.list_traces(PROJECT, TraceQuery(limit=50)),
        "cost_rollup_model_day": lambda: store.costs(PROJECT, ["model", "day"], TimeRange(), {}),
        "session_list": lambda: store.list_sessions(PROJECT, TimeRange(), None, 50, None),
    }
    for name, fn in calls.items():
        figures.update(_figures(name, [_timed(fn) for _ in range(max(3, samples // 3))]))
    return figures


def _settled(client: ChdbClient, timeout_s: float = 900.0) -> None:
    """Wait for the background merges of the load (a steady state: a bulk load leaves many parts, and merges
    running in this process would be counted in the queries' CPU time)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not client.rows("SELECT count() AS n FROM system.merges WHERE database = currentDatabase()", {})[0]["n"]:
            return
        time.sleep(2)


def run(data_dir: Path, samples: int, seed: int) -> dict[str, Any]:
    ids = sample_trace_ids(data_dir, samples, seed)
    duck = TraceStore(data_dir)
    try:
        cold = _ms(lambda: duck.list_traces(PROJECT, TraceQuery(limit=50)))
        duckdb_figures = {"cold_start": cold, **measure(duck, ids, samples)}
        spans = duck.counts().spans
    finally:
        duck.close()
    keep = os.environ.get("LLMSCOPE_ENGINES_CHDB_DIR")  # keep the loaded tables there (one subdir per store)
    with tempfile.TemporaryDirectory() as tmp:
        client = ChdbClient(Path(keep) / data_dir.name if keep else Path(tmp) / "chdb")
        try:
            client.use("llmscope")
            loader = Loader(client, DirectorySource(data_dir))
            cold = _ms(loader.refresh)
            settle = _ms(lambda: _settled(client))
            ch = ClickHouseStore(client, loader)
            ch_figures = {"cold_start": cold, "merges_settled": settle, **measure(ch, ids, samples)}
            parts = client.rows(
                "SELECT table, sum(bytes_on_disk) AS bytes, sum(rows) AS n FROM system.parts "
                "WHERE active AND database = currentDatabase() GROUP BY table",
                {},
            )
        finally:
            client.close()
    tables = {r["table"]: {"bytes": int(r["bytes"]), "rows": int(r["n"])} for r in parts}
    total = sum(t["bytes"] for t in tables.values())
    return {
        "spans": spans,
        "objects": len(loader.loaded),
        "clickhouse_load_s": ch_figures["cold_start"] / 1000.0,
        "clickhouse_load_spans_per_s": spans / (ch_figures["cold_start"] / 1000.0) if spans else None,
        "duckdb": duckdb_figures,
        "clickhouse": ch_figures,
        "clickhouse_tables": tables,
        "clickhouse_bytes_per_span": total / spans if spans else None,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Store: {result['spans']:,} spans in {result['objects']} objects; loaded into ClickHouse in "
        f"{result['clickhouse_load_s']:,.0f} s ({result['clickhouse_load_spans_per_s']:,.0f} spans/s).",
        "",
        "| Query (ms) | DuckDB | ClickHouse (chdb) |",
        "|---|---|---|",
    ]
    for name, value in result["duckdb"].items():
        lines.append(f"| {name} | {value:,.1f} | {result['clickhouse'][name]:,.1f} |")
    lines.append("")
    per = result["clickhouse_bytes_per_span"]
    lines.append(f"ClickHouse tables on disk: {per:,.0f} B/span" if per else "")
    for table, info in sorted(result["clickhouse_tables"].items()):
        lines.append(f"- {table}: {info['bytes']:,} B, {info['rows']:,} rows")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run(args.data_dir, args.samples, args.seed)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
