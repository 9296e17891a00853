"""The acceptance test: a collector process under sustained OTLP/gRPC load is SIGKILLed at random
points, restarted on the same data dir each time, and at the end every span whose Export returned
OK is stored exactly once (counted with DuckDB over the Parquet files, sampled through the API).

Clients behave like OTel exporters: a failed or unanswered export is resent with the same spans,
so the collector also sees duplicates of requests it had fsynced but not yet acknowledged.
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

from tests.collector.durability.helpers import payload, stored_span_ids

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_STARTED = re.compile(r"OTLP/gRPC on [^:]+:(\d+),.*API on (http://\S+) ")
_ENV = {
    "LLMSCOPE_FLUSH_INTERVAL_S": "0.1",  # many flushes: many kills land between a file rename and its commit
    "LLMSCOPE_WAL_SEGMENT_BYTES": str(256 * 1024),  # rotation and segment deletion happen under load
    "LLMSCOPE_COMPACTION_INTERVAL_S": "0.5",  # kills also land in the middle of compactions
    "LLMSCOPE_AUTH": "off",
}


@dataclass
class ChildCollector:
    proc: subprocess.Popen[str]
    grpc_port: int
    api_url: str
    reader: threading.Thread

    @classmethod
    def start(cls, data_dir: Path) -> ChildCollector:
        cmd = [sys.executable, "-m", "llmscope_collector", "serve", "--data-dir", str(data_dir)]
        cmd += ["--otlp-grpc-port", "0", "--otlp-http-port", "0", "--api-port", "0"]
        log_path = data_dir.parent / "collector.log"
        with open(log_path, "a") as log_file:
            proc = subprocess.Popen(cmd, env={**os.environ, **_ENV}, stdout=subprocess.PIPE, stderr=log_file, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            match = _STARTED.search(line)
            if match:
                reader = threading.Thread(target=proc.stdout.read, daemon=True)  # keep the pipe drained
                reader.start()
                return cls(proc, int(match.group(1)), match.group(2), reader)
        proc.wait(10)
        tail = log_path.read_text()[-3000:]
        raise AssertionError(f"collector did not start (exit code {proc.returncode}):\n{tail}")

    def health(self) -> dict[str, object]:
        with urllib.request.urlopen(self.api_url + "/health", timeout=10) as resp:
            body: dict[str, object] = json.loads(resp.read())
            return body

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.reader.join(10)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(60)
        self.reader.join(10)
        return code


@dataclass
class Load:
    """Sender threads: unique span ids per request, resent until acknowledged (like an OTel exporter)."""

    port: int
    acked: set[str] = field(default_factory=set)
    sent: set[str] = field(default_factory=set)
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
            ids = [rng.randbytes(8) for _ in range(rng.randint(1, 40))]
            with self.lock:
                self.sent.update(i.hex() for i in ids)
            if self._send_until_acked(payload(ids)):
                with self.lock:
                    self.acked.update(i.hex() for i in ids)

    def _send_until_acked(self, body: bytes) -> bool:
        while not self.stop.is_set():
            port = self.port
            try:
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    channel.unary_unary(METHOD)(body, timeout=5)
                return True
            except grpc.RpcError:
                time.sleep(0.02)  # killed, restarting, or refusing: resend the same spans
        return False

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def _wait_caught_up(child: ChildCollector) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while True:
        ingest = child.health()["ingest"]
        assert isinstance(ingest, dict)
        if ingest["replay_done"] and ingest["wal_lag_bytes"] == 0 and ingest["spans_buffered"] == 0:
            return ingest
        assert time.monotonic() < deadline, f"collector did not catch up: {ingest}"
        time.sleep(0.1)


def _trace_span_count(child: ChildCollector, span_id: str) -> int:
    with urllib.request.urlopen(f"{child.api_url}/v1/traces/{span_id * 2}", timeout=10) as resp:
        body = json.loads(resp.read())
    return sum(1 for span in body["spans"] if span["span_id"] == span_id)


def run_crash_scenario(data_dir: Path, kills: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    child = ChildCollector.start(data_dir)
    load = Load(child.grpc_port)
    load.run(senders=4)
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(0.4, 1.6))
            child.kill()
            child = ChildCollector.start(data_dir)
            load.port = child.grpc_port
        time.sleep(rng.uniform(0.4, 1.0))
    finally:
        load.finish()
    try:
        ingest = _wait_caught_up(child)
        sample = rng.sample(sorted(load.acked), min(25, len(load.acked)))
        api_counts = [_trace_span_count(child, span_id) for span_id in sample]
        assert child.terminate() == 0
    finally:
        if child.proc.poll() is None:  # a failed check above: never leave the collector running
            child.kill()
    stored = stored_span_ids(data_dir)
    unique = set(stored)
    counts = {
        "kills": kills,
        "acked": len(load.acked),
        "sent": len(load.sent),
        "stored": len(stored),
        "duplicates": len(stored) - len(unique),
        "lost": len(load.acked - unique),
        "phantom": len(unique - load.sent),
        "replayed_spans_last_start": int(str(ingest["replayed_spans"])),
    }
    print(f"\ncrash test (seed {seed}): {counts}")
    assert api_counts == [1] * len(sample), "every sampled acked span is served by the API exactly once"
    return counts


def _check(counts: dict[str, int]) -> None:
    assert counts["acked"] > 0
    assert counts["lost"] == 0, "a span acknowledged with OK is missing"
    assert counts["duplicates"] == 0, "a span is stored twice"
    assert counts["phantom"] == 0


def test_sigkill_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    _check(run_crash_scenario(tmp_path / "data", kills=5, seed=int.from_bytes(os.urandom(4), "big")))


@pytest.mark.slow
def test_many_sigkills_under_load_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    _check(run_crash_scenario(tmp_path / "data", kills=40, seed=int.from_bytes(os.urandom(4), "big")))
