"""Query latencies on a generated store (see gen_store.py): in-process `TraceStore` and over HTTP.

    python benchmarks/queries.py --data-dir /tmp/store [--runs 3] [--samples 30] [--no-http] [--json out.json]

Per run: a fresh `TraceStore` (its first call loads the trace summary index: reported as `cold`; its
first cost roll-up sums the span files into the cost partials: `cost_partials_cold_load`), then
`--samples` calls of each query; a run's figure is the p50 (and p95) of its samples, and the
reported figure is the median of the runs' figures with their min-max. Trace ids are sampled from
the store by seed, so every run and every machine asks for the same traces.

Waterfalls: the first lookup of each sampled trace is `waterfall_first`, its day's span file read for the
first time by a lookup, a second lookup of each is `waterfall`, the steady state of a server that has served
its days' files once. Both in process and over HTTP (whose server lives across the runs). Each starts after a
page of the trace list, as a user's first click does; a store warms its newest days' footers from its first
read of the list on (`query.footers`: unwarmed, DuckDB parses a day's footer on the first lookup, ~8 ms more
at 10M spans), so the HTTP figures start `THINK_S` after the list, the time a click takes at the least (in
process, the cost roll-ups' cold load comes between).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import start_server, stop_server

from llmscope_collector.alerts.metrics import MetricReader
from llmscope_collector.alerts.rules import Rule
from llmscope_collector.query.db import Database
from llmscope_collector.query.filters import TimeRange, TraceQuery
from llmscope_collector.query.store import TraceStore

PROJECT = "default"
THINK_S = 1.0  # between the trace list and the first waterfall over HTTP: a user's click


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(per_run: list[float], unit: str = "ms") -> dict[str, Any]:
    return {
        "median": statistics.median(per_run),
        "min": min(per_run),
        "max": max(per_run),
        "runs": per_run,
        "unit": unit,
    }


def sample_trace_ids(data_dir: Path, n: int, seed: int) -> list[str]:
    """`n` trace ids of the store, the same for a given store and seed."""
    glob = str(data_dir / "traces" / "project=*" / "date=*" / "*.parquet")
    ids = [r[0] for r in duckdb.sql(f"SELECT DISTINCT trace_id FROM read_parquet('{glob}') ORDER BY 1").fetchall()]  # noqa: S608
    return random.Random(seed).sample(ids, min(n, len(ids)))


def store_end(data_dir: Path) -> float:
    glob = str(data_dir / "traces" / "project=*" / "date=*" / "*.parquet")
    # The last root span start (a trace running past midnight has a summary delta dated after it, which would put
    # "now" in a new, empty month and make the month-to-date budget rule read nothing).
    rows = duckdb.sql(f"SELECT max(start_ns) FROM read_parquet('{glob}') WHERE has_root").fetchall()  # noqa: S608
    return float(rows[0][0]) / 1e9


def alert_rules() -> list[Rule]:
    def rule(name: str, metric: str, window: str, threshold: float) -> Rule:
        return Rule(
            name=name,
            metric=metric,
            window=window,
            alert_threshold=threshold,  # type: ignore[arg-type]
            id=f"bench-{name}",
            project=PROJECT,
            created_at=0.0,
            updated_at=0.0,
        )

    return [
        rule("cost-1h", "cost_usd", "1h", 100.0),
        rule("p95-latency-5m", "latency_p95", "5m", 5000.0),
        rule("error-rate-1h", "error_rate", "1h", 0.05),
        rule("budget-month", "cost_usd", "month", 10000.0),
    ]


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def _repeat(timed: Callable[[], float], samples: int, budget_ms: float = 5000.0) -> list[float]:
    """Timings of `samples // 3` calls (at least 3), fewer when a call is slow (about `budget_ms` per run)."""
    times = [timed()]
    reps = max(3, min(max(3, samples // 3), int(budget_ms / max(times[0], 1e-3))))
    times += [timed() for _ in range(reps - 1)]
    return times


def query_calls(data_dir: Path, ids: list[str], now: float) -> tuple[TraceStore, dict[str, Callable[[], Any]]]:
    """A fresh store and one callable per query (the caller closes the store)."""
    store = TraceStore(data_dir)
    reader = MetricReader(data_dir, Database())
    calls: dict[str, Callable[[], Any]] = {
        "waterfall": lambda: store.get_trace(ids[0], PROJECT),
        "trace_list": lambda: store.list_traces(PROJECT, TraceQuery(limit=50)),
        "cost_rollup_model_day": lambda: store.costs(PROJECT, ["model", "day"], TimeRange(), {}),
        "session_list": lambda: store.list_sessions(PROJECT, TimeRange(), None, 50, None),
        **{f"alert_{r.name}": (lambda r=r: reader.observe(r, now)) for r in alert_rules()},
    }
    return store, calls


def in_process(data_dir: Path, runs: int, samples: int, seed: int) -> dict[str, Any]:
    """Figures of the in-process queries."""
    ids = sample_trace_ids(data_dir, samples, seed)
    now = store_end(data_dir)
    per_run: dict[str, list[float]] = {}
    for _ in range(runs):
        store, calls = query_calls(data_dir, ids, now)
        per_run.setdefault("index_cold_load", []).append(_timed(calls["trace_list"]))
        # The first roll-up of a fresh store sums every span file into the cost partials (query.partials);
        # reported on its own so that the samples below are the steady state.
        per_run.setdefault("cost_partials_cold_load", []).append(_timed(calls["cost_rollup_model_day"]))
        for name in ("waterfall_first", "waterfall"):
            waterfalls = [_timed(lambda t=t, s=store: s.get_trace(t, PROJECT)) for t in ids]
            per_run.setdefault(f"{name}_p50", []).append(pct(waterfalls, 0.5))
            per_run.setdefault(f"{name}_p95", []).append(pct(waterfalls, 0.95))
        for name, fn in calls.items():
            if name == "waterfall":
                continue
            times = _repeat(lambda f=fn: _timed(f), samples)
            per_run.setdefault(f"{name}_p50", []).append(pct(times, 0.5))
            per_run.setdefault(f"{name}_p95", []).append(pct(times, 0.95))
        store.close()
    return {name: summary(values) for name, values in per_run.items()}


def over_http(data_dir: Path, runs: int, samples: int, seed: int) -> dict[str, Any]:
    """The same queries through `llmscope serve` on this store (client-side latency, keep-alive)."""
    ids = sample_trace_ids(data_dir, samples, seed)
    env = {"LLMSCOPE_COMPACTION_INTERVAL_S": "0", "LLMSCOPE_RETENTION_DAYS": "0", "LLMSCOPE_ALERTS_TICK_S": "0"}
    server = start_server(data_dir, env)
    per_run: dict[str, list[float]] = {}
    try:
        host, port = server.api.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=120)

        def get(path: str) -> float:
            start = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"GET {path}: {resp.status} {body[:300]!r}")
            return (time.perf_counter() - start) * 1000.0

        get("/v1/traces?limit=50")  # loads the summary index once, like a first page view
        time.sleep(THINK_S)
        first = [get(f"/v1/traces/{t}") for t in ids]  # the server reads each day's file for the first time
        per_run["waterfall_first_p50"] = [pct(first, 0.5)]
        per_run["waterfall_first_p95"] = [pct(first, 0.95)]
        for _ in range(runs):
            waterfalls = [get(f"/v1/traces/{t}") for t in ids]
            per_run.setdefault("waterfall_p50", []).append(pct(waterfalls, 0.5))
            per_run.setdefault("waterfall_p95", []).append(pct(waterfalls, 0.95))
            for name, path in (
                ("trace_list", "/v1/traces?limit=50"),
                ("cost_rollup_model_day", "/v1/costs?group_by=model,day"),
                ("session_list", "/v1/sessions?limit=50"),
            ):
                times = _repeat(lambda p=path: get(p), samples)
                per_run.setdefault(f"{name}_p50", []).append(pct(times, 0.5))
                per_run.setdefault(f"{name}_p95", []).append(pct(times, 0.95))
        conn.close()
    finally:
        stop_server(server)
    return {name: summary(values) for name, values in per_run.items()}


class _TimedCursor:
    """A DuckDB cursor that records how long each `execute` takes, and which SQL it ran."""

    def __init__(self, cursor: Any, log: list[tuple[float, str]]) -> None:
        self._cursor = cursor
        self._log = log

    def execute(self, query: str, *args: Any) -> Any:
        start = time.perf_counter()
        result = self._cursor.execute(query, *args)
        self._log.append((time.perf_counter() - start, query))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def sql_breakdown(fn: Callable[[], Any], calls: int = 3) -> str:
    """Which SQL statements a query runs and how long DuckDB spends executing each (named after `query.sql`)."""
    from llmscope_collector.query import db as db_module
    from llmscope_collector.query import sql as sql_module

    names = {v: k for k, v in vars(sql_module).items() if isinstance(v, str) and k.isupper()}
    log: list[tuple[float, str]] = []
    original = db_module.Database.cursor
    db_module.Database.cursor = lambda self: _TimedCursor(original(self), log)  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        total = time.perf_counter() - start
    finally:
        db_module.Database.cursor = original  # type: ignore[method-assign]
    by_sql: dict[str, list[float]] = {}
    for elapsed, query in log:
        by_sql.setdefault(query, []).append(elapsed)
    lines = [f"{calls} calls, {total * 1000 / calls:.1f} ms per call; DuckDB execute time per statement:"]
    for query, times in sorted(by_sql.items(), key=lambda kv: -sum(kv[1])):
        label = names.get(query) or "dynamic: " + " ".join(query.split())[:150]
        share = 100 * sum(times) / max(total, 1e-9)
        lines.append(f"{share:5.1f}%  {sum(times) * 1000 / calls:8.1f} ms/call  x{len(times) // calls}  {label}")
    return "\n".join(lines)


def profile_top(fn: Callable[[], Any], lines: int = 30) -> str:
    """The top of a pyinstrument profile of `fn` (called a few times), or why there is none."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "(pyinstrument not installed)"
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(3):
        fn()
    profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    return "\n".join(text.splitlines()[:lines])


def run(data_dir: Path, runs: int, samples: int, seed: int, http: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"in_process": in_process(data_dir, runs, samples, seed)}
    if http:
        out["http"] = over_http(data_dir, runs, samples, seed)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--profile", help="print the pyinstrument profile of one query (e.g. waterfall)")
    args = parser.parse_args(argv)
    if args.profile:
        ids = sample_trace_ids(args.data_dir, 3, args.seed)
        store, calls = query_calls(args.data_dir, ids, store_end(args.data_dir))
        calls[args.profile]()  # warm: the summary index is loaded
        print(sql_breakdown(calls[args.profile]))
        print()
        print(profile_top(calls[args.profile], 40))
        store.close()
        return 0
    result = run(args.data_dir, args.runs, args.samples, args.seed, not args.no_http)
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
