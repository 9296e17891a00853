"""Captured content → OTel GenAI message JSON, split out of a span's attributes.

Every dialect's prompt/completion attributes (OTel `gen_ai.input.messages` & co., OpenInference
`input.value` and flattened `llm.input_messages.*`, Traceloop `gen_ai.prompt.N.*`, the Vercel AI
SDK's `ai.prompt.messages`/`ai.response.*` as whole values) become a list of
`ContentItem`s: one per message, so a chat that resends its history yields the same items (same
hash) on every call and the content store keeps each once. Flattened dialects keep their original
keys in the message's `_raw` field (relative to the message index), so the span's attributes can
be rebuilt exactly (`rehydrate_attributes`). Never raises on odd input: anything not understood
stays in the attributes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from llmscope_collector.processors import canonical_native
from llmscope_collector.storage.content_items import ENCODE_SORTED
from llmscope_collector.storage.content_items import FLAT_PREFIXES as _FLAT_PREFIXES
from llmscope_collector.storage.content_items import JSON_MESSAGE_KEYS as _JSON_MESSAGE_KEYS
from llmscope_collector.storage.content_items import JSON_WHOLE_KEYS as _JSON_WHOLE_KEYS
from llmscope_collector.storage.content_items import VALUE_KEYS as _VALUE_KEYS
from llmscope_collector.storage.content_items import canonical_json as _encoded
from llmscope_collector.storage.content_items import display_value as display_value
from llmscope_collector.storage.content_items import dumps as _dumps
from llmscope_collector.storage.content_items import rehydrate_attributes as rehydrate_attributes

_decode = msgspec.json.Decoder()
_encode_sorted = ENCODE_SORTED.encode


_FLAT_RE = re.compile(rf"^({'|'.join(map(re.escape, _FLAT_PREFIXES))})\.(0|[1-9]\d{{0,5}})\.(.+)$")
_ROLE_RENAMES = {"agent": "assistant", "function": "tool", "human": "user", "ai": "assistant", "model": "assistant"}
_DATA_URL_RE = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;base64)?,(.*)$", re.S)


@dataclasses.dataclass(frozen=True)
class ContentItem:
    """One stored piece of content: `body` is JSON text, `hash` its content address."""

    kind: str
    source: str
    body: str

    @property
    def hash(self) -> str:
        return content_hash(self.body)


def content_hash(body: str) -> str:
    """128-bit BLAKE2b of the body: collisions are negligible and it is fast."""
    return _digest(body.encode())


_digest = canonical_native.digest
"""`blake2b(raw, digest_size=16).hexdigest()`: one C call where the extension is built, else from a
copied initial state (~100 ns less per call than a new one)."""


Hashed = tuple[str, str]
"""`(content_hash(body), body)` of one content item."""


def _hashed(value: Any) -> Hashed:
    """`(content_hash(body), body)` of `body = _dumps(value)`, hashing the encoder's bytes (no
    re-encoding: a body that decoded from them encodes back to the same bytes). `canonical_json`
    inlined: msgspec's bytes when it encodes the value to UTF-8, else `canonical_json`'s fallback, as
    `canonical_json` itself does; the digest is `_digest`'s (one C call where the extension is built)."""
    try:
        raw = _encode_sorted(value)
        body = raw.decode()
    except (TypeError, msgspec.EncodeError, UnicodeDecodeError):
        raw, body = _encoded(value)
    return _digest(raw), body


def _whole_hashed(value: Any) -> Hashed:
    """`_hashed` of a whole JSON-valued attribute (JSON text decoded, anything else as it is); texts
    through the memo (agents send the same system instructions and tool definitions on every call)."""
    if type(value) is not str:
        return _hashed(_json_value(value))
    pair = _WHOLE_MEMO.get(value)
    if pair is None:
        pair = (_text_hashed(value) if value[:1] in ("[", "{") else None) or _hashed(value)
        _remember(_WHOLE_MEMO, value, pair)
    return pair


def _text_hashed(text: str | bytes | msgspec.Raw) -> Hashed | None:
    """`_hashed` of the value JSON `text` decodes to, None if the decoder rejects it: the canonical bytes
    straight from the text when the C extension decides them (no Python objects), else decoded and
    encoded (`canonical_native` says when it does not, and that both give the same bytes)."""
    raw = canonical_native.canonical(text)
    if raw is None:
        try:
            value = _decode.decode(text)
        except msgspec.DecodeError:
            return None
        return _hashed(value)
    return _digest(raw), raw.decode()


