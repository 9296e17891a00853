"""OTLP/gRPC beyond the happy path: gzip, the receive limit, retryable refusals with RetryInfo."""

from __future__ import annotations

import dataclasses
import gzip

import grpc
import pytest

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from tests.collector.receivers.clients import accepted, grpc_export, requests, retry_info, valid_request


def test_gzip_compressed_request_is_accepted(server: EmbeddedServer) -> None:
    grpc_export(server, valid_request(4, blob="x" * 10_000), compression=grpc.Compression.Gzip)
    assert accepted(server) == 4


def test_over_limit_is_resource_exhausted_without_retry_info_even_when_gzipped(settings: Settings) -> None:
    with EmbeddedServer(dataclasses.replace(settings, grpc_max_receive_bytes=256 * 1024)) as server:
        big = valid_request(1, blob="x" * (512 * 1024))
        assert len(gzip.compress(big)) < 256 * 1024  # small on the wire, over the limit once inflated
        for compression in (None, grpc.Compression.Gzip):
            with pytest.raises(grpc.RpcError) as info:
                grpc_export(server, big, compression=compression)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert retry_info(info.value) is None
        grpc_export(server, valid_request(1))  # still serving
        assert accepted(server) == 1


def test_rate_limited_project_gets_unavailable_with_retry_info(settings: Settings) -> None:
    with EmbeddedServer(dataclasses.replace(settings, rate_limit_spans_per_s=0.5, rate_limit_burst=3)) as server:
        grpc_export(server, valid_request(5))  # admitted (bucket positive), leaves a deficit
        with pytest.raises(grpc.RpcError) as info:
            grpc_export(server, valid_request(1))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        delay = retry_info(info.value)
        assert delay is not None and delay.retry_delay.seconds >= 4
        assert "rate limit" in (info.value.details() or "")
        assert requests(server, "grpc", "rate_limited") == 1 and accepted(server) == 5


def test_shutdown_refusal_is_retryable(settings: Settings) -> None:
    server = EmbeddedServer(settings)
    server.start()
    try:
        server.collector.exporter.close()  # what stop() does first
        with pytest.raises(grpc.RpcError) as info:
            grpc_export(server, valid_request(1))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert retry_info(info.value) is not None
    finally:
        server.stop()
