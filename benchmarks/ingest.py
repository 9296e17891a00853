"""Ingest benchmark: an OTLP load generator against a real `llmscope serve` child process on loopback.

    python benchmarks/ingest.py [--seconds 10] [--runs 3] [--threads 8] [--channels 4] [--json out.json]

The collector runs with the WAL on (fsync, group commit) in a temp data dir. The client sends
pre-serialized `ExportTraceServiceRequest`s of realistic LLM traces (`otlp_traces`): a small set of
templates whose trace ids and captured content are made unique per send by swapping markers (C-level
`bytes.replace`s), so the client spends its CPU on the wire, not on protobuf, and the collector sees
new content in every request, as from real traffic. Several threads share
several gRPC channels (separate TCP connections), each thread one call in flight.

Measured per window of `--seconds` (after a warm-up), `--runs` consecutive windows: spans acked per
second, Export latency p50/p99, CPU seconds per second of the collector (with its decode workers)
and of this client (both on the same 2 cores), the collector's peak RSS (its process tree, from
/proc), then how long the writer took to get every acked span into Parquet and the bytes on disk
per span after a compaction pass. Then OTLP/HTTP protobuf and JSON throughput the same way.
`--decoders native,python` repeats the gRPC part with the pure-Python OTLP decoder
(`LLMSCOPE_DECODE_NATIVE=0`), same load, for CPU per span, spans/s and RSS side by side.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import http.client
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

sys.path.insert(0, str(Path(__file__).resolve().parent))

from otlp_traces import CONTENT_MARKER, TRACE_MARKER, TraceShape, requests

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_BANNER = re.compile(r"OTLP/gRPC on [^:]+:(\d+), OTLP/HTTP on [^:]+:(\d+), API on (http://\S+) ")
_FRAME = re.compile(r"^\S.* \([^()]+:\d+\)$")  # "function (file.py:line)"; not process/thread labels
# Frames every stack has (thread/process start-up, executors): left out of the "total" ranking.
_PLUMBING = re.compile(r"\((threading|multiprocessing/\w+|concurrent/futures/\w+|<string>)\.py:\d+\)$|^<module> ")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclasses.dataclass
class Server:
    proc: subprocess.Popen[str]
    grpc_port: int
    http_port: int
    api: str
    data_dir: Path


def start_server(data_dir: Path, env: dict[str, str] | None = None) -> Server:
    """`llmscope serve` on ephemeral loopback ports; its stdout is drained by a thread."""
    full_env = {**os.environ, "LLMSCOPE_RETENTION_DAYS": "0", **(env or {})}
    cmd = [
        sys.executable,
        "-m",
        "llmscope_collector",
        "serve",
        "--otlp-grpc-port",
        "0",
        "--otlp-http-port",
        "0",
        "--api-port",
        "0",
        "--auth",
        "off",
        "--data-dir",
        str(data_dir),
    ]
    proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        match = _BANNER.search(line)
        if match:
            threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True).start()
            return Server(proc, int(match.group(1)), int(match.group(2)), match.group(3), data_dir)
    proc.kill()
    raise RuntimeError("llmscope serve did not start")


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(120)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


def health(server: Server) -> dict[str, Any]:
    with urllib.request.urlopen(server.api + "/health", timeout=30) as resp:
        body: dict[str, Any] = json.loads(resp.read())
        return body


# -- /proc -------------------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (the collector's decode workers).

    Each thread lists the children it started in its own `task/<tid>/children`: the decode pool is
    started by the WAL consumer thread, so every thread's list is read, not only the main one's."""
    pids, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        children: list[str] = []
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                children += task.read_text().split()
            except OSError:
                continue
        for child in map(int, children):
            pids.append(child)
            frontier.append(child)
    return pids


def tree_cpu_s(pid: int) -> float:
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _CLK_TCK


def tree_rss_mb(pid: int) -> float:
    total = 0
    for p in process_tree(pid):
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * _PAGE_KB
        except OSError:
            continue
    return total / 1024.0


