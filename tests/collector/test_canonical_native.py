"""The C extension's canonical JSON (`_canonical_json.c`) against msgspec's decode + sorted encode.

Content addressing hashes msgspec's sorted-key encoding of a message's decoded value; the extension
writes those bytes straight from the text. Wherever it answers, its bytes must be msgspec's, on any
text (any separators, key order, escapes, Unicode); wherever msgspec refuses a text it must answer
None, so the caller's fallback decides; and it must answer for the usual message (no float, no
duplicate key), or it saves nothing.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Callable
from typing import Any, cast

import msgspec
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from llmscope_collector.processors import canonical_native, messages
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


# BLAKE2b-128 of the canonical text is the content store's key: the extension's own BLAKE2b must be
# hashlib's on any bytes, by both its compressions: `digest` runs the SIMD one where the CPU has SSE4.1
# (the scalar one elsewhere), `_digest_scalar` always the portable scalar one. Every length around the
# 128-byte blocks (the empty input included) and long inputs.
_DIGESTS = ["digest", "_digest_scalar"]
_STREAM = hashlib.shake_256(b"llmscope blake2b").digest(70_000)
_BLOCK_EDGES = [127, 128, 129, 255, 256, 257, 383, 384, 385, 1023, 1024, 1025, 4095, 4096, 4097]


def _digest(name: str) -> Callable[[bytes | memoryview], str]:
    module = importlib.import_module("llmscope_collector.processors._canonical_json")
    return cast(Callable[[bytes | memoryview], str], getattr(module, name))


def _repeated(seed: bytes, size: int) -> bytes:
    return (seed * (size // len(seed) + 1))[:size]


_DIGEST_INPUTS = (
    st.binary(max_size=700)
    | st.integers(0, 1100).flatmap(lambda n: st.binary(min_size=n, max_size=n))
    | st.builds(_repeated, st.binary(min_size=1, max_size=300), st.sampled_from(_BLOCK_EDGES) | st.integers(0, 70_000))
)


@pytest.mark.parametrize("name", _DIGESTS)
@settings(max_examples=500, deadline=None)
@given(_DIGEST_INPUTS)
@example(b"")
@example(b"\x00" * 128)
@example(b"\xff" * 129)
@example(b"a" * 256)
def test_digest_is_hashlibs_blake2b_16(name: str, data: bytes) -> None:
    assert _digest(name)(data) == hashlib.blake2b(data, digest_size=16).hexdigest()


@pytest.mark.parametrize("name", _DIGESTS)
def test_digest_of_every_length(name: str) -> None:
    digest = _digest(name)
    for size in [*range(1101), *_BLOCK_EDGES, 65_535, 65_536, 65_537, len(_STREAM)]:
        data = _STREAM[:size]
        assert digest(data) == hashlib.blake2b(data, digest_size=16).hexdigest(), size
    assert digest(memoryview(_STREAM)[3:300]) == hashlib.blake2b(_STREAM[3:300], digest_size=16).hexdigest()


_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])


@st.composite
def _array_text(draw: st.DrawFn) -> str | bytes:
    """A JSON array written any way (elements any JSON, written any way, some damaged), or not quite one."""
    elements = draw(
        st.lists(
            _written(_ANY).map(lambda w: w[1]) | _damaged().map(lambda d: d.decode("utf-8", "replace")), max_size=5
        )
    )
    ws = st.sampled_from(["", " ", "\n", "\t "])
    text = draw(st.sampled_from(["[", " [", "{"])) + ",".join(draw(ws) + e + draw(ws) for e in elements)
    text += draw(st.sampled_from(["]", "] ", "", "]x", ",]"]))
    return text.encode() if draw(st.booleans()) else text


def _pair(text: bytes) -> tuple[str, str] | None:
    canonical = _reference(text)
    return None if canonical is None else (hashlib.blake2b(canonical, digest_size=16).hexdigest(), canonical.decode())


@settings(max_examples=500, deadline=None)
@given(_array_text(), st.booleans())
@example('[{"b": 1, "a": [1, 2.5]}, "x", 1e400, {"a": 1, "a": 2}]', True)
@example("[ 1 , 2 ]", False)
@example("[]", True)
@example('["\\ud800"]', False)
@example("[1,]", False)
@example('["\ud800"]', True)
def test_split_array_gives_each_elements_pair_or_its_text(text: str | bytes, memo: bool) -> None:
    # Wherever the extension reads an array, msgspec's `list[Raw]` reads the same elements (or refuses
    # the text, where an element is left to the caller, whose decoder then refuses that element), and
    # each item is the element's (hash, canonical body) or, where the extension does not decide, its text.
    table: dict[bytes, tuple[str, str]] | None = {} if memo else None
    items, refs, added, full = canonical_native.split_array(text, table, 1 << 20, 1 << 14, "input", "k")
    if items is None:
        assert refs is None
        return
    try:
        raws = [bytes(r) for r in _RAW_LIST.decode(text)]
    except msgspec.DecodeError:
        undecided = [item for item in items if isinstance(item, bytes)]
        assert undecided and any(_reference(item) is None for item in undecided)
        return
    assert len(items) == len(raws)
    for item, raw in zip(items, raws, strict=True):
        if isinstance(item, bytes):
            assert item == raw and canonical_native.canonical(raw) is None
        else:
            assert item == _pair(raw)
    if all(isinstance(item, tuple) for item in items):
        assert refs == [("input", "k", item[0], len(item[1])) for item in items]  # type: ignore[index]
    else:
        assert refs is None
    made = {raw: item for raw, item in zip(raws, items, strict=True) if isinstance(item, tuple)}
    assert table is None or table == made
    assert added == (sum(len(k) + len(v[1]) for k, v in made.items()) if memo else 0) and not full


def test_split_array_looks_up_element_texts_and_keeps_to_its_budget() -> None:
    # A hit is the memo's pair as it is (looked up by the element's text as sent, before any work); a
    # new pair is kept when it is within the limit and fits in the room, and `full` says one did not.
    planted = ("0" * 32, "planted")
    table = {b'{"a" : 1}': planted}
    items, _, added, full = canonical_native.split_array('[{"a" : 1}, {"b":2}, "xyz"]', table, 100, 100, "i", "k")
    assert items is not None and items[0] is planted and items[1:] == [_pair(b'{"b":2}'), _pair(b'"xyz"')]
    assert table[b'{"b":2}'] == _pair(b'{"b":2}') and added == len('{"b":2}') * 2 + len('"xyz"') * 2 and not full
    table = {}
    items, _, added, full = canonical_native.split_array('["abcdefgh", "ab", "a", "a"]', table, 14, 8, "i", "k")
    assert items == [_pair(b'"abcdefgh"'), _pair(b'"ab"'), _pair(b'"a"'), _pair(b'"a"')]
    assert list(table) == [b'"ab"', b'"a"'] and added == 8 + 6 and not full  # the first is over the limit
    items, _, added, full = canonical_native.split_array('["abc", "a"]', table, 4, 16, "i", "k")
    assert items == [_pair(b'"abc"'), table[b'"a"']] and b'"abc"' not in table and full and added == 0


# --- what a message says for the previews (`message_said`) against `previews._said` of the decoded body ---

# Texts that hit `first_line`'s edges: Python's line breaks and white space beyond ASCII, escapes, blank
# text, text around the cap; and any text.
_LINE_TEXT = (
    st.sampled_from(
        [
            *(
                "",
                " ",
                "\n\n  hi  \nthere",
                "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029x",
                "\x1f a \x1f",
                "\u3000\xa0b\u2009",
            ),
            '"user"',
            "a\\b",
            "\t\ttab\t",
            "😀 \U0010ffff",
            "\x00z",
            "x" * 199,
            "y" * 200,
            "z" * 201,
            " w" * 150,
        ]
    )
    | st.text(max_size=30)
    | st.text(st.sampled_from('ab \n\r\t\x0b\x1c\x85\u2028\u3000é😀\\"'), max_size=250)
)
_ROLE = st.sampled_from(["user", "assistant", "tool", "", "User", None, 1, ["user"]])
_TYPE = st.sampled_from(["text", "input_text", "output_text", "tool_call", "function", "image", None, 3])
_PART = st.one_of(
    _LINE_TEXT,
    st.fixed_dictionaries({"type": _TYPE}, optional={"content": _LINE_TEXT | _INTS, "text": _LINE_TEXT | st.none()}),
    st.fixed_dictionaries(
        {},
        optional={
            "type": _TYPE,
            "name": _LINE_TEXT | st.sampled_from([0, None, True, [], {"a": 1}]),
            "function": st.fixed_dictionaries({}, optional={"name": _LINE_TEXT | st.none()})
            | st.sampled_from(["f", 0, None, [1]]),
            "arguments": _PLAIN,
        },
    ),
    _PLAIN,
)
_CONTENT = _LINE_TEXT | st.lists(_PART, max_size=4) | _PART | _INTS | st.none()
_MESSAGE = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "role": _ROLE,
            "parts": _CONTENT,
            "content": _CONTENT,
            "tool_calls": st.lists(_PART, max_size=3) | _PLAIN,
            "finish_reason": _TEXT,
        },
    ),
    _LINE_TEXT,
    _PLAIN,
)


@settings(max_examples=1500, deadline=None)
@given(_written(_MESSAGE), st.sampled_from([200, 1, 2, 5]))
@example(({"role": "user", "parts": [{"type": "text", "content": "a" * 100_000 + "\nb"}]}, ""), 200)
@example(({"role": "assistant", "parts": [{"type": "tool_call", "function": "f"}]}, ""), 200)
@example(({"content": [{"type": "text", "content": " ", "text": "not read"}, "\u2029 \u3000 x \u2028y"]}, ""), 3)
def test_message_said_is_said_of_the_decoded_body(message: tuple[Any, str], chars: int) -> None:
    # Wherever the extension reads a body, what it says is `previews._said` of the decoded value (its
    # line capped at `chars`), on any message shape, text and JSON spelling; where it does not, None.
    from llmscope_collector.processors import previews

    value, text = message
    if not text:
        text = json.dumps(value)
    said = canonical_native.message_said(text, chars, "…")
    if canonical_native.canonical(text) is None:
        assert said is None
        return
    loaded = previews.PREVIEW_CHARS
    previews.PREVIEW_CHARS = chars  # (`first_line` reads the module's cap)
    try:
        assert said == previews._said(_decode.decode(text))
    finally:
        previews.PREVIEW_CHARS = loaded


def test_message_said_answers_for_the_usual_messages() -> None:
    # The usual message is decided here (or the previews save nothing): user, answer, tool calls only.
    user = {"role": "user", "parts": [{"type": "text", "content": "  \n Where is the café?\nthanks"}]}
    answer = {"role": "assistant", "parts": [{"type": "text", "content": "Here."}], "finish_reason": "stop"}
    calls = {"role": "assistant", "parts": [{"type": "tool_call", "id": "1", "name": "search", "arguments": {}}]}
    openai = {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "lookup"}}]}
    said = [canonical_native.message_said(ENCODE_SORTED.encode(m).decode(), 200, "…") for m in (user, answer, calls)]
    assert said == [(True, "Where is the café?", ()), (False, "Here.", ()), (False, None, ("search",))]
    assert canonical_native.message_said(json.dumps(openai), 200, "…") == (False, None, ("lookup",))
    assert canonical_native.message_said('{"role": 1.5}', 200, "…") is None  # a float: the caller decodes
    with pytest.raises(ValueError):
        canonical_native.message_said("{}", 0, "…")


# The string scans go 16 bytes a step (SSE2), then 8, then byte by byte: a byte that ends a run of plain
# ones must stop each of them at any offset, in a string as in a key, and in split_array's element skip.
_STOPPERS = [b'\\"', b"\\\\", b"\\n", b"\\u00e9", b"\\ud83d\\ude00", b"\xc3\xa9", b"\xe6\x97\xa5", b"\x01", b"\x1f"]
_STOPPERS += [b"\xff", b"\xc3", b"\x7f", b"\x80", b" ", b"\\/", b"\\x"]


@pytest.mark.parametrize("stopper", _STOPPERS)
def test_a_byte_that_ends_a_plain_run_is_seen_at_any_offset(stopper: bytes) -> None:
    for offset in range(40):
        for tail in (0, 1, 9, 17, 33):
            content = b"a" * offset + stopper + b"b" * tail
            for text in (b'"' + content + b'"', b'{"' + content + b'":"' + content + b'","k":1}'):
                assert canonical_native.canonical(text) == _reference(text)
                array = b'["' + content + b'", ' + text + b"]"
                for table in (None, {}):
                    items, _, _, _ = canonical_native.split_array(array, table, 1 << 20, 1 << 14, "i", "k")
                    raws = [b'"' + content + b'"', text]
                    assert items is not None
                    expected = [_pair(raw) or raw for raw in raws]
                    assert items == expected


# An object's members are sorted by one insertion pass that also finds duplicate keys (the compare where a
# key stops is with an equal key, if there is one), and by qsort past 16 members: every pair of equal keys
# (as written or only once unescaped) at any two positions of any order is found, and no other object is
# refused.
@pytest.mark.parametrize("size", [2, 3, 5, 16, 17, 20])
def test_duplicate_keys_are_found_at_any_two_positions(size: int) -> None:
    keys = [f"k{(i * 7) % size:02d}" for i in range(size)]  # (out of order)
    text = "{" + ",".join(f'"{key}":{i}' for i, key in enumerate(keys)) + "}"
    assert canonical_native.canonical(text) == _reference(text) is not None
    for first in range(size):
        for second in range(size):
            if first == second:
                continue
            dup = list(keys)
            dup[second] = dup[first] if (first + second) % 2 else dup[first].replace("k", "\\u006b", 1)
            text = "{" + ",".join(f'"{key}":{i}' for i, key in enumerate(dup)) + "}"
            assert canonical_native.canonical(text) is None, text


def test_a_body_is_the_same_str_whatever_its_code_points() -> None:
    # An ASCII body's str is made from its bytes as they are, any other decoded: an escape that writes a
    # code point past ASCII (and only it) makes a body decoded, as a raw one does.
    for element in ['"\\u00e9"', '"é"', '"\\ud83d\\ude00 x"', '"a\\u007f"', '{"\\u00e9":"a"}', '"a"', '{"b":"\\n"}']:
        items, refs, _, _ = canonical_native.split_array(f"[{element}]", None, 0, 0, "i", "k")
        assert items == [_pair(element.encode())] and refs is not None
        canonical = _reference(element.encode())
        assert canonical is not None and items[0][1] == canonical.decode()  # type: ignore[index]
        assert items[0][1].isascii() == canonical.isascii()  # type: ignore[index]  # (the str's kind is its text's)


# --- a span's whole split in one call (`split_span`, behind `messages.split_hashed`) against `_split` ---
# `_split` is the reference: on any attributes, split_hashed (the C call, or `_split` where it leaves the
# span) gives the same light attributes (`attrs` itself exactly when `_split` returns it, keys in the
# same order), refs and (hash, body) pairs, and leaves the memos, their budget count and the known keys
# as `_split` alone leaves them, under any budget (clearing mid-span included).

_MESSAGE_VALUES = st.fixed_dictionaries({"role": st.sampled_from(["user", "tool"]), "parts": _PLAIN}) | _ANY


@st.composite
def _element(draw: st.DrawFn, pool: list[str]) -> str:
    """An array element as text: one seen before (a memo hit), a message written any way, or damaged."""
    again: bool = draw(st.booleans())
    if pool and again:
        return draw(st.sampled_from(pool))
    if draw(st.integers(0, 5)) == 0:
        text = draw(_damaged()).decode("utf-8", "replace")
    else:
        text = json.dumps(draw(_MESSAGE_VALUES), separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])))
    pool.append(text)
    return text


@st.composite
def _content(draw: st.DrawFn, pool: list[str]) -> Any:
    """A content attribute's value: a JSON array text (mostly), an object text, odd text, or not a str."""
    elements = draw(st.lists(_element(pool), max_size=4))
    array = draw(st.sampled_from(["[", "[", " ["])) + ",".join(elements) + draw(st.sampled_from(["]", "]", "]x"]))
    # (A lone surrogate as such raises in `_split`, as before: the wire's UTF-8 and msgspec never give one.)
    odd = st.sampled_from(["", "[", "{}", "plain", '{"a": 1.5}', '["\\ud800"]', "[1, 2.5]"])
    other = st.none() | st.booleans() | _INTS | st.lists(st.text(max_size=3), max_size=2) | st.binary(max_size=3)
    return draw(
        st.sampled_from([array, array, array, elements[0] if elements else "{}"]) | odd | other | st.just(pool[-1:])
    )