# Content already hashed in this process, by its text: chats resend their whole history on every
# call and agents their system instructions, so most content items of a span were seen a moment ago
# (in the same request, often). Each entry is a pure function of its key (the text as sent → the
# item `_hashed` makes of it), so a hit returns exactly what the work would. Whole attribute values
# and single messages map to different items, hence two tables (str and bytes keys would also
# compare with each other on a hash collision). Bounded by the characters held, cleared when over.
_WHOLE_MEMO: dict[str, Hashed] = {}
_MESSAGE_MEMO: dict[bytes, Hashed] = {}
_MEMO_CHARS = 4 << 20
_memo_held = 0
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_MEMO_MESSAGE_KEYS = frozenset(key for key, kind in _JSON_MESSAGE_KEYS.items() if kind == "input")


def _remember(memo: dict[Any, Hashed], key: str | bytes, pair: Hashed) -> None:
    global _memo_held
    size = len(key) + len(pair[1])
    if size > _MEMO_CHARS // 64:  # a huge one would push everything else out
        return
    _memo_held += size
    if _memo_held > _MEMO_CHARS:
        _clear_memos(size)
    memo[key] = pair


def _clear_memos(held: int) -> None:
    global _memo_held
    _WHOLE_MEMO.clear()
    _MESSAGE_MEMO.clear()
    _memo_held = held


def _json_value(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return _decode.decode(value)
        except msgspec.DecodeError:
            return value
    return value


def _block_to_part(block: Any) -> dict[str, Any]:
    """A provider content block (Anthropic/OpenAI shapes) as an OTel message part."""
    if not isinstance(block, dict):
        return {"type": "text", "content": block if isinstance(block, str) else _dumps(block)}
    kind = block.get("type")
    if kind == "text" and "text" in block:
        return {"type": "text", "content": block["text"]}
    if kind == "tool_use":
        return {"type": "tool_call", "id": block.get("id"), "name": block.get("name"), "arguments": block.get("input")}
    if kind == "tool_result":
        return {"type": "tool_call_response", "id": block.get("tool_use_id"), "response": block.get("content")}
    if kind in ("thinking", "reasoning"):
        return {"type": "reasoning", "content": block.get("thinking") or block.get("text") or block.get("content")}
    if kind in ("image_url", "image"):
        url = block.get("image_url", {}).get("url") if isinstance(block.get("image_url"), dict) else block.get("url")
        if isinstance(url, str):
            return _image_part(url)
    return dict(block)


def _image_part(url: str) -> dict[str, Any]:
    match = _DATA_URL_RE.match(url)
    if match:
        part: dict[str, Any] = {"type": "blob", "modality": "image", "content": match.group(3)}
        if match.group(1):
            part["mime_type"] = match.group(1)
        return part
    return {"type": "uri", "modality": "image", "uri": url}


def _content_parts(content: Any) -> list[dict[str, Any]]:
    """Message content of any shape (string, JSON string of blocks, list of blocks) → parts."""
    content = _json_value(content)
    if content is None or content == "":
        return []
    if isinstance(content, list):
        return [_block_to_part(b) for b in content]
    if isinstance(content, dict):
        return [_block_to_part(content)]
    return [{"type": "text", "content": content if isinstance(content, str) else _dumps(content)}]


def _nested(fields: Mapping[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """`prefix.<j>.<rest>` keys of one message → {j: {rest: value}}."""
    out: dict[int, dict[str, Any]] = {}
    for key, value in fields.items():
        if key.startswith(prefix):
            index, _, rest = key[len(prefix) :].partition(".")
            if index.isdigit() and rest:
                out.setdefault(int(index), {})[rest] = value
    return dict(sorted(out.items()))


def _role(value: Any, default: str) -> str:
    role = value if isinstance(value, str) and value else default
    return _ROLE_RENAMES.get(role, role)


def _openinference_message(fields: Mapping[str, Any], default_role: str) -> dict[str, Any]:
    role = _role(fields.get("message.role"), default_role)
    parts: list[dict[str, Any]] = []
    content = fields.get("message.content")
    if role == "tool" and fields.get("message.tool_call_id") is not None:
        parts.append({"type": "tool_call_response", "id": fields.get("message.tool_call_id"), "response": content})
    else:
        parts.extend(_content_parts(content))
    for item in _nested(fields, "message.contents.").values():
        kind = item.get("message_content.type")
        if kind == "image" and isinstance(item.get("message_content.image.image.url"), str):
            parts.append(_image_part(item["message_content.image.image.url"]))
        elif kind == "reasoning":
            parts.append({"type": "reasoning", "content": item.get("message_content.text")})
        else:
            parts.append({"type": "text", "content": item.get("message_content.text")})
    for call in _nested(fields, "message.tool_calls.").values():
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("tool_call.id"),
                "name": call.get("tool_call.function.name"),
                "arguments": _json_value(call.get("tool_call.function.arguments")),
            }
        )
    if fields.get("message.function_call_name") is not None:
        parts.append(
            {
                "type": "tool_call",
                "name": fields.get("message.function_call_name"),
                "arguments": _json_value(fields.get("message.function_call_arguments_json")),
            }
        )
    message: dict[str, Any] = {"role": role, "parts": parts}
    if fields.get("message.name") is not None:
        message["name"] = fields["message.name"]
    if fields.get("message.finish_reason") is not None:
        message["finish_reason"] = fields["message.finish_reason"]
    return message


def _traceloop_message(fields: Mapping[str, Any], default_role: str) -> dict[str, Any]:
    role = _role(fields.get("role"), default_role)
    parts: list[dict[str, Any]] = []
    if role == "tool" and fields.get("tool_call_id") is not None:
        parts.append({"type": "tool_call_response", "id": fields["tool_call_id"], "response": fields.get("content")})
    else:
        parts.extend(_content_parts(fields.get("content")))
    for call in _nested(fields, "tool_calls.").values():
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": call.get("name"),
                "arguments": _json_value(call.get("arguments")),
            }
        )
    message: dict[str, Any] = {"role": role, "parts": parts}
    if fields.get("finish_reason") is not None:
        message["finish_reason"] = fields["finish_reason"]
    return message