def tree_pss_mb(pid: int) -> float:
    """Proportional set size of the process tree: shared pages (the Python runtime, pyarrow's and
    protobuf's libraries mapped by every decode worker) counted once in all, as the kernel charges
    them to a container's memory limit; RSS counts them once per process."""
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except (OSError, ValueError):
            continue
    return total / 1024.0


class RssSampler(threading.Thread):
    """Peak RSS of the tree and of the main process (every `interval`), and peak PSS of the tree
    (every 5th sample: reading smaps_rollup walks every mapping, ~10x dearer than statm)."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak_mb, self.main_peak_mb = pid, interval, 0.0, 0.0
        self.pss_peak_mb = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        samples = 0
        while not self._halt.wait(self.interval):
            self.peak_mb = max(self.peak_mb, tree_rss_mb(self.pid))
            samples += 1
            if samples % 5 == 0:
                self.pss_peak_mb = max(self.pss_peak_mb, tree_pss_mb(self.pid))
            try:
                main = int(Path(f"/proc/{self.pid}/statm").read_text().split()[1]) * _PAGE_KB / 1024.0
            except OSError:
                continue
            self.main_peak_mb = max(self.main_peak_mb, main)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return self.peak_mb


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- payloads ----------------------------------------------------------------------------------------


def build_templates(count: int, traces_per_request: int, seed: int) -> tuple[list[bytes], list[bytes], list[int]]:
    """Protobuf and OTLP-JSON bodies of `count` requests, and their span counts."""
    now = time.time_ns()
    protos, jsons, spans = [], [], []
    for request, n in requests(
        seed, count * traces_per_request, traces_per_request, now - 60 * 10**9, 60.0, TraceShape(), marker=True
    ):
        protos.append(request.SerializeToString())
        jsons.append(json.dumps(_otlp_json(request), separators=(",", ":")).encode())
        spans.append(n)
    return protos, jsons, spans


def _otlp_json(request: Any) -> dict[str, Any]:
    """OTLP/JSON: like proto3 JSON but ids are hex, enums integers (int64 stay strings)."""
    body = MessageToDict(request, use_integers_for_enums=True)
    for rs in body.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return body


_MARKER_HEX = TRACE_MARKER.hex().encode()
_CONTENT_MARKER = CONTENT_MARKER.encode()


class Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 1

    def take(self) -> int:
        with self._lock:
            n = self._next
            self._next += 1
            return n


# -- load --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Load:
    """Completions as (end time, latency s, spans); refusals counted (retried by the sender)."""

    done: list[tuple[float, float, int]] = dataclasses.field(default_factory=list)
    refused: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)


Sender = Callable[[bytes], bool]  # True when acked, False when refused (retryable)


def drive(
    make_sender: Callable[[int], Sender],
    bodies: list[bytes],
    spans: list[int],
    threads: int,
    *,
    hex_marker: bool,
    load: Load,
    counter: Counter,
    limit: int | None = None,
) -> list[threading.Thread]:
    """`threads` senders, each one call in flight; the n-th send (one counter for all threads) carries
    template `(n - 1) % len(bodies)` made unique by n. With `limit`, the senders stop after the
    `limit`-th send is acked: `limit <= len(bodies)` sends every template at most once (a fixed load
    whose span ids never repeat, for stores that keep the first of two spans with one span id)."""
    marker = _MARKER_HEX if hex_marker else TRACE_MARKER

    def worker(index: int) -> None:
        send = make_sender(index)
        while not load.stop.is_set():
            n = counter.take()
            if limit is not None and n > limit:
                return
            k = (n - 1) % len(bodies)
            unique = n.to_bytes(8, "big")
            body = bodies[k].replace(marker, unique.hex().encode() if hex_marker else unique)
            body = body.replace(_CONTENT_MARKER, unique.hex().encode())
            while not load.stop.is_set():
                start = time.perf_counter()
                try:
                    ok = send(body)
                except Exception as exc:  # a broken connection: count it, stop this worker
                    load.errors.append(repr(exc)[:200])
                    return
                end = time.perf_counter()
                if ok:
                    load.done.append((end, end - start, spans[k]))
                    break
                load.refused += 1
                time.sleep(0.02)

    pool = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for t in pool:
        t.start()
    return pool


def grpc_sender_factory(port: int, channels: int) -> tuple[Callable[[int], Sender], Callable[[], None]]:
    chans = [
        grpc.insecure_channel(
            f"127.0.0.1:{port}",
            options=[("grpc.use_local_subchannel_pool", 1), ("grpc.max_send_message_length", 64 << 20)],
        )
        for _ in range(channels)
    ]
    calls = [c.unary_unary(METHOD) for c in chans]

    def make(index: int) -> Sender:
        call = calls[index % channels]

        def send(body: bytes) -> bool:
            try:
                call(body, timeout=60)
                return True
            except grpc.RpcError as exc:
                if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                    return False
                raise

        return send

    def close() -> None:
        for c in chans:
            c.close()

    return make, close


def http_sender_factory(port: int, content_type: str) -> Callable[[int], Sender]:
    def make(index: int) -> Sender:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": content_type}

        def send(body: bytes) -> bool:
            conn.request("POST", "/v1/traces", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                return True
            if resp.status in (429, 503):
                return False
            raise RuntimeError(f"HTTP {resp.status}")

        return send

    return make


def measure_windows(server: Server, load: Load, warmup_s: float, seconds: float, runs: int) -> list[dict[str, Any]]:
    """Consecutive windows after a warm-up: throughput (acked and written to Parquet), latency, CPU of both sides."""
    time.sleep(warmup_s)
    windows = []
    for _ in range(runs):
        h0 = health(server)["ingest"]
        t0, c0, s0, r0 = time.perf_counter(), self_cpu_s(), tree_cpu_s(server.proc.pid), load.refused
        time.sleep(seconds)
        t1, c1, s1, r1 = time.perf_counter(), self_cpu_s(), tree_cpu_s(server.proc.pid), load.refused
        h1 = health(server)["ingest"]
        done = [d for d in list(load.done) if t0 <= d[0] < t1]
        lat = sorted(d[1] for d in done) or [float("nan")]
        elapsed = t1 - t0
        windows.append(
            {
                "spans_per_s": sum(d[2] for d in done) / elapsed,
                "written_spans_per_s": (int(h1["spans_written"]) - int(h0["spans_written"])) / elapsed,
                "wal_lag_mb_at_end": int(h1.get("wal_lag_bytes", 0)) / 2**20,
                "requests_per_s": len(done) / elapsed,
                "latency_p50_ms": lat[len(lat) // 2] * 1000,
                "latency_p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000,
                "collector_cpu": (s1 - s0) / elapsed,
                "client_cpu": (c1 - c0) / elapsed,
                "refused_per_s": (r1 - r0) / elapsed,
            }
        )
    return windows


def med(windows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    values = [w[key] for w in windows]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def grpc_run(
    args: argparse.Namespace, protos: list[bytes], spans: list[int], decoder: str = "native", py_spy: float = 0.0
) -> dict[str, Any]:
    """The gRPC load against a collector decoding with `decoder` (native: the C extension; python: upb)."""
    env = {"LLMSCOPE_WAL_FSYNC": "1", "LLMSCOPE_COMPACTION_INTERVAL_S": "0"}
    env["LLMSCOPE_DECODE_NATIVE"] = "1" if decoder == "native" else "0"
    with tempfile.TemporaryDirectory(prefix="llmscope-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        server = start_server(data_dir, env)
        try:
            sampler = RssSampler(server.proc.pid)
            sampler.start()
            idle_rss = tree_rss_mb(server.proc.pid)
            idle_pss = tree_pss_mb(server.proc.pid)
            load, counter = Load(), Counter()
            cpu_at_start = tree_cpu_s(server.proc.pid)
            make, close = grpc_sender_factory(server.grpc_port, args.channels)
            pool = drive(make, protos, spans, args.threads, hex_marker=False, load=load, counter=counter)
            windows = measure_windows(server, load, args.warmup, args.seconds, args.runs)
            profile = py_spy_top(server.proc.pid, py_spy) if py_spy > 0 else None
            running = decoder_info(server)
            load.stop.set()
            for t in pool:
                t.join(60)
            close()
            acked = sum(d[2] for d in load.done)
            drain_start = time.perf_counter()
            written = 0
            while time.perf_counter() - drain_start < 300:
                written = int(health(server)["ingest"]["spans_written"])
                if written >= acked:
                    break
                time.sleep(0.2)
            drain_s = time.perf_counter() - drain_start
            cpu_s = tree_cpu_s(server.proc.pid) - cpu_at_start  # receiving, WAL, decoding and writing them all
            peak_rss = sampler.stop()
        finally:
            stop_server(server)
        disk = compacted_bytes(data_dir)
    return {
        "decoder": running,
        "windows": windows,
        "spans_per_s": med(windows, "spans_per_s"),
        "written_spans_per_s": med(windows, "written_spans_per_s"),
        "wal_lag_mb_at_end": med(windows, "wal_lag_mb_at_end"),
        "latency_p50_ms": med(windows, "latency_p50_ms"),
        "latency_p99_ms": med(windows, "latency_p99_ms"),
        "collector_cpu": med(windows, "collector_cpu"),
        "client_cpu": med(windows, "client_cpu"),
        "refused_per_s": med(windows, "refused_per_s"),
        "errors": load.errors[:5],
        "spans_acked": acked,
        "spans_written": written,
        "drain_after_load_s": drain_s,
        "cpu_us_per_written_span": cpu_s / max(written, 1) * 1e6,
        "peak_rss_mb": peak_rss,
        "main_process_peak_rss_mb": sampler.main_peak_mb,
        "peak_pss_mb": sampler.pss_peak_mb,
        "idle_pss_mb": idle_pss,
        "idle_rss_mb": idle_rss,
        "disk": disk,
        "profile": profile,
    }


def decoder_info(server: Server) -> str:
    """The decoder the collector says it runs (`llmscope_ingest_decoder_info` on /metrics)."""
    with urllib.request.urlopen(server.api + "/metrics", timeout=10) as response:
        text = response.read().decode()
    found = re.search(r'llmscope_ingest_decoder_info\{decoder="(\w+)"\}', text)
    return found.group(1) if found else "unknown"


def cpu_per_span_us(run: dict[str, Any]) -> float:
    """Collector CPU (process tree) per acked span, µs: median CPU cores over median spans/s (while
    the WAL lags, part of the decoding of those spans is done later: `cpu_us_per_written_span`
    counts the whole run, load and drain, over every span written)."""
    return float(run["collector_cpu"]["median"] / run["spans_per_s"]["median"] * 1e6)


def decoder_summary(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "decoder": run["decoder"],
        "spans_per_s": run["spans_per_s"]["median"],
        "written_spans_per_s": run["written_spans_per_s"]["median"],
        "collector_cpu": run["collector_cpu"]["median"],
        "cpu_us_per_span": cpu_per_span_us(run),
        "cpu_us_per_written_span": run["cpu_us_per_written_span"],
        "peak_rss_mb": run["peak_rss_mb"],
        "main_process_peak_rss_mb": run["main_process_peak_rss_mb"],
    }


def py_spy_top(pid: int, seconds: float, top: int = 25) -> dict[str, Any]:
    """Sample the collector (and its decode workers) under load with py-spy: top frames by own and total time.

    `--gil`: only the thread holding the GIL is sampled in each process, so idle threads and threads waiting
    for I/O do not show up: what is left is where each interpreter's one core of Python goes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        cmd = [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
            "--subprocesses",
            "--gil",
            "--nonblocking",
        ]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=seconds + 60)
        except (OSError, subprocess.SubprocessError) as exc:
            return {"error": repr(exc)[:300]}
        own: dict[str, int] = {}
        total: dict[str, int] = {}
        samples = 0
        for line in out.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [f for f in stack.split(";") if _FRAME.match(f)]
            if not frames:
                continue
            samples += count
            own[frames[-1]] = own.get(frames[-1], 0) + count
            for frame in {f for f in frames if not _PLUMBING.search(f)}:
                total[frame] = total.get(frame, 0) + count

    def ranked(table: dict[str, int]) -> list[tuple[str, float]]:
        return [(f, round(100.0 * c / max(samples, 1), 1)) for f, c in sorted(table.items(), key=lambda x: -x[1])[:top]]

    return {"samples": samples, "seconds": seconds, "own_pct": ranked(own), "total_pct": ranked(total)}


