"""The WAL's bytes are the contract in `proto/wal/v1/record.proto`: a record the log writes parses
with the generated `WalRecord`, byte for byte as protobuf encodes it; segments written before the
contract (header `LSWAL\\0\\1\\n`) are still replayed after an upgrade."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmscope_collector._proto.wal.v1.record_pb2 import RECORD_KIND_OTLP_TRACES, WalRecord
from llmscope_collector.wal import segment as seg
from llmscope_collector.wal.log import WalOptions, WriteAheadLog

_FRAME = struct.Struct("<II")  # u32 body_len | u32 crc32(body), little-endian, as the .proto says


def _frames(path: Path) -> list[bytes]:
    """The bodies of a segment file, read with nothing but the layout the .proto describes."""
    data = path.read_bytes()
    assert data[:8] == b"LSWAL\x00\x02\n"
    bodies, offset = [], 8
    while offset < len(data):
        length, crc = _FRAME.unpack_from(data, offset)
        body = data[offset + 8 : offset + 8 + length]
        assert zlib.crc32(body) == crc
        bodies.append(body)
        offset += 8 + length
    return bodies


@given(
    records=st.lists(
        st.tuples(st.text(min_size=1, max_size=20).filter(lambda p: len(p.encode()) <= 255), st.binary(max_size=3000)),
        min_size=1,
        max_size=6,
    )
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_records_written_by_the_wal_parse_with_the_generated_message(
    tmp_path_factory: pytest.TempPathFactory, records: list[tuple[str, bytes]]
) -> None:
    wal_dir = tmp_path_factory.mktemp("wal")
    wal = WriteAheadLog(wal_dir, WalOptions(fsync=False))
    try:
        for project, payload in records:
            wal.append(project, payload)
    finally:
        wal.close()
    (segment,) = [path for _, path in seg.list_segments(wal_dir) if path.stat().st_size > 8]
    bodies = _frames(segment)
    assert len(bodies) == len(records)
    for body, (project, payload) in zip(bodies, records, strict=True):
        message = WalRecord.FromString(body)
        assert (message.kind, message.project, message.payload) == (RECORD_KIND_OTLP_TRACES, project, payload)
        expected = WalRecord(kind=RECORD_KIND_OTLP_TRACES, project=project, payload=payload).SerializeToString()
        assert body == expected  # exactly protobuf's encoding, not merely parseable


def _v1_segment(path: Path, records: list[tuple[str, bytes]]) -> None:
    """A segment as collectors before the .proto contract wrote it."""
    out = bytearray(b"LSWAL\x00\x01\n")
    for project, payload in records:
        name = project.encode()
        body = bytes([1, len(name)]) + name + payload
        out += _FRAME.pack(len(body), zlib.crc32(body)) + body
    path.write_bytes(bytes(out))


def test_segments_of_the_previous_format_are_replayed_after_an_upgrade(tmp_path: Path) -> None:
    old = [("default", b"\x0a\x00first"), ("team-a", b"second" * 100), ("default", b"")]
    _v1_segment(tmp_path / seg.segment_name(0), old)
    wal = WriteAheadLog(tmp_path, WalOptions(fsync=False))
    try:
        wal.append("team-b", b"after the upgrade")
        records, lsn = [], 0
        while True:
            batch, lsn = wal.read(lsn)
            if not batch:
                break
            records += batch
    finally:
        wal.close()
    assert [(r.project, r.payload) for r in records] == [*old, ("team-b", b"after the upgrade")]