_SPAN_KEYS = st.sampled_from(
    [
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "input.value",
        "gen_ai.prompt",
        "gen_ai.request.model",
        "llm.input_messages.0.message.role",
        "gen_ai.prompt.1.content",
        "llm.tools.0.tool.json_schema",
    ]
) | st.text(max_size=6)


@st.composite
def _spans(draw: st.DrawFn) -> list[dict[str, Any]]:
    pool: list[str] = []
    spans = [
        draw(st.dictionaries(_SPAN_KEYS, _content(pool) | st.text(max_size=4) | _INTS, max_size=6))
        for _ in range(draw(st.integers(1, 4)))
    ]
    return spans + draw(st.lists(st.sampled_from(spans), max_size=3))  # whole spans resent: all hits


def _split_state() -> tuple[Any, ...]:
    """What a split leaves behind: the memos (in order), their character count, the keys known."""
    return (
        list(messages._WHOLE_MEMO.items()),
        list(messages._MESSAGE_MEMO.items()),
        messages._memo_held,
        set(messages._NOT_FLAT),
        dict(messages._FLAT_KEYS),
    )


def _set_split_state(state: tuple[Any, ...]) -> None:
    whole, message, held = list(state[0]), list(state[1]), int(state[2])
    not_flat, flat = set(state[3]), dict(state[4])  # (copies first: the live tables may be passed)
    messages._WHOLE_MEMO.clear()
    messages._WHOLE_MEMO.update(whole)
    messages._MESSAGE_MEMO.clear()
    messages._MESSAGE_MEMO.update(message)
    messages._memo_held = held
    messages._NOT_FLAT.clear()
    messages._NOT_FLAT.update(not_flat)
    messages._FLAT_KEYS.clear()
    messages._FLAT_KEYS.update(flat)


