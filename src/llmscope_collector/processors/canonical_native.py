"""The canonical JSON of a JSON text, from the text: the optional C extension `_canonical_json.c`.

Content addressing hashes a content item's canonical body, `msgspec.json.Encoder(order="sorted")`'s
encoding of the decoded value (`storage.content_items.canonical_json`). For a message that arrives as
JSON text (`gen_ai.input.messages` & co.), decoding it to Python objects only to encode them again is
most of the content split's CPU; the C extension writes the same bytes in one pass over the text. It
answers None where it does not decide (a float, a duplicate key, deep nesting, any text msgspec
refuses): the caller then decodes and encodes, which is what decides (tests/collector/
test_canonical_native.py: equal bytes wherever it answers, None wherever msgspec refuses). Without a C
compiler at install time (setup.py), `canonical` always answers None and the split runs as before.

`split_array` does a message list's whole split in one call: per element the canonical text, its
BLAKE2b-128 (the extension's own, equal to `hashlib.blake2b(digest_size=16)`: the content store's
keys) and the body as str, through the caller's memo of element texts. Per element in Python (a
`bytes`, a lookup, the digest's three calls, a decode, the tuples) cost more than the work itself.

Per bench span (hotpaths.py --callgrind, decode_payload) the content split took 28.4k of 115.4k
instructions; 23.6k of 110.1k now: strings copied while scanned and no call per white space or member
sort (a bench message's canonical text 5.4k -> 3.6k), an ASCII body's str made without decoding it, a
span's content values read in its one walk over the keys. Most of what is left is the work itself:
BLAKE2b of the new items (7.5k), the memo's lookups (2.6k, Python's hash of each element's text).

`message_said` reads what a stored message body says for the trace list's previews (`previews._said`:
whether it is a user message, its first line, the tools it calls) from its canonical text, without
Python objects: decoding the picked spans' bodies to dicts and walking them in Python was most of the
previews' CPU (tests/collector/model/test_previews.py holds it equal to `_said` of the decoded body).

`preview_rows` does a decoded part's whole `previews.preview_candidates` (the picks, then the picked
rows' lines from their chat messages) in one call: per part in Python, the picks' loop over every span,
the items' gathering and a call per body cost ~1.2 µs per bench span, 10% of a decode worker's CPU
(test_previews.py holds the candidates equal to the pure path's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from hashlib import blake2b
from typing import Any

import msgspec

Canonical = Callable[[str | bytes | msgspec.Raw], bytes | None]
Hashed = tuple[str, str]
ContentRef = tuple[str, str, str, int]
SplitItems = tuple[list[Hashed | bytes] | None, list[ContentRef] | None, int, bool]
SplitArray = Callable[[str, dict[bytes, Hashed] | None, int, int, str, str], SplitItems]
SpanTables = tuple[
    set[str],
    dict[str, int],
    tuple[tuple[str, str], ...],
    tuple[tuple[str, str, bool], ...],
    dict[str, Hashed],
    dict[bytes, Hashed],
    int,
]
SplitSpan = tuple[dict[str, Any] | None, list[ContentRef] | None, list[Hashed] | None, int]
SpanSplit = Callable[[dict[str, Any], SpanTables, int, int], SplitSpan]
Said = tuple[bool, str | None, tuple[str, ...]]
MessageSaid = Callable[[str, int, str], Said | None]
Lines = list[str | bool | tuple[str, ...] | None]
PreviewRows = tuple[list[int], list[str], list[int], list[int], Lines, Lines, int]
Columns = Sequence[Any]
PreviewRowsOf = Callable[
    [Columns, Columns, Columns, Columns, Columns, Columns, frozenset[str], int, str], PreviewRows | None
]


def _none(text: str | bytes | msgspec.Raw) -> bytes | None:
    return None


def _undecided(
    text: str, memo: dict[bytes, Hashed] | None, room: int, limit: int, kind: str, source: str
) -> SplitItems:
    return None, None, 0, False


def _span_undecided(attrs: dict[str, Any], tables: SpanTables, room: int, limit: int) -> SplitSpan:
    return None, None, None, 0


def _not_said(body: str, chars: int, ellipsis: str) -> Said | None:
    return None


def _no_rows(
    trace_ids: Columns,
    start_ns: Columns,
    end_ns: Columns,
    operations: Columns,
    refs: Columns,
    items: Columns,
    llm: frozenset[str],
    chars: int,
    ellipsis: str,
) -> PreviewRows | None:
    return None


_BLAKE2B_16 = blake2b(digest_size=16)


def _hashlib_digest(data: bytes) -> str:
    state = _BLAKE2B_16.copy()
    state.update(data)
    return state.hexdigest()


def _load() -> tuple[Canonical, Callable[[bytes], str], SplitArray, SpanSplit, MessageSaid, PreviewRowsOf, bool]:
    try:
        from llmscope_collector.processors._canonical_json import (  # type: ignore[import-not-found]
            canonical as native,
        )
        from llmscope_collector.processors._canonical_json import digest as native_digest
        from llmscope_collector.processors._canonical_json import message_said as native_said
        from llmscope_collector.processors._canonical_json import preview_rows as native_rows
        from llmscope_collector.processors._canonical_json import split_array as native_split
        from llmscope_collector.processors._canonical_json import split_span as native_span
    except ImportError:
        return _none, _hashlib_digest, _undecided, _span_undecided, _not_said, _no_rows, False
    return native, native_digest, native_split, native_span, native_said, native_rows, True


canonical, digest, split_array, split_span, message_said, preview_rows, AVAILABLE = _load()
"""`canonical(text)`: the canonical JSON bytes of the value `text` decodes to, or None (see above).

