"""What the capture proxy adds to a call, measured against the same call made directly, same run.

The upstream is the simulated provider on loopback; the client is httpx with keep-alive (what the
provider SDKs use). Calls alternate direct / through the proxy so drift hits both alike; the added
latency is the median and p99 of the per-pair differences. Streams: time to the first SSE data
line. The proxy's sink encodes every span to OTLP bytes
as in `serve` and drops them: this measures the proxy, not the WAL.

    python benchmarks/proxy_overhead.py [--calls 2000] [--streams 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
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
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.calls, args.streams)
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
