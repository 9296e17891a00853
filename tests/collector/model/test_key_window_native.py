"""The C extension's key window (`_key_window.c`) against the pure-Python one (`PureKeyWindow`).

The windows decide which spans and content items are written: the two must answer alike for any
sequence of calls (adds one by one and in batches, lookups, the content store's first-unknown +
remember, forgets, lengths), on any keys (the empty key, keys of a few hundred bytes or more, a
batch repeating a key) and any capacity (0, 1, small: generations of one key roll on every add).
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.storage import key_window_native
from llmscope_collector.storage.dedupe import KeyWindow, PureKeyWindow

if os.environ.get("LLMSCOPE_REQUIRE_NATIVE") and not key_window_native.AVAILABLE:  # CI builds it: a failed build fails
    raise RuntimeError("LLMSCOPE_REQUIRE_NATIVE is set but the C extension _key_window is not built")
pytestmark = pytest.mark.skipif(not key_window_native.AVAILABLE, reason="the C extension is not built")

_KEYS = st.one_of(
    st.integers(0, 40).map(lambda i: f"k{i}".encode()),  # a small pool: repeats, within and across batches
    st.just(b""),
    st.integers(0, 4).map(lambda i: bytes([i]) * (127 + i)),  # around the one-byte length limit
    st.binary(max_size=40),
    st.binary(min_size=100, max_size=400),
)
_OPS = st.one_of(
    st.tuples(st.just("add"), _KEYS),
    st.tuples(st.just("contains"), _KEYS),
    st.tuples(st.just("add_batch"), st.lists(_KEYS, max_size=25)),
    st.tuples(st.just("first_unknown"), st.lists(_KEYS, max_size=25)),
    st.tuples(st.just("remember_new"), st.lists(_KEYS, max_size=25)),
    st.tuples(st.just("store"), st.lists(_KEYS, max_size=25)),
    st.tuples(st.just("forget"), st.sets(_KEYS, max_size=8)),
)


def _native(capacity: int) -> KeyWindow:
    assert key_window_native.NATIVE is not None
    return key_window_native.NATIVE(capacity)


def _apply(window: KeyWindow, op: str, arg: Any) -> object:
    """One call, and what it answers (a store is the content store's: first_unknown, then remember those)."""
    if op == "add":
        return window.add(arg)
    if op == "contains":
        return arg in window
    if op == "add_batch":
        return window.add_batch(arg)
    if op == "first_unknown":
        return window.first_unknown(arg)
    if op == "remember_new":
        window.remember_new(arg)
        return None
    if op == "store":
        first = window.first_unknown(arg)
        window.remember_new([k for k, new in zip(arg, first, strict=True) if new])
        return first
    window.forget(arg)
    return None


@settings(max_examples=1500, deadline=None)
@given(capacity=st.integers(-1, 12) | st.sampled_from([40, 100]), ops=st.lists(_OPS, max_size=60))
def test_native_window_answers_as_the_pure_one(capacity: int, ops: list[tuple[str, Any]]) -> None:
    pure, native = PureKeyWindow(capacity), _native(capacity)
    assert native.capacity == pure.capacity
    seen: set[bytes] = set()
    for op, arg in ops:
        assert _apply(native, op, arg) == _apply(pure, op, arg), op
        assert len(native) == len(pure)
        seen.update([arg] if isinstance(arg, bytes) else arg)
    assert {k for k in seen if k in native} == {k for k in seen if k in pure}


@pytest.mark.parametrize("capacity", [1, 7, 1000])
def test_many_calls_on_full_tables(capacity: int) -> None:
    """Thousands of generations rolled, tables full and deletions shifting long probe runs."""
    rng = random.Random(capacity)
    pure, native = PureKeyWindow(capacity), _native(capacity)
    pool = [rng.randbytes(rng.choice([0, 8, 33, 300])) for _ in range(3 * capacity + 50)]
    for _ in range(4000):
        batch = rng.choices(pool, k=rng.randint(0, 40))
        op = rng.choice(["add_batch", "add_batch", "store", "contains", "forget"])
        arg: Any = batch[0] if op == "contains" and batch else set(batch[:5]) if op == "forget" else batch
        if op == "contains" and not batch:
            continue
        assert _apply(native, op, arg) == _apply(pure, op, arg)
        assert len(native) == len(pure)
    assert [k in native for k in pool] == [k in pure for k in pool]


def test_very_long_and_non_bytes_keys() -> None:
    native = _native(4)
    long_key = bytes(range(256)) * 100  # a three-byte length
    assert native.add_batch([long_key, long_key[:-1], long_key]) == [True, True, False]
    assert long_key in native and long_key + b"x" not in native
    assert "text" not in native  # type: ignore[operator]  # never a key
    with pytest.raises(TypeError):
        native.add("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        native.add_batch([b"k", "text"])  # type: ignore[list-item]
