"""WAL record framing and torn-tail recovery: whatever a crash leaves at the end of the last segment,
startup keeps every complete record before it and truncates the rest, never failing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from llmscope_collector.wal import segment as seg
from llmscope_collector.wal.log import WalOptions, WriteAheadLog

projects = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)
payloads = st.binary(min_size=0, max_size=2048)


def _write_segment(path: Path, records: list[tuple[str, bytes]]) -> list[int]:
    """A segment at base 0 holding `records`; returns each record's end LSN."""
    ends = []
    with open(path, "wb") as fh:
        fh.write(seg.MAGIC)
        lsn = 0
        for project, payload in records:
            parts = seg.encode_record(project, payload)
            fh.write(b"".join(parts))
            lsn += seg.record_size(parts)
            ends.append(lsn)
    return ends


@given(records=st.lists(st.tuples(projects, payloads), min_size=1, max_size=8))
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_records_round_trip(tmp_path: Path, records: list[tuple[str, bytes]]) -> None:
    path = tmp_path / seg.segment_name(0)
    ends = _write_segment(path, records)
    read = list(seg.iter_records(path, 0, 0, ends[-1]))
    assert [(r.project, r.payload) for r in read] == records
    assert [r.end for r in read] == ends
    assert seg.count_records(path, 0, 0, ends[-1]) == len(records)


@given(
    records=st.lists(st.tuples(projects, payloads), min_size=1, max_size=6),
    cut=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    garbage=st.binary(max_size=64),
)
@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_torn_tail_keeps_every_complete_record(
    tmp_path: Path, records: list[tuple[str, bytes]], cut: float, garbage: bytes
) -> None:
    """Cut the last record anywhere (and maybe append junk): recovery keeps the others, truncates the rest."""
    wal_dir = tmp_path / f"wal-{os.urandom(4).hex()}"
    wal_dir.mkdir()
    path = wal_dir / seg.segment_name(0)
    ends = _write_segment(path, records)
    last_start = ends[-2] if len(ends) > 1 else 0
    keep_bytes = seg.HEADER_SIZE + last_start + int(cut * (ends[-1] - last_start))
    removed = path.read_bytes()[keep_bytes:]
    # Junk that starts with the very bytes cut away can complete the record again, which recovery
    # then rightly keeps; a torn tail followed by anything else must be truncated.
    assume(not garbage or garbage[:1] != removed[:1])
    with open(path, "r+b") as fh:
        fh.truncate(keep_bytes)
        fh.seek(0, os.SEEK_END)
        fh.write(garbage)
    wal = WriteAheadLog(wal_dir, WalOptions(fsync=False))
    try:
        got, _ = wal.read(0, max_bytes=1 << 30)
        assert [(r.project, r.payload) for r in got] == records[:-1]
        assert wal.stats().corrupt_bytes_truncated == keep_bytes + len(garbage) - seg.HEADER_SIZE - last_start
        assert wal.start_lsn == last_start
    finally:
        wal.close()


def test_zero_filled_tail_is_not_a_record(tmp_path: Path) -> None:
    """A file system may extend a file with zeros before the data lands: zeros never parse as a record."""
    path = tmp_path / seg.segment_name(0)
    ends = _write_segment(path, [("p", b"abc")])
    with open(path, "ab") as fh:
        fh.write(b"\x00" * 4096)
    assert seg.scan_valid_end(path, 0) == (ends[-1], 1)


def test_corrupt_byte_in_a_sealed_segment_is_skipped_and_counted(tmp_path: Path) -> None:
    """Damage in the middle of an older segment skips that segment's rest; later segments still replay."""
    first = tmp_path / seg.segment_name(0)
    ends = _write_segment(first, [("p", b"one"), ("p", b"two" * 100), ("p", b"three")])
    second = tmp_path / seg.segment_name(ends[-1])
    with open(second, "wb") as fh:
        fh.write(seg.MAGIC + b"".join(seg.encode_record("p", b"four")))
    with open(first, "r+b") as fh:
        fh.seek(seg.HEADER_SIZE + ends[0] + 20)
        fh.write(b"\xff")
    wal = WriteAheadLog(tmp_path, WalOptions(fsync=False))
    try:
        payloads_read = []
        pos = 0
        while True:
            got, pos_next = wal.read(pos)
            if not got and pos_next == pos:
                break
            payloads_read += [r.payload for r in got]
            pos = pos_next
        assert payloads_read == [b"one", b"four"]
        assert wal.stats().corrupt_bytes_skipped == ends[-1] - ends[0]
    finally:
        wal.close()


