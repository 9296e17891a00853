"""Input/output previews of a trace, from its captured content, for the trace list.

The trace list shows, like Langfuse's Input/Output columns, one line of what went in and what came
out: the first line of the last user message of the trace's earliest-starting LLM call, and the first
line of the answer of its latest-ending one. The stitcher computes them at flush time for each trace
delta (`trace_deltas`), from the content items the same flush stores; the query side merges deltas by
the declared `arg_min`/`arg_max` rules (`storage.schema`), so a trace whose calls arrive in several
flushes still shows its first question and last answer.

Only captured content makes a preview: a span without content items gives none, and a preview is
stored with its trace's summary in the same (project, date) partition as the content, so retention and
session deletion, which drop or rewrite summaries with their spans and content, never leave one behind.
Capped at `PREVIEW_CHARS`: a preview is a hint, the span detail has the full text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from llmscope_collector.storage.schema import LLM_OPERATIONS

PREVIEW_CHARS = 200
ELLIPSIS = "…"

_LLM_VALUES = pa.array(sorted(LLM_OPERATIONS), pa.string())
_INPUT_KINDS = ("input", "input_value")
_OUTPUT_KINDS = ("output", "output_value")
_decode = msgspec.json.Decoder()
# Provider request/response shapes an opaque `input.value`/`output.value` may hold.
_MESSAGE_LISTS = ("messages", "input", "contents")

PREVIEW_FIELDS = pa.schema(
    [
        ("trace_id", pa.string()),
        ("preview_input", pa.string()),
        ("preview_input_ns", pa.int64()),
        ("preview_output", pa.string()),
        ("preview_output_ns", pa.int64()),
    ]
)


def first_line(text: str) -> str | None:
    """The first non-blank line of `text`, stripped and capped at `PREVIEW_CHARS` (with an ellipsis)."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= PREVIEW_CHARS else line[: PREVIEW_CHARS - 1] + ELLIPSIS
    return None


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, OTel parts or provider blocks (text parts joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return ""
    texts: list[str] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("type", "text") in ("text", "input_text", "output_text"):
            value = part.get("content", part.get("text"))
            if isinstance(value, str):
                texts.append(value)
    return "\n".join(texts)


def _message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return message if isinstance(message, str) else ""
    if "parts" in message:
        return _text_of(message["parts"])
    return _text_of(message.get("content"))


def _tool_calls(message: Any) -> list[str]:
    """The names of the tools a message calls (an answer that is only tool calls still says something)."""
    if not isinstance(message, dict):
        return []
    parts = message.get("parts") or message.get("tool_calls") or []
    names = []
    for part in parts if isinstance(parts, list) else []:
        if isinstance(part, dict) and part.get("type") in ("tool_call", "function", None):
            name = part.get("name") or (part.get("function") or {}).get("name")
            if isinstance(name, str) and name:
                names.append(name)
    return names


def _messages_in(value: Any) -> list[Any] | None:
    """The message list an opaque payload holds (a list of messages, or a request with one), else None."""
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        return value
    if isinstance(value, dict):
        for key in _MESSAGE_LISTS:
            inner = value.get(key)
            if isinstance(inner, list):
                return _messages_in(inner)
    return None


def _opaque(body: Any) -> Any:
    """An opaque payload's value: JSON text inside the stored string is parsed when it is an object/list."""
    if isinstance(body, str) and body[:1] in ("[", "{"):
        try:
            return _decode.decode(body)
        except msgspec.DecodeError:
            return body
    return body


def input_preview(items: Sequence[tuple[str, Any]]) -> str | None:
    """Preview of a call's input from its `(kind, body)` content items: the last user message's first line."""
    messages = [body for kind, body in items if kind == "input"]
    for kind, body in items:
        if kind == "input_value":
            value = _opaque(body)
            inner = _messages_in(value)
            if inner is not None:
                messages.extend(inner)
            elif isinstance(value, str) and not messages:
                return first_line(value)
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    for message in reversed(users or messages):
        line = first_line(_message_text(message))
        if line:
            return line
    return None


def output_preview(items: Sequence[tuple[str, Any]]) -> str | None:
    """Preview of a call's answer from its `(kind, body)` content items: the answer's first line (or the
    tools it calls, when it only calls tools)."""
    messages = [body for kind, body in items if kind == "output"]
    for kind, body in items:
        if kind == "output_value":
            value = _opaque(body)
            if isinstance(value, dict) and isinstance(value.get("choices"), list):  # an OpenAI response
                messages.extend(c.get("message") for c in value["choices"] if isinstance(c, dict))
            elif isinstance(value, dict) and value.get("role") and "content" in value:  # an Anthropic response
                messages.append(value)
            elif (inner := _messages_in(value)) is not None:
                messages.extend(inner)
            elif isinstance(value, str) and not messages:
                return first_line(value)
    for message in reversed(messages):
        line = first_line(_message_text(message))
        if line:
            return line
    calls = [name for m in messages for name in _tool_calls(m)]
    return first_line("→ " + ", ".join(calls)) if calls else None


def trace_previews(spans: pa.Table, content: pa.Table | None) -> pa.Table | None:
    """Per trace of `spans`, the previews of its earliest-starting LLM span with input content and of its
    latest-ending one with output content, with those spans' start/end (`PREVIEW_FIELDS`); None when no
    LLM span of these rows has content items. `content` holds the flush's items (`hash`, `body`).

    Arrow picks the spans (one per trace and side); only those few spans' items are decoded in Python."""
    if content is None or content.num_rows == 0 or spans.num_rows == 0:
        return None
    refs = spans.column("content_refs").combine_chunks()
    llm = pc.fill_null(pc.is_in(spans.column("operation"), value_set=_LLM_VALUES), False)
    flat = pc.list_flatten(refs)
    if len(flat) == 0 or not pc.any(llm).as_py():
        return None
    parents = pc.list_parent_indices(refs)
    kinds = pc.struct_field(flat, "kind")
    positions = pa.array(range(spans.num_rows), pa.int64())
    inputs = _pick(spans, llm, positions, _having(parents, kinds, _INPUT_KINDS), "start_ns", "ascending")
    outputs = _pick(spans, llm, positions, _having(parents, kinds, _OUTPUT_KINDS), "end_ns", "descending")
    if not inputs and not outputs:
        return None
    picked = [
        (side, trace_id, position, [(r["kind"], r["hash"]) for r in refs[position].as_py() or () if r["kind"] in kinds])
        for side, chosen, kinds in (("input", inputs, _INPUT_KINDS), ("output", outputs, _OUTPUT_KINDS))
        for trace_id, position in chosen.items()
    ]
    bodies = _bodies(content, {h for *_, items in picked for _, h in items})
    rows: dict[str, dict[str, Any]] = {}
    for side, trace_id, position, items in picked:
        found = [(kind, bodies[h]) for kind, h in items if h in bodies]
        text = input_preview(found) if side == "input" else output_preview(found)
        if text is not None:
            row = rows.setdefault(trace_id, {"trace_id": trace_id})
            row[f"preview_{side}"] = text
            row[f"preview_{side}_ns"] = spans.column("start_ns" if side == "input" else "end_ns")[position].as_py()
    return pa.Table.from_pylist(list(rows.values()), schema=PREVIEW_FIELDS) if rows else None


def _having(parents: pa.Array, kinds: pa.Array, wanted: Iterable[str]) -> pa.Array:
    """The span positions with at least one content item of the `wanted` kinds."""
    mask = pc.fill_null(pc.is_in(kinds, value_set=pa.array(list(wanted), pa.string())), False)
    return pc.unique(pc.filter(parents, mask))


def _pick(spans: pa.Table, llm: Any, positions: pa.Array, having: pa.Array, column: str, order: str) -> dict[str, int]:
    """Per trace, the position of the first LLM span with such content by `column` in `order`."""
    mask = pc.and_(llm, pc.is_in(positions, value_set=having))
    candidates = pa.table(
        {"trace_id": spans.column("trace_id"), "at": spans.column(column), "position": positions}
    ).filter(mask)
    if candidates.num_rows == 0:
        return {}
    ordered = candidates.sort_by([("at", order), ("position", "ascending")])
    first = pa.TableGroupBy(ordered, "trace_id", use_threads=False).aggregate([("position", "first")])
    return dict(zip(first.column("trace_id").to_pylist(), first.column("position_first").to_pylist(), strict=True))


def _bodies(content: pa.Table, hashes: set[str]) -> dict[str, Any]:
    """The decoded bodies of these content hashes (one lookup for the flush; the rest is never decoded)."""
    wanted = pa.array(sorted(hashes), pa.string())
    where = pc.index_in(wanted, value_set=content.column("hash")).to_pylist()
    bodies = content.column("body")
    return {h: _decoded(bodies[i].as_py()) for h, i in zip(wanted.to_pylist(), where, strict=True) if i is not None}


def _decoded(body: str | None) -> Any:
    if body is None:
        return None
    try:
        return _decode.decode(body)
    except msgspec.DecodeError:
        return body
