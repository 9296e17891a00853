"""The dedupe windows (`RecentSpanIds`, used for span ids and content hashes) against a plain model;
each property holds for the pure-Python window and for the C extension's (when built).

The window is what stops a client retry from writing a span twice, so the property that matters
is: every one of the `capacity` newest distinct keys is recognized as a duplicate, and memory
stays bounded (four generations of a quarter of `capacity` and the current one: ~1.25x)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.storage import key_window_native
from llmscope_collector.storage.content import _item_key
from llmscope_collector.storage.dedupe import KeyWindow, PureKeyWindow, span_key, span_keys

_WINDOWS: dict[str, Callable[[int], KeyWindow]] = {"pure": PureKeyWindow}
if key_window_native.NATIVE is not None:
    _WINDOWS["native"] = key_window_native.NATIVE
windows = pytest.mark.parametrize("make", list(_WINDOWS.values()), ids=list(_WINDOWS))

_hex = st.text("0123456789abcdef", min_size=0, max_size=40)
_id_text = st.one_of(_hex, st.text(max_size=40))


@windows
@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(0, 40), keys=st.lists(st.integers(0, 60).map(lambda i: f"k{i}".encode()), max_size=300))
def test_window_remembers_the_newest_capacity_keys(
    make: Callable[[int], KeyWindow], capacity: int, keys: list[bytes]
) -> None:
    window = make(capacity)
    newest: list[bytes] = []  # distinct keys, newest last (the model)
    for key in keys:
        recent = newest[-capacity:] if capacity else []
        fresh = window.add(key)
        if capacity <= 0:
            assert fresh
            continue
        if key in recent:
            assert not fresh, "a key among the newest `capacity` must be recognized"
        if fresh:
            newest = [k for k in newest if k != key] + [key]
        generation = max(1, -(-capacity // 4))
        assert len(window) <= 5 * generation - 1  # four full generations and the current one
        assert all(k in window for k in newest[-capacity:])


@settings(max_examples=500, deadline=None)
@given(a=st.tuples(st.text(max_size=8), _id_text, _id_text), b=st.tuples(st.text(max_size=8), _id_text, _id_text))
def test_span_keys_are_equal_only_for_the_same_span(a: tuple[str, str, str], b: tuple[str, str, str]) -> None:
    assert (span_key(*a) == span_key(*b)) == (a == b)


@settings(max_examples=300, deadline=None)
@given(
    a=st.tuples(_id_text, st.text(max_size=12)),
    b=st.tuples(_id_text, st.text(max_size=12)),
)
def test_content_keys_are_equal_only_for_the_same_item(a: tuple[str, str], b: tuple[str, str]) -> None:
    # partition bytes are "<date><project>" with a fixed-length date
    def key(item: tuple[str, str]) -> bytes:
        return _item_key(item[0], f"2026-11-30{item[1]}".encode())

    assert (key(a) == key(b)) == (a == b)


def test_real_ids_use_the_compact_form() -> None:
    key = span_key("default", "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    assert len(key) == 1 + 24 + len("default")


@windows
@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(0, 40),
    batches=st.lists(st.lists(st.integers(0, 60).map(lambda i: f"k{i}".encode()), max_size=30), max_size=20),
)
def test_add_batch_is_add_per_key(make: Callable[[int], KeyWindow], capacity: int, batches: list[list[bytes]]) -> None:
    one_by_one, batched = make(capacity), make(capacity)
    for batch in batches:
        assert batched.add_batch(batch) == [one_by_one.add(key) for key in batch]
        assert len(batched) == len(one_by_one)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=8), _id_text, _id_text), max_size=20), st.text(max_size=8))
def test_span_keys_batch_equals_span_key(ids: list[tuple[str, str, str]], project: str) -> None:
    traces = [t for _, t, _ in ids]
    spans = [s for _, _, s in ids]
    assert span_keys(project, traces, spans) == [span_key(project, t, s) for t, s in zip(traces, spans, strict=True)]


@windows
@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(0, 40),
    batches=st.lists(st.lists(st.integers(0, 200).map(lambda i: f"k{i}".encode()), max_size=30), max_size=20),
)
def test_remember_new_is_add_per_key(
    make: Callable[[int], KeyWindow], capacity: int, batches: list[list[bytes]]
) -> None:
    """What the content store does: look up a batch, write, then remember the unknown keys."""
    one_by_one, bulk = make(capacity), make(capacity)
    for batch in batches:
        new = [k for k, first in zip(batch, bulk.first_unknown(batch), strict=True) if first]
        assert new == [k for k in dict.fromkeys(batch) if k not in one_by_one or capacity <= 0]
        bulk.remember_new(new)
        for key in new:
            one_by_one.add(key)
        assert len(bulk) == len(one_by_one)
        assert all((k in bulk) == (k in one_by_one) for k in range_keys())


def range_keys() -> list[bytes]:
    return [f"k{i}".encode() for i in range(201)]


@windows
@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(1, 40),
    keys=st.lists(st.integers(0, 60).map(lambda i: f"k{i}".encode()), max_size=200),
    forgotten=st.sets(st.integers(0, 60).map(lambda i: f"k{i}".encode()), max_size=20),
)
def test_forget_drops_exactly_those_keys(
    make: Callable[[int], KeyWindow], capacity: int, keys: list[bytes], forgotten: set[bytes]
) -> None:
    """What a deletion removed is forgotten in every generation; every other key stays as it was."""
    window = make(capacity)
    for key in keys:
        window.add(key)
    held = {k for k in set(keys) if k in window}
    window.forget(forgotten)
    assert {k for k in set(keys) if k in window} == held - forgotten
    assert len(window) == len(held - forgotten)