`digest(data)`: `hashlib.blake2b(data, digest_size=16).hexdigest()` (the extension's BLAKE2b, else
hashlib's).

`split_array(text, memo, room, limit, kind, source)`: `(items, refs, added, full)` for the JSON array
`text`. `items` has, per element in order, `(hash, body)` where the extension decides it (a hit in
`memo`, a dict of element text as bytes — what `bytes(msgspec.Raw)` gives — to pair, else made from
the element's canonical text) or the element's text as bytes where it does not (the caller decides
that one, as without the extension); `items` is None when `text` is not an array as the extension
reads it (the caller decides the whole text). `refs` has each item's content ref `(kind, source,
hash, len(body))` when every item is decided, else None. Each pair made is remembered in `memo` (None:
no memo) when its `len(key) + len(body)` is at most `limit` and fits in `room` characters; `added`
counts the characters it took, `full` says a pair did not fit. Without the extension:
`(None, None, 0, False)`.

`split_span(attrs, tables, room, limit)`: `messages._split(attrs, copy=False)` as `(light, refs, items,
added)` where the extension decides the whole span, else `(None, None, None, added)` (the caller splits
it). `tables` is `(not_flat, positions, whole, messages, whole_memo, message_memo, bits)`: the set of
keys known not to be flattened content, each content key's index in `whole + messages` (-1 for the
opaque-value keys), `((key, kind), ...)` of the JSON-valued keys and `((key, kind, memo), ...)` of the
message-list keys in the split's order (at most 16 in all), the two memos, and the bits `1 << (hash(key)
& 63)` of the keys of `positions` or'ed (only a key whose bit is set is looked up there; the hashes are
this process's). It decides a span whose keys are all in `not_flat`, none an opaque value's: `light` is
`attrs` itself when no content key is there, else its copy without them, with the items of each key (a
whole value from its JSON text through `whole_memo`, a message list as `split_array` splits it through
`message_memo` where `memo`) when every value is a str the extension decides. A new pair is remembered as
`split_array` remembers it (`room`, `limit`; `added` counts the characters taken, also when it leaves
the span to the caller), except one that would not fit: there it leaves the span to the caller, which
clears the memos as it does; so what it leaves behind is the memo entries the caller's split makes
too, in the same order. Without the extension: `(None, None, None, 0)`.

`message_said(body, chars, ellipsis)`: `previews._said` of the value JSON `body` decodes to (its line
capped at `chars` code points, `ellipsis` ending a cut one: the caller owns both), or None where the
extension does not decide the body's canonical text (as `canonical`: the caller decodes). Without the
extension: None.

`preview_rows(trace_ids, start_ns, end_ns, operations, refs, items, llm, chars, ellipsis)`:
`previews.preview_candidates`' columns `(rows, trace_ids, start_ns, end_ns, inputs, outputs)` and
`pending`, or None where the part holds what the extension does not read (a column that is not a list,
a ref that is not a tuple with a str kind, a time that is not an int64, a row whose items do not pair
with its refs: the caller decides the whole part). An `inputs`/`outputs` entry is final when a str or
None; `pending` counts the others, which the caller finishes: False, a side the extension does not
decide (an opaque `*_value` item among its items, a body whose canonical text it does not decide); a
tuple, the names of the tools an answer without a line calls (the caller writes the line). Without the
extension: None."""