def _split_compared(attrs: dict[str, Any]) -> bool:
    """split_hashed and `_split` from one state: equal results and state after; whether C decided it."""
    before = _split_state()
    light, refs, hashed = messages.split_hashed(attrs)
    after = _split_state()
    _set_split_state(before)
    room, limit = messages._MEMO_CHARS - before[2], messages._MEMO_CHARS // 64
    decided = canonical_native.split_span(attrs, messages._SPAN_TABLES, room, limit)[0]
    _set_split_state(before)  # (a probe: its own memo entries dropped)
    ref_light, ref_refs, ref_hashed = messages._split(attrs, copy=False)
    assert (light is attrs) == (ref_light is attrs)
    assert list(light.items()) == list(ref_light.items())
    assert (refs, hashed) == (ref_refs, ref_hashed)
    assert after == _split_state()
    return decided is not None


@settings(max_examples=400, deadline=None)
@given(_spans(), st.sampled_from([None, 2000, 640, 64, 0]), st.floats(0, 1))
@example([{"gen_ai.input.messages": '[{"role":"user"}]', "gen_ai.system_instructions": "[1]"}], None, 0.0)
@example([{"gen_ai.input.messages": '["abcd", "ab"]', "gen_ai.system_instructions": '["x"]'}], 640, 0.99)
@example([{"gen_ai.system_instructions": '["abcdef"]', "gen_ai.input.messages": '["a"]'}], 640, 0.995)
def test_split_span_is_the_python_splits_result_and_state(
    spans: list[dict[str, Any]], budget: int | None, filled: float
) -> None:
    default = messages._MEMO_CHARS
    if budget is not None:  # a small budget (from empty memos `filled` up to it): pairs that do not fit
        messages._MEMO_CHARS = budget
        _set_split_state(([], [], int(budget * filled), messages._NOT_FLAT, messages._FLAT_KEYS))
    try:
        for attrs in spans:
            event("split_span decided" if _split_compared(attrs) else "split_span left it to _split")
    finally:
        messages._MEMO_CHARS = default
        _set_split_state(([], [], 0, messages._NOT_FLAT, messages._FLAT_KEYS))


