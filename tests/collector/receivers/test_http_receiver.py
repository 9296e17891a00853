"""OTLP/HTTP over a real socket: content types, compression, status codes and bodies per the OTLP spec."""

from __future__ import annotations

import gzip
import zlib

import httpx
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from tests.collector.receivers.clients import accepted, metric, post, requests, traces_url, valid_request

SPEC_EXAMPLE = {  # opentelemetry-proto examples/trace.json, trimmed
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "my.library", "version": "1.0.0"},
                    "spans": [
                        {
                            "traceId": "5B8EFFF798038103D269B633813FC60C",
                            "spanId": "EEE19B7EC3C1B174",
                            "parentSpanId": "EEE19B7EC3C1B173",
                            "name": "I'm a server span",
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": 1544712661000000000,
                            "kind": 2,
                            "attributes": [{"key": "my.span.attr", "value": {"intValue": "42"}}],
                            "status": {"code": 1},
                            "someFutureField": {"ignored": True},
                        }
                    ],
                }
            ],
        }
    ]
}


def test_protobuf_export_answers_empty_response_in_protobuf(server: EmbeddedServer) -> None:
    response = post(server, valid_request(3))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    assert accepted(server) == 3


def test_json_export_follows_otlp_json_rules(server: EmbeddedServer) -> None:
    response = httpx.post(traces_url(server), json=SPEC_EXAMPLE, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    assert accepted(server) == 1


def test_gzip_and_deflate_bodies_are_accepted(server: EmbeddedServer) -> None:
    body = valid_request(2)
    assert post(server, gzip.compress(body), content_encoding="gzip").status_code == 200
    assert post(server, zlib.compress(body), content_encoding="deflate").status_code == 200
    raw_deflate = zlib.compressobj(wbits=-15)
    assert post(server, raw_deflate.compress(body) + raw_deflate.flush(), content_encoding="deflate").status_code == 200
    assert post(server, gzip.compress(body[:10]) + gzip.compress(body[10:]), content_encoding="gzip").status_code == 200
    assert accepted(server) == 8


def test_rejected_spans_give_partial_success_in_the_request_type(server: EmbeddedServer) -> None:
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [dict(s) for s in _spans(SPEC_EXAMPLE)]}]}]}
    bad = dict(_spans(SPEC_EXAMPLE)[0], traceId="not-hex", spanId="AB")
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"].append(bad)
    response = httpx.post(traces_url(server), json=doc, timeout=10)
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "trace_id" in partial["errorMessage"]
    rejected = metric(server, "llmscope_ingest_spans_rejected_total", reason="invalid_span")
    assert rejected == 1 and accepted(server) == 1


def test_undecodable_protobuf_is_400_with_status_and_bad_request(server: EmbeddedServer) -> None:
    response = post(server, b"\x0a\xff\xff\xff")
    assert response.status_code == 400
    status = status_pb2.Status.FromString(response.content)
    assert "ExportTraceServiceRequest" in status.message
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)


def test_malformed_json_is_400_in_json(server: EmbeddedServer) -> None:
    for body in (b"{not json", b"[1, 2]", b'{"resourceSpans": [{"scopeSpans": 7}]}', b'{"resourceSpans": "x"}'):
        response = post(server, body, "application/json; charset=utf-8")
        assert response.status_code == 400, body
        assert response.headers["content-type"] == "application/json"
        assert response.json()["message"]


def test_broken_gzip_is_400(server: EmbeddedServer) -> None:
    packed = gzip.compress(valid_request(1))
    for body in (packed[: len(packed) // 2], b"not gzip at all", packed[:-4] + b"\0\0\0\0"):
        assert post(server, body, content_encoding="gzip").status_code == 400


def test_empty_request_is_success(server: EmbeddedServer) -> None:
    assert post(server, b"").status_code == 200
    assert post(server, b"{}", "application/json").json() == {}
    assert post(server, b"", "application/json").status_code == 200


def test_other_content_types_encodings_methods_and_paths(server: EmbeddedServer) -> None:
    assert post(server, b"x", "text/plain").status_code == 415
    assert post(server, b"x", "").status_code == 415
    assert post(server, valid_request(1), content_encoding="br").status_code == 415
    response = httpx.get(traces_url(server), timeout=10)
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert httpx.post(traces_url(server).replace("traces", "metrics"), content=b"", timeout=10).status_code == 404


def test_over_limit_bodies_are_413_compressed_or_not(tmp_path, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    limited = Settings(**{**settings.__dict__, "http_max_body_bytes": 64 * 1024})
    with EmbeddedServer(limited) as server:
        assert post(server, b"\0" * (64 * 1024 + 1)).status_code == 413
        bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))  # ~50 KiB that inflates to 50 MiB
        assert len(bomb) < 64 * 1024
        response = post(server, bomb, content_encoding="gzip")
        assert response.status_code == 413 and "limit" in status_pb2.Status.FromString(response.content).message
        assert post(server, valid_request(1)).status_code == 200  # still serving
        assert requests(server, "http", "too_large") == 2


def _spans(doc: dict) -> list[dict]:  # type: ignore[type-arg]
    return doc["resourceSpans"][0]["scopeSpans"][0]["spans"]  # type: ignore[no-any-return]
