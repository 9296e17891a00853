"""The C extension's canonical JSON (`_canonical_json.c`) against msgspec's decode + sorted encode.

Content addressing hashes msgspec's sorted-key encoding of a message's decoded value; the extension
writes those bytes straight from the text. Wherever it answers, its bytes must be msgspec's, on any
text (any separators, key order, escapes, Unicode); wherever msgspec refuses a text it must answer
None, so the caller's fallback decides; and it must answer for the usual message (no float, no
duplicate key), or it saves nothing.
"""

from __future__ import annotations

import json
import os
from typing import Any

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmscope_collector.processors import canonical_native
from llmscope_collector.storage.content_items import ENCODE_SORTED

if os.environ.get("LLMSCOPE_REQUIRE_NATIVE") and not canonical_native.AVAILABLE:  # CI builds it: a failed build fails
    raise RuntimeError("LLMSCOPE_REQUIRE_NATIVE is set but the C extension _canonical_json is not built")
pytestmark = pytest.mark.skipif(not canonical_native.AVAILABLE, reason="the C extension is not built")

_decode = msgspec.json.Decoder()


def _reference(text: str | bytes) -> bytes | None:
    """msgspec's canonical bytes of the text's value, None where msgspec refuses the text."""
    try:
        return ENCODE_SORTED.encode(_decode.decode(text))
    except msgspec.DecodeError:
        return None


_TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["é", "日本", "\u2028", "\x00", "\x1f", "\x7f", 'a\\b"c', "/", "😀", "\ud7ff\ue000\uffff"]
)
_INTS = st.integers(-(2**70), 2**70) | st.sampled_from([0, -1, 2**63, -(2**63) - 1, 2**64])
# Values the extension decides: no floats (msgspec's float text is its own), keys unique by nature.
_PLAIN = st.recursive(
    st.none() | st.booleans() | _INTS | _TEXT,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_TEXT, kids, max_size=5),
    max_leaves=20,
)
_ANY = st.recursive(
    st.none() | st.booleans() | _INTS | st.floats(allow_nan=False) | _TEXT,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_TEXT, kids, max_size=5),
    max_leaves=20,
)


@st.composite
def _written(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> tuple[Any, str]:
    """A value and its JSON written any way `json.dumps` writes it (separators, indent, key order, escapes)."""
    value = draw(values)
    indent = draw(st.sampled_from([None, None, 0, 2, "\t"]))
    seps = draw(st.sampled_from([(",", ":"), (", ", ": "), (" , ", " : ")])) if indent is None else None
    text = json.dumps(
        value, separators=seps, indent=indent, sort_keys=draw(st.booleans()), ensure_ascii=draw(st.booleans())
    )
    return value, draw(st.sampled_from(["", " ", "\r\n"])) + text + draw(st.sampled_from(["", "\n ", "\t"]))


@settings(max_examples=400, deadline=None)
@given(_written(_PLAIN))
def test_the_usual_message_is_answered_with_msgspecs_bytes(written: tuple[Any, str]) -> None:
    _, text = written
    expected = _reference(text)
    assert expected is not None
    assert canonical_native.canonical(text) == expected
    assert canonical_native.canonical(text.encode()) == expected


@settings(max_examples=300, deadline=None)
@given(_written(_ANY))
def test_any_json_is_msgspecs_bytes_or_unanswered(written: tuple[Any, str]) -> None:
    _, text = written
    answer = canonical_native.canonical(text)
    assert answer is None or answer == _reference(text)


_DAMAGE = [b"", b'"', b"\\", b"\\u", b"\\ud800", b"\\udc00", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90"]
_DAMAGE += [b"\x00", b"\t", b",", b"]", b"}", b"-", b"0", b"1.5", b"e", b"tru", b"nul", b'"a":1,', b"\xe6\x97"]


@st.composite
def _damaged(draw: st.DrawFn) -> bytes:
    """Valid JSON with bytes replaced, cut or inserted: mostly text msgspec refuses, some it takes."""
    _, text = draw(_written(_ANY))
    data = bytearray(text.encode())
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        what = draw(st.sampled_from(_DAMAGE))
        cut = draw(st.integers(0, 2))
        data[at : at + cut] = what
    return bytes(data)


@settings(max_examples=600, deadline=None)
@given(_damaged() | st.binary(max_size=24) | st.text(max_size=16).map(str.encode))
@example(b'{"a":1,"a":2}')
@example(b'"\\ud83d\\ude00"')
@example(b'"\\ud83d"')
@example(b'"\\ud83dx"')
@example(b'"\\udc00\\ud83d"')
@example(b"-0")
@example(b"[-0, 0, -00]")
@example(b'"\\u0000\\u001F\\u007f\\b\\/"')
@example(b"[" * 70 + b"]" * 70)
@example(b"[1]\x00")
@example(b"\xef\xbb\xbf[1]")
def test_text_msgspec_refuses_is_never_answered(data: bytes) -> None:
    answer = canonical_native.canonical(data)
    assert answer is None or answer == _reference(data)


def test_it_reads_str_bytes_and_raw_and_refuses_what_is_not_text() -> None:
    raw = msgspec.json.Decoder(list[msgspec.Raw]).decode('[{"b": 1, "a": [true, null]}]')[0]
    for text in ('{"b": 1, "a": [true, null]}', b'{"b": 1, "a": [true, null]}', raw):
        assert canonical_native.canonical(text) == b'{"a":[true,null],"b":1}'
    assert canonical_native.canonical('"\ud800"') is None  # a lone surrogate has no UTF-8
    with pytest.raises(TypeError):
        canonical_native.canonical(1)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [4095, 4096, 4097, 100_000])
def test_long_texts_past_the_stack_buffers(size: int) -> None:
    members = {f"k{i:05d}": "x" * (i % 7) for i in range(size // 12)}
    text = json.dumps(dict(reversed(members.items())))
    assert canonical_native.canonical(text) == ENCODE_SORTED.encode(members)
