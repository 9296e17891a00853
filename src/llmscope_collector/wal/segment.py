"""WAL record framing and segment files; the byte layout is the contract in `proto/wal/v1/record.proto`.

A segment is `{base_lsn:020d}.wal`: an 8-byte magic header, then records back to back. A record is
`u32 body_len | u32 crc32(body) | body` where `body` is a `llmscope.wal.v1.WalRecord` (the generated
`llmscope_collector._proto.wal.v1.record_pb2`): kind, project and the raw OTLP request bytes as
payload. Segments written before that contract (header `MAGIC_V1`) are still read. LSNs (log
sequence numbers) are logical byte positions that never go backwards: the record at file offset `o`
of a segment has LSN `base + o - HEADER_SIZE`, so the next segment's base is the previous segment's
end and headers take no LSN space.

A crash can leave a torn record at the end of the last segment; `scan_valid_end` finds where the
valid records stop so the log can truncate there instead of failing to start.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from google.protobuf.message import DecodeError

from llmscope_collector._proto.wal.v1.record_pb2 import RECORD_KIND_OTLP_TRACES
from llmscope_collector._proto.wal.v1.record_pb2 import WalRecord as WalRecordProto
from llmscope_collector.durable_io import fsync_dir
from llmscope_collector.file_modes import PRIVATE_FILE
from llmscope_collector.wal.errors import WalCorrupt

MAGIC = b"LSWAL\x00\x02\n"  # body: a WalRecord message (proto/wal/v1/record.proto)
MAGIC_V1 = b"LSWAL\x00\x01\n"  # body: u8 kind | u8 project_len | project | payload (read only)
_VERSIONS = {MAGIC: 2, MAGIC_V1: 1}
HEADER_SIZE = len(MAGIC)
RECORD_HEADER = struct.Struct("<II")
_BODY_PREFIX = struct.Struct("<BB")  # version 1
_MIN_BODY = 2  # the smallest body of either version (a kind and nothing else)
KIND_OTLP_TRACES = RECORD_KIND_OTLP_TRACES
MAX_BODY = 512 * 1024 * 1024
# The key of the `payload` field (number 3, length-delimited): written by hand before the payload
# so the payload goes to writev uncopied; the bytes equal what `SerializeToString` writes.
_PAYLOAD_KEY = bytes([WalRecordProto.PAYLOAD_FIELD_NUMBER << 3 | 2])
# What `_read_record` reads of a body first: the fields before the payload (a kind, a project of at most 255
# bytes) and the payload's key and length.
_HEAD_READ = 512
_NAME_RE = re.compile(r"^(\d{20})\.wal$")


@dataclasses.dataclass(frozen=True)
class WalRecord:
    """One accepted export request, as read back from the log."""

    lsn: int
    end: int
    project: str
    payload: bytes


def encode_record(project: str, payload: bytes) -> list[bytes]:
    """The record as buffers for `writev`, so a large payload is never copied."""
    prefix = _fields_before_payload(project)
    if payload:  # (an empty bytes field is not written, as in proto3's own encoding)
        prefix += _PAYLOAD_KEY + _varint(len(payload))
    crc = zlib.crc32(payload, zlib.crc32(prefix))
    body_len = len(prefix) + len(payload)
    return [RECORD_HEADER.pack(body_len, crc) + prefix, payload]


@functools.lru_cache(maxsize=1024)  # a handful of projects: the same bytes for every record of one
def _fields_before_payload(project: str) -> bytes:
    if len(project.encode("utf-8")) > 255:
        raise ValueError("project name longer than 255 bytes")
    return bytes(WalRecordProto(kind=RECORD_KIND_OTLP_TRACES, project=project).SerializeToString())


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def record_size(parts: list[bytes]) -> int:
    return sum(len(p) for p in parts)


def decode_body(body: bytes | memoryview, crc: int, lsn: int, end: int, version: int = 2) -> WalRecord:
    """Check and unpack one record body; `WalCorrupt` when it is not what was written."""
    if zlib.crc32(body) != crc:
        raise WalCorrupt(f"checksum mismatch at LSN {lsn}")
    if version == 1:
        return _decode_body_v1(body, lsn, end)
    message = _parsed(body, lsn)
    return WalRecord(lsn, end, message.project, message.payload)


def _parsed(body: bytes | memoryview, lsn: int) -> WalRecordProto:
    try:
        message: WalRecordProto = WalRecordProto.FromString(body)
    except DecodeError as exc:
        raise WalCorrupt(f"record at LSN {lsn} is not a WalRecord: {exc}") from None
    if message.kind != RECORD_KIND_OTLP_TRACES:
        raise WalCorrupt(f"record at LSN {lsn} has unknown kind {message.kind}")
    return message


def _decode_body_v1(body: bytes | memoryview, lsn: int, end: int) -> WalRecord:
    if len(body) < _BODY_PREFIX.size:
        raise WalCorrupt(f"record at LSN {lsn} is too short")
    kind, name_len = _BODY_PREFIX.unpack_from(body)
    if kind != KIND_OTLP_TRACES or len(body) < _BODY_PREFIX.size + name_len:
        raise WalCorrupt(f"record at LSN {lsn} has unknown kind {kind}")
    start = _BODY_PREFIX.size
    project = bytes(body[start : start + name_len]).decode("utf-8", errors="replace")
    return WalRecord(lsn, end, project, bytes(body[start + name_len :]))


def segment_name(base: int) -> str:
    return f"{base:020d}.wal"


def list_segments(wal_dir: Path) -> list[tuple[int, Path]]:
    """Segment files sorted by base LSN; anything else in the directory is ignored."""
    found = []
    for entry in os.scandir(wal_dir):
        match = _NAME_RE.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), Path(entry.path)))
    return sorted(found)


def create_segment(wal_dir: Path, base: int) -> int:
    """Create a segment holding only the header (fsynced, directory too); returns an append fd."""
    path = wal_dir / segment_name(base)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, PRIVATE_FILE)
    try:
        os.write(fd, MAGIC)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    fsync_dir(wal_dir)
    return fd


def iter_records(path: Path, base: int, start_lsn: int, end_lsn: int) -> Iterator[WalRecord]:
    """Records of one segment in `[start_lsn, end_lsn)`; raises `WalCorrupt` where they stop making sense."""
    offset = HEADER_SIZE + max(0, start_lsn - base)
    limit = HEADER_SIZE + (end_lsn - base)
    fd = os.open(path, os.O_RDONLY)
    try:
        version = _VERSIONS.get(os.pread(fd, HEADER_SIZE, 0))
        if version is None:
            raise WalCorrupt(f"{path.name} does not start with a WAL segment header")
        while offset < limit:
            lsn = base + offset - HEADER_SIZE
            head = _pread_exact(fd, RECORD_HEADER.size, offset)
            if len(head) < RECORD_HEADER.size:
                raise WalCorrupt(f"truncated record header at LSN {lsn}")
            body_len, crc = RECORD_HEADER.unpack(head)
            total = RECORD_HEADER.size + body_len
            if body_len < _MIN_BODY or body_len > MAX_BODY or offset + total > limit:
                raise WalCorrupt(f"record at LSN {lsn} has an impossible length {body_len}")
            yield _read_record(fd, offset + RECORD_HEADER.size, body_len, crc, lsn, lsn + total, version)
            offset += total
    finally:
        os.close(fd)


def _read_record(fd: int, offset: int, body_len: int, crc: int, lsn: int, end: int, version: int) -> WalRecord:
    """The record whose body of `body_len` bytes is at `offset`: as `decode_body`, its payload read from the file
    as a bytes object of its own when the body ends with it (as `encode_record` writes it), else the body parsed.

    Parsed, a ~370 KB body of the ingest bench costs the GIL ~51 us (the message's parse, then the payload's
    copy out of it: ~0.23 us a span); this way, a read of the fields before the payload and one of the payload,
    the checksum over both (without the GIL, as before). Reading the bench's 32 records: ~197 -> ~168 us of
    CPU a record (best of 30, 3 alternating runs)."""
    head = _pread_exact(fd, min(body_len, _HEAD_READ), offset) if version == 2 else b""
    split = _payload_split(head, body_len)
    if split is None:
        body = head if len(head) == body_len else head + _pread_exact(fd, body_len - len(head), offset + len(head))
        if len(body) < body_len:
            raise WalCorrupt(f"truncated record at LSN {lsn}")
        return decode_body(body, crc, lsn, end, version)
    fields, start = split
    payload = _pread_exact(fd, body_len - start, offset + start)
    if len(payload) < body_len - start:
        raise WalCorrupt(f"truncated record at LSN {lsn}")
    if zlib.crc32(payload, zlib.crc32(head[:start])) != crc:
        raise WalCorrupt(f"checksum mismatch at LSN {lsn}")
    return WalRecord(lsn, end, str(_parsed(head[:fields], lsn).project), payload)


def _payload_split(head: bytes, body_len: int) -> tuple[int, int] | None:
    """(where the `payload` field's key is, where its bytes start) in a body of `body_len` bytes beginning with
    `head`, when its last field is the payload, running to the body's end, and the fields before it are
    varints and short length-delimited ones (the kind and project); None otherwise (the body is parsed)."""
    at = 0
    while at < len(head):
        key, after = _read_varint(head, at)
        if key is None:
            return None
        if key == _PAYLOAD_KEY[0]:
            size, start = _read_varint(head, after)
            return None if size is None or start + size != body_len else (at, start)
        wire = key & 7
        value, after = _read_varint(head, after)
        if value is None or wire not in (0, 2):
            return None
        at = after + value if wire == 2 else after
    return None


def _read_varint(data: bytes, at: int) -> tuple[int | None, int]:
    """The varint at `at` and where it ends; None if it does not end within `data` (or is longer than 10 bytes)."""
    value = shift = 0
    for n in range(at, min(len(data), at + 10)):
        value |= (data[n] & 0x7F) << shift
        if data[n] < 0x80:
            return value, n + 1
        shift += 7
    return None, at


def _pread_exact(fd: int, size: int, offset: int) -> bytes:
    """`size` bytes at `offset`, fewer only at end of file."""
    data = os.pread(fd, size, offset)
    if len(data) == size or not data:
        return data
    chunks = [data]
    got = len(data)
    while got < size:
        more = os.pread(fd, size - got, offset + got)
        if not more:
            break
        chunks.append(more)
        got += len(more)
    return b"".join(chunks)


def scan_valid_end(path: Path, base: int) -> tuple[int, int]:
    """(LSN after the last valid record, records seen) for a segment possibly torn by a crash."""
    size = path.stat().st_size
    if size < HEADER_SIZE:
        return base, 0
    with open(path, "rb") as fh:
        if fh.read(HEADER_SIZE) not in _VERSIONS:
            return base, 0
    end_lsn = base + size - HEADER_SIZE
    valid = base
    count = 0
    try:
        for record in iter_records(path, base, base, end_lsn):
            valid = record.end
            count += 1
    except WalCorrupt:
        pass
    return valid, count


def truncate_segment(path: Path, base: int, valid_end: int) -> int:
    """Cut a torn tail off; returns the number of bytes removed. A segment with no valid header is emptied."""
    size = path.stat().st_size
    keep = HEADER_SIZE + (valid_end - base)
    with open(path, "r+b") as fh:
        fh.seek(0)
        head_ok = fh.read(HEADER_SIZE) in _VERSIONS
        if not head_ok:
            keep = 0
        fh.truncate(keep)
        os.fsync(fh.fileno())
    return max(0, size - keep)


def count_records(path: Path, base: int, start_lsn: int, end_lsn: int) -> int:
    """How many records lie in `[start_lsn, end_lsn)`, reading only their headers; stops at nonsense."""
    offset = HEADER_SIZE + max(0, start_lsn - base)
    limit = HEADER_SIZE + (end_lsn - base)
    count = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        while offset + RECORD_HEADER.size <= limit:
            head = os.pread(fd, RECORD_HEADER.size, offset)
            if len(head) < RECORD_HEADER.size:
                break
            body_len, _ = RECORD_HEADER.unpack(head)
            if body_len < _MIN_BODY or body_len > MAX_BODY:
                break
            offset += RECORD_HEADER.size + body_len
            if offset > limit:
                break
            count += 1
    finally:
        os.close(fd)
    return count
