"""The canonical JSON of a JSON text, from the text: the optional C extension `_canonical_json.c`.

Content addressing hashes a content item's canonical body, `msgspec.json.Encoder(order="sorted")`'s
encoding of the decoded value (`storage.content_items.canonical_json`). For a message that arrives as
JSON text (`gen_ai.input.messages` & co.), decoding it to Python objects only to encode them again is
most of the content split's CPU; the C extension writes the same bytes in one pass over the text. It
answers None where it does not decide (a float, a duplicate key, deep nesting, any text msgspec
refuses): the caller then decodes and encodes, which is what decides (tests/collector/
test_canonical_native.py: equal bytes wherever it answers, None wherever msgspec refuses). Without a C
compiler at install time (setup.py), `canonical` always answers None and the split runs as before.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

Canonical = Callable[[str | bytes | msgspec.Raw], bytes | None]


def _none(text: str | bytes | msgspec.Raw) -> bytes | None:
    return None


def _load() -> tuple[Canonical, bool]:
    try:
        from llmscope_collector.processors._canonical_json import canonical as native  # type: ignore[import-not-found]
    except ImportError:
        return _none, False
    return native, True


canonical, AVAILABLE = _load()
"""`canonical(text)`: the canonical JSON bytes of the value `text` decodes to, or None (see above)."""
