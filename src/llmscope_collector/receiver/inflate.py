"""`Content-Encoding` decoding with the size limit enforced while decompressing.

Output is produced in slices no larger than what is left of the limit, so a gzip bomb costs at most
`limit` bytes of memory before it is refused with 413, whatever its ratio.
"""

from __future__ import annotations

import zlib

from llmscope_collector.errors import InvalidPayload, PayloadTooLarge

SUPPORTED = ("", "identity", "gzip", "x-gzip", "deflate")


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"decompressed request body exceeds the {limit} byte limit")


def inflate(data: bytes, encoding: str, limit: int) -> bytes:
    """`data` decoded per `encoding` (one of `SUPPORTED`), at most `limit` bytes."""
    if encoding in ("", "identity"):
        if len(data) > limit:
            raise _too_large(limit)
        return data
    gzip = encoding in ("gzip", "x-gzip")
    try:
        return _inflate(data, 16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS, limit, gzip)
    except zlib.error as exc:
        if gzip:
            raise InvalidPayload(f"request body is not valid gzip: {exc}") from None
    try:  # "deflate" is zlib-wrapped per RFC 9110, but some clients send raw deflate
        return _inflate(data, -zlib.MAX_WBITS, limit, False)
    except zlib.error as exc:
        raise InvalidPayload(f"request body is not valid deflate: {exc}") from None


def _inflate(data: bytes, wbits: int, limit: int, members: bool) -> bytes:
    out: list[bytes] = []
    total = 0
    stream = zlib.decompressobj(wbits)
    pending = data
    while True:
        chunk = stream.decompress(pending, limit + 1 - total)
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        out.append(chunk)
        pending = stream.unconsumed_tail
        if stream.eof:
            pending = stream.unused_data
            if not (members and pending):
                break
            stream = zlib.decompressobj(wbits)  # gzip allows several concatenated members
            continue
        if not pending and not chunk:
            raise InvalidPayload("compressed request body is truncated")
    return b"".join(out)
