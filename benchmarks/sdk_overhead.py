"""SDK overhead per call: µs added (paired blocks in one process) through an in-process mock transport.

    python benchmarks/sdk_overhead.py --calls 2000 --blocks 20 [--json out.json]
    python benchmarks/sdk_overhead.py --callgrind-run instrumented|plain --calls K   (used under valgrind)
    python benchmarks/sdk_overhead.py --impl openllmetry|openinference ...   (a peer instead of llmscope)
    python benchmarks/sdk_overhead.py --pyinstrument 2000   (where the instrumented call's time goes)
    python benchmarks/sdk_overhead.py --app-processor ...   (the app added a processor: llmscope uses SDK spans)
    python benchmarks/sdk_overhead.py --export-cpu 5 --calls 10240   (CPU per span of each OTLP exporter, to a sink)
    LLMSCOPE_LEAN_SPANS=0 python benchmarks/sdk_overhead.py ...   (SDK spans without an app processor)

No sockets: the anthropic client talks to an `httpx(2).MockTransport` returning a fixed Message, so the
figure is the instrumentation's own cost (span, attributes, metrics, batch processor), not network noise.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import anthropic
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import llmscope

try:  # anthropic 2.x ships its own httpx fork
    import httpx2 as httpx_mod
except ImportError:  # pragma: no cover - older client lines
    import httpx as httpx_mod  # type: ignore[no-redef]

MODEL = "claude-sonnet-4-6"
BODY = json.dumps(
    {
        "id": "msg_01bench",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "Hello! " * 20}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 25,
            "output_tokens": 40,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }
).encode()


class _DiscardExporter(SpanExporter):
    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS


def _handler(request: Any) -> Any:
    return httpx_mod.Response(200, content=BODY, headers={"content-type": "application/json"})


def make_client() -> anthropic.Anthropic:
    http_client = httpx_mod.Client(transport=httpx_mod.MockTransport(_handler))
    return anthropic.Anthropic(api_key="bench", base_url="http://bench.local", http_client=http_client, max_retries=0)


class _AppProcessor(SpanProcessor):
    """An application's own processor that does nothing: what it costs is llmscope switching to SDK spans."""

    def on_end(self, span: ReadableSpan) -> None:
        return None


def setup_provider(lean: bool = True, app_processor: bool = False) -> tuple[TracerProvider, _DiscardExporter]:
    """llmscope's own provider (lean spans) as `configure()` builds it, exporting to a discarding exporter;
    with `app_processor`, the app then adds a processor of its own to it. Once per process."""
    exporter = _DiscardExporter()
    if lean:
        provider = llmscope.configure(exporter=exporter)
        if app_processor:
            provider.add_span_processor(_AppProcessor())  # type: ignore[attr-defined]
        return provider, exporter  # type: ignore[return-value]
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=8192))
    llmscope.configure(tracer_provider=provider)
    return provider, exporter


class _Impl:
    """Turns one instrumentation on and off: llmscope, or a peer's `AnthropicInstrumentor` on an OTel provider."""

    def __init__(self, name: str, app_processor: bool = False) -> None:
        self.name = name
        self.exporter = _DiscardExporter()
        if name == "llmscope":
            self.provider, self.exporter = setup_provider(app_processor=app_processor)
            self._peer: Any = None
            return
        if name == "openllmetry":
            from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
        elif name == "openinference":
            from openinference.instrumentation.anthropic import AnthropicInstrumentor  # type: ignore[no-redef]
        else:
            raise ValueError(name)
        self.provider = TracerProvider()
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter, max_queue_size=8192))
        self._peer = AnthropicInstrumentor()

    def on(self) -> None:
        if self._peer is None:
            llmscope.instrument()
        elif not self._peer.is_instrumented_by_opentelemetry:
            self._peer.instrument(tracer_provider=self.provider)

    def off(self) -> None:
        if self._peer is None:
            llmscope.uninstrument()
        elif self._peer.is_instrumented_by_opentelemetry:
            self._peer.uninstrument()


def _call(client: anthropic.Anthropic) -> None:
    client.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hi there"}])


def _block(client: anthropic.Anthropic, calls: int) -> float:
    gc.collect()
    start = time.perf_counter_ns()
    for _ in range(calls):
        _call(client)
    return (time.perf_counter_ns() - start) / calls / 1000.0


def paired_blocks(calls: int, blocks: int, impl_name: str = "llmscope", app_processor: bool = False) -> dict[str, Any]:
    """Alternate plain/instrumented blocks so drift on a noisy machine hits both sides alike."""
    impl = _Impl(impl_name, app_processor)
    provider, exporter = impl.provider, impl.exporter
    impl.on()  # before the client exists, as an app does at start-up
    client = make_client()
    for _ in range(200):  # warm up both paths
        _call(client)
    impl.off()
    for _ in range(200):
        _call(client)
    plain, inst, diffs = [], [], []
    for i in range(blocks):
        order = (False, True) if i % 2 == 0 else (True, False)
        timings = {}
        for instrumented in order:
            if instrumented:
                impl.on()
            else:
                impl.off()
            timings[instrumented] = _block(client, calls)
        plain.append(timings[False])
        inst.append(timings[True])
        diffs.append(timings[True] - timings[False])
    impl.off()
    provider.shutdown()
    return {
        "impl": impl_name,
        "calls_per_block": calls,
        "blocks": blocks,
        "plain_us_per_call": statistics.median(plain),
        "instrumented_us_per_call": statistics.median(inst),
        "added_us_median": statistics.median(diffs),
        "added_us_min": min(diffs),
        "added_us_max": max(diffs),
        "spans_exported": exporter.count,
    }