def _flat_value(prefix: str, fields: Mapping[str, Any]) -> Any:
    """One flattened entry → its normalized JSON value (message, or tool definition)."""
    if prefix == "llm.input_messages":
        return _openinference_message(fields, "user")
    if prefix == "llm.output_messages":
        return _openinference_message(fields, "assistant")
    if prefix == "gen_ai.prompt":
        return _traceloop_message(fields, "user")
    if prefix == "gen_ai.completion":
        return _traceloop_message(fields, "assistant")
    if prefix == "llm.prompts":
        return {"role": "user", "parts": _content_parts(fields.get("prompt.text"))}
    if prefix == "llm.choices":
        return {"role": "assistant", "parts": _content_parts(fields.get("completion.text"))}
    if prefix == "llm.tools":
        return _tool_definition(_json_value(fields.get("tool.json_schema")))
    return {
        "type": "function",
        "name": fields.get("name"),
        "description": fields.get("description"),
        "parameters": _json_value(fields.get("parameters")),
    }


def _tool_definition(schema: Any) -> Any:
    """OpenAI `{type: function, function: {...}}` → OTel `{type, name, description, parameters}`."""
    if isinstance(schema, dict) and isinstance(schema.get("function"), dict):
        fn = schema["function"]
        return {
            "type": schema.get("type", "function"),
            "name": fn.get("name"),
            "description": fn.get("description"),
            "parameters": fn.get("parameters"),
        }
    return schema


def _json_list(value: Any) -> list[Any] | None:
    parsed = _json_value(value)
    return parsed if isinstance(parsed, list) else None


# Parsed keys (the flattened dialects' regex costs more than the rest of a span's split): keys that are
# not flattened content, and those that are with their parts. Bounded by the key vocabulary, reset if huge.
_NOT_FLAT: set[str] = set()
_FLAT_KEYS: dict[str, tuple[str, int, str]] = {}
_MAX_KEYS = 65536


def _flat_key(key: str) -> tuple[str, int, str] | None:
    """`(prefix, index, rest)` of a flattened-dialect key, None for any other key (remembered either way)."""
    parsed = _FLAT_KEYS.get(key)
    if parsed is not None:
        return parsed
    match = _FLAT_RE.match(key)
    if match is None:
        if len(_NOT_FLAT) >= _MAX_KEYS:
            _NOT_FLAT.clear()
        _NOT_FLAT.add(key)
        return None
    if len(_FLAT_KEYS) >= _MAX_KEYS:
        _FLAT_KEYS.clear()
    parsed = _FLAT_KEYS[key] = (match.group(1), int(match.group(2)), match.group(3))
    return parsed


@dataclasses.dataclass
class SplitContent:
    """A span's attributes without content, and the content items in display order."""

    attributes: dict[str, Any]
    items: list[ContentItem]


def split_content(attrs: Mapping[str, Any]) -> SplitContent:
    """Move every content attribute out of `attrs` (a new dict is returned; `attrs` is not changed)."""
    light, refs, hashed = _split(attrs, copy=True)
    return SplitContent(light, [ContentItem(r[0], r[1], h[1]) for r, h in zip(refs, hashed, strict=True)])


