# ruff: noqa: RUF001 - the report is typeset: en dashes for ranges, multiplication signs for ratios
"""The benchmark suite behind `nox -s bench`: ingest, SDK overhead, queries; writes docs/benchmarks.{md,json}.

    python benchmarks/run_suite.py [--quick] [--only ingest,sdk,queries,proxy,install,export] [--sizes 1000000,10000000]

Every part runs in its own child process (its CPU and memory are its own). Each figure is the median
of several runs with their min-max; comparisons are ratios of figures measured in the same run.
Targets missed get the top of a profile next to them (py-spy for the collector under load,
pyinstrument for queries and the SDK). Generated stores are cached under --store-dir by size and seed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable

TARGETS: dict[str, tuple[str, float, str]] = {  # key: (comparison, value, what the target says)
    "ingest_spans_per_s": (">=", 100_000, "≥ 100k spans/s sustained, WAL on, 2 cores (issue 4)"),
    "ingest_peak_rss_mb": ("<=", 300, "RSS ≤ 300 MB (issue 4)"),
    "ingest_idle_rss_mb": ("<=", 150, "idle RSS ≤ 150 MB (issue 22)"),
    "sdk_added_us": ("<=", 20, "≤ 20 µs added per call (issue 3)"),
    "sdk_added_instructions": ("<=", 100_000, "≤ 100k instructions added per call (issue 3)"),
    "waterfall_p95_ms": ("<=", 15, "waterfall p95 ≤ 15 ms at 10M spans (issue 22; was 50, issue 5)"),
    "trace_list_ms": ("<=", 100, "trace list page ≤ 100 ms (issue 5)"),
    "cost_rollup_ms": ("<=", 300, "cost roll-up by model×day ≤ 300 ms (issue 5)"),
    "session_list_ms": ("<=", 100, "session list ≤ 100 ms (issue 5)"),
    "proxy_added_p50_ms": ("<=", 1, "capture proxy: ≤ 1 ms p50 added per call (issue 20)"),
    "proxy_ttft_added_ms": ("<=", 1, "capture proxy: time to first token unchanged within 1 ms (issue 20)"),
}

STANDING_NOTES = [
    "Ingest A/B, session 32 (2026-12-04 00:13-00:18 UTC, nothing else running; `benchmarks/ingest.py --no-http "
    "--runs 1 --seconds 15`, the session's start `2c03c31` then main `aec43c9`, alternating three times): spans "
    "written per second 32.4k / 35.4k / 34.6k -> 38.5k / 39.0k / 40.4k, CPU per written span 49.9 / 47.2 / 50.2 -> "
    "43.8 / 43.7 / 43.7 µs, tree peak RSS 510 / 512 / 509 -> 500 / 496 / 497 MB, tree PSS 422 / 419 / 420 -> 407 / "
    "407 / 406 MB, idle 110 MB both. From: `llmscope serve` tuning its GC once started (gc.freeze and the first "
    "generation at 10,000: its full collections, ~80 ms CPU each holding the GIL, are gone), a canonical GenAI "
    "row applied in C (`_genai_plan.c`: `decode_payload` 173.6k -> 159.4k instructions a span), and the flush "
    "thread's span files in lz4 until compaction rewrites them in zstd, its trace deltas' union columns by runs "
    "of rows, and buffered Parquet writes (`writer_thread.py` ~10.2 -> ~8.7 µs a span; docs/collector.md).",
    "Ingest A/B, session 31 (2026-12-03 19:07-19:11 UTC, right after this report's run, nothing else running; "
    "`benchmarks/ingest.py --no-http --decoders native --runs 1 --seconds 15 --warmup 3`, the session's start "
    "`bc10f1e` then main `a9efeae`, alternating twice): tree peak RSS 570 / 560 -> 514 / 502 MB, main process 394"
    " / 380 -> 351 / 342 MB, tree PSS 459 / 450 -> 422 / 407 MB, idle 126 -> 113 MB; CPU per written span 46.7 / "
    "60.2 -> 50.7 / 55.3 µs and spans written per second 36.0k / 26.3k -> 32.3k / 30.0k (one window differs from "
    "the next by ~25% here: no change in CPU is claimed). The memory comes from `llmscope serve` tuning its "
    "allocator before pyarrow loads again (the CLI had imported it through the capture proxy's command: Arrow's "
    "C++ pool was mimalloc, numpy and the S3/GCS/Azure/HDFS filesystems loaded) and from decode workers without "
    "`pyarrow.compute` (docs/memory.md). This run's host (AMD EPYC) is ~2.4x faster per span than the Intel Xeon "
    "of the 16:25 report (49.0 against 120.9 µs per written span): compare figures across reports only with the "
    "same machine line.",
    "Ingest A/B, session 30 (2026-12-03 16:23-16:27 UTC, quiet machine, `benchmarks/ingest.py --no-http "
    "--decoders native --runs 1 --seconds 15 --warmup 3`, the session's start `bee6ff9` then main `191d934`, "
    "alternating twice): spans written per second 10.5k / 13.6k -> 14.0k / 14.8k, CPU per written span "
    "138 / 117 -> 111 / 115 µs, drain after load 22.4 / 17.4 -> 16.2 / 17.9 s, tree peak 532 / 527 -> "
    "528 / 532 MB. What paces ingest (py-spy with idle frames): the Parquet flush thread, busy ~94% of the "
    "time, on two saturated cores (docs/collector.md).",
    "Native OTLP decoder (issue 22, 2026-12-02, shared 2 cores under a load average of 7-25 from other work): "
    "`benchmarks/hotpaths.py` (CPU time, best of 9, 1,745 spans of the bench's traces, in-process) puts the "
    "whole decode of a span (wire bytes → priced Arrow tables) at 21.6 µs with the C extension vs 27.1 µs with "
    "upb + Python; by stage: wire → values 2.5 µs native vs 11.0 µs upb parse + Python field reads, span "
    "limits 1.1, normalize (canonical_genai) 2.2, content split + blake2b hashes 7.4, JSON of "
    "attributes/events/links 0.9, pricing 0.8, rows → Arrow 3.4 (the rest: `_decode_span`'s own row "
    "building). Callgrind (deterministic, 870 spans): 242k instructions per span native vs 313k with upb "
    "(-23%); of the native 242k, the C reader is 31k (13%), pyarrow's list conversion 28k (12%), blake2b "
    "~25k, msgspec JSON 16k, the rest Python bytecode of normalize/split/limits/pricing. Its wire check, the "
    "only part run without the GIL, is <1% of a decode, so decoding on threads in the main process would "
    "serialize on the GIL: the decode stays in worker processes. End to end (`ingest.py --decoders "
    "native,python`, 5 s windows, collector CPU over load + drain per span written): 90 µs native vs 102 µs "
    "pure, both inflated by the machine's load (the ~55 µs of the full-mode report was a quieter run; the main "
    "process's gRPC receive, WAL, writer and stitcher are not touched by the decoder); peak RSS equal (~720 MB "
    "tree, the decode workers' Python heaps unchanged).",
    "Preview candidates (issue 22, session 31, 2026-12-03): what a picked message says (user?, first line, "
    "tools) read by `_canonical_json.message_said` from its canonical body instead of a msgspec decode and a "
    "Python walk; `benchmarks/hotpaths.py --callgrind` (main thread, 876 bench spans, new content each pass, "
    "two runs a side equal within 5 instructions): previews 18.3k -> 15.6k instructions per span, the whole "
    "`decode_payload` 175.6k -> 172.8k (-1.6%). The stage's rest is picking and Python plumbing, not JSON. "
    "Not kept: lines recorded by the split's own pass (it parses 6.6 messages a bench trace, the previews "
    "read 2). Before the harness counted the main thread only and stopped writing .pyc, the same code gave "
    "16.3k-19.5k across runs.",
    "SDK before/after (issue 14, 2026-12-02, same harness both sides: callgrind in one process, 200 calls after a "
    "warm-up, threads counted apart, old code from the commit before): instructions added per call on the caller's "
    "thread, lean spans 141.7k -> 92.2k (115.4k with the drain and export threads); SDK spans "
    "(`LLMSCOPE_LEAN_SPANS=0`) 333.1k -> 290.1k; the app added a processor 331.3k -> 299.6k. Base install 20 "
    "distributions / 26.6 MB -> 18 / 8.7 MB (OTLP/HTTP by default; gRPC export is `llmscope[grpc]`); `import "
    "llmscope` ~280 -> ~100 ms CPU (the OTel SDK, exporter and wrapt load in `configure()`/`instrument()`; "
    "`import llmscope; llmscope.configure()` ~400 ms, as before). Export CPU per span, two runs: gRPC 63.7 / 67.6 "
    "µs, OTLP/HTTP 68.0 / 61.5 µs.",
    "SDK overhead is measured on non-streaming calls only; streaming (`stream=True`, `messages.stream`) is not "
    "benchmarked yet.",
    "Peers (OpenLLMetry `opentelemetry-instrumentation-anthropic` 0.62.4, OpenInference "
    "`openinference-instrumentation-anthropic` 3.1.0) run in their own venvs (built once under --store-dir: "
    "llmscope editable + the peer), each with its own `TracerProvider` + `BatchSpanProcessor` to a discarding "
    "exporter; their plain instructions/call reuse llmscope's plain run (same anthropic client version, nothing "
    "instrumented or imported).",
    "Ingest figures come from one collector per protocol; the load generator runs on the same 2 cores, so its CPU "
    "(reported) is taken from the collector's budget.",
    "The query targets of issue 5 are stated at 10M spans; figures at 1M are shown against them for reference.",
    "Cluster mode (issue 17, `benchmarks/cluster_ingest.py` against the Ceph RADOS Gateway of "
    "tests/cluster/rgw.sh, same load as the ingest benchmark, 8 s windows after 3 s warm-up, 2026-12-02): 1, 2 "
    "and 3 `llmscope serve --storage s3://...` collectors acknowledged 21,982, 16,355 and 26,720 spans/s in "
    "aggregate. Every collector, its decode workers, the gateway and the load generator share the same 2 cores, "
    "so adding collectors on one machine does not add cores: the figure to plan with is per core, ~11k spans/s "
    "per core for one collector (about two thirds of the single-node figure, whose run did not have a gateway on "
    "the same cores); scale out with a collector per machine. Objects PUT per second of load: 7.2, 6.2 and 8.7 "
    "(mean 790, 636 and 715 kB: spans, trace deltas and content per flush, at the default flush of 10,000 rows / "
    "1 s, kept for cluster mode). A 200 kB PUT took 6.7 ms with obstore, 51 ms with boto3 and 154 ms with "
    "pyarrow's S3 filesystem (no conditional PUT); the writer's time in cluster mode matched the data dir's (65k "
    "spans flushed in 15.1 s vs 18.9 s, in-process, same load).",
]

QUICK = {
    "ingest": [
        "--seconds",
        "8",
        "--runs",
        "3",
        "--warmup",
        "3",
        "--http-seconds",
        "4",
        "--py-spy",
        "8",
        "--decoders",
        "native,python",
    ],
    "sdk_blocks": ["--calls", "200", "--blocks", "30"],
    "callgrind_calls": 200,
    "queries": ["--runs", "3", "--samples", "20"],
    "proxy": ["--calls", "500", "--streams", "200", "--seconds", "5"],
    "peer_ingest": ["--spans", "5000"],  # only with --only ...,phoenix: quick mode leaves Phoenix out
    "sizes": [1_000_000],
}
FULL = {
    "ingest": [
        "--seconds",
        "20",
        "--runs",
        "5",
        "--warmup",
        "5",
        "--http-seconds",
        "8",
        "--py-spy",
        "15",
        "--decoders",
        "native,python",
    ],
    "sdk_blocks": ["--calls", "200", "--blocks", "100"],
    "callgrind_calls": 200,
    "queries": ["--runs", "5", "--samples", "40"],
    "proxy": ["--calls", "2000", "--streams", "500", "--seconds", "10"],
    "peer_ingest": ["--spans", "20000"],
    "sizes": [1_000_000, 10_000_000],
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_json(cmd: list[str], timeout: float) -> Any:
    """Run a bench script that writes its figures with --json; return them."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    try:
        subprocess.run([*cmd, "--json", out], check=True, timeout=timeout, stdout=subprocess.DEVNULL, cwd=ROOT)
        return json.loads(Path(out).read_text())
    finally:
        os.unlink(out)


