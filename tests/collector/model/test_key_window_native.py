"""The C extension's key window (`_key_window.c`) against the pure-Python one (`PureKeyWindow`).

The windows decide which spans and content items are written: the two must answer alike for any
sequence of calls (adds one by one and in batches, lookups, the content store's first-unknown +
remember, forgets, lengths), on any keys (the empty key, keys of a few hundred bytes or more, a
batch repeating a key) and any capacity (0, 1, small: generations of one key roll on every add).
"""

from __future__ import annotations

import itertools
import os
import random
import threading
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.storage import key_window_native
from llmscope_collector.storage.dedupe import KeyWindow, PureKeyWindow, span_keys, span_keys_of

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
_FLAGS = st.lists(st.booleans(), min_size=25, max_size=25)  # a packed batch's keep flags (the first of them)
_OPS = st.one_of(
    st.tuples(st.just("add"), _KEYS),
    st.tuples(st.just("contains"), _KEYS),
    st.tuples(st.just("add_batch"), st.lists(_KEYS, max_size=25)),
    st.tuples(st.just("first_unknown"), st.lists(_KEYS, max_size=25)),
    st.tuples(st.just("remember_new"), st.lists(_KEYS, max_size=25)),
    st.tuples(st.just("store"), st.lists(_KEYS, max_size=25)),
    st.tuples(st.just("forget"), st.sets(_KEYS, max_size=8)),
    st.tuples(st.just("first_unknown_packed"), st.lists(_KEYS, max_size=25)),
    st.tuples(st.just("store_packed"), st.lists(_KEYS, max_size=25)),
    st.tuples(st.just("remember_new_packed"), st.tuples(st.lists(_KEYS, max_size=25), _FLAGS)),
)


def _packed(keys: list[bytes]) -> tuple[bytes, int]:
    """The keys of the first key's width (1 if it is empty), back to back: a packed batch, of keys the other
    calls also take one by one (the small pool's `k0`-`k9` and `k10`-`k40`, the 127-131 byte runs)."""
    width = len(keys[0]) if keys and keys[0] else 1
    return b"".join(key for key in keys if len(key) == width), width


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
    if op == "first_unknown_packed":
        return window.first_unknown_packed(*_packed(arg))
    if op == "store_packed":  # the content store's (storage/content.py)
        data, width = _packed(arg)
        first = window.first_unknown_packed(data, width)
        window.remember_new_packed(data, width, first)
        return first
    if op == "remember_new_packed":
        data, width = _packed(arg[0])
        window.remember_new_packed(data, width, arg[1][: len(data) // width])
        return None
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
        seen.update([arg] if isinstance(arg, bytes) else arg[0] if isinstance(arg, tuple) else arg)
    assert {k for k in seen if k in native} == {k for k in seen if k in pure}


@pytest.mark.parametrize("capacity", [1, 7, 1000])
def test_many_calls_on_full_tables(capacity: int) -> None:
    """Thousands of generations rolled, tables full and deletions shifting long probe runs."""
    rng = random.Random(capacity)
    pure, native = PureKeyWindow(capacity), _native(capacity)
    pool = [rng.randbytes(rng.choice([0, 8, 33, 300])) for _ in range(3 * capacity + 50)]
    for _ in range(4000):
        batch = rng.choices(pool, k=rng.randint(0, 40))
        op = rng.choice(["add_batch", "add_batch", "store", "store_packed", "contains", "forget"])
        arg: Any = batch[0] if op == "contains" and batch else set(batch[:5]) if op == "forget" else batch
        if op == "contains" and not batch:
            continue
        assert _apply(native, op, arg) == _apply(pure, op, arg)
        assert len(native) == len(pure)
    assert [k in native for k in pool] == [k in pure for k in pool]


def test_large_packed_batches_looked_up_without_the_gil() -> None:
    """Batches of at least 1024 keys are looked up with the GIL released (`GIL_FREE_KEYS`): the same answers."""
    rng = random.Random(5)
    pure, native = PureKeyWindow(3000), _native(3000)
    pool = [rng.randbytes(20) for _ in range(6000)]
    for _ in range(12):
        batch = rng.choices(pool, k=rng.randint(1024, 2500))
        assert _apply(native, "store_packed", batch) == _apply(pure, "store_packed", batch)
        assert len(native) == len(pure)
    assert [k in native for k in pool] == [k in pure for k in pool]


def test_a_call_while_another_thread_looks_up_without_the_gil_is_refused() -> None:
    """One caller at a time: while a large lookup runs without the GIL, a call from another thread raises
    (it would otherwise read or change the tables under it) and the lookup's answers are unharmed."""
    native = _native(3000)
    data = os.urandom(20 * 1_000_000)
    answers: list[list[bool]] = []
    lookup = threading.Thread(target=lambda: answers.append(native.first_unknown_packed(data, 20)))
    refused = 0
    lookup.start()
    while lookup.is_alive() and not refused:
        try:
            native.add(b"k")
        except RuntimeError:
            refused += 1
    lookup.join()
    assert refused == 1
    assert answers[0].count(True) == len(set(data[i : i + 20] for i in range(0, len(data), 20)))


@pytest.mark.parametrize("make", [PureKeyWindow, _native])
def test_packed_calls_refuse_a_width_or_flags_that_do_not_fit(make: Any) -> None:
    window = make(8)
    for width in (0, -1, 3):
        with pytest.raises(ValueError):
            window.first_unknown_packed(b"abcd", width)
    with pytest.raises(ValueError):
        window.remember_new_packed(b"abcd", 2, [True])  # one flag for two keys
    with pytest.raises(ValueError):
        window.remember_new_packed(b"abcd", 2, [True, 1])  # not a bool
    assert len(window) == 0  # nothing half done
    window.remember_new_packed(bytearray(b"abcd"), 2, [False, True])
    assert b"cd" in window and b"ab" not in window
    assert window.first_unknown_packed(memoryview(b"cdabab"), 2) == [False, True, False]


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


# Span ids: the decoder's (32 + 16 hex digits, either case), near misses (a length off by one, a non-hex
# or non-ASCII character, whitespace `bytes.fromhex` would skip) and anything else.
_HEX_ID = st.integers(0, 1).flatmap(
    lambda upper: st.text("0123456789ABCDEF" if upper else "0123456789abcdef", min_size=1, max_size=1)
)


def _ids(width: int) -> st.SearchStrategy[str]:
    exact = st.lists(_HEX_ID, min_size=width, max_size=width).map("".join)
    near = st.tuples(exact, st.integers(0, width - 1), st.sampled_from(["g", " ", "é", "\t", "0"])).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :]
    )
    return st.one_of(exact, near, exact.map(lambda s: s[1:]), exact.map(lambda s: s + "a"), st.text(max_size=40))


