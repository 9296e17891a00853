"""`DatasetFiles` lists what a fresh walk of the dataset finds after files and partitions come and go, though
it rebuilds its listing only when a partition directory changed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.query.index import DatasetFiles

_PARTITIONS = [f"project={p}/date=2026-01-0{d}" for p in ("a", "b") for d in (1, 2)]
_OPS = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "drop_partition", "other_file"]), st.sampled_from(_PARTITIONS)),
    max_size=25,
)


def _walked(root: Path) -> frozenset[str]:
    return frozenset(str(p) for p in root.glob("project=*/date=*/*.parquet"))


@settings(max_examples=40, deadline=None)
@given(ops=_OPS)
def test_the_listing_is_a_fresh_walks_after_every_change(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, str]]
) -> None:
    root = tmp_path_factory.mktemp("dataset")
    files = DatasetFiles(root)
    tick = 1_000_000_000
    try:
        assert files.current() == _walked(root) == frozenset()
        for n, (op, partition) in enumerate(ops):
            part = root / partition
            if op == "drop_partition":
                shutil.rmtree(part, ignore_errors=True)
            else:
                part.mkdir(parents=True, exist_ok=True)
                names = sorted(part.glob("*.parquet"))
                if op == "add":
                    (part / f"f{n}.parquet").write_bytes(b"")
                elif op == "remove" and names:
                    names[0].unlink()
                elif op == "other_file":
                    (part / f"f{n}.tmp").write_bytes(b"")
                # (a directory's mtime ticks coarsely: set it apart as the clock would between two writes)
                tick += 1_000_000
                os.utime(part, ns=(tick, tick))
            listed = files.current()
            assert listed == _walked(root)
            assert files.current() is listed  # (nothing changed since: the same listing, not built again)
    finally:
        shutil.rmtree(root, ignore_errors=True)