def test_split_span_decides_the_usual_spans_and_leaves_the_rest() -> None:
    # The decoder's usual spans are one C call; flattened, opaque-value, non-str and undecided content
    # (a float, text the extension does not read as an array, a key not yet known) go to `_split`.
    chat = '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]'
    usual = {"gen_ai.system_instructions": '[{"type":"text","content":"be brief"}]', "gen_ai.input.messages": chat}
    usual |= {"gen_ai.output.messages": '[{"role":"assistant","parts":[]}]', "gen_ai.request.model": "m"}
    plain = {"http.method": "GET", "http.status_code": 200}
    for attrs in (usual, plain):
        messages.split_hashed(dict(attrs))  # (its keys known now)
        assert _split_compared(dict(attrs))
    messages.split_hashed(plain)
    assert canonical_native.split_span(plain, messages._SPAN_TABLES, 1 << 20, 1 << 14)[:3] == (plain, [], [])
    left: list[dict[str, Any]] = [
        {**usual, "llm.input_messages.0.message.role": "user"},
        {**usual, "input.value": "hi"},
        {**usual, "gen_ai.input.messages": [chat]},
        {**usual, "gen_ai.input.messages": '[{"t": 1.5}]'},
        {**usual, "gen_ai.system_instructions": "be brief"},
        {**usual, "gen_ai.input.messages": f"{chat} x"},
        {**usual, "a key never seen before": 1},
    ]
    for attrs in left:
        assert not _split_compared(attrs)


