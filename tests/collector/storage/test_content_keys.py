"""The content store's window keys built from a whole hash column are the keys of each hash alone."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from llmscope_collector.storage.content import _item_key, packed_item_keys
from llmscope_collector.storage.dedupe import packed_pieces

_HEX = st.text("0123456789abcdefABCDEF", min_size=32, max_size=32)
_NEAR_HEX = st.text("0123456789abcdef g\u00e9", min_size=30, max_size=34)  # odd, spaced, non-ASCII, other lengths
_HASHES = st.lists(st.one_of(_HEX, _HEX, _NEAR_HEX, st.text(max_size=40)), max_size=40)
_PARTITIONS = st.sampled_from([b"2026-12-03default", b"1999-01-01x", b"2026-12-03" + b"p" * 64])


def _keys(hashes: pa.Array | pa.ChunkedArray, partition: bytes) -> list[bytes] | None:
    packed = packed_item_keys(hashes, partition)
    return None if packed is None else packed_pieces(*packed)


@given(hashes=_HASHES, partition=_PARTITIONS, split=st.integers(min_value=0, max_value=40))
def test_the_keys_of_a_column_are_each_hashs_key(hashes: list[str], partition: bytes, split: int) -> None:
    """Packed when every hash has the hex form (then the keys of each hash, back to back), else None."""
    expected = [_item_key(h, partition) for h in hashes]
    hex_form = bool(hashes) and all(key[:1] == b"h" for key in expected)
    want = expected if hex_form else None
    assert _keys(pa.array(hashes, pa.string()), partition) == want
    chunked = pa.chunked_array([hashes[:split], hashes[split:]], pa.string())
    assert _keys(chunked, partition) == want
    sliced = pa.array(["0" * 32, *hashes], pa.string()).slice(1)
    assert _keys(sliced, partition) == want


def test_the_collector_s_hashes_take_the_hex_form() -> None:
    hashes = [f"{n:032x}" for n in range(1000)]
    packed = packed_item_keys(pa.array(hashes), b"2026-12-03default")
    assert packed is not None and packed[1] == 17 + len(b"2026-12-03default")
    keys = packed_pieces(*packed)
    assert keys[5] == b"h" + bytes.fromhex(hashes[5]) + b"2026-12-03default"
    assert keys == [_item_key(h, b"2026-12-03default") for h in hashes]