ContentRef = tuple[str, str, str, int]
"""`(kind, source, hash, len(body))` of one content item: a span's `content_refs` entry."""


def split_hashed(attrs: dict[str, Any]) -> tuple[dict[str, Any], list[ContentRef], list[Hashed]]:
    """`split_content` for the decoder: the light attributes (`attrs` itself when it holds no content:
    the caller must not change either), each item's ref and its `(hash, body)`, as plain tuples.

    One C call (`canonical_native.split_span`) where the extension decides the span: no content, or
    only JSON text it reads; `_split` otherwise, and without the extension. Around the C `split_array`
    of the decoder's usual LLM span, `_split` in Python was more CPU than the work itself (py-spy of
    the decode loop: 13% of `decode_payload` beside split_array's 11%)."""
    global _memo_held
    if canonical_native.AVAILABLE:
        light, refs, hashed, added = canonical_native.split_span(
            attrs, _SPAN_TABLES, _MEMO_CHARS - _memo_held, _MEMO_CHARS // 64
        )
        _memo_held += added
        if light is not None:
            return light, refs, hashed  # type: ignore[return-value]  # (all three set with the light)
    return _split(attrs, copy=False)


# Every whole-attribute content key: a span holding none of them (and no flattened key) has no content.
_CONTENT_KEYS = frozenset((*_JSON_WHOLE_KEYS, *_JSON_MESSAGE_KEYS, *_VALUE_KEYS))
_VALUE_KEY_SET = frozenset(_VALUE_KEYS)
_CONTENT_POSITIONS = {
    **dict.fromkeys(_VALUE_KEYS, -1),
    **{key: i for i, key in enumerate((*_JSON_WHOLE_KEYS, *_JSON_MESSAGE_KEYS))},
}
_SPAN_TABLES: canonical_native.SpanTables = (
    _NOT_FLAT,
    _CONTENT_POSITIONS,
    tuple(_JSON_WHOLE_KEYS.items()),
    tuple((key, kind, key in _MEMO_MESSAGE_KEYS) for key, kind in _JSON_MESSAGE_KEYS.items()),
    _WHOLE_MEMO,
    _MESSAGE_MEMO,
    sum({1 << (hash(key) & 63) for key in _CONTENT_POSITIONS}),
)
"""What `split_span` reads of this module's tables, in `_split`'s order (the same objects: the memos and
`_NOT_FLAT` only change in place), and the content keys' hash bits (distinct powers of two: their sum is
their or)."""


def _split(attrs: Mapping[str, Any], *, copy: bool) -> tuple[dict[str, Any], list[ContentRef], list[Hashed]]:
    """The attributes without content, and each item's ref and `(hash, body)`, in display order."""
    refs: list[ContentRef] = []
    hashed: list[Hashed] = []
    no_flat = _NOT_FLAT.issuperset(attrs)  # most spans have no flattened content: no regex at all
    if no_flat and _CONTENT_KEYS.isdisjoint(attrs):  # nor any other (most non-LLM spans)
        return (dict(attrs) if copy or not isinstance(attrs, dict) else attrs), refs, hashed
    light = dict(attrs)
    groups = {} if no_flat else _flat_groups(attrs, light)
    for key, kind in _JSON_WHOLE_KEYS.items():
        if key in light:
            _add(refs, hashed, kind, key, _whole_hashed(light.pop(key)))
    for key, kind in _JSON_MESSAGE_KEYS.items():
        if key in light:
            _message_items(refs, hashed, kind, key, light.pop(key))
    for prefix, entries in groups.items():
        kind = _FLAT_PREFIXES[prefix]
        for position, (index, fields) in enumerate(sorted(entries.items())):
            value = _flat_value(prefix, fields)
            body = {"value": value, "_raw": fields} if kind == "tools" else {**value, "_raw": fields}
            if index != position:
                body["_index"] = index
            _add(refs, hashed, kind, prefix, _hashed(body))
    if not _VALUE_KEY_SET.isdisjoint(light):  # (one C call: LLM spans rarely have any of these keys)
        for key, kind in _VALUE_KEYS.items():
            if key in light:
                _add(refs, hashed, kind, key, _hashed(light.pop(key)))
    return light, refs, hashed


def _add(refs: list[ContentRef], hashed: list[Hashed], kind: str, source: str, pair: Hashed) -> None:
    refs.append((kind, source, pair[0], len(pair[1])))
    hashed.append(pair)


