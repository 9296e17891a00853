"""Input/output previews of a trace, from its captured content, for the trace list.

The trace list shows, like Langfuse's Input/Output columns, one line of what went in and what came
out: the first line of the last user message of the trace's earliest-starting LLM call, and the first
line of the answer of its latest-ending one. The decode workers, which hold each span's content items,
pick per trace the spans whose lines can be shown (by the cheap keys: which sides a span has items of,
its times) and read only those spans' lines (`preview_candidates`); they travel beside the spans
(`DecodedPart.previews`) and the stitcher, on the writer's single thread, only picks per trace delta
the earliest input and latest output (`trace_previews`: Arrow, no JSON); the query side merges deltas
by the declared `arg_min`/`arg_max` rules (`storage.schema`), so a trace whose calls arrive in several
flushes still shows its first question and last answer.

Only captured content makes a preview: a span without content items gives none, and a preview is
stored with its trace's summary in the same (project, date) partition as the content, so retention and
session deletion, which drop or rewrite summaries with their spans and content, never leave one behind.
Capped at `PREVIEW_CHARS`: a preview is a hint, the span detail has the full text.

The writer's half (`kept_candidates`, `trace_previews`) imports `pyarrow.compute` where it runs: a
decode worker, which only makes candidates, never loads it (~13 MB of each worker's RSS, docs/memory.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import msgspec
import pyarrow as pa

from llmscope_collector.processors import canonical_native
from llmscope_collector.processors.arrow_native import RowArrays, run_best, run_starts
from llmscope_collector.processors.canonical_native import Said
from llmscope_collector.storage.schema import LLM_OPERATIONS

PREVIEW_CHARS = 200
ELLIPSIS = "…"

_LLM = frozenset(LLM_OPERATIONS)
_INPUTS: Final = frozenset(("input", "input_value"))
_OUTPUTS: Final = frozenset(("output", "output_value"))
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
# A trace's picks among a decoded part's LLM spans with content (`preview_candidates`: the earliest with
# input items, the latest with output items; one row when the same span): `row`, its position in the
# part's spans (the writer keeps a candidate with its span: `DecodedPart.previews`), its trace and times,
# and the `span_previews` text of the side it is picked for (null: not picked for that side; "": items
# that say nothing).
PREVIEW_CANDIDATES = pa.schema(
    [
        ("row", pa.int32()),
        ("trace_id", pa.string()),
        ("start_ns", pa.int64()),
        ("end_ns", pa.int64()),
        ("input", pa.string()),
        ("output", pa.string()),
    ]
)
_CANDIDATES_NATIVE = RowArrays(PREVIEW_CANDIDATES)  # (a part's few rows: pyarrow's six conversions cost more)


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
            function = part.get("function")  # (an OpenAI tool call's; anything else names nothing)
            name = part.get("name") or (function.get("name") if isinstance(function, dict) else None)
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
    return _answer_line(messages)


def _answer_line(messages: list[Any]) -> str | None:
    """The first line of the last answer message that has one, else the tools they call."""
    for message in reversed(messages):
        line = first_line(_message_text(message))
        if line:
            return line
    calls = [name for m in messages for name in _tool_calls(m)]
    return first_line("→ " + ", ".join(calls)) if calls else None


Saids = dict[str, Said]
"""Per content key (hash), what its body says (`message_said`): shared by a part's spans, whose chat
histories resend the same messages."""


def message_said(body: str) -> Said:
    """`_said` of a stored message body: from its canonical text by the C extension where it decides it
    (no Python objects: decoding each picked body to dicts was most of the previews' CPU), else decoded."""
    said = canonical_native.message_said(body, PREVIEW_CHARS, ELLIPSIS)
    return _said(_decoded(body)) if said is None else said


def _said(message: Any) -> Said:
    """What a message says for the previews: whether it is a user message, its first line (None when its
    text has none) and, when it has none, the tools it calls (all `input_preview`/`output_preview` read
    of a chat message)."""
    line = first_line(_message_text(message))
    user = isinstance(message, dict) and message.get("role") == "user"
    return user, line, (tuple(_tool_calls(message)) if line is None else ())


def _said_by_key(memo: Saids, key: str, body: str) -> Said:
    said = memo.get(key)
    if said is None:
        said = memo[key] = message_said(body)
    return said


def span_previews(items: Iterable[tuple[str, str, str]], memo: Saids) -> tuple[str | None, str | None]:
    """An LLM span's `(input, output)` preview candidates from its content items `(kind, key, stored JSON
    body)` in order (`key` names the body: its content hash): None for a side it has no item of, "" for a
    side whose items say nothing (the span is still the one its trace's pick may choose: the trace then
    shows no preview for that side), else the text.

    Equal to `input_preview`/`output_preview` of the decoded bodies (what the trace list showed when the
    writer decoded the chosen spans' bodies). `memo` keeps what a chat history's messages say across the
    calls that resend them."""
    listed = list(items)
    return _said_in(listed, memo), _said_out(listed, memo)


def _said_in(items: list[tuple[str, str, str]], memo: Saids) -> str | None:
    """`span_previews`' input side: None without an input item, "" when they say nothing."""
    return _told_in([item for item in items if item[0] in _INPUTS], memo)


def _said_out(items: list[tuple[str, str, str]], memo: Saids) -> str | None:
    """`span_previews`' output side: None without an output item, "" when they say nothing."""
    return _told_out([item for item in items if item[0] in _OUTPUTS], memo)


def _told_in(inputs: list[tuple[str, str, str]], memo: Saids) -> str | None:
    """`_said_in` of a span's input items alone."""
    return (_input_text(inputs, memo) or "") if inputs else None


def _told_out(outputs: list[tuple[str, str, str]], memo: Saids) -> str | None:
    """`_said_out` of a span's output items alone."""
    return (_output_text(outputs, memo) or "") if outputs else None


def _input_text(items: list[tuple[str, str, str]], memo: Saids) -> str | None:
    """`input_preview` of these items' decoded bodies, reading only the messages it needs when they are
    all chat messages (an agent resends its whole history: the last user message is what is shown).

    A message whose role is "user" holds the JSON string `"user"` as such (the content splitter's encoders
    escape no ASCII letter); text inside a JSON string has its quotes escaped, so a body without it is
    not a user message and is not read unless no message is a user's."""
    if any(item[0] != "input" for item in items):
        return input_preview([(kind, _decoded(body)) for kind, _, body in items])
    seen_user = False
    for _, key, body in reversed(items):
        if '"user"' not in body:
            continue
        user, line, _ = _said_by_key(memo, key, body)
        seen_user = seen_user or user
        if user and line:
            return line
    if seen_user:  # users, none with a line: no preview (not the other messages' text)
        return None
    for _, key, body in reversed(items):  # no user message: the last message that says something
        line = _said_by_key(memo, key, body)[1]
        if line:
            return line
    return None


def _output_text(items: list[tuple[str, str, str]], memo: Saids) -> str | None:
    """`output_preview` of these items' decoded bodies (an answer's messages alone, the usual case, as
    `_answer_line`: the last message's line that has one, else the tools they call)."""
    if any(item[0] != "output" for item in items):
        return output_preview([(kind, _decoded(body)) for kind, _, body in items])
    for _, key, body in reversed(items):
        line = _said_by_key(memo, key, body)[1]
        if line:
            return line
    calls = [name for _, key, body in items for name in _said_by_key(memo, key, body)[2]]
    return first_line("→ " + ", ".join(calls)) if calls else None


def preview_candidates(
    trace_ids: Sequence[str],
    start_ns: Sequence[int],
    end_ns: Sequence[int],
    operations: Sequence[str | None],
    refs: Sequence[Sequence[tuple[Any, ...]] | None],
    items: Sequence[Sequence[tuple[str, str]]],
) -> pa.Table | None:
    """The `PREVIEW_CANDIDATES` of a part's decoded rows (column lists: each row's content refs `(kind,
    ...)` and its items `(hash, body)`, in the same order): per trace, only its picks (`_picks`), each with
    the text of the side it is picked for (null on the other); None when there is none.

    The writer's pick (`trace_previews`) keeps per trace the earliest input and the latest output of
    all its candidates: a row that loses to another row of its part loses in every delta, so only the
    picks' lines are read (one or two calls a trace, not each of an agent's calls; 2.7 LLM calls a
    trace in the ingest bench). Built where the rows are decoded, so the writer only picks; when it
    drops a picked span (a retry) it asks `kept_candidates` for the kept spans' picks.

    The C extension (`canonical_native.preview_rows`) makes the columns where it is built, and Python
    finishes the lines it leaves (`_finish`): the picks' loop over every span, the items' gathering and a
    call per body in Python cost 1.25 µs CPU per span of benchmarks/ingest.py's requests (15.5k
    instructions: 10% of a decode worker's), 0.4 µs with it (5.4k instructions)."""
    native = canonical_native.preview_rows(
        trace_ids, start_ns, end_ns, operations, refs, items, _LLM, PREVIEW_CHARS, ELLIPSIS
    )
    if native is None:
        columns = _pure_columns(trace_ids, start_ns, end_ns, operations, refs, items)
    else:
        columns = native[:6]
        if native[6]:
            _finish(columns, refs, items)
    if not columns[0]:
        return None
    table = _CANDIDATES_NATIVE.table(columns)
    if table is not None:
        return table
    return pa.Table.from_arrays(
        [pa.array(c, f.type) for c, f in zip(columns, PREVIEW_CANDIDATES, strict=True)], schema=PREVIEW_CANDIDATES
    )


def _finish(
    columns: Sequence[list[Any]], refs: Sequence[Sequence[tuple[Any, ...]] | None], items: Sequence[Any]
) -> None:
    """The lines `canonical_native.preview_rows` left to Python, in place: a side it does not decide
    (False: read here, as the pure path reads it) and an answer's tool names (a tuple: its line)."""
    memo: Saids = {}
    for at, row in enumerate(columns[0]):
        for lines, kinds, told in ((columns[4], _INPUTS, _told_in), (columns[5], _OUTPUTS, _told_out)):
            line = lines[at]
            if line is False:
                lines[at] = told(_side(zip(refs[row] or (), items[row], strict=True), kinds), memo)
            elif isinstance(line, tuple):
                lines[at] = first_line("→ " + ", ".join(line)) or ""


def _pure_columns(
    trace_ids: Sequence[str],
    start_ns: Sequence[int],
    end_ns: Sequence[int],
    operations: Sequence[str | None],
    refs: Sequence[Sequence[tuple[Any, ...]] | None],
    items: Sequence[Sequence[tuple[str, str]]],
) -> tuple[list[Any], ...]:
    """`preview_candidates`' columns in Python (where the C extension is not built or does not decide)."""
    asked, answered = _picks(trace_ids, start_ns, end_ns, operations, refs)
    rows = sorted({*asked.values(), *answered.values()})
    inputs: list[str | None] = []
    outputs: list[str | None] = []
    memo: Saids = {}
    for row in rows:
        trace = trace_ids[row]
        span = zip(refs[row] or (), items[row], strict=True)
        if asked.get(trace) != row:  # (a row is mostly picked for one side: only its items are gathered)
            inputs.append(None)
            outputs.append(_told_out(_side(span, _OUTPUTS), memo))
            continue
        if answered.get(trace) != row:
            inputs.append(_told_in(_side(span, _INPUTS), memo))
            outputs.append(None)
            continue
        listed = list(span)
        inputs.append(_told_in(_side(listed, _INPUTS), memo))
        outputs.append(_told_out(_side(listed, _OUTPUTS), memo))
    return (
        rows,
        [trace_ids[row] for row in rows],
        [start_ns[row] for row in rows],
        [end_ns[row] for row in rows],
        inputs,
        outputs,
    )


def _side(span: Iterable[tuple[tuple[Any, ...], tuple[str, str]]], kinds: frozenset[str]) -> list[tuple[str, str, str]]:
    """A span's `(kind, key, body)` items of `kinds`, from its `(ref, (hash, body))` pairs."""
    return [(ref[0], item[0], item[1]) for ref, item in span if ref[0] in kinds]


def _picks(
    trace_ids: Sequence[str],
    start_ns: Sequence[int],
    end_ns: Sequence[int],
    operations: Sequence[str | None],
    refs: Sequence[Sequence[tuple[Any, ...]] | None],
) -> tuple[dict[str, int], dict[str, int]]:
    """Per trace, the row `trace_previews` picks among these rows' candidates for each side, by the
    cheap keys alone (the kinds of a row's items, its times): the earliest-starting LLM row with an
    input item, the latest-ending one with an output item. Ties as in a span file's order (the writer
    sorts the candidates as its rows: by trace and start, stably): the earlier start, then the first row."""
    asked: dict[str, int] = {}
    answered: dict[str, int] = {}
    for row, span_refs in enumerate(refs):
        if not span_refs or operations[row] not in _LLM:
            continue
        kinds = {ref[0] for ref in span_refs}
        trace = trace_ids[row]
        if not kinds.isdisjoint(_INPUTS):
            best = asked.get(trace)
            if best is None or start_ns[row] < start_ns[best]:
                asked[trace] = row
        if not kinds.isdisjoint(_OUTPUTS):
            best = answered.get(trace)
            if (
                best is None
                or end_ns[row] > end_ns[best]
                or (end_ns[row] == end_ns[best] and start_ns[row] < start_ns[best])
            ):
                answered[trace] = row
    return asked, answered


def stored_candidates(spans: pa.Table, content: pa.Table | None) -> pa.Table | None:
    """`preview_candidates` of stored span rows (`SPAN_SCHEMA`: their `content_refs`) from the bodies
    `content` holds (`CONTENT_ITEM_SCHEMA`; a ref without its body there counts as no item); `row` is a
    row's position in `spans`."""
    if content is None or not content.num_rows:
        return None
    bodies = dict(zip(content.column("hash").to_pylist(), content.column("body").to_pylist(), strict=True))
    refs = [
        None if not row else [(r["kind"], r["hash"]) for r in row if r["hash"] in bodies]
        for row in spans.column("content_refs").to_pylist()
    ]
    items = [[(ref[1], bodies[ref[1]]) for ref in row or ()] for row in refs]
    column = spans.column
    return preview_candidates(
        column("trace_id").to_pylist(),
        column("start_ns").to_pylist(),
        column("end_ns").to_pylist(),
        column("operation").to_pylist(),
        refs,
        items,
    )


def kept_candidates(candidates: pa.Table, keep: Sequence[bool], spans: pa.Table, content: pa.Table) -> pa.Table | None:
    """The candidates of a part's spans that `keep` keeps (`spans`: those rows, `content`: the part's
    items), for the writer, which drops a retried span (same ids as one it holds: the first copy is
    stored, even when the copy says something else).

    A part's candidates are its traces' picks: while every picked span is kept they are the kept spans'
    picks too; when one is dropped the trace's pick among the kept spans may be another span, whose text
    was not read, so the kept spans' candidates are made again from their content (their `row`: positions
    in `spans`). Rare: a client's retry resends a whole request, which is dropped whole."""
    import pyarrow.compute as pc  # (here: see the module's last paragraph)

    if pc.all(pc.take(pa.array(keep, pa.bool_()), candidates.column("row"))).as_py():
        return candidates
    return stored_candidates(spans, content)


def trace_previews(candidates: pa.Table | None, trace_ids: pa.ChunkedArray | pa.Array) -> dict[str, Any]:
    """Per trace of `trace_ids`, the `PREVIEW_FIELDS` columns (without `trace_id`), aligned with it: the
    earliest-starting candidate with an input and the latest-ending one with an output (ties: the first
    in `candidates`' order: the writer gives them in its span file's order), null where that candidate's
    side says nothing and where a trace has none.

    Arrow only (a filter, a stable sort and a group-by per side), or, where the candidates come in runs of
    trace ids (the writer's: its span file's order), one pass per side over the runs (`_picks_by_runs`):
    this runs on the writer's single thread. The candidates come a table per decoded request: one chunk
    first (8x faster than chunk by chunk)."""
    import pyarrow.compute as pc  # (here: see the module's last paragraph)

    if candidates is not None:
        candidates = candidates.combine_chunks()
    by_runs = _picks_by_runs(candidates)
    out: dict[str, Any] = {}
    for side, at, order in _SIDES:
        text, ns = f"preview_{side}", f"preview_{side}_ns"
        chosen = by_runs[side] if by_runs is not None else _first_per_trace(candidates, side, at, order)
        if chosen is None:
            out[text] = pa.nulls(len(trace_ids), pa.string())
            out[ns] = pa.nulls(len(trace_ids), pa.int64())
            continue
        where = pc.index_in(trace_ids, value_set=chosen.column("trace_id"))
        said = pc.take(chosen.column(f"{side}_first"), where)
        told = pc.fill_null(pc.not_equal(said, ""), False)
        out[text] = pc.if_else(told, said, pa.scalar(None, pa.string()))
        out[ns] = pc.if_else(told, pc.take(chosen.column(f"{at}_first"), where), pa.scalar(None, pa.int64()))
    return out


_SIDES = (("input", "start_ns", "ascending"), ("output", "end_ns", "descending"))  # (side, its time, the order)


def _picks_by_runs(candidates: pa.Table | None) -> dict[str, pa.Table] | None:
    """`_first_per_trace` of each side where the candidates (one chunk) come in runs of trace ids in
    ascending order: per run, the row `arrow_native.run_best` finds (no sort, no hashing: ~0.07 us a span
    of the flush thread where the sorts and group-bys took ~0.33); a trace whose run has no candidate of a
    side has a null row. None (the caller's group-by) otherwise or without the extension."""
    if candidates is None or any(column.num_chunks != 1 for column in candidates.columns):
        return None
    trace_ids = candidates.column("trace_id").chunk(0) if candidates.num_rows else None
    starts = None if trace_ids is None else run_starts(trace_ids)
    if trace_ids is None or starts is None:
        return None
    keys = trace_ids.take(starts.slice(0, len(starts) - 1))
    picked: dict[str, pa.Table] = {}
    for side, at, order in _SIDES:
        side_values, times = candidates.column(side).chunk(0), candidates.column(at).chunk(0)
        rows = run_best(times, side_values, starts, descending=order == "descending")
        if rows is None:
            return None
        columns = {"trace_id": keys, f"{side}_first": side_values.take(rows), f"{at}_first": times.take(rows)}
        picked[side] = pa.table(columns)
    return picked


def _first_per_trace(candidates: pa.Table | None, side: str, at: str, order: str) -> pa.Table | None:
    """Per trace, the side's text and time `at` of its first candidate with that side by `at` in `order`
    (the sort is stable: ties keep the candidates' order)."""
    import pyarrow.compute as pc  # (here: see the module's last paragraph)

    if candidates is None:
        return None
    having = candidates.select(["trace_id", side, at]).filter(pc.is_valid(candidates.column(side)))
    if having.num_rows == 0:
        return None
    ordered = having.sort_by([(at, order)])
    keep_nulls = pc.ScalarAggregateOptions(skip_nulls=False)
    return pa.TableGroupBy(ordered, "trace_id", use_threads=False).aggregate(
        [(side, "first", keep_nulls), (at, "first", keep_nulls)]
    )


def _decoded(body: str | None) -> Any:
    if body is None:
        return None
    try:
        return _decode.decode(body)
    except msgspec.DecodeError:
        return body
