"""The cluster test (issue 17): three collector processes share one bucket on the real S3 server, a
load generator routes each trace to one of them by trace id (what the OpenTelemetry Collector's
`loadbalancing` exporter does with `routing_key: traceID`), and one collector is SIGKILLed and
restarted mid-load. Then every span acknowledged with OK is stored exactly once, and every
collector's API (each a query replica reading the bucket) returns the same traces with the same
span counts.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from llmscope_collector.storage.mirror import BucketMirror
from llmscope_collector.storage.objects import ObjectStore, StorageUrl
from tests.cluster.conftest import S3Server
from tests.collector.durability.helpers import payload, stored_span_ids

pytestmark = pytest.mark.cluster

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_STARTED = re.compile(r"OTLP/gRPC on [^:]+:(\d+),.*API on (http://\S+) ")
_ENV = {
    "LLMSCOPE_FLUSH_INTERVAL_S": "0.2",
    "LLMSCOPE_BUCKET_SYNC_INTERVAL_S": "0.5",
    "LLMSCOPE_DECODE_WORKERS": "0",  # three collectors on two cores: decode inline
    "LLMSCOPE_AUTH": "off",
}


@dataclass
class Node:
    """One `llmscope serve --storage s3://...` process with its own data dir (WAL + query mirror)."""

    data_dir: Path
    storage: str
    s3: S3Server
    proc: subprocess.Popen[str] | None = None
    grpc_port: int = 0
    api_url: str = ""

    def start(self) -> None:
        cmd = [sys.executable, "-m", "llmscope_collector", "serve", "--data-dir", str(self.data_dir)]
        cmd += ["--storage", self.storage, "--otlp-grpc-port", "0", "--otlp-http-port", "0", "--api-port", "0"]
        log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        env = {**os.environ, **self.s3.env(), **_ENV}
        with open(log_path, "a") as log_file:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log_file, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            match = _STARTED.search(line)
            if match:
                threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
                self.proc, self.grpc_port, self.api_url = proc, int(match.group(1)), match.group(2)
                return
        proc.wait(10)
        raise AssertionError(f"collector did not start ({proc.returncode}):\n{log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return 0 if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def get(self, path: str) -> dict[str, object]:
        with urllib.request.urlopen(self.api_url + path, timeout=10) as resp:
            body: dict[str, object] = json.loads(resp.read())
            return body

    def traces(self) -> dict[str, int]:
        """Every trace the API lists, with its span count (paged through)."""
        found: dict[str, int] = {}
        cursor = ""
        while True:
            page = self.get("/v1/traces?limit=1000" + (f"&cursor={cursor}" if cursor else ""))
            for trace in page["traces"]:  # type: ignore[attr-defined]
                found[trace["trace_id"]] = trace["span_count"]
            cursor = str(page.get("next_cursor") or "")
            if not cursor:
                return found


@dataclass
class RoutedLoad:
    """Senders of one-trace requests, each routed by trace id to one node and resent until acknowledged."""

    nodes: list[Node]
    sent: dict[str, int] = field(default_factory=dict)  # trace id → spans in it
    acked: dict[str, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def run(self, senders: int) -> None:
        self.threads = [threading.Thread(target=self._sender, args=(n,), daemon=True) for n in range(senders)]
        for t in self.threads:
            t.start()

    def _sender(self, n: int) -> None:
        rng = random.Random(n)
        while not self.stop.is_set():
            trace_id = rng.randbytes(16)
            spans = rng.randint(1, 30)
            body = payload([rng.randbytes(8) for _ in range(spans)], trace_id=trace_id)
            with self.lock:
                self.sent[trace_id.hex()] = spans
            node = self.nodes[int.from_bytes(trace_id[:4], "big") % len(self.nodes)]  # the routing key
            if self._send_until_acked(node, body):
                with self.lock:
                    self.acked[trace_id.hex()] = spans

    def _send_until_acked(self, node: Node, body: bytes) -> bool:
        while not self.stop.is_set():
            try:
                with grpc.insecure_channel(f"127.0.0.1:{node.grpc_port}") as channel:
                    channel.unary_unary(METHOD)(body, timeout=5)
                return True
            except grpc.RpcError:
                time.sleep(0.05)  # killed or restarting: resend the same spans, like an OTLP exporter
        return False

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def _caught_up(node: Node) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while True:
        ingest = node.get("/health")["ingest"]
        assert isinstance(ingest, dict)
        if ingest["replay_done"] and ingest["wal_lag_bytes"] == 0 and ingest["spans_buffered"] == 0:
            return ingest
        assert time.monotonic() < deadline, f"collector did not catch up: {ingest}"
        time.sleep(0.1)


def _converged(node: Node, acked: dict[str, int]) -> dict[str, int]:
    """The node's trace list once its mirror holds every acknowledged trace (it syncs every 0.5 s)."""
    deadline = time.monotonic() + 60
    while True:
        traces = node.traces()
        if all(trace in traces for trace in acked) or time.monotonic() > deadline:
            return traces
        time.sleep(0.25)


def test_three_collectors_one_killed_mid_load_store_every_acked_span_once(tmp_path: Path, s3_env: S3Server) -> None:
    storage = s3_env.fresh_url()
    nodes = [Node(tmp_path / f"node{i}", storage, s3_env) for i in range(3)]
    load = RoutedLoad(nodes)
    try:
        for node in nodes:
            node.start()
        load.run(senders=6)
        time.sleep(2.0)
        nodes[1].kill()  # mid-load: its in-flight and buffered spans are only in its WAL
        nodes[1].start()  # same data dir: same WAL, same collector id
        time.sleep(2.0)
        load.finish()
        restarted = [_caught_up(node) for node in nodes][1]
        answers = [_converged(node, load.acked) for node in nodes]
    finally:
        load.finish()
        codes = [node.stop() for node in nodes]
    assert codes == [0, 0, 0]
    mirror = BucketMirror(ObjectStore(StorageUrl.parse(storage)), tmp_path / "check")
    mirror.sync()
    stored = stored_span_ids(mirror.root)
    acked_spans = sum(load.acked.values())
    print(
        f"\ncluster test: {len(load.acked)} traces / {acked_spans} spans acked, {len(stored)} spans stored; "
        f"the killed collector replayed {restarted['replayed_spans']} spans from its WAL at restart"
    )
    assert acked_spans > 0
    assert len(stored) == len(set(stored)), "a span is stored twice"
    assert answers[0] == answers[1] == answers[2], "every API replica returns the same traces"
    returned = answers[0]
    assert {t: returned.get(t) for t in load.acked} == load.acked, "every acked trace, with all its spans, once"
    assert all(load.sent.get(t) == n for t, n in returned.items()), "only sent traces, each whole"
    assert sum(returned.values()) == len(stored)
