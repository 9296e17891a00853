"""The WAL refuses with its own errors; both receivers answer them as retryable OTLP refusals.

The WAL (`wal/errors.py`) knows nothing of gRPC or HTTP: a full log (lag or low disk) raises
`WalFull`, a closing one `WalClosed`. The exporter maps any `WalError` to "unavailable": gRPC
UNAVAILABLE with RetryInfo, HTTP 503 with Retry-After. Real WAL, real sockets.
"""

from __future__ import annotations

import dataclasses
import time

import grpc
import pytest

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from llmscope_collector.wal.errors import WalClosed, WalFull
from tests.collector.receivers.clients import accepted, grpc_export, post, requests, retry_info, valid_request


def _assert_refused_as_retryable(server: EmbeddedServer, message: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        grpc_export(server, valid_request(1))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert retry_info(info.value) is not None
    assert message in (info.value.details() or "")
    response = post(server, valid_request(1))
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert accepted(server) == 0
    assert requests(server, "grpc", "unavailable") == 1
    assert requests(server, "http", "unavailable") == 1


def test_a_full_wal_is_answered_unavailable_on_both_transports(settings: Settings) -> None:
    with EmbeddedServer(dataclasses.replace(settings, min_free_disk_bytes=1 << 62)) as server:
        wal = server.collector._durable.wal  # type: ignore[union-attr]
        deadline = time.monotonic() + 10
        while not wal.stats().disk_low and time.monotonic() < deadline:  # the disk is checked once a second
            time.sleep(0.01)
        with pytest.raises(WalFull):  # what the log itself raises
            wal.append("default", valid_request(1))
        _assert_refused_as_retryable(server, "free on the data disk")


def test_a_closing_wal_is_answered_unavailable_on_both_transports(server: EmbeddedServer) -> None:
    wal = server.collector._durable.wal  # type: ignore[union-attr]
    wal.stop_appends()  # what stop() does once the receivers have drained
    with pytest.raises(WalClosed):
        wal.append("default", valid_request(1))
    _assert_refused_as_retryable(server, "shutting down")
