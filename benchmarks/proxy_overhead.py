"""What the capture proxy adds to a call, measured against the same call made directly, same run.

The upstream is the simulated provider on loopback; the client is httpx with keep-alive (what the
provider SDKs use). Calls alternate direct / through the proxy so drift hits both alike; the added
latency is the median and p99 of the per-pair differences. Streams: time to the first SSE data
line. The proxy's sink encodes every span to OTLP bytes
as in `serve` and drops them: this measures the proxy, not the WAL.

Throughput is measured on the real deployment: `llmscope serve --proxy-port` in its own process
(spans into the WAL and Parquet), the simulator in another, and threads of keep-alive clients in
this one, for a fixed time; beside the same load sent straight to the simulator. The collector
process's CPU time per proxied call comes from /proc.

    python benchmarks/proxy_overhead.py [--calls 2000] [--streams 300] [--seconds 10] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx

from llmscope_proxy import ProxyConfig, ProxyServer
from llmscope_sim import SimulatedProvider

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
STREAM_BODY = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
HEADERS = {"authorization": "Bearer sk-bench"}


class _CountingSink:
    def __init__(self) -> None:
        self.spans_bytes = 0
        self.batches = 0

    def __call__(self, payload: bytes, _credentials: Mapping[str, str]) -> None:
        self.spans_bytes += len(payload)
        self.batches += 1


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _call(client: httpx.Client, base: str) -> float:
    start = time.perf_counter()
    response = client.post(f"{base}/v1/chat/completions", json=BODY, headers=HEADERS)
    response.read()
    assert response.status_code == 200, response.text
    return (time.perf_counter() - start) * 1e3


def _ttft(client: httpx.Client, base: str) -> float:
    start = time.perf_counter()
    with client.stream("POST", f"{base}/v1/chat/completions", json=STREAM_BODY, headers=HEADERS) as response:
        first = 0.0
        for line in response.iter_lines():
            if not first and line.startswith("data:"):
                first = (time.perf_counter() - start) * 1e3
    return first


def paired(n: int, fn: Any, direct: str, proxied: str) -> dict[str, float]:
    with httpx.Client(timeout=30) as client:
        for _ in range(50):  # warm both connections
            fn(client, direct)
            fn(client, proxied)
        d, p = [], []
        for i in range(n):
            order = (direct, proxied) if i % 2 == 0 else (proxied, direct)
            a, b = fn(client, order[0]), fn(client, order[1])
            d.append(a if order[0] == direct else b)
            p.append(b if order[0] == direct else a)
    added = [y - x for x, y in zip(d, p, strict=True)]
    return {
        "n": n,
        "direct_p50_ms": statistics.median(d),
        "direct_p99_ms": _pct(d, 0.99),
        "proxy_p50_ms": statistics.median(p),
        "proxy_p99_ms": _pct(p, 0.99),
        "added_p50_ms": statistics.median(added),
        "added_p99_ms": _pct(p, 0.99) - _pct(d, 0.99),
    }


def _started(proc: subprocess.Popen[str], pattern: str) -> str:
    """The first match of `pattern` in the process's output (its URL), or fail with what it said."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        match = re.search(pattern, line)
        if match:  # keep reading what it prints, or a full pipe blocks it (serve logs each request)
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return match.group(1)
    raise RuntimeError("process exited before it was ready: " + "".join(seen)[-2000:])


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _hammer(base: str, seconds: float, threads: int) -> float:
    done = [0] * threads
    deadline = time.perf_counter() + seconds

    def worker(i: int) -> None:
        with httpx.Client(timeout=30) as client:
            while time.perf_counter() < deadline:
                response = client.post(f"{base}/v1/chat/completions", json=BODY, headers=HEADERS)
                assert response.status_code == 200, response.text
                done[i] += 1

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(done) / (time.perf_counter() - started)


def throughput(seconds: float, threads: int = 8) -> dict[str, Any]:
    py = sys.executable
    with tempfile.TemporaryDirectory() as data:
        sim = subprocess.Popen([py, "-m", "llmscope_sim", "--seed", "1"], stdout=subprocess.PIPE, text=True)
        serve = None
        try:
            upstream = _started(sim, r"listening on (http://\S+)")
            env = {**os.environ, "LLMSCOPE_PROXY_OPENAI_BASE_URL": upstream + "/v1"}
            ports = ["--otlp-grpc-port", "0", "--otlp-http-port", "0", "--api-port", "0", "--proxy-port", "0"]
            serve = subprocess.Popen(
                [py, "-m", "llmscope_collector", "serve", *ports, "--data-dir", data],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
            )
            proxy = _started(serve, r"capture proxy on (http://\S+):")
            _hammer(proxy, 3.0, threads)  # warm-up: the collector's first flushes, imports, pools
            direct = _hammer(upstream, seconds, threads)
            cpu0 = _cpu_s(serve.pid)
            proxied = _hammer(proxy, seconds, threads)
            cpu = _cpu_s(serve.pid) - cpu0
        finally:
            for proc in (serve, sim):
                if proc is not None:
                    proc.terminate()
                    proc.wait(30)
    return {
        "threads": threads,
        "seconds": seconds,
        "direct_calls_per_s": direct,
        "proxy_calls_per_s": proxied,
        "serve_cpu_us_per_call": cpu / max(proxied * seconds, 1) * 1e6,
    }


def run(calls: int, streams: int) -> dict[str, Any]:
    sink = _CountingSink()
    with SimulatedProvider(seed=1, record=False) as sim:
        config = ProxyConfig(openai_base_url=sim.base_url + "/v1", anthropic_base_url=sim.base_url)
        with ProxyServer(config, sink, lambda _c: None, host="127.0.0.1", port=0) as proxy:
            result = {
                "non_streaming": paired(calls, _call, sim.base_url, proxy.url),
                "ttft": paired(streams, _ttft, sim.base_url, proxy.url),
            }
            proxy.recorder.flush(10)
    result["spans_exported_batches"] = sink.batches
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0, help="per throughput run (0: skip)")
    parser.add_argument("--json", metavar="PATH", help="write the figures to PATH as JSON (else print them)")
    args = parser.parse_args()
    result = run(args.calls, args.streams)
    if args.seconds > 0:
        result["throughput"] = throughput(args.seconds)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh)
    else:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