@pytest.mark.parametrize("content", [b"", b"LSW", b"not a wal segment at all"])
def test_segment_without_a_valid_header_is_dropped(tmp_path: Path, content: bytes) -> None:
    (tmp_path / seg.segment_name(0)).write_bytes(content)
    wal = WriteAheadLog(tmp_path, WalOptions(fsync=False))
    try:
        assert wal.read(0) == ([], 0)
        wal.append("p", b"after")
        got, _ = wal.read(0)
        assert [r.payload for r in got] == [b"after"]
    finally:
        wal.close()


def _field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return seg._varint(number << 3) + seg._varint(value)
    return seg._varint(number << 3 | 2) + seg._varint(len(value)) + value


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    """Record bodies as this WAL writes them, as another protobuf writer may (any field order, repeated or
    unknown fields, a long project), and damaged or random ones."""
    project, payload = draw(projects), draw(payloads)
    fields = [_field(1, draw(st.sampled_from([1, 1, 2]))), _field(2, project.encode()), _field(3, payload)]
    shape = draw(st.sampled_from(["ours", "shuffled", "unknown", "long project", "random", "damaged"]))
    if shape == "ours":
        return b"".join(seg.encode_record(project, payload))[seg.RECORD_HEADER.size :]
    if shape == "shuffled":
        return b"".join(draw(st.permutations(fields)))
    if shape == "unknown":
        return b"".join(fields) + _field(
            draw(st.integers(4, 2000)), draw(st.integers(0, 2**40) | st.binary(max_size=8))
        )
    if shape == "long project":
        return b"".join([fields[0], _field(2, b"p" * draw(st.integers(200, 700))), fields[2]])
    if shape == "random":
        return draw(st.binary(min_size=seg._MIN_BODY, max_size=600))
    body = bytearray(b"".join(fields))
    body[draw(st.integers(0, len(body) - 1))] ^= draw(st.integers(1, 255))
    return bytes(body)


@given(body=_bodies())
@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_record_read_from_its_segment_is_its_body_decoded(tmp_path: Path, body: bytes) -> None:
    """Its payload read apart from the fields before it where the body ends with it (`_read_record`), else the
    body parsed: the same record, or the same refusal, as `decode_body` of the whole body."""
    path = tmp_path / seg.segment_name(0)
    crc = seg.zlib.crc32(body)
    path.write_bytes(seg.MAGIC + seg.RECORD_HEADER.pack(len(body), crc) + body)
    end = seg.RECORD_HEADER.size + len(body)
    try:
        want: seg.WalRecord | str = seg.decode_body(body, crc, 0, end)
    except seg.WalCorrupt as exc:
        want = str(exc)
    try:
        got: seg.WalRecord | str = next(seg.iter_records(path, 0, 0, end))
    except seg.WalCorrupt as exc:
        got = str(exc)
    assert got == want


def test_a_damaged_payload_read_apart_fails_its_checksum(tmp_path: Path) -> None:
    path = tmp_path / seg.segment_name(0)
    [end] = _write_segment(path, [("p", b"x" * 5000)])
    data = bytearray(path.read_bytes())
    data[-10] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(seg.WalCorrupt, match="checksum"):
        list(seg.iter_records(path, 0, 0, end))
    path.write_bytes(bytes(data[:-10]))  # and a payload cut short is a truncated record
    with pytest.raises(seg.WalCorrupt, match=r"truncated|length"):
        list(seg.iter_records(path, 0, 0, end))


@given(project=projects, payload=payloads.filter(bool))
def test_the_wal_s_own_records_have_their_payload_read_apart(project: str, payload: bytes) -> None:
    body = b"".join(seg.encode_record(project, payload))[seg.RECORD_HEADER.size :]
    split = seg._payload_split(body[: seg._HEAD_READ], len(body))
    assert split is not None and body[split[1] :] == payload
