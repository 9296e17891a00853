"""A flush's content items (`ContentStore.write`), ordered by hash from the hashes alone and their bodies
taken once from the parts: the file holds what the sort of the combined parts held, whatever the chunking."""

from __future__ import annotations

import tempfile
from itertools import pairwise
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.storage.content import ContentStore
from llmscope_collector.storage.layout import CONTENT_DIR, partition_dir
from llmscope_collector.storage.schema import CONTENT_ITEM_SCHEMA

_HASHES = st.one_of(st.sampled_from([f"{n:032x}" for n in (0, 7, 255, 2**127)]), st.sampled_from(["zz", "F" * 32]))
_ITEM = st.tuples(_HASHES, st.text(max_size=8))


@settings(max_examples=60, deadline=None)
@given(
    before=st.lists(_ITEM, max_size=6),
    items=st.lists(_ITEM, min_size=1, max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=30), max_size=4),
)
def test_a_content_file_holds_each_new_hash_once_in_hash_order(
    before: list[tuple[str, str]], items: list[tuple[str, str]], cuts: list[int]
) -> None:
    """The first row of each hash not stored by an earlier write, sorted by hash (stable), from chunked parts."""
    bounds = sorted({0, len(items), *(c % (len(items) + 1) for c in cuts)})
    parts = [
        pa.table({"hash": [h for h, _ in items[a:b]], "body": [x for _, x in items[a:b]]}, schema=CONTENT_ITEM_SCHEMA)
        for a, b in pairwise(bounds)
    ]
    known = {h for h, _ in before}
    first: dict[str, str] = {}
    for h, body in items:
        if h not in known:
            first.setdefault(h, body)
    want = sorted(first.items())
    with tempfile.TemporaryDirectory() as tmp:
        store = ContentStore(Path(tmp))
        if before:
            earlier = pa.table([[h for h, _ in before], [x for _, x in before]], schema=CONTENT_ITEM_SCHEMA)
            store.write("p", "2026-12-04", earlier, name="before.parquet")
        assert store.write("p", "2026-12-04", pa.concat_tables(parts), name="flush.parquet") == len(want)
        path = partition_dir(Path(tmp), "p", "2026-12-04", CONTENT_DIR) / "flush.parquet"
        if not want:
            assert not path.exists()
            return
        table = pq.read_table(path)
    assert list(zip(table["hash"].to_pylist(), table["body"].to_pylist(), strict=True)) == want
    assert table["bytes"].to_pylist() == [len(body.encode()) for _, body in want]