def run_text(cmd: list[str], timeout: float) -> str:
    try:
        done = subprocess.run(cmd, check=True, timeout=timeout, capture_output=True, text=True, cwd=ROOT)
    except (subprocess.SubprocessError, OSError) as exc:
        return f"(profile failed: {exc!r})"[:500]
    return done.stdout


# -- parts ---------------------------------------------------------------------------------------


def _decoder_lines(by_decoder: dict[str, Any]) -> list[str]:
    """The gRPC figures per OTLP decoder (same load, one collector each, one after the other)."""
    if len(by_decoder) < 2:
        return []
    lines = [
        "",
        "OTLP decoder, native (C extension, `_otlp_native.c`) vs pure Python (upb, `LLMSCOPE_DECODE_NATIVE=0`), "
        "same run, same gRPC load (the figures above are the first row's):",
        "",
        "| Decoder (as /metrics reports it) | spans/s acked | spans/s into Parquet | collector CPU (cores) | "
        "CPU µs per acked span (windows) | CPU µs per span written (whole run: load + drain) | "
        "peak RSS, tree (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in by_decoder.values():
        lines.append(
            f"| {d['decoder']} | {d['spans_per_s']:,.0f} | {d['written_spans_per_s']:,.0f} | "
            f"{d['collector_cpu']:.2f} | {d['cpu_us_per_span']:.1f} | {d.get('cpu_us_per_written_span', 0):.1f} | "
            f"{d['peak_rss_mb']:.0f} |"
        )
    return [*lines, ""]


def bench_ingest(mode: dict[str, Any]) -> dict[str, Any]:
    log("ingest: gRPC, then OTLP/HTTP protobuf and JSON, against llmscope serve")
    return dict(run_json([PY, str(HERE / "ingest.py"), *mode["ingest"]], timeout=3600))


def bench_ingest_peers(mode: dict[str, Any]) -> dict[str, Any]:
    """Phoenix and llmscope sent the same fixed load (benchmarks/peer_ingest.py); Phoenix's venv built once."""
    log("ingest peers: the same fixed load to Arize Phoenix and to llmscope serve (Phoenix: a few minutes)")
    try:
        return dict(run_json([PY, str(HERE / "peer_ingest.py"), *mode["peer_ingest"]], timeout=3600))
    except (subprocess.SubprocessError, OSError, ValueError) as exc:
        return {"error": f"failed: {exc!r}"[:300]}


def bench_proxy(mode: dict[str, Any]) -> dict[str, Any]:
    log("proxy: paired direct vs proxied calls, then throughput through llmscope serve --proxy-port")
    return dict(run_json([PY, str(HERE / "proxy_overhead.py"), *mode["proxy"]], timeout=1800))


# llmscope's spans by path, each measured like the main figure: lean (the default, above), SDK spans
# alone, and SDK spans because the app added a processor to llmscope's provider (the OTel contract).
SDK_VARIANTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "sdk_spans": ([], {"LLMSCOPE_LEAN_SPANS": "0"}),
    "app_processor": (["--app-processor"], {}),
}