def _flat_groups(attrs: Mapping[str, Any], light: dict[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    """Flattened-dialect attributes moved out of `light`, as {prefix: {index: {rest: value}}}."""
    flat: dict[str, dict[int, dict[str, Any]]] = {}
    for key in attrs:
        if key in _NOT_FLAT:
            continue
        parsed = _flat_key(key)
        if parsed is not None:
            prefix, index, rest = parsed
            flat.setdefault(prefix, {}).setdefault(index, {})[rest] = light.pop(key)
    return flat


def _message_items(refs: list[ContentRef], hashed: list[Hashed], kind: str, key: str, value: Any) -> None:
    """One item per message of a JSON array (a message list), else one `<kind>_value` item of the
    whole value. The common case, a JSON array as text, goes message by message through the memo:
    its raw elements cut out of the text without decoding them, each looked up by its text and only
    decoded, encoded and hashed when new (the C extension's `split_array` does all of it in one call;
    without it, `list[Raw]` cuts the text). Anything odd (an element the full decoder rejects) falls
    back to decoding the whole value, which is what decides. Output messages skip the memo: a
    response is new (its message comes back in the next call's input without the `finish_reason`,
    so with other text), and looking it up would cost more than it ever saves; they go message by
    message too when the C extension makes each one's canonical JSON from its text."""
    memo = key in _MEMO_MESSAGE_KEYS
    if (memo or canonical_native.AVAILABLE) and type(value) is str and value[:1] == "[":
        done = _native_items(refs, hashed, kind, key, value, memo) if canonical_native.AVAILABLE else None
        if done:
            return
        if done is None:  # not an array as the extension reads it (or no extension): msgspec cuts it
            try:
                raws = _RAW_LIST.decode(value)
            except msgspec.DecodeError:
                raws = None
            if raws is not None and _raw_items(refs, hashed, kind, key, raws, memo):
                return
    messages = _json_list(value)
    if messages is None:  # not a JSON array: keep it whole, losslessly
        _add(refs, hashed, f"{kind}_value", key, _hashed(value))
    else:
        for m in messages:
            _add(refs, hashed, kind, key, _hashed(m))


def _native_items(
    refs: list[ContentRef], hashed: list[Hashed], kind: str, key: str, text: str, memo: bool
) -> bool | None:
    """`_raw_items` of the array `text` from the C extension's `split_array`: None when it does not read
    `text` as an array; else as `_raw_items` (the elements it leaves undecided decided here, as there)."""
    global _memo_held
    table = _MESSAGE_MEMO if memo else None
    items, item_refs, added, full = canonical_native.split_array(
        text, table, _MEMO_CHARS - _memo_held, _MEMO_CHARS // 64, kind, key
    )
    _memo_held += added
    if full:  # a pair did not fit: start over, as `_remember` does
        _clear_memos(0)
    if items is None:
        return None
    if item_refs is not None:  # every element decided (the usual message list)
        refs += item_refs
        hashed += items  # type: ignore[arg-type]  # (all pairs when the refs are given)
        return True
    return _add_all(refs, hashed, kind, key, (_undecided_hashed(i, memo) if isinstance(i, bytes) else i for i in items))


def _add_all(refs: list[ContentRef], hashed: list[Hashed], kind: str, key: str, pairs: Iterable[Hashed | None]) -> bool:
    """Each pair as an item, in order; False, with none added, at the first None (a message the decoder
    rejects: the caller then decides the whole value)."""
    start = len(refs)
    for pair in pairs:
        if pair is None:
            del refs[start:], hashed[start:]
            return False
        refs.append((kind, key, pair[0], len(pair[1])))
        hashed.append(pair)
    return True


def _undecided_hashed(text: bytes, memo: bool) -> Hashed | None:
    """`_hashed` of an element the C extension did not decide (remembered if `memo`), None if the decoder
    rejects it (the extension's canonical JSON already said None: only the decoder is left to ask)."""
    try:
        pair = _hashed(_decode.decode(text))
    except msgspec.DecodeError:
        return None
    if memo:
        _remember(_MESSAGE_MEMO, text, pair)
    return pair


def _raw_items(
    refs: list[ContentRef], hashed: list[Hashed], kind: str, key: str, raws: list[msgspec.Raw], memo: bool
) -> bool:
    """One item per raw message (through the memo if `memo`); False, with none added, when the decoder
    rejects one of them."""
    return _add_all(refs, hashed, kind, key, (_memo_hashed(bytes(r)) if memo else _text_hashed(r) for r in raws))


def _memo_hashed(text: bytes) -> Hashed | None:
    """`_text_hashed` of a message's text through the message memo."""
    pair = _MESSAGE_MEMO.get(text)
    if pair is None:
        pair = _text_hashed(text)
        if pair is not None:
            _remember(_MESSAGE_MEMO, text, pair)
    return pair
