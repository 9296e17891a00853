"""Large OTLP/JSON bodies are converted to protobuf in the collector's worker processes (off the
receivers' GIL), with the same outcome as converting in the receiver: the same spans stored, the
same 400 for a body that is not OTLP/JSON, and the same partial success for invalid span ids."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from typing import Any

from google.protobuf import json_format

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from tests import otlp_factory as f
from tests.collector.receivers.clients import post


def _json_body(spans: int, trace_id: bytes, *, bad_ids: int = 0) -> bytes:
    now = time.time_ns()
    pad = {"pad": "x" * 400}
    built = [f.span(trace_id, f.new_span_id(), f"s{i}", now, now + 1000, attrs=pad) for i in range(spans)]
    doc: dict[str, Any] = json_format.MessageToDict(f.request(built))
    for scope in doc["resourceSpans"][0]["scopeSpans"]:
        for i, span in enumerate(scope["spans"]):
            span["traceId"] = base64.b64decode(span["traceId"]).hex()
            span["spanId"] = "00" * 8 if i < bad_ids else base64.b64decode(span["spanId"]).hex()
    return json.dumps(doc).encode()


def test_large_json_bodies_are_converted_in_workers_with_the_same_outcomes(settings: Settings) -> None:
    with EmbeddedServer(dataclasses.replace(settings, decode_workers=1)) as server:
        trace_id = f.new_trace_id()
        body = _json_body(300, trace_id, bad_ids=2)
        assert len(body) > 128 * 1024  # above the offload threshold
        response = post(server, body, "application/json")
        assert response.status_code == 200
        assert response.json()["partialSuccess"]["rejectedSpans"] == "2"
        assert server.collector.decode_pool.running  # converted in a worker process
        assert server.collector.flush(timeout=30) == 298
        rows = server.store.table_rows(
            "SELECT count(*) AS n, min(trace_id) AS t FROM read_parquet($glob, hive_partitioning = true)",
            {"glob": str(settings.data_dir / "spans" / "*" / "*" / "*.parquet")},
        )
        assert rows == [{"n": 298, "t": trace_id.hex()}]

        not_otlp = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 7}]}]}], "x": "y" * 200_000})
        refused = post(server, not_otlp.encode(), "application/json")
        assert refused.status_code == 400 and refused.json()["message"]
