"""OTLP/gRPC calls no real client sends (issue 15.10): corrupt gzip, empty and short frames.

They are written frame by frame with `h2` (grpcio's own client cannot produce them) and must all be
INVALID_ARGUMENT with a reason, as docs/collector.md promises, where grpcio answered INTERNAL or
UNIMPLEMENTED. Compressed messages grpcio's client sends are still accepted.
"""

from __future__ import annotations

import gzip
import socket
import struct

import grpc
import h2.config
import h2.connection
import h2.events
import pytest

from llmscope_collector.server import EmbeddedServer
from tests.collector.receivers.clients import METHOD, accepted, grpc_export, requests, valid_request

_INVALID_ARGUMENT = str(grpc.StatusCode.INVALID_ARGUMENT.value[0]).encode()


def _frame(message: bytes, compressed: bool = False) -> bytes:
    """A gRPC length-prefixed message."""
    return struct.pack(">?I", compressed, len(message)) + message


def _raw_call(port: int, data: bytes | None, encoding: str | None = None) -> dict[bytes, bytes]:
    """One call on a fresh HTTP/2 connection: `data` as the request body (None: headers only).
    Returns the response headers and trailers together."""
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", METHOD),
        (":authority", "127.0.0.1"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    if encoding:
        headers.append(("grpc-encoding", encoding))
    connection.send_headers(1, headers, end_stream=data is None)
    if data is not None:
        connection.send_data(1, data, end_stream=True)
    answer: dict[bytes, bytes] = {}
    done = False
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(connection.data_to_send())
        while not done and (chunk := sock.recv(65536)):
            for event in connection.receive_data(chunk):
                if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    answer.update(dict(event.headers))
                done = done or isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset))
            sock.sendall(connection.data_to_send())
    return answer


@pytest.mark.parametrize(
    ("case", "data", "encoding", "reason"),
    [
        ("corrupt gzip", _frame(b"\x1f\x8b" + b"junk" * 8, compressed=True), "gzip", b"not valid gzip"),
        ("truncated gzip", _frame(gzip.compress(valid_request(1))[:-9], compressed=True), "gzip", b"truncated"),
        ("no body at all", None, None, b"no complete request message"),
        ("empty body", b"", None, b"no complete request message"),
        ("short frame", b"\x00\x00\x00", None, b"no complete request message"),
        ("frame shorter than its length", b"\x00" + struct.pack(">I", 100) + b"abc", None, b"no complete request"),
    ],
)
def test_broken_frames_are_invalid_argument(
    server: EmbeddedServer, case: str, data: bytes | None, encoding: str | None, reason: bytes
) -> None:
    answer = _raw_call(server.grpc_port, data, encoding)
    assert answer.get(b"grpc-status") == _INVALID_ARGUMENT, (case, answer)
    assert reason in answer.get(b"grpc-message", b""), (case, answer)
    assert requests(server, "grpc", "invalid") == 1


def test_compressed_messages_from_real_clients_are_accepted(server: EmbeddedServer) -> None:
    for compression in (grpc.Compression.Gzip, grpc.Compression.Deflate, grpc.Compression.NoCompression):
        grpc_export(server, valid_request(2, blob="x" * 5000), compression=compression)
    answer = _raw_call(server.grpc_port, _frame(gzip.compress(valid_request(1)), compressed=True), "gzip")
    assert answer.get(b"grpc-status") == b"0", answer
    assert accepted(server) == 7


def test_a_plain_message_that_starts_like_zlib_is_read_as_it_is(server: EmbeddedServer) -> None:
    """0x78 0x01 is a valid zlib header and also field 15 (varint 1), an unknown field to the decoder."""
    grpc_export(server, b"\x78\x01" + valid_request(1))
    assert accepted(server) == 1