@pytest.mark.parametrize("key", sorted(messages._CONTENT_POSITIONS))
def test_split_span_finds_each_content_key_by_its_hash_bit(key: str) -> None:
    # split_span looks a key up in the content positions only where the key's hash bit is set: every
    # content key's is, so a span with any one of them is split (a whole or message key) or left to
    # `_split` (an opaque value's), as `_split` would.
    assert messages._SPAN_TABLES[6] >> (hash(key) & 63) & 1
    attrs = {"http.method": "GET", key: '[{"role": "user", "parts": []}]'}
    messages.split_hashed(dict(attrs))  # (its keys known now)
    assert _split_compared(dict(attrs)) == (messages._CONTENT_POSITIONS[key] >= 0)


def test_split_span_leaves_a_span_whose_new_pair_does_not_fit_the_memo() -> None:
    # `_split` clears the memos where a new pair does not fit (mid-span): the C call leaves that span to it,
    # having kept only what `_split` keeps too before that point. Budget 640: a pair of up to 10 characters
    # is kept; a whole value's 5 + 5 with 3 left, a message's 3 + 3 with 4 left, do not fit.
    default = messages._MEMO_CHARS
    messages._MEMO_CHARS = 640
    try:
        for held, attrs in [
            (637, {"gen_ai.system_instructions": '["x"]'}),
            (636, {"gen_ai.system_instructions": '["abcdef"]', "gen_ai.input.messages": '["a"]'}),
            (620, {"gen_ai.system_instructions": '["x"]', "gen_ai.input.messages": '["abcd", "a", "ab"]'}),
        ]:
            messages.split_hashed(dict(attrs))  # (its keys known)
            _set_split_state(([], [], held, messages._NOT_FLAT, messages._FLAT_KEYS))
            assert not _split_compared(attrs)
            assert messages._memo_held < held  # (cleared)
        _set_split_state(([], [], 600, messages._NOT_FLAT, messages._FLAT_KEYS))
        assert _split_compared({"gen_ai.system_instructions": '["x"]', "gen_ai.input.messages": '["a"]'})
    finally:
        messages._MEMO_CHARS = default
        _set_split_state(([], [], 0, messages._NOT_FLAT, messages._FLAT_KEYS))
