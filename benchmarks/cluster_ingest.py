"""Cluster-mode ingest: aggregate spans/s of 1, 2 and 3 `llmscope serve --storage s3://...` processes
sharing one bucket on the S3 server of tests/cluster/rgw.sh (all on this machine's loopback).

    eval "$(tests/cluster/rgw.sh start /tmp/rgw)"
    python benchmarks/cluster_ingest.py [--collectors 1,2,3] [--seconds 8] [--json out.json]

The same load as benchmarks/ingest.py (pre-serialized LLM traces, unique trace ids and content per
send, gRPC), its sender threads spread over the collectors (a request's traces go to one collector,
as the OpenTelemetry Collector's loadbalancing exporter does per trace id). Measured per run: spans
acked per second over the window, then, once every collector has written what it acked, the objects
in the bucket and objects PUT per second of load (the small-object cost of cluster mode).
Every process (collectors, their decode workers, the gateway and this client) shares the same cores,
so the figures say what a collector costs per core, not how a real cluster of machines scales.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import Counter, Load, build_templates, drive, grpc_sender_factory, health, start_server, stop_server

from llmscope_collector.storage.objects import ObjectStore, StorageUrl


def _s3_env() -> dict[str, str]:
    endpoint = os.environ.get("LLMSCOPE_TEST_S3_ENDPOINT")
    if not endpoint:
        raise SystemExit('no S3 server: eval "$(tests/cluster/rgw.sh start /tmp/rgw)" first')
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": os.environ["LLMSCOPE_TEST_S3_ACCESS_KEY"],
        "AWS_SECRET_ACCESS_KEY": os.environ["LLMSCOPE_TEST_S3_SECRET_KEY"],
        "AWS_REGION": "us-east-1",
    }


def run(collectors: int, args: argparse.Namespace, protos: list[bytes], spans: list[int]) -> dict[str, Any]:
    bucket = os.environ.get("LLMSCOPE_TEST_S3_BUCKET", "llmscope-test")
    storage = f"s3://{bucket}/bench-{uuid.uuid4().hex[:10]}"
    env = {**_s3_env(), "LLMSCOPE_STORAGE": storage, "LLMSCOPE_WAL_FSYNC": "1"}
    os.environ.update(_s3_env())
    with tempfile.TemporaryDirectory(prefix="llmscope-cluster-bench-") as tmp:
        servers = [start_server(Path(tmp) / f"node{i}", env) for i in range(collectors)]
        try:
            factories = [grpc_sender_factory(s.grpc_port, args.channels) for s in servers]
            load, counter = Load(), Counter()
            pool = drive(
                lambda k: factories[k % collectors][0](k // collectors),
                protos,
                spans,
                args.threads,
                hex_marker=False,
                load=load,
                counter=counter,
            )
            started = time.perf_counter()
            time.sleep(args.warmup)
            t0 = time.perf_counter()
            time.sleep(args.seconds)
            t1 = time.perf_counter()
            load.stop.set()
            for t in pool:
                t.join(60)
            load_s = time.perf_counter() - started
            for _, close in factories:
                close()
            acked = sum(d[2] for d in load.done)
            in_window = sum(d[2] for d in load.done if t0 <= d[0] < t1)
            deadline = time.monotonic() + 300
            while sum(int(health(s)["ingest"]["spans_written"]) for s in servers) < acked:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            drained_s = time.perf_counter() - started
        finally:
            for s in servers:
                stop_server(s)
        objects = list(ObjectStore(StorageUrl.parse(storage)).list())
    return {
        "collectors": collectors,
        "spans_per_s": round(in_window / (t1 - t0)),
        "spans_acked": acked,
        "objects": len(objects),
        "objects_per_s_of_load": round(len(objects) / load_s, 1),
        "mean_object_kb": round(sum(o.size for o in objects) / max(len(objects), 1) / 1024, 1),
        "drain_after_load_s": round(drained_s - load_s, 1),
        "errors": load.errors[:3],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collectors", default="1,2,3")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=12, help="calls in flight, spread over the collectors")
    parser.add_argument("--channels", type=int, default=2, help="gRPC channels per collector")
    parser.add_argument("--templates", type=int, default=32)
    parser.add_argument("--traces-per-request", type=int, default=40)
    parser.add_argument("--json")
    args = parser.parse_args()
    protos, _, spans = build_templates(args.templates, args.traces_per_request, seed=3)
    results = []
    for n in (int(x) for x in args.collectors.split(",")):
        result = run(n, args, protos, spans)
        print(json.dumps(result), flush=True)
        results.append(result)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