def compacted_bytes(data_dir: Path) -> dict[str, Any]:
    """Compact the stopped collector's data dir (as its background task would, in a process tuned as
    `llmscope serve` is), then bytes per dataset and the compacting process's peak RSS: the bench's
    collector runs without compaction, which in a running collector adds this to the tree's peak."""
    code = (
        "import sys, resource; from pathlib import Path;"
        "from llmscope_collector.process_memory import tune_process_memory; tune_process_memory();"
        "from llmscope_collector.storage.compaction import CompactionOptions, Compactor;"
        "Compactor(Path(sys.argv[1]), CompactionOptions(), committed_lsn=lambda: 1 << 62).run_once();"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(data_dir)], check=True, capture_output=True, text=True)
    out: dict[str, Any] = {"compaction_peak_rss_mb": int(done.stdout.split()[-1]) / 1024}
    for name in ("spans", "content", "traces", "llm_dups", "wal"):
        root = data_dir / name
        out[name] = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) if root.exists() else 0
    return out


def http_run(args: argparse.Namespace, bodies: list[bytes], spans: list[int], content_type: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="llmscope-bench-") as tmp:
        server = start_server(Path(tmp) / "data", {"LLMSCOPE_WAL_FSYNC": "1", "LLMSCOPE_COMPACTION_INTERVAL_S": "0"})
        try:
            load, counter = Load(), Counter()
            pool = drive(
                http_sender_factory(server.http_port, content_type),
                bodies,
                spans,
                args.threads,
                hex_marker=content_type == "application/json",
                load=load,
                counter=counter,
            )
            windows = measure_windows(server, load, args.warmup, args.http_seconds, args.runs)
            load.stop.set()
            for t in pool:
                t.join(60)
        finally:
            stop_server(server)
    return {
        "windows": windows,
        "spans_per_s": med(windows, "spans_per_s"),
        "written_spans_per_s": med(windows, "written_spans_per_s"),
        "wal_lag_mb_at_end": med(windows, "wal_lag_mb_at_end"),
        "refused_per_s": med(windows, "refused_per_s"),
        "latency_p99_ms": med(windows, "latency_p99_ms"),
        "collector_cpu": med(windows, "collector_cpu"),
        "client_cpu": med(windows, "client_cpu"),
        "errors": load.errors[:5],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one measured gRPC window")
    parser.add_argument("--http-seconds", type=float, default=5.0, help="length of one measured HTTP window")
    parser.add_argument("--runs", type=int, default=3, help="consecutive measured windows")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=8, help="calls in flight")
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels (TCP connections)")
    parser.add_argument("--templates", type=int, default=32, help="distinct request bodies")
    parser.add_argument("--traces-per-request", type=int, default=40)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--py-spy", type=float, default=0.0, help="seconds of py-spy sampling of the loaded collector")
    parser.add_argument(
        "--decoders",
        default="native",
        help="OTLP decoders to measure over gRPC, in this order (native,python): the first is the main figure",
    )
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    protos, jsons, spans = build_templates(args.templates, args.traces_per_request, args.seed)
    result: dict[str, Any] = {
        "config": {
            **vars(args),
            "spans_per_request": statistics.mean(spans),
            "proto_bytes_per_request": statistics.mean(len(p) for p in protos),
            "json_bytes_per_request": statistics.mean(len(j) for j in jsons),
        },
    }
    runs = {}
    for i, decoder in enumerate(args.decoders.split(",")):  # the same load, one collector per decoder
        runs[decoder] = grpc_run(args, protos, spans, decoder, args.py_spy if i == 0 else 0.0)
    result["grpc"] = next(iter(runs.values()))
    result["grpc_by_decoder"] = {decoder: decoder_summary(run) for decoder, run in runs.items()}
    print(json.dumps(result["grpc"], indent=2), file=sys.stderr)
    if not args.no_http:
        result["http_protobuf"] = http_run(args, protos, spans, "application/x-protobuf")
        result["http_json"] = http_run(args, jsons, spans, "application/json")
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