def callgrind_instructions(
    mode: str, calls: int, impl: str = "llmscope", python: str = PY, variant: str | None = None
) -> tuple[int, int]:
    """(instructions on the main thread, on all threads) of one run. Threads are counted apart: the main
    thread's count is the caller's cost and deterministic; background threads (span drain, batch export)
    wake on timers, so their count per call grows with the wall time a run takes under valgrind."""
    extra, extra_env = SDK_VARIANTS[variant] if variant else ([], {})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = [
            "valgrind",
            "--tool=callgrind",
            "--separate-threads=yes",
            f"--callgrind-out-file={out}",
            python,
            str(HERE / "sdk_overhead.py"),
            "--callgrind-run",
            mode,
            "--calls",
            str(calls),
            "--impl",
            impl,
            *extra,
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0", **extra_env}  # same hashes, same dict/set layouts in every run
        subprocess.run(cmd, check=True, capture_output=True, timeout=7200, cwd=ROOT, env=env)
        counts: dict[int, int] = {}
        for part in Path(tmp).glob("callgrind.out-*"):
            for line in part.read_text(errors="replace").splitlines():
                if line.startswith(("summary:", "totals:")):
                    counts[int(part.name.rsplit("-", 1)[1])] = int(line.split()[1])
                    break
    if 1 not in counts:
        raise RuntimeError("no instruction total for the main thread in the callgrind output")
    return counts[1], sum(counts.values())


def bench_sdk(
    mode: dict[str, Any], impl: str = "llmscope", python: str = PY, plain: dict[str, float] | None = None
) -> dict[str, Any]:
    """Paired blocks, then callgrind: instrumented and (unless given, from llmscope's run) the two plain baselines.

    Plain baselines: `plain` = the client as it comes (anthropic 2.x emits its own span per call, into the no-op
    global tracer); `plain-quiet` = with that span off (ANTHROPIC_OPEN_TELEMETRY=false, which llmscope.instrument()
    sets for clients created after it). llmscope's figure is taken against plain-quiet, the cheaper baseline."""
    log(f"sdk ({impl}): paired blocks (µs added)")
    blocks = run_json([python, str(HERE / "sdk_overhead.py"), *mode["sdk_blocks"], "--impl", impl], timeout=3600)
    result: dict[str, Any] = {"paired": blocks}
    if shutil.which("valgrind") is None:
        result["callgrind"] = {"error": "valgrind not installed"}
        return result
    k = int(mode["callgrind_calls"])
    modes = ("instrumented",) if plain is not None else ("plain", "plain-quiet", "instrumented")
    log(f"sdk ({impl}): callgrind, {2 * len(modes)} runs ({'/'.join(modes)} x 0/{k} calls), 2 at a time")
    from concurrent.futures import ThreadPoolExecutor

    variants = list(SDK_VARIANTS) if impl == "llmscope" else []
    with ThreadPoolExecutor(2) as pool:  # the main thread's count does not depend on what else runs
        jobs = {(m, n): pool.submit(callgrind_instructions, m, n, impl, python) for m in modes for n in (0, k)}
        for v in variants:
            for n in (0, k):
                jobs[(v, n)] = pool.submit(callgrind_instructions, "instrumented", n, impl, python, v)
        counts = {key: job.result() for key, job in jobs.items()}
    per_call = {m: (counts[(m, k)][0] - counts[(m, 0)][0]) / k for m in [*modes, *variants]}
    all_threads = {m: (counts[(m, k)][1] - counts[(m, 0)][1]) / k for m in [*modes, *variants]}
    if plain is not None:
        per_call.update(plain)
        all_threads.update(plain)  # the plain client starts no thread: its two counts are one
    inst = per_call["instrumented"]
    base_name = "plain-quiet" if impl == "llmscope" else "plain"
    base = per_call[base_name]
    result["callgrind"] = {
        "calls": k,
        "plain_per_call": per_call["plain"],
        "plain_quiet_per_call": per_call["plain-quiet"],
        "instrumented_per_call": inst,
        "added_per_call": inst - base,
        "added_all_threads_per_call": all_threads["instrumented"] - all_threads[base_name],
        "added_vs_client_defaults": inst - per_call["plain"],
        "baseline": base_name,
        "variants_added_per_call": {v: per_call[v] - base for v in variants},
        "variants_added_all_threads_per_call": {v: all_threads[v] - all_threads[base_name] for v in variants},
        "raw": {f"{m}_{n}": v for (m, n), v in counts.items()},
    }
    return result


# Same pins as the interop sessions in noxfile.py; each peer in its own venv (their pins may clash).
PEERS: dict[str, list[str]] = {
    "openllmetry": ["opentelemetry-instrumentation-anthropic==0.62.4", "anthropic<3"],
    "openinference": ["openinference-instrumentation-anthropic==3.1.0", "anthropic>=1.8,<3"],
}
_PEER_MODULES = {
    "openllmetry": "opentelemetry.instrumentation.anthropic",
    "openinference": "openinference.instrumentation.anthropic",
}


def peer_python(impl: str, venvs: Path) -> str:
    """A venv with llmscope (editable) and the peer's package, built once under `venvs` and reused."""
    venv = venvs / f"peer-{impl}"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", f"import {_PEER_MODULES[impl]}, anthropic, llmscope"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return str(python)
    log(f"sdk: building the {impl} venv in {venv}")
    base = getattr(sys, "_base_executable", PY)
    subprocess.run([base, "-m", "venv", "--system-site-packages", str(venv)], check=True, capture_output=True)
    pip = [str(python), "-m", "pip", "install", "-q", "-e", str(ROOT), *PEERS[impl]]
    subprocess.run(pip, check=True, capture_output=True, timeout=1800)
    subprocess.run(probe, check=True, capture_output=True)
    return str(python)


def store_for(size: int, seed: int, store_dir: Path) -> tuple[Path, dict[str, Any]]:
    path = store_dir / f"spans{size}-seed{seed}"
    marker = store_dir / f"spans{size}-seed{seed}.json"
    if marker.exists() and marker.stat().st_size > 0 and (path / "spans").is_dir():
        log(f"queries: reusing the generated store {path}")
        return path, dict(json.loads(marker.read_text()))
    shutil.rmtree(path, ignore_errors=True)
    log(f"queries: generating a {size:,}-span store in {path}")
    done = subprocess.run(
        [PY, str(HERE / "gen_store.py"), "--data-dir", str(path), "--spans", str(size), "--seed", str(seed)],
        check=True,
        capture_output=True,
        text=True,
        timeout=6 * 3600,
        cwd=ROOT,
    )
    marker.write_text(done.stdout)
    return path, dict(json.loads(done.stdout))


def bench_export(store_dir: Path) -> dict[str, Any]:
    """`llmscope export` of the 1M-span store through `llmscope serve`, each format, a quarter then all of it."""
    path, gen = store_for(1_000_000, 1, store_dir)
    log("export: 1M spans, jsonl/csv/parquet, through llmscope serve and llmscope export")
    figures = dict(run_json([PY, str(HERE / "export.py"), "--data-dir", str(path)], timeout=3 * 3600))
    figures["store"] = gen
    return figures


def bench_queries(mode: dict[str, Any], sizes: list[int], store_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size in sizes:
        path, gen = store_for(size, 1, store_dir)
        log(f"queries: {size:,} spans (in process and over HTTP)")
        figures = run_json([PY, str(HERE / "queries.py"), "--data-dir", str(path), *mode["queries"]], timeout=3600)
        figures["store"] = gen
        figures["store_path"] = str(path)
        out[str(size)] = figures
    return out


# Notes of earlier reports that a rendered section or a later run replaces: the engines section (issue
# 18); the previews' ingest regression, gone once they moved to the decode workers (issue 22, 7987451).
SUPERSEDED_NOTES = ("ClickHouse as the query engine (issue 18", "Ingest regression found in this run (2026-12-02)")


def _kept_note(note: str) -> bool:
    """A note of the last report a merge keeps: a `--note` given then, or a merged-report line (today's
    standing notes are written afresh; superseded ones are dropped)."""
    return note not in STANDING_NOTES and not note.startswith(SUPERSEDED_NOTES)


def bench_engines(sizes: list[int], store_dir: Path) -> dict[str, Any]:
    """`engines.py` per store size: the same queries on DuckDB and on ClickHouse (chdb), one process each."""
    out: dict[str, Any] = {}
    for size in sizes:
        path, gen = store_for(size, 1, store_dir)
        log(f"engines: {size:,} spans, DuckDB then ClickHouse (chdb: every object loaded first)")
        figures = dict(run_json([PY, str(HERE / "engines.py"), "--data-dir", str(path)], timeout=4 * 3600))
        figures["store"] = gen
        out[str(size)] = figures
    return out


# -- report --------------------------------------------------------------------------------------


def hit(key: str, value: float | None) -> str:
    if value is None:
        return "not measured"
    op, target, _ = TARGETS[key]
    ok = value >= target if op == ">=" else value <= target
    return "**hit**" if ok else "**MISS**"


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
    except (OSError, AttributeError):
        pass
    versions = {}
    for dist in (
        "llmscope",
        "duckdb",
        "pyarrow",
        "grpcio",
        "protobuf",
        "litestar",
        "uvicorn",
        "msgspec",
        "anthropic",
        "opentelemetry-sdk",
        "py-spy",
        "pyinstrument",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    valgrind = (
        subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
        if shutil.which("valgrind")
        else None
    )
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "git_commit": commit.strip(),
        "valgrind": valgrind,
        "versions": versions,
    }


def _f(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _mm(fig: dict[str, Any] | None, digits: int = 1, scale: float = 1.0) -> tuple[str, str]:
    if not fig:
        return "–", "–"
    return _f(fig["median"] * scale, digits), f"{_f(fig['min'] * scale, digits)}–{_f(fig['max'] * scale, digits)}"


def _code(text: str) -> str:
    return "```\n" + text.rstrip() + "\n```\n"


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `nox -s bench` (`benchmarks/run_suite.py`); do not edit by hand. Figures are medians of",
        "several runs with their min–max; ratios compare figures measured in the same run. The machine is shared",
        "and noisy: other work ran on the same 2 cores during these runs, so wall-clock figures are pessimistic;",
        "instruction counts (callgrind) are far steadier, not exact: two runs before PYTHONHASHSEED was pinned",
        "differed by 60k instructions/call (the batch processor's thread also runs during the measured calls).",
        "",
        "Run it: `nox -s bench` (full: 1M and 10M-span stores, longer windows, ~1 h on 2 cores with the 10M store "
        "cached), `nox -s bench -- --quick` (1M store, short windows), "
        "`-- --only ingest,sdk,queries,proxy,install,export` (full mode adds `phoenix` to `ingest`), "
        "`-- --sizes 1000000`, `-- --no-peers` (no OpenLLMetry, OpenInference or Phoenix), "
        "`-- --merge --only engines --sizes 1000000,10000000` (ClickHouse beside DuckDB, added to the last report). "
        "Scripts: `benchmarks/` (each runs on its own too).",
        "",
        f"- Mode: **{results['mode']}** ({results['mode_note']})",
        f"- Date: {m['date_utc']}; llmscope commit `{m['git_commit']}`",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"CPython {m['python']}; {m['valgrind'] or 'no valgrind'}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v),
        "",
        "## Summary against the targets",
        "",
        "| Figure | Median | Min–max | Target | |",
        "|---|---|---|---|---|",
    ]
    summary: list[tuple[str, str, str, str, str]] = []
    ing = results.get("ingest")
    if ing:
        g = ing["grpc"]
        med, mm = _mm(g["written_spans_per_s"], 0)
        summary.append(
            (
                "Ingest sustained, OTLP/gRPC, WAL on (spans/s into Parquet under saturating load)",
                med,
                mm,
                TARGETS["ingest_spans_per_s"][2],
                hit("ingest_spans_per_s", g["written_spans_per_s"]["median"]),
            )
        )
        med, mm = _mm(g["spans_per_s"], 0)
        summary.append(
            (
                "Ingest, OTLP/gRPC, WAL on (spans/s acked; WAL-bounded, see below)",
                med,
                mm,
                TARGETS["ingest_spans_per_s"][2],
                hit("ingest_spans_per_s", g["spans_per_s"]["median"]),
            )
        )
        summary.append(
            (
                "Collector peak RSS under that load (MB, process tree)",
                _f(g["peak_rss_mb"], 0),
                "one run",
                TARGETS["ingest_peak_rss_mb"][2],
                hit("ingest_peak_rss_mb", g["peak_rss_mb"]),
            )
        )
        summary.append(
            (
                "Collector idle RSS after start (MB, process tree)",
                _f(g["idle_rss_mb"], 0),
                "one run",
                TARGETS["ingest_idle_rss_mb"][2],
                hit("ingest_idle_rss_mb", g["idle_rss_mb"]),
            )
        )
    peer_row = _ingest_peer_summary(results.get("ingest_peers"), ing)
    if peer_row:
        summary.append(peer_row)
    sdk = results.get("sdk", {}).get("llmscope")
    if sdk:
        p = sdk["paired"]
        summary.append(
            (
                "SDK: µs added per non-streaming call",
                _f(p["added_us_median"]),
                f"{_f(p['added_us_min'])}–{_f(p['added_us_max'])}",
                TARGETS["sdk_added_us"][2],
                hit("sdk_added_us", p["added_us_median"]),
            )
        )
        cg = sdk.get("callgrind", {})
        if "added_per_call" in cg:
            every = cg.get("added_all_threads_per_call")
            summary.append(
                (
                    "SDK: instructions added per call, caller's thread (callgrind)",
                    _f(cg["added_per_call"], 0),
                    "one run" if every is None else f"one run; {_f(every, 0)} with the background threads",
                    TARGETS["sdk_added_instructions"][2],
                    hit("sdk_added_instructions", cg["added_per_call"]),
                )
            )
    queries = results.get("queries", {})
    for size, q in sorted(queries.items(), key=lambda kv: int(kv[0])):
        ip = q["in_process"]
        label = f"{int(size) / 1e6:g}M spans"
        for key, where, fig, name in (
            ("waterfall_p95_ms", "in_process", "waterfall_p95", "Waterfall p95, TraceStore.get_trace"),
            ("waterfall_p95_ms", "in_process", "waterfall_first_p95", "Waterfall p95, first lookup of a day's file"),
            ("waterfall_p95_ms", "http", "waterfall_p95", "Waterfall p95, over HTTP"),
            ("trace_list_ms", "in_process", "trace_list_p50", "Trace list page (50), p50"),
            ("cost_rollup_ms", "in_process", "cost_rollup_model_day_p50", "Cost roll-up model×day, p50"),
            ("session_list_ms", "in_process", "session_list_p50", "Session list page (50), p50"),
        ):
            figures = q.get(where, {})
            if fig not in figures:  # (a run without the HTTP part, or from before first lookups were told apart)
                continue
            med, mm = _mm(figures[fig])
            summary.append((f"{name} ({label}, ms)", med, mm, TARGETS[key][2], hit(key, figures[fig]["median"])))
    for row in summary:
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")

    if ing:
        g = ing["grpc"]
        cfg = ing["config"]
        lines += [
            "## 1. Ingest (OTLP load generator → `llmscope serve`)",
            "",
            f"`benchmarks/ingest.py`: a child `llmscope serve` on loopback, WAL on with fsync (group commit), temp "
            f"data dir. The client sends pre-serialized `ExportTraceServiceRequest`s of {cfg['spans_per_request']:.0f} "
            f"spans ({cfg['proto_bytes_per_request'] / 1024:.0f} KiB protobuf, "
            f"{cfg['json_bytes_per_request'] / 1024:.0f} KiB JSON): {cfg['traces_per_request']} realistic agent traces "
            "(invoke_agent root, chat spans with gen_ai.* attributes and ~1 KB captured content, execute_tool spans), "
            f"{cfg['templates']} templates made unique per send by swapping trace ids and captured content; "
            f"{cfg['threads']} threads, one "
            f"call in flight each, over {cfg['channels']} gRPC channels (TCP connections). {cfg['runs']} consecutive "
            f"windows of {cfg['seconds']:g} s after {cfg['warmup']:g} s warm-up (HTTP: {cfg['http_seconds']:g} s). "
            "Refused calls (UNAVAILABLE/429/503: WAL backpressure) are retried after 20 ms and not counted.",
            "",
            "| Figure | Median | Min–max |",
            "|---|---|---|",
        ]
        for label, key, digits in (
            ("gRPC spans/s acked (Export OK: in the WAL, fsynced)", "spans_per_s", 0),
            ("gRPC spans/s written to Parquet (sustained)", "written_spans_per_s", 0),
            ("WAL lag at window end (MiB; refusals start at 512)", "wal_lag_mb_at_end", 0),
            ("gRPC Export latency p50 (ms)", "latency_p50_ms", 1),
            ("gRPC Export latency p99 (ms)", "latency_p99_ms", 1),
            ("gRPC refused calls/s (backpressure, retried)", "refused_per_s", 1),
            ("Collector CPU (cores, process tree)", "collector_cpu", 2),
            ("Load generator CPU (cores)", "client_cpu", 2),
        ):
            med, mm = _mm(g[key], digits)
            lines.append(f"| {label} | {med} | {mm} |")
        for proto, title in (("http_protobuf", "OTLP/HTTP protobuf"), ("http_json", "OTLP/HTTP JSON")):
            h = ing.get(proto)
            if h:
                for label, key, digits in (
                    (f"{title} spans/s acked", "spans_per_s", 0),
                    (f"{title} spans/s written to Parquet", "written_spans_per_s", 0),
                    (f"{title} refused calls/s", "refused_per_s", 1),
                    (f"{title} latency p99 (ms)", "latency_p99_ms", 1),
                    (f"{title} collector CPU (cores)", "collector_cpu", 2),
                    (f"{title} client CPU (cores)", "client_cpu", 2),
                ):
                    med, mm = _mm(h[key], digits)
                    lines.append(f"| {label} | {med} | {mm} |")
        disk = g["disk"]
        written = max(g["spans_written"], 1)
        stored = disk["spans"] + disk["content"] + disk["traces"] + disk["llm_dups"]
        lines += [
            "",
            f"- Peak RSS of the collector's process tree (main + decode workers, sampled every 100 ms from /proc): "
            f"**{g['peak_rss_mb']:.0f} MB** (of which the main process at its peak: "
            f"{g.get('main_process_peak_rss_mb', 0):.0f} MB; idle after start: {g['idle_rss_mb']:.0f} MB).",
            *(
                [
                    f"- Peak PSS of the same tree (shared library pages counted once over the processes, as a "
                    f"container's memory limit counts them): **{g['peak_pss_mb']:.0f} MB** (idle after start: "
                    f"{g.get('idle_pss_mb', 0):.0f} MB)."
                ]
                if "peak_pss_mb" in g
                else []
            ),
            *(
                [
                    f"- The bench's collector runs without compaction (`LLMSCOPE_COMPACTION_INTERVAL_S=0`); compacting "
                    f"this run's data dir afterwards, in a process tuned as `llmscope serve` is, peaked at "
                    f"**{disk['compaction_peak_rss_mb']:.0f} MB** RSS: a running collector adds a compaction's peak to "
                    "the tree's while it merges (docs/memory.md)."
                ]
                if "compaction_peak_rss_mb" in disk
                else []
            ),
            f"- Spans acked in the whole gRPC run: {g['spans_acked']:,}; all of them were in Parquet "
            f"{g['drain_after_load_s']:.1f} s after the load stopped ({g['spans_written']:,} written).",
            f"- Bytes on disk after compaction, this run: {stored / written:.0f} B/span "
            f"(spans {disk['spans'] / written:.0f}, content {disk['content'] / written:.0f}, trace summaries "
            f"{disk['traces'] / written:.0f}). Each send carries new user messages, answers and tool results; "
            "system prompts repeat, as in real traffic, and are stored once.",
        ]
        lines += _decoder_lines(ing.get("grpc_by_decoder", {}))
        key = "written_spans_per_s"
        if ing.get("http_protobuf"):
            r = ing["http_protobuf"][key]["median"] / max(g[key]["median"], 1e-9)
            lines.append(f"- Ratio OTLP/HTTP protobuf ÷ gRPC, spans/s into Parquet (same run): {r:.2f}.")
        if ing.get("http_json") and ing.get("http_protobuf"):
            r = ing["http_json"][key]["median"] / max(ing["http_protobuf"][key]["median"], 1e-9)
            lines.append(
                f"- Ratio OTLP/HTTP JSON ÷ protobuf, spans/s into Parquet (same run): {r:.2f}. Where a protocol's "
                "acked rate is above its written rate and nothing was refused, its windows ended before the WAL lag "
                "reached the cap: the acked figure is a burst into the WAL, the written one is what it sustains."
            )
        prof = g.get("profile")
        if prof and "own_pct" in prof:
            lines += [
                "",
                f"Profile of the collector under gRPC load (py-spy, {prof['seconds']:g} s, all threads and "
                f"decode workers, {prof['samples']} samples, idle threads excluded): top frames by own time, then "
                "by total time (% of samples).",
                "",
            ]
            lines.append(_code("\n".join(f"{pct:5.1f}%  {frame}" for frame, pct in prof["own_pct"][:20])))
            lines.append(_code("\n".join(f"{pct:5.1f}%  {frame}" for frame, pct in prof["total_pct"][:25])))
        elif prof:
            lines += ["", f"(py-spy profile failed: {prof.get('error')})"]
        lines.append("")
    lines += _render_ingest_peers(results.get("ingest_peers"), ing)

    sdks = results.get("sdk", {})
    if sdks:
        lines += [
            "## 2. SDK overhead (non-streaming anthropic `messages.create`, in-process mock transport)",
            "",
            "`benchmarks/sdk_overhead.py`: the real anthropic client over an `httpx.MockTransport` returning a fixed "
            "Message (no sockets). µs added = median over blocks of (instrumented − plain) µs/call, blocks alternating "
            "in one process; instructions added = callgrind total of K calls minus 0 calls, instrumented minus "
            "plain, divided by K, on the main thread (the caller's cost; threads counted apart with "
            "`--separate-threads`, deterministic). Spans go through the real batch processor to a discarding exporter; "
            "what the background threads add (span drain, batch export) is given apart: they wake on timers, so "
            "under valgrind's slowdown their count per call grows with the run's wall time.",
            "",
            "| Implementation | Plain µs/call | Instrumented µs/call | µs added (median) | min–max | "
            "Instr./call instrumented | Instr. added/call | vs the client as it comes | Ratio to llmscope (instr.) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        base = sdks.get("llmscope", {}).get("callgrind", {}).get("added_per_call")
        for impl, s in sdks.items():
            if "error" in s:
                lines.append(f"| {impl} | {s['error']} | | | | | | |")
                continue
            p, cg = s["paired"], s.get("callgrind", {})
            added = cg.get("added_per_call")
            ratio = f"{added / base:.1f}×" if added and base and base > 0 else "–"
            lines.append(
                f"| {impl} | {_f(p['plain_us_per_call'])} | {_f(p['instrumented_us_per_call'])} | "
                f"{_f(p['added_us_median'])} | {_f(p['added_us_min'])}–{_f(p['added_us_max'])} | "
                f"{_f(cg.get('instrumented_per_call'), 0)} | {_f(added, 0)} | "
                f"{_f(cg.get('added_vs_client_defaults'), 0)} | {ratio} |"
            )
        lines.append("")
        note = results.get("sdk_note")
        if note:
            lines += [note, ""]
        cg = sdks.get("llmscope", {}).get("callgrind", {})
        if "plain_per_call" in cg:
            lines += [
                f"Plain call: {_f(cg['plain_per_call'], 0)} instructions with the anthropic client as it comes (it "
                f"emits its own span per call into the no-op global tracer), {_f(cg['plain_quiet_per_call'], 0)} with "
                "that span off (`ANTHROPIC_OPEN_TELEMETRY=false`, which `llmscope.instrument()` sets for clients "
                "created after it). llmscope's *instructions added* are against the cheaper baseline (its own cost); "
                "peers' against the client as it comes (they leave the client's span on). *vs the client as it "
                "comes* is what an app that adds the instrumentation actually sees. µs added is measured in one "
                "process on one client, so each implementation's µs baseline is its own setting.",
                "",
            ]
        variants = cg.get("variants_added_per_call")
        if variants:
            every = cg.get("variants_added_all_threads_per_call", {})
            lines += [
                f"llmscope's spans by path (instructions added per call, caller's thread / all threads, same run): "
                f"lean (the figure above, llmscope's own provider with only its own processors) "
                f"{_f(cg.get('added_per_call'), 0)} / {_f(cg.get('added_all_threads_per_call'), 0)}; SDK spans "
                f"(`LLMSCOPE_LEAN_SPANS=0`) {_f(variants.get('sdk_spans'), 0)} / {_f(every.get('sdk_spans'), 0)}; "
                "the app added a processor to the provider `configure()` returned, so llmscope starts SDK spans that "
                "processor sees start and end (the OpenTelemetry contract; the processor itself does nothing) "
                f"{_f(variants.get('app_processor'), 0)} / {_f(every.get('app_processor'), 0)}.",
                "",
            ]
        export = results.get("sdk_export")
        if export:
            per_span = export.get("cpu_us_per_span", {})
            lines += [
                "Exporting (`sdk_overhead.py --export-cpu`): process CPU per span, the same 512 recorded LLM spans "
                "sent to a local sink that answers success, best of "
                f"{export.get('rounds')} interleaved rounds: OTLP/HTTP protobuf "
                f"{_f(per_span.get('http/protobuf'))} µs, OTLP/gRPC {_f(per_span.get('grpc'))} µs (on the "
                "exporter's thread, not the caller's).",
                "",
            ]
        prof = results.get("sdk_profile")
        if prof:
            lines += ["Where an instrumented call's time goes (pyinstrument, top of the tree):", "", _code(prof)]

    if queries:
        lines += [
            "## 3. Queries on a generated store",
            "",
            "`benchmarks/gen_store.py` writes a deterministic store (by seed) with the collector's own code: "
            "`otlp_traces` requests → `decode_request` (normalization, content split, pricing) → `ParquetSpanWriter` "
            "(content store) with the stitcher hook (nested-duplicate marks, trace summary deltas) in flushes of 50k "
            "spans → one compaction pass. Traces are spread over "
            "30 days (one partition per day). `benchmarks/queries.py` then times, per run, a fresh `TraceStore` "
            "(first call = loading the trace summary index: `index cold load`) and N calls of each query; a run's "
            "figure is the p50/p95 of its calls; the table shows the median of the runs' figures and their "
            "min–max. Over HTTP: the same against `llmscope serve` on that data dir (client-side, keep-alive). "
            "Alert rules: `MetricReader.observe` (what the evaluator runs per rule) at the store's last instant.",
            "",
        ]
        sizes = sorted(queries, key=int)
        header = "| Query (ms) | " + " | ".join(f"{int(s) / 1e6:g}M median | min–max" for s in sizes) + " | Target |"
        lines += [header, "|---|" + "---|---|" * len(sizes) + "---|"]
        names = list(queries[sizes[0]]["in_process"])
        target_of = {
            "waterfall_first_p95": "≤ 15 (at 10M)",
            "waterfall_p95": "≤ 15 (at 10M)",
            "trace_list_p50": "≤ 100",
            "cost_rollup_model_day_p50": "≤ 300",
            "session_list_p50": "≤ 100",
        }
        for name in names:
            cells = []
            for s in sizes:
                med, mm = _mm(queries[s]["in_process"].get(name))
                cells += [med, mm]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {target_of.get(name, '')} |")
        if any("http" in queries[s] for s in sizes):
            lines += [
                "",
                "Over HTTP (`llmscope serve`, same store):",
                "",
                header.replace("Target", "In-process ratio"),
                "|---|" + "---|---|" * len(sizes) + "---|",
            ]
            for name in queries[sizes[0]].get("http", {}):
                cells = []
                for s in sizes:
                    med, mm = _mm(queries[s].get("http", {}).get(name))
                    cells += [med, mm]
                ip = queries[sizes[0]]["in_process"].get(name)
                hp = queries[sizes[0]].get("http", {}).get(name)
                ratio = f"{hp['median'] / ip['median']:.2f}" if ip and hp and ip["median"] else "–"
                lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio} |")
        lines.append("")
        for s in sizes:
            st = queries[s]["store"]
            b = st["bytes"]
            n = max(st["spans"], 1)
            total = sum(v for k, v in b.items() if k in ("spans", "content", "traces", "llm_dups"))
            lines.append(
                f"- Store {int(s) / 1e6:g}M: {st['spans']:,} spans, {st['traces']:,} traces, generated in "
                f"{st['generate_s']:g} s + compaction {st['compact_s']:g} s; on disk after compaction "
                f"**{total / n:.0f} B/span** (spans {b.get('spans', 0) / n:.0f}, content (deduplicated) "
                f"{b.get('content', 0) / n:.0f}, trace summaries {b.get('traces', 0) / n:.0f})."
            )
        if len(sizes) > 1:
            lines += [
                "",
                f"Scaling {int(sizes[0]) / 1e6:g}M → {int(sizes[-1]) / 1e6:g}M spans (ratio of medians; "
                f"{int(sizes[-1]) / int(sizes[0]):g}× the data; ≈1 = flat, ≈{int(sizes[-1]) / int(sizes[0]):g} = "
                "linear):",
                "",
            ]
            for name in names:
                a = queries[sizes[0]]["in_process"][name]["median"]
                z = queries[sizes[-1]]["in_process"][name]["median"]
                lines.append(f"- {name}: {z / a:.2f}×")
        lines.append("")
        profs = results.get("query_profiles", {})
        for name, text in profs.items():
            lines += [f"Profile of `{name}` (missed its target; pyinstrument, 3 calls, warm index):", "", _code(text)]

    lines += _render_engines(results.get("engines"))
    lines += _render_export(results.get("export"))
    lines += _render_proxy(results.get("proxy"))
    lines += _render_install(results.get("install"))
    notes = results.get("notes")
    if notes:
        lines += ["## Notes and what is not measured yet", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def _phoenix_ok(peers: dict[str, Any] | None) -> bool:
    """Phoenix's figures are there (the run and Phoenix's part of it did not fail)."""
    return peers is not None and "error" not in peers and "stored_spans_per_s" in peers.get("phoenix", {})


def _ingest_peer_summary(peers: dict[str, Any] | None, ing: dict[str, Any] | None) -> tuple[str, ...] | None:
    """The summary's Phoenix row: llmscope's sustained spans/s into Parquet over Phoenix's stored spans/s."""
    if not peers or not _phoenix_ok(peers):
        return None
    phx = peers["phoenix"]["stored_spans_per_s"]
    same = peers.get("ratios", {}).get("stored_spans_per_s")
    harness = f"{same:,.0f}× in the same fixed-load harness" if same else "–"
    if ing:
        sustained = ing["grpc"]["written_spans_per_s"]["median"]
        value = f"{sustained / phx:,.0f}×"
    else:
        value = "–"
    return (
        f"llmscope ÷ Phoenix {peers['phoenix'].get('version', '')}, spans/s stored (sustained gRPC figure ÷ "
        f"Phoenix's {phx:,.0f} spans/s; section 1)",
        value,
        harness,
        "(issue 22: Phoenix beside it as a ratio)",
        "",
    )


def _render_ingest_peers(peers: dict[str, Any] | None, ing: dict[str, Any] | None) -> list[str]:
    """Phoenix beside llmscope: the same fixed load sent to each (benchmarks/peer_ingest.py), this run."""
    if not peers:
        return []
    lines = ["### Phoenix beside llmscope (same load, same run)", ""]
    if "error" in peers:
        return [*lines, f"Not measured: {peers['error']}", ""]
    cfg = peers["config"]
    n = cfg["spans_sent"]
    lines += [
        f"`benchmarks/peer_ingest.py`: Arize Phoenix (`arize-phoenix` {cfg['phoenix_version']}, its own venv, "
        "`phoenix serve` on loopback with a temp working dir and its default SQLite database) and `llmscope serve` "
        "(WAL fsynced, as above), one after the other, each sent the same fixed load by the same client as above "
        f"over OTLP/{'gRPC' if cfg['protocol'] == 'grpc' else 'HTTP protobuf'}: {n:,} spans in {cfg['requests']} "
        f"requests of {cfg['spans_per_request']:.0f} spans ({cfg['proto_bytes_per_request'] / 1024:.0f} KiB), "
        f"each request sent once (Phoenix keeps the first span of a span id), {cfg['threads']} calls in flight, "
        "refusals retried. A fixed load timed from the first send until every span is stored rather than "
        "windows of saturating load, as Phoenix stores a few hundred times slower: stored = a row in Phoenix's "
        "`spans` table (read-only from its database), a span in llmscope's Parquet (/health). Before the clock "
        f"starts, each stores {cfg['warmup_spans_sent']:,} spans of other traces (first-use costs out). Peak "
        "RSS: the server's process tree, sampled every 100 ms from /proc; CPU: the tree's, over load and drain. "
        "Durability differs in Phoenix's favour: it acks from an in-memory queue (lost if the process dies) and "
        "writes SQLite with `synchronous = OFF` (no fsync); llmscope acks after its WAL is fsynced.",
        "",
    ]
    llm, phx = peers.get("llmscope", {}), peers.get("phoenix", {})
    for name, fig in (("llmscope", llm), ("Phoenix", phx)):
        if "error" in fig:
            lines += [f"{name}: not measured ({fig['error']})", ""]
    if not _phoenix_ok(peers) or "error" in llm or not llm:
        return lines
    ratio = peers.get("ratios", {})

    def r(key: str) -> str:
        value = ratio.get(key)
        return f"{value:,.2f}×" if value is not None else "–"

    rows = [
        (f"Spans/s stored, end to end ({n:,} spans: first send → all stored)", "stored_spans_per_s", 0),
        ("Spans/s stored, middle 80% of the load (10% → 90% stored)", "stored_spans_per_s_middle", 0),
        ("Seconds from the first send until all were stored", "seconds_to_stored", 1),
        ("Peak RSS, server process tree (MB)", "peak_rss_mb", 0),
        ("Idle RSS before the load (MB)", "idle_rss_mb", 0),
        ("CPU µs per stored span (server tree, load + drain)", "cpu_us_per_stored_span", 0),
    ]
    lines += [
        f"| Figure | llmscope | Phoenix {phx.get('version', '')} | llmscope ÷ Phoenix |",
        "|---|---|---|---|",
    ]
    for label, key, digits in rows:
        a, b = llm.get(key), phx.get(key)
        own = f"{a / b:,.2f}×" if key in ("seconds_to_stored", "idle_rss_mb") and a is not None and b else r(key)
        lines.append(f"| {label} | {_f(a, digits)} | {_f(b, digits)} | {own} |")
    if ing:
        sustained = ing["grpc"]["written_spans_per_s"]["median"]
        lines.append(
            "| Spans/s stored: llmscope sustained (gRPC windows above, median into Parquet) vs Phoenix's "
            f"fixed load | {sustained:,.0f} | {_f(phx['stored_spans_per_s'], 0)} | "
            f"**{sustained / max(phx['stored_spans_per_s'], 1e-9):,.0f}×** |"
        )
    lines += [
        "",
        f"- Phoenix: {phx['spans_stored']:,} of {phx['spans_sent']:,} spans stored"
        f"{' (cut short by the time cap)' if phx.get('capped') else ''}; acked after "
        f"{_f(phx.get('seconds_to_acked'), 1)} s ({phx.get('refused', 0):,} calls refused at its queue's cap and "
        f"retried); its database {phx.get('database_bytes_per_span', 0):,.0f} B per stored span; start-up "
        f"(migrations of a new database) {phx.get('startup_s', 0):.0f} s, not timed.",
        f"- llmscope in that harness: all {llm['spans_stored']:,} spans acked after "
        f"{_f(llm.get('seconds_to_acked'), 2)} s and stored after {_f(llm['seconds_to_stored'], 2)} s: a load "
        "this small is mostly the latency of the writer's flush (every 10,000 spans or 1 s), so its end-to-end "
        "rate is well under the sustained one; the ratio against the sustained figure is the one to read for "
        "throughput.",
        "",
    ]
    return lines


def _render_engines(engines: dict[str, Any] | None) -> list[str]:
    if not engines:
        return []
    sizes = sorted(engines, key=int)
    lines = [
        "## ClickHouse beside DuckDB (issue 18)",
        "",
        "`benchmarks/engines.py` on the same generated stores: DuckDB (`TraceStore` over the files), then "
        "ClickHouse (chdb, the engine in the benchmark's process, fed by the loader from the same files: every "
        "object loaded once, the cold start). Per query the p50 / p95 of the calls' wall time and the median of "
        "their process CPU time (every engine thread; steadier than wall time on the shared machine). Sizing of "
        "a 3-node cluster from ClickHouse's bytes per span: docs/scale.md.",
        "",
        "| Query (ms) | "
        + " | ".join(f"{int(s) / 1e6:g}M DuckDB | {int(s) / 1e6:g}M ClickHouse" for s in sizes)
        + " |",
        "|---|" + "---|---|" * len(sizes),
    ]
    first = engines[sizes[0]]["duckdb"]
    names = [n.removesuffix("_p50") for n in first if n.endswith("_p50") and not n.endswith("_cpu_p50")]

    def cell(figures: dict[str, Any], name: str) -> str:
        p50, p95, cpu = (figures.get(f"{name}_{k}") for k in ("p50", "p95", "cpu_p50"))
        text = f"{_f(p50)} / {_f(p95)}"
        return text + (f" (CPU {_f(cpu)})" if cpu is not None else "")

    lines.append(
        "| cold start | "
        + " | ".join(
            f"{_f(engines[s]['duckdb']['cold_start'])} | {_f(engines[s]['clickhouse']['cold_start'])}" for s in sizes
        )
        + " |"
    )
    if any("merges_settled" in engines[s]["clickhouse"] for s in sizes):  # before any query was timed
        settled = [f"– | {_f(engines[s]['clickhouse'].get('merges_settled'))}" for s in sizes]
        lines.append("| ClickHouse's merges after the load settled in | " + " | ".join(settled) + " |")
    for name in names:
        cells = [f"{cell(engines[s]['duckdb'], name)} | {cell(engines[s]['clickhouse'], name)}" for s in sizes]
        lines.append(f"| {name} p50 / p95 | " + " | ".join(cells) + " |")
    lines.append("")
    for s in sizes:
        e = engines[s]
        per = e.get("clickhouse_bytes_per_span")
        tables = ", ".join(
            f"{t} {info['bytes'] / max(e['spans'], 1):,.0f}" for t, info in sorted(e["clickhouse_tables"].items())
        )
        load = e.get("clickhouse_load_spans_per_s")
        lines.append(
            f"- {int(s) / 1e6:g}M: {e['spans']:,} spans in {e['objects']} objects; ClickHouse loaded them in "
            f"{e['clickhouse']['cold_start'] / 1000:,.0f} s"
            + (f" ({load:,.0f} spans/s)" if load else "")
            + (f"; its tables hold **{per:,.0f} B/span** ({tables})." if per else ".")
        )
    return [*lines, ""]


def _render_export(export: dict[str, Any] | None) -> list[str]:
    if not export:
        return []
    lines = [
        "## Export",
        "",
        "`benchmarks/export.py`: a child `llmscope serve` on the 1M-span store, then per format a child "
        "`llmscope export --level spans -o FILE` of the first quarter of the time range and of all of it "
        "(docs/export.md). Server RSS: its main process (the API runs the export), sampled every 50 ms; "
        "CLI: peak RSS sampled every 20 ms. The server's RSS before the first export includes loading "
        "the trace summary index on first use; bounded memory shows as the same peaks for a quarter and for "
        "all of it.",
        "",
        "| Format | Spans | Output MB | Seconds | Spans/s | MB/s | Server peak RSS MB (quarter → all) "
        "| CLI peak RSS MB (quarter → all) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fmt, figures in export.get("formats", {}).items():
        every, quarter = figures["all"], figures.get("quarter", figures["all"])
        lines.append(
            f"| {fmt} | {every['rows']:,} | {every['bytes'] / 1e6:,.0f} | {every['seconds']:,.0f} | "
            f"{every['spans_per_s']:,} | {every['mb_per_s']:g} | {quarter['server_peak_rss_mb']:,.0f} → "
            f"{every['server_peak_rss_mb']:,.0f} | {quarter['cli_peak_rss_mb']:,.0f} → "
            f"{every['cli_peak_rss_mb']:,.0f} |"
        )
    lines += ["", f"Server RSS when it started: {export.get('server_start_rss_mb', 0):,.0f} MB.", ""]
    return lines


def _render_proxy(proxy: dict[str, Any] | None) -> list[str]:
    if not proxy:
        return []
    ns, tt = proxy["non_streaming"], proxy["ttft"]
    rows = [
        ("Non-streaming call p50", ns, "p50", "proxy_added_p50_ms"),
        ("Non-streaming call p99", ns, "p99", None),
        ("Time to first token p50", tt, "p50", "proxy_ttft_added_ms"),
        ("Time to first token p99", tt, "p99", None),
    ]
    lines = [
        "## Capture proxy",
        "",
        "`benchmarks/proxy_overhead.py`: the same call direct to the simulated provider and through the proxy, "
        f"alternating, keep-alive httpx client ({ns['n']} non-streaming pairs, {tt['n']} streamed pairs; time to "
        "first token = to the first SSE data line). Added p50 = median of the per-pair differences; added p99 = "
        "difference of the p99s.",
        "",
        "| Figure (ms) | Direct | Through the proxy | Added | Target |",
        "|---|---|---|---|---|",
    ]
    for label, fig, q, target in rows:
        verdict = f"{hit(target, fig[f'added_{q}_ms'])} ≤ 1" if target else ""
        lines.append(
            f"| {label} | {_f(fig[f'direct_{q}_ms'], 2)} | {_f(fig[f'proxy_{q}_ms'], 2)} | "
            f"{_f(fig[f'added_{q}_ms'], 2)} | {verdict} |"
        )
    lines.append("")
    tp = proxy.get("throughput")
    if tp:
        lines += [
            f"Throughput ({tp['threads']} client threads, {tp['seconds']:g} s each; the simulator, `llmscope serve "
            "--proxy-port` and the clients share the 2 cores): direct to the simulator "
            f"{tp['direct_calls_per_s']:,.0f} calls/s, through the proxy inside `serve` (spans into the WAL and "
            f"Parquet) {tp['proxy_calls_per_s']:,.0f} calls/s "
            f"({tp['proxy_calls_per_s'] / max(tp['direct_calls_per_s'], 1e-9):.2f}×); the collector process spent "
            f"{tp['serve_cpu_us_per_call']:,.0f} µs of CPU per proxied call.",
            "",
        ]
    return lines


def _render_install(install: dict[str, Any] | None) -> list[str]:
    if not install:
        return []
    lines = [
        "## Install footprint (`pip install llmscope` vs `llmscope[server]`)",
        "",
        "`benchmarks/install_footprint.py`: the wheel of this checkout installed into fresh venvs "
        f"({install['installer']}, CPython {install['python']}): alone, as an application installs the SDK, and "
        "with the `server` extra (the collector, API and UI: the dependency set of every install before the split). "
        "Size = bytes of the files under site-packages. Times: CPU (user + sys of the child process, steadier than "
        f"wall time on a shared machine) and wall, medians of {install['runs']} interleaved runs; the interpreter "
        "alone (`python -c pass`) next to `python -c 'import llmscope'`.",
        "",
        "| Install | Distributions | site-packages | `import llmscope` CPU ms | wall ms | "
        "`+ configure()` CPU ms | wall ms | interpreter alone CPU ms | wall ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("base", "server"):
        f = install[name]
        lines.append(
            f"| {name} | {f['distributions']} | {f['site_packages_bytes'] / 1e6:.1f} MB | "
            f"{_f(f['import_llmscope_cpu_ms'], 0)} | {_f(f['import_llmscope_wall_ms'], 0)} | "
            f"{_f(f.get('configure_llmscope_cpu_ms'), 0)} | {_f(f.get('configure_llmscope_wall_ms'), 0)} | "
            f"{_f(f['interpreter_cpu_ms'], 0)} | {_f(f['interpreter_wall_ms'], 0)} |"
        )
    extra = sorted(set(install["server"]["names"]) - set(install["base"]["names"]))
    lines += ["", f"The server extra adds: {', '.join(extra)}.", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few-minute run: 1M-span store, short windows")
    parser.add_argument(
        "--only",
        default="ingest,sdk,queries,proxy,install,export",
        help="comma-separated parts to run; phoenix (Phoenix beside the ingest figures) joins ingest in full mode; "
        "engines (ClickHouse beside DuckDB, engines.py) runs only when named",
    )
    parser.add_argument("--sizes", help="store sizes for the query benchmark, e.g. 1000000,10000000")
    parser.add_argument("--store-dir", type=Path, default=Path(tempfile.gettempdir()) / "llmscope-bench-stores")
    parser.add_argument(
        "--peer-python",
        action="append",
        default=[],
        metavar="IMPL=PYTHON",
        help="measure a peer instrumentation with that interpreter (its own venv), "
        "e.g. openllmetry=/tmp/peers/bin/python",
    )
    parser.add_argument("--render-only", action="store_true", help="rewrite the Markdown from the JSON report")
    parser.add_argument("--merge", action="store_true", help="keep the parts not in --only from the last JSON report")
    parser.add_argument(
        "--no-peers", action="store_true", help="skip OpenLLMetry/OpenInference and Phoenix (no venvs built)"
    )
    parser.add_argument("--out-md", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--out-json", type=Path, default=ROOT / "docs" / "benchmarks.json")
    parser.add_argument("--note", action="append", default=[], help="a line for the report's notes")
    args = parser.parse_args(argv)
    if args.render_only:
        args.out_md.write_text(render(json.loads(args.out_json.read_text())))
        return 0
    mode = QUICK if args.quick else FULL
    parts = set(args.only.split(","))
    if "ingest" in parts and not args.quick:  # Phoenix beside the ingest figures, unless --no-peers
        parts.add("phoenix")
    if args.no_peers:
        parts.discard("phoenix")
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else mode["sizes"]
    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "mode_note": ", ".join(
            f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in mode.items() if k != "sizes"
        )
        + f"; store sizes {', '.join(f'{s:,}' for s in sizes)}",
        "machine": machine(),
        "targets": {k: {"op": op, "value": v, "text": t} for k, (op, v, t) in TARGETS.items()},
        "notes": [*STANDING_NOTES, *args.note],
    }
    if args.merge and args.out_json.exists():  # keep the parts not re-run from the last report
        previous = json.loads(args.out_json.read_text())
        groups = {"sdk": "sdk", "sdk_profile": "sdk", "ingest": "ingest", "queries": "queries", "proxy": "proxy"}
        groups["install"], groups["sdk_export"] = "install", "sdk"
        groups["export"] = "export"
        groups["query_profiles"] = "queries"
        groups["ingest_peers"] = "phoenix"
        groups["engines"] = "engines"
        for key, group in groups.items():
            if key in previous and group not in parts:
                results[key] = previous[key]
        results["notes"] += [n for n in previous.get("notes", ()) if _kept_note(n) and n not in results["notes"]]
        kept = ", ".join(
            sorted({"sdk", "ingest", "queries", "proxy", "install", "export", "phoenix", "engines"} - parts)
        )
        results["notes"].append(
            f"Merged report: {kept} from the run of {previous['machine']['date_utc']} (commit "
            f"`{previous['machine']['git_commit']}`); {', '.join(sorted(parts))} re-run on "
            f"{results['machine']['date_utc']}."
        )
    started = time.perf_counter()
    if "sdk" in parts:
        results["sdk"] = {"llmscope": bench_sdk(mode)}
        peers = dict(spec.partition("=")[::2] for spec in args.peer_python)
        for impl in [] if args.no_peers else [p for p in PEERS if p not in peers]:
            try:
                peers[impl] = peer_python(impl, args.store_dir)
            except (subprocess.SubprocessError, OSError) as exc:
                results["sdk"][impl] = {"error": f"venv not built: {exc!r}"[:300]}
        for impl, python in peers.items():
            cg = results["sdk"]["llmscope"].get("callgrind", {})
            base = (
                {"plain": cg["plain_per_call"], "plain-quiet": cg["plain_quiet_per_call"]}
                if "plain_per_call" in cg
                else None
            )
            try:
                results["sdk"][impl] = bench_sdk(mode, impl, python, base)
            except (subprocess.SubprocessError, OSError, RuntimeError) as exc:
                results["sdk"][impl] = {"error": f"failed: {exc!r}"[:300]}
        s = results["sdk"]["llmscope"]
        missed = (
            s["paired"]["added_us_median"] > TARGETS["sdk_added_us"][1]
            or s.get("callgrind", {}).get("added_per_call", 0) > TARGETS["sdk_added_instructions"][1]
        )
        try:
            export_cmd = [PY, str(HERE / "sdk_overhead.py"), "--export-cpu", "5", "--calls", "10240"]
            results["sdk_export"] = run_json(export_cmd, timeout=1800)
        except (subprocess.SubprocessError, OSError) as exc:
            results["sdk_export"] = {"error": f"failed: {exc!r}"[:300]}
        if missed:
            results["sdk_profile"] = "\n".join(
                run_text([PY, str(HERE / "sdk_overhead.py"), "--pyinstrument", "2000"], 600).splitlines()[:45]
            )
    if "install" in parts:
        log("install: the wheel alone and with [server], in fresh venvs")
        results["install"] = dict(run_json([PY, str(HERE / "install_footprint.py"), "--runs", "20"], timeout=1800))
    if "ingest" in parts:
        results["ingest"] = bench_ingest(mode)
    if "phoenix" in parts:
        results["ingest_peers"] = bench_ingest_peers(mode)
    if "proxy" in parts:
        results["proxy"] = bench_proxy(mode)
    if "export" in parts:
        results["export"] = bench_export(args.store_dir)
    if "engines" in parts:
        results["engines"] = bench_engines(sizes, args.store_dir)
    if "queries" in parts:
        results["queries"] = bench_queries(mode, sizes, args.store_dir)
        largest = results["queries"][str(max(sizes))]
        profiles = {}
        for fig, call, key in (
            ("waterfall_p95", "waterfall", "waterfall_p95_ms"),
            ("trace_list_p50", "trace_list", "trace_list_ms"),
            ("cost_rollup_model_day_p50", "cost_rollup_model_day", "cost_rollup_ms"),
            ("session_list_p50", "session_list", "session_list_ms"),
        ):
            if hit(key, largest["in_process"][fig]["median"]) == "**MISS**":
                log(f"queries: profiling {call}")
                text = run_text(
                    [PY, str(HERE / "queries.py"), "--data-dir", largest["store_path"], "--profile", call], 900
                )
                profiles[call] = "\n".join(text.splitlines()[:45])
        results["query_profiles"] = profiles
    results["elapsed_s"] = round(time.perf_counter() - started)
    args.out_json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    args.out_md.write_text(render(results))
    log(f"wrote {args.out_md} and {args.out_json} in {results['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
