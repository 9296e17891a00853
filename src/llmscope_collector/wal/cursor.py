"""The committed-position checkpoint: every WAL record before this LSN is durable in Parquet.

The file is tiny, checksummed and replaced atomically (temp + fsync + rename + directory fsync). A
missing or damaged cursor is not fatal: it reads as "nothing committed", and replay then skips
what Parquet files already hold (their names carry the WAL range they contain), so the worst
case is a slower start, never a duplicate row or a refusal to start.
"""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

from llmscope_collector.durable_io import replace_durably

log = logging.getLogger(__name__)

CURSOR_FILE = "cursor"
_MAGIC = b"LSCUR001"
_BODY = struct.Struct("<Q")
_CRC = struct.Struct("<I")


class CommitCursor:
    """Reads and durably advances the committed LSN stored in `wal_dir/cursor`."""

    def __init__(self, wal_dir: Path) -> None:
        self._dir = wal_dir
        self._path = wal_dir / CURSOR_FILE
        self.lsn = self._load()

    @property
    def directory(self) -> Path:
        return self._dir

    def _load(self) -> int:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return 0
        expected = len(_MAGIC) + _BODY.size + _CRC.size
        if len(raw) != expected or not raw.startswith(_MAGIC):
            log.error("WAL cursor %s is damaged; replaying the whole log (stored spans are skipped)", self._path)
            return 0
        body = raw[len(_MAGIC) : len(_MAGIC) + _BODY.size]
        (crc,) = _CRC.unpack_from(raw, len(_MAGIC) + _BODY.size)
        if zlib.crc32(body) != crc:
            log.error("WAL cursor %s fails its checksum; replaying the whole log", self._path)
            return 0
        return int(_BODY.unpack(body)[0])

    def commit(self, lsn: int) -> None:
        """Durably record `lsn`; never moves backwards."""
        if lsn <= self.lsn:
            return
        body = _BODY.pack(lsn)
        replace_durably(_MAGIC + body + _CRC.pack(zlib.crc32(body)), self._path)
        self.lsn = lsn