def callgrind_run(mode: str, calls: int, impl_name: str = "llmscope", app_processor: bool = False) -> None:
    """One process under valgrind: K calls, plain (no instrumentation at all) or instrumented as an app sets it
    up; a second run with K=0 is the baseline, so start-up costs cancel out."""
    provider = None
    if mode == "plain-quiet":  # the anthropic 2.x client's own span off, as llmscope.instrument() sets it
        os.environ["ANTHROPIC_OPEN_TELEMETRY"] = "false"
    if mode == "instrumented":
        impl = _Impl(impl_name, app_processor)
        provider = impl.provider
        impl.on()
    client = make_client()
    _call(client)  # first call pays lazy imports in both modes
    # Start-up objects out of the collector's sight: otherwise whether a full collection of the (different)
    # start-up heaps falls inside the K calls decides the count, not the per-call work.
    gc.collect()
    gc.freeze()
    for _ in range(calls):
        _call(client)
    if provider is not None:
        provider.force_flush()


# A sink that answers every OTLP export with success and does nothing else, run in its own process so the
# CPU measured below is the exporting app's alone.
_SINK = """
import sys, threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass

http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=http.serve_forever, daemon=True).start()
port = http.server_address[1]
try:
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    class Service(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), server)
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
except ImportError:
    grpc_port = 0
print(port, grpc_port, flush=True)
sys.stdin.read()
"""


def export_cpu(batches: int, rounds: int) -> dict[str, Any]:
    """Process CPU (all threads, the exporters' own included) per span to send llmscope's spans to a local sink:
    the same 512 recorded LLM spans exported `batches` times per round by each OTLP exporter, rounds interleaved
    so drift on a shared machine hits both alike; the best round counts (the least disturbed)."""
    import resource
    import subprocess

    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from llmscope.testing import capture_spans

    with capture_spans() as captured:
        client = make_client()
        for _ in range(512):
            _call(client)
    batch = list(captured.spans)
    sink = subprocess.Popen([sys.executable, "-c", _SINK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout is not None
        http_port, grpc_port = (int(p) for p in sink.stdout.readline().split())
        exporters: dict[str, SpanExporter] = {
            "grpc": GrpcExporter(endpoint=f"http://127.0.0.1:{grpc_port}", insecure=True),
            "http/protobuf": HttpExporter(endpoint=f"http://127.0.0.1:{http_port}/v1/traces"),
            "none": InMemorySpanExporter(),  # the loop itself
        }
        best: dict[str, float] = {}
        for _ in range(rounds):
            for name, exporter in exporters.items():
                if name == "none":
                    exporter.clear()  # type: ignore[attr-defined]
                assert exporter.export(batch) == SpanExportResult.SUCCESS  # connection set up outside the count
                before = resource.getrusage(resource.RUSAGE_SELF)
                for _ in range(batches):
                    exporter.export(batch)
                after = resource.getrusage(resource.RUSAGE_SELF)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                best[name] = min(best.get(name, cpu), cpu)
        for exporter in exporters.values():
            exporter.shutdown()
    finally:
        sink.kill()
        sink.wait()
    spans = batches * len(batch)
    return {
        "spans_per_round": spans,
        "rounds": rounds,
        "cpu_us_per_span": {name: (cpu - best["none"]) / spans * 1e6 for name, cpu in best.items() if name != "none"},
    }


def profile(calls: int) -> str:
    """pyinstrument's view of `calls` instrumented calls (the top of the call tree)."""
    from pyinstrument import Profiler

    _Impl("llmscope").on()
    client = make_client()
    for _ in range(200):
        _call(client)
    profiler = Profiler(interval=0.0001)
    profiler.start()
    for _ in range(calls):
        _call(client)
    profiler.stop()
    return str(profiler.output_text(unicode=False, color=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--json")
    parser.add_argument("--callgrind-run", choices=["instrumented", "plain", "plain-quiet"])
    parser.add_argument("--impl", choices=["llmscope", "openllmetry", "openinference"], default="llmscope")
    parser.add_argument("--pyinstrument", type=int, default=0, metavar="CALLS")
    parser.add_argument("--app-processor", action="store_true", help="the app adds a processor to llmscope's provider")
    parser.add_argument("--export-cpu", type=int, default=0, metavar="ROUNDS", help="each OTLP exporter's CPU/span")
    args = parser.parse_args(argv)
    if args.export_cpu:
        result = export_cpu(max(1, args.calls // 512), args.export_cpu)
        print(json.dumps(result))
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(result, fh)
        return 0
    if args.pyinstrument:
        print(profile(args.pyinstrument))
        return 0
    if args.callgrind_run:
        callgrind_run(args.callgrind_run, args.calls, args.impl, args.app_processor)
        return 0
    result = paired_blocks(args.calls, args.blocks, args.impl, args.app_processor)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