_ROWS = st.lists(st.tuples(_ids(32), _ids(16)), max_size=30)


@settings(max_examples=800, deadline=None)
@given(project=st.text(max_size=12), rows=_ROWS, cuts=st.lists(st.integers(0, 30), max_size=3), skip=st.integers(0, 3))
def test_span_keys_of_arrow_columns_equal_the_pure_ones(
    project: str, rows: list[tuple[str, str]], cuts: list[int], skip: int
) -> None:
    """`span_keys_of` (the extension reading the string buffers) gives `span_keys` of the same ids, for
    columns in several chunks, sliced (a chunk's offset) and chunked differently from each other."""
    traces = pa.array([t for t, _ in rows], pa.string())[min(skip, len(rows)) :]
    spans = pa.array([s for _, s in rows], pa.string())[min(skip, len(rows)) :]
    bounds = sorted({0, len(traces), *(min(c, len(traces)) for c in cuts)})
    expected = span_keys(project, traces.to_pylist(), spans.to_pylist())
    trace_chunks = pa.chunked_array([traces[a:b] for a, b in itertools.pairwise(bounds)], pa.string())
    span_chunks = pa.chunked_array([spans[a:b] for a, b in itertools.pairwise(bounds)], pa.string())
    assert span_keys_of(project, trace_chunks, span_chunks) == expected  # chunked alike
    assert span_keys_of(project, trace_chunks, pa.chunked_array([spans], pa.string())) == expected  # not alike


def test_span_keys_of_rejects_offsets_outside_the_buffers() -> None:
    """The extension checks the offsets it is given against the buffers' sizes (no read past them)."""
    native = key_window_native.SPAN_KEYS
    assert native is not None
    ids = pa.array(["a" * 32], pa.string())
    _, offsets, data = ids.buffers()
    with pytest.raises(ValueError, match="outside"):
        native(b"p", offsets, data, offsets, data, 1, 1)
    with pytest.raises(ValueError, match="outside"):
        native(b"p", offsets, data[:10], offsets, data, 0, 1)
