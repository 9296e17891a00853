"""Ingest throughput with the write-ahead log: acked spans/s, fsyncs/s, and end-to-end spans/s into Parquet.

Runs `llmscope serve` as a child process on ephemeral ports and a temp data dir, then sends
pre-built OTLP/gRPC requests (unique span ids) from several client threads. Usage:

    python benchmarks/wal_ingest.py [--requests 2000] [--spans 100] [--threads 8] [--no-fsync]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_PORTS = re.compile(r"OTLP/gRPC on [^:]+:(\d+),.*API on (http://\S+) ")


def _kv(key: str, value: str | int) -> KeyValue:
    any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value)


def build_payloads(requests: int, spans: int) -> list[bytes]:
    """Requests of `spans` LLM-like spans each, every span id unique."""
    now = time.time_ns()
    attrs = [
        _kv("gen_ai.operation.name", "chat"),
        _kv("gen_ai.provider.name", "openai"),
        _kv("gen_ai.request.model", "gpt-4o"),
        _kv("gen_ai.usage.input_tokens", 120),
        _kv("gen_ai.usage.output_tokens", 40),
        _kv("server.address", "api.openai.com"),
    ]
    payloads = []
    for _ in range(requests):
        batch = [
            Span(
                trace_id=os.urandom(16),
                span_id=os.urandom(8),
                name="chat gpt-4o",
                kind=3,  # type: ignore[arg-type]
                start_time_unix_nano=now,
                end_time_unix_nano=now + 1_000_000,
                attributes=attrs,
            )
            for _ in range(spans)
        ]
        request = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource=Resource(attributes=[_kv("service.name", "bench")]),
                    scope_spans=[ScopeSpans(scope=InstrumentationScope(name="bench"), spans=batch)],
                )
            ]
        )
        payloads.append(request.SerializeToString())
    return payloads


def start_server(data_dir: Path, fsync: bool) -> tuple[subprocess.Popen[str], int, str]:
    env = {**os.environ, "LLMSCOPE_WAL_FSYNC": "1" if fsync else "0", "LLMSCOPE_COMPACTION_INTERVAL_S": "0"}
    cmd = [sys.executable, "-m", "llmscope_collector", "serve", "--otlp-grpc-port", "0", "--otlp-http-port", "0"]
    cmd += ["--api-port", "0", "--auth", "off", "--data-dir", str(data_dir)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        match = _PORTS.search(line)
        if match:
            return proc, int(match.group(1)), match.group(2)
    raise RuntimeError("server did not start")


def ingest(api_url: str) -> dict[str, object]:
    with urllib.request.urlopen(api_url + "/health", timeout=10) as resp:
        body: dict[str, object] = json.loads(resp.read())["ingest"]
        return body


def send_all(port: int, payloads: list[bytes], threads: int) -> tuple[float, int]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary(METHOD)
    lock = threading.Lock()
    queue = list(reversed(payloads))
    refused = [0]

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                payload = queue.pop()
            while True:
                try:
                    call(payload, timeout=30)
                    break
                except grpc.RpcError:
                    refused[0] += 1
                    time.sleep(0.05)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    channel.close()
    return elapsed, refused[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--spans", type=int, default=100)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--no-fsync", action="store_true")
    args = parser.parse_args()
    payloads = build_payloads(args.requests, args.spans)
    total = args.requests * args.spans
    with tempfile.TemporaryDirectory() as tmp:
        proc, port, api = start_server(Path(tmp) / "data", fsync=not args.no_fsync)
        try:
            before = ingest(api)
            started = time.perf_counter()
            elapsed, refused = send_all(port, payloads, args.threads)
            after = ingest(api)
            while int(str(ingest(api)["spans_written"])) < total:
                time.sleep(0.05)
            end_to_end = time.perf_counter() - started
            fsyncs = int(str(after["wal_fsyncs"])) - int(str(before["wal_fsyncs"]))
            written_at_ack = int(str(after["spans_written"]))
        finally:
            proc.terminate()
            proc.wait(60)
    rate, req_rate = total / elapsed, args.requests / elapsed
    print(f"spans acked: {total} in {elapsed:.2f}s = {rate:,.0f} spans/s ({req_rate:,.0f} req/s)")
    print(f"fsyncs: {fsyncs} = {fsyncs / elapsed:,.0f}/s, {args.requests / max(fsyncs, 1):.1f} requests per fsync")
    print(f"spans already in Parquet when the last ack returned: {written_at_ack}; retryable refusals: {refused}")
    print(f"all spans in Parquet after {end_to_end:.2f}s = {total / end_to_end:,.0f} spans/s end to end")


if __name__ == "__main__":
    main()
