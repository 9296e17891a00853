"""What a trace's input/output preview says, for each shape captured content comes in.

The items are made by the collector's own content splitter (`processors.messages.split_content`) from
the attributes each dialect sends, so the previews are checked on the bodies the stitcher really sees.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmscope_collector.processors import canonical_native
from llmscope_collector.processors.cost import PriceBook
from llmscope_collector.processors.decode import decode_bytes
from llmscope_collector.processors.messages import split_content
from llmscope_collector.processors.previews import (
    PREVIEW_CANDIDATES,
    PREVIEW_CHARS,
    first_line,
    input_preview,
    kept_candidates,
    output_preview,
    preview_candidates,
    span_previews,
    stored_candidates,
    trace_previews,
)
from llmscope_collector.processors.stitch import Stitcher, trace_deltas
from llmscope_collector.storage.content_items import dumps
from llmscope_collector.storage.dedupe import RecentSpanIds
from llmscope_collector.storage.parquet_writer import ParquetSpanWriter
from llmscope_collector.storage.schema import LLM_OPERATIONS, SPAN_SCHEMA
from tests import otlp_factory
from tests.otlp_strategies import otlp_llm_requests

_PRICES = PriceBook()
_LLM = frozenset(LLM_OPERATIONS)


def _items(attrs: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(i.kind, msgspec.json.decode(i.body)) for i in split_content(attrs).items]


def _otel(role: str, *texts: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": t} for t in texts]}


def test_otel_messages_the_last_user_message_and_the_answer() -> None:
    items = _items(
        {
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "You are terse."}]),
            "gen_ai.input.messages": json.dumps(
                [
                    _otel("system", "be nice"),
                    _otel("user", "What is a banana?"),
                    _otel("assistant", "A fruit."),
                    _otel("user", "\n\n  And a rocket?  \nplease explain"),
                ]
            ),
            "gen_ai.output.messages": json.dumps([_otel("assistant", "", "A vehicle.\nIt flies.")]),
        }
    )
    assert input_preview(items) == "And a rocket?"
    assert output_preview(items) == "A vehicle."


def test_openinference_flattened_messages() -> None:
    items = _items(
        {
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "be nice",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": "hello there",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "general kenobi",
        }
    )
    assert (input_preview(items), output_preview(items)) == ("hello there", "general kenobi")


def test_opaque_values_plain_text_and_provider_json() -> None:
    plain = _items({"input.value": "summarize this\nlong text", "output.value": "a summary"})
    assert (input_preview(plain), output_preview(plain)) == ("summarize this", "a summary")
    request = {"model": "gpt-4o", "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "hi!"}]}
    response = {"choices": [{"message": {"role": "assistant", "content": "hello, human"}}]}
    shaped = _items({"input.value": json.dumps(request), "output.value": json.dumps(response)})
    assert (input_preview(shaped), output_preview(shaped)) == ("hi!", "hello, human")
    anthropic = {"role": "assistant", "content": [{"type": "text", "text": "bonjour"}]}
    assert output_preview(_items({"output.value": json.dumps(anthropic)})) == "bonjour"


def test_an_answer_that_only_calls_tools_names_them() -> None:
    call = {"role": "assistant", "parts": [{"type": "tool_call", "id": "1", "name": "get_weather", "arguments": {}}]}
    items = _items({"gen_ai.output.messages": json.dumps([call])})
    assert output_preview(items) == "→ get_weather"


def test_no_text_no_preview() -> None:
    assert input_preview([]) is None and output_preview([]) is None
    assert input_preview(_items({"gen_ai.input.messages": json.dumps([_otel("user", "   \n ")])})) is None


@given(st.text())
def test_first_line_is_one_capped_line_of_the_text(text: str) -> None:
    line = first_line(text)
    if line is None:
        assert not text.strip() or all(not part.strip() for part in text.splitlines())
        return
    assert line and "\n" not in line and len(line) <= PREVIEW_CHARS
    assert line == line.strip() or line.endswith("…")
    assert line.rstrip("…") in text


def _span(
    span_id: str, start: int, end: int, refs: list[tuple[str, str]] | None, operation: str = "chat"
) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(SPAN_SCHEMA.names)
    row.update(trace_id="t", span_id=span_id, parent_span_id="root", start_ns=start, end_ns=end, operation=operation)
    row["content_refs"] = None if refs is None else [{"kind": k, "source": "", "hash": h, "bytes": 1} for k, h in refs]
    return row


def test_deltas_take_the_first_call_s_question_and_the_last_call_s_answer_from_content_only() -> None:
    bodies = {
        "q1": _otel("user", "first question"),
        "a1": _otel("assistant", "first answer"),
        "q2": _otel("user", "second question"),
        "a2": _otel("assistant", "second answer"),
        "tool": "tool input",
    }
    content = pa.table({"hash": list(bodies), "body": [json.dumps(b) for b in bodies.values()]})
    rows = [
        _span("late", 300, 900, [("input", "q2"), ("output", "a2")]),
        _span("early", 100, 200, [("input", "q1"), ("output", "a1")]),
        _span("tool", 50, 950, [("input_value", "tool")], operation="execute_tool"),  # not an LLM call
        _span("bare", 10, 990, None),  # an LLM call without captured content
    ]
    spans = pa.Table.from_pylist(rows, schema=SPAN_SCHEMA)
    (row,) = trace_deltas(spans, [], stored_candidates(spans, content)).to_pylist()
    assert (row["preview_input"], row["preview_input_ns"]) == ("first question", 100)
    assert (row["preview_output"], row["preview_output_ns"]) == ("second answer", 900)
    (without,) = trace_deltas(spans, [], None).to_pylist()
    assert without["preview_input"] is None and without["preview_output"] is None
    assert without["preview_input_ns"] is None and without["preview_output_ns"] is None


# --- what the decode workers compute per span equals the previews of the decoded bodies -------------

_said = st.one_of(
    st.sampled_from(['"user"', '{"role":"user"}', "user", "\n\n  hi  \nthere", "", "  ", '"role": "user"', "a", "b"]),
    st.sampled_from(["\u2028\x1c é\x85x", '\u3000 \\" \t', "😀" * 201, " y" * 120]),
    st.text(max_size=12),
)
_role = st.one_of(st.just("user"), st.sampled_from(["assistant", "system", "tool", "", "User"]), st.integers(0, 2))
_part = st.one_of(
    st.builds(lambda t: {"type": "text", "content": t}, _said),
    st.builds(lambda t: {"type": "text", "text": t}, _said),
    st.builds(lambda n: {"type": "tool_call", "name": n, "arguments": {"role": "user"}}, _said),
    st.builds(lambda t: {"type": "image", "content": t}, _said),
    _said,
)
_message = st.one_of(
    st.builds(lambda r, ps: {"role": r, "parts": ps}, _role, st.lists(_part, max_size=3)),
    st.builds(lambda r, c: {"role": r, "content": c}, _role, st.one_of(_said, st.lists(_part, max_size=2))),
    st.builds(lambda r, n: {"role": r, "tool_calls": [{"function": {"name": n}}]}, _role, _said),
    st.builds(lambda r, n: {"role": r, "parts": [{"type": "tool_call", "function": n}]}, _role, _said),
    _said,
    st.integers(),
)
_opaque = st.one_of(
    _said,
    st.lists(_message, max_size=3).map(json.dumps),
    st.builds(lambda ms: json.dumps({"model": "m", "messages": ms}), st.lists(_message, max_size=3)),
    st.builds(lambda ms: json.dumps({"choices": [{"message": m} for m in ms]}), st.lists(_message, max_size=2)),
    _message.map(json.dumps),
    st.just("{not json"),
)
_item = st.one_of(
    st.tuples(st.sampled_from(["input", "output"]), _message),
    st.tuples(st.sampled_from(["input_value", "output_value"]), _opaque),
    st.tuples(st.sampled_from(["system_instructions", "tools"]), _message),
)


def _decoded(body: str) -> Any:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body


_chat = st.lists(st.tuples(st.just("input"), _message), min_size=1, max_size=6)  # a history: decoded lazily
_answer = st.lists(st.tuples(st.just("output"), _message), min_size=1, max_size=3)
_spans_items = st.one_of(
    _chat, _answer, st.lists(_item, max_size=8), st.tuples(_chat, _item, _answer).map(lambda c: [*c[0], c[1], *c[2]])
)


@settings(max_examples=500)
@given(_spans_items, st.booleans(), st.booleans())
@example(
    [("input", _otel("user", "first")), ("input", _otel("tool", "x")), ("input", _otel("user", "end"))], False, True
)
@example([("input", _otel("user", " ")), ("input", _otel("assistant", "said"))], False, True)
@example([("input", _otel("system", "be nice")), ("input", _otel("assistant", "said"))], True, True)
@example([("output", {"role": "assistant", "parts": [{"type": "function", "function": "f", "name": ""}]})], False, True)
def test_a_span_s_candidates_are_the_previews_of_its_decoded_items(
    items: list[tuple[str, Any]], plain: bool, native: bool
) -> None:
    """Stored bodies are canonical JSON (`dumps`); also plain `json.dumps` text (its own spacing). What a
    body says is read by the C extension (`canonical_native.message_said`) where it is built, else (and
    with `native` off) from the decoded body: the same candidates either way."""
    stored = [(kind, json.dumps(value) if plain else dumps(value)) for kind, value in items]
    decoded = [(kind, _decoded(body)) for kind, body in stored]
    inputs = [item for item in decoded if item[0] in ("input", "input_value")]
    outputs = [item for item in decoded if item[0] in ("output", "output_value")]
    expected = (
        (input_preview(inputs) or "") if inputs else None,
        (output_preview(outputs) or "") if outputs else None,
    )
    loaded = canonical_native.message_said
    if not native:
        canonical_native.message_said = canonical_native._not_said
    try:
        assert span_previews([(kind, body, body) for kind, body in stored], {}) == expected
    finally:
        canonical_native.message_said = loaded


# --- from the decode workers through the writer to the trace deltas --------------------------------


def _reference(
    trace_ids: list[str], starts: list[int], ends: list[int], operations: list[Any], spans: Any
) -> list[Any]:
    """Every LLM row's candidate, each side read from its decoded bodies (`spans`: a row's `(kind, stored
    body)` items), the pick left to `trace_previews`: what the workers sent before they picked."""
    out = []
    for row, items in enumerate(spans):
        if not items or operations[row] not in LLM_OPERATIONS:
            continue
        decoded = [(kind, _decoded(body)) for kind, body in items]
        inputs = [item for item in decoded if item[0] in ("input", "input_value")]
        outputs = [item for item in decoded if item[0] in ("output", "output_value")]
        said_in = (input_preview(inputs) or "") if inputs else None
        said_out = (output_preview(outputs) or "") if outputs else None
        if said_in is not None or said_out is not None:
            out.append((row, trace_ids[row], starts[row], ends[row], said_in, said_out))
    return out


def _shown(parts: list[pa.Table | None]) -> dict[str, Any]:
    """The previews a delta of these parts' candidates shows, as the writer hands them to the stitcher
    (in a span file's order: by trace and start, stably)."""
    kept = [part for part in parts if part is not None and part.num_rows]
    if not kept:
        return {}
    candidates = pa.concat_tables(kept).sort_by([("trace_id", "ascending"), ("start_ns", "ascending")])
    traces = pa.array(sorted(set(candidates.column("trace_id").to_pylist())), pa.string())
    shown = trace_previews(candidates, traces)
    return {name: column.to_pylist() for name, column in shown.items()} | {"trace_id": traces.to_pylist()}


def _table(rows: list[Any]) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(PREVIEW_CANDIDATES.names, r, strict=True)) for r in rows], PREVIEW_CANDIDATES)


@st.composite
def _part(draw: st.DrawFn) -> tuple[list[dict[str, Any]], pa.Table, list[bool]]:
    """A decoded part's rows (a few calls of three traces, at times that tie and cross, each with items of
    any kind, often ending with a question and an answer of its own, so that a wrong pick shows; stored
    bodies keyed by themselves), its content, and which rows the writer keeps."""
    rows, bodies = [], {}
    for i in range(draw(st.integers(1, 10))):
        start = draw(st.integers(0, 2))
        items = draw(st.one_of(st.just([]), _spans_items))
        if draw(st.booleans()):
            items = [*items, ("input", _otel("user", f"question {i}")), ("output", _otel("assistant", f"answer {i}"))]
        stored = [(kind, dumps(value)) for kind, value in items]
        bodies.update((body, body) for _, body in stored)
        row: dict[str, Any] = dict.fromkeys(SPAN_SCHEMA.names)
        row.update(
            trace_id=draw(st.sampled_from(["a", "b", "c"])),
            span_id=f"s{i}",
            start_ns=start,
            end_ns=start + draw(st.integers(0, 2)),
            operation=draw(st.sampled_from(["chat", "text_completion", "execute_tool", None])),
            content_refs=[{"kind": k, "source": "", "hash": b, "bytes": len(b)} for k, b in stored] or None,
        )
        rows.append(row)
    content = pa.table({"hash": list(bodies), "body": list(bodies.values())})
    return rows, content, draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))


@settings(max_examples=300)
@given(st.lists(_part(), min_size=1, max_size=3), st.booleans())
def test_the_picked_candidates_show_what_every_call_s_candidate_showed(parts: list[Any], by_trace: bool) -> None:
    """The workers read the lines of each trace's picks only; the previews a delta shows are those of
    every LLM call's candidate (read from its decoded bodies), whichever spans the writer then drops:
    single retried spans (the kept spans' picks made again: `kept_candidates`) or whole traces (a
    deletion's filter, which keeps the other traces' picks as they are)."""
    got, expected = [], []
    for rows, content, keep in parts:
        if by_trace:  # a deletion drops whole traces
            gone = {r["trace_id"] for r, k in zip(rows, keep, strict=True) if not k}
            keep = [r["trace_id"] not in gone for r in rows]
        spans = pa.Table.from_pylist(rows, schema=SPAN_SCHEMA)
        picks = stored_candidates(spans, content)
        assert _shown([picks]) == _shown([_reference_of(rows)])  # the part as the workers send it
        kept = spans.filter(pa.array(keep, pa.bool_()))
        if picks is not None and not all(keep):
            mask = pa.array(keep, pa.bool_()).take(picks.column("row"))
            picks = picks.filter(mask) if by_trace else kept_candidates(picks, keep, kept, content)
        got.append(picks)
        expected.append(_reference_of([r for r, k in zip(rows, keep, strict=True) if k]))
    assert _shown(got) == _shown(expected)


def _reference_of(rows: list[dict[str, Any]]) -> pa.Table:
    """`_reference` of `_part` rows (their bodies are their keys)."""
    items = [[(ref["kind"], ref["hash"]) for ref in r["content_refs"] or ()] for r in rows]
    columns = [[r[name] for r in rows] for name in ("trace_id", "start_ns", "end_ns", "operation")]
    return _table(_reference(*columns, items))


@settings(max_examples=60)
@given(otlp_llm_requests())
def test_a_decoded_part_carries_the_picks_of_its_stored_rows(request: ExportTraceServiceRequest) -> None:
    """What the workers send beside the spans (also through the pool's pickling) shows what every stored
    LLM row's candidate (the previews of its decoded content) shows, and each pick's side says what
    that row's content says."""
    batch = decode_bytes(request.SerializeToString(), "p", _PRICES, native=False)
    for part in batch.partitions.values():
        content = part.content.to_pydict()
        bodies = dict(zip(content["hash"], content["body"], strict=True))
        spans = part.spans.to_pydict()
        items = [[(ref["kind"], bodies[ref["hash"]]) for ref in refs or ()] for refs in spans["content_refs"]]
        columns = [spans[name] for name in ("trace_id", "start_ns", "end_ns", "operation")]
        expected = _reference(*columns, items)
        got = part.previews
        assert _shown([got]) == _shown([_table(expected)])
        by_row = {r[0]: r for r in expected}
        for pick in got.to_pylist() if got is not None else []:
            _, trace, start, end, said_in, said_out = by_row[pick["row"]]
            assert (pick["trace_id"], pick["start_ns"], pick["end_ns"]) == (trace, start, end)
            assert pick["input"] in (None, said_in) and pick["output"] in (None, said_out)
        sent = pickle.loads(pickle.dumps(part))
        assert (sent.previews and sent.previews.to_pylist()) == (got and got.to_pylist())


def _llm_span(trace: bytes, span: bytes, start: int, asked: str, answer: str) -> Any:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": json.dumps([_otel("user", asked)]),
        "gen_ai.output.messages": json.dumps([_otel("assistant", answer)]),
    }
    return otlp_factory.span(trace, span, "chat", start, start + 10, b"\x09" * 8, attrs)


def test_a_deduplicated_span_s_previews_go_with_it(tmp_path: Path) -> None:
    """A retried span (same ids) the writer drops takes its previews with it, in the same flush and in a
    later one, even when the copy says something else: the deltas hold what the stored rows say."""
    stitcher = Stitcher(tmp_path)
    writer = ParquetSpanWriter(tmp_path, RecentSpanIds(1000), hook=stitcher)
    trace, t0 = b"\x05" * 16, 1_700_000_000 * 10**9

    def add(lsn: int, *spans: Any) -> None:
        payload = otlp_factory.request(list(spans)).SerializeToString()
        writer.add(decode_bytes(payload, "default", _PRICES, native=False), lsn)

    add(0, _llm_span(trace, b"\x01" * 8, t0 + 100, "first question", "first answer"))
    add(
        1,
        _llm_span(trace, b"\x01" * 8, t0, "a retry's question", "a retry's answer"),
        _llm_span(trace, b"\x02" * 8, t0 + 200, "second question", "second answer"),
    )
    writer.flush(0, 2)
    add(
        2,
        _llm_span(trace, b"\x02" * 8, t0 + 900, "late retry", "late retry's answer"),
        _llm_span(trace, b"\x03" * 8, t0 + 300, "third question", "third answer"),
    )
    writer.flush(2, 3)
    deltas = sorted(
        (row for path in (tmp_path / "traces").rglob("*.parquet") for row in pq.read_table(path).to_pylist()),
        key=lambda row: row["preview_input_ns"],
    )
    assert [(d["preview_input"], d["preview_input_ns"] - t0) for d in deltas] == [
        ("first question", 100),
        ("third question", 300),
    ]
    assert [(d["preview_output"], d["preview_output_ns"] - t0) for d in deltas] == [
        ("second answer", 210),
        ("third answer", 310),
    ]


# --- the C extension's candidates (`canonical_native.preview_rows`) are the pure path's ----------------


@st.composite
def _decoded_part(draw: st.DrawFn) -> tuple[list[Any], ...]:
    """`preview_candidates`' column lists as the decoder hands them over: rows of a few traces at times
    that tie and cross, any items (stored canonical or as plain `json.dumps` text, chat histories,
    opaque values, answers that only call tools), refs as tuples `(kind, source, hash, size)`."""
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
    plain = draw(st.booleans())
    for _ in range(draw(st.integers(0, 12))):
        items: list[tuple[str, Any]] = draw(st.one_of(st.just([]), _spans_items))
        stored = [(kind, json.dumps(value) if plain else dumps(value)) for kind, value in items]
        start = draw(st.integers(0, 2))
        row = (
            draw(st.sampled_from(["a", "b", "c"])),
            start,
            start + draw(st.integers(0, 2)),
            draw(st.sampled_from(["chat", "text_completion", "execute_tool", None])),
            [(kind, "s", body, len(body)) for kind, body in stored] or draw(st.sampled_from([None, []])),
            [(body, body) for _, body in stored],
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


def _candidates(columns: tuple[list[Any], ...], native: bool) -> list[dict[str, Any]] | None:
    loaded = canonical_native.preview_rows
    if not native:
        canonical_native.preview_rows = canonical_native._no_rows
    try:
        table = preview_candidates(*columns)
    finally:
        canonical_native.preview_rows = loaded
    return None if table is None else table.to_pylist()


@pytest.mark.skipif(not canonical_native.AVAILABLE, reason="the C extension is not built")
@settings(max_examples=400)
@given(_decoded_part())
@example(  # an answer that only calls tools: the extension hands back the names, Python writes the line
    (
        ["t"],
        [0],
        [1],
        ["chat"],
        [[("output", "s", "h", 1)]],
        [[("h", dumps({"role": "assistant", "tool_calls": [{"function": {"name": "f\n"}}]}))]],
    )
)
@example((["t"], [0], [1], ["chat"], [[("input", "s", "h", 1)]], [[("h", '"\\ud800"')]]))  # (a lone surrogate)
@example((["t"], [0], [1], ["chat"], [[("input", "s", "h", 1)]], [[("h", '{"role":"user","content":1.5}')]]))
def test_the_extension_s_candidates_are_the_pure_path_s(columns: tuple[list[Any], ...]) -> None:
    """Per part, the picks and their lines the C extension reads (the Python left to finish: opaque
    values, bodies it does not decide, a tool-only answer's line) are those of the pure path."""
    assert _candidates(columns, native=True) == _candidates(columns, native=False)


@pytest.mark.skipif(not canonical_native.AVAILABLE, reason="the C extension is not built")
@pytest.mark.parametrize(
    "columns",
    [
        (["t"], [0], [2**63], ["chat"], [[("output", "s", "h", 1)]], [[("h", "{}")]]),  # (past int64)
        (["t"], [0], [1], ["chat"], [[["output", "s", "h", 1]]], [[("h", "{}")]]),  # (a ref as a list)
        (["t"], [0], [1], ["chat"], [[("output", "s", "h", 1)]], [[]]),  # (refs and items unpaired)
        (("t",), (0,), (1,), ("chat",), ([("output", "s", "h", 1)],), ([("h", "{}")],)),  # (not lists)
    ],
)
def test_what_the_extension_does_not_read_the_pure_path_decides(columns: tuple[Any, ...]) -> None:
    """A part the extension does not read whole is left to the pure path (None), which decides it: the
    same table or the same error as without the extension."""
    trace_ids, starts, ends, operations, refs, items = columns
    assert (
        canonical_native.preview_rows(trace_ids, starts, ends, operations, refs, items, _LLM, PREVIEW_CHARS, "…")
        is None
    )
    try:
        expected: Any = _candidates(columns, native=False)
    except (ValueError, OverflowError) as error:
        expected = type(error)
    try:
        got: Any = _candidates(columns, native=True)
    except (ValueError, OverflowError) as error:
        got = type(error)
    assert got == expected


@pytest.mark.skipif(not canonical_native.AVAILABLE, reason="the C extension is not built")
def test_the_extension_reads_a_chat_part_whole() -> None:
    """The usual part (chat histories and answers) is read by the extension with nothing left to Python."""
    history = [dumps(_otel("user", "why?")), dumps(_otel("assistant", "because")), dumps(_otel("user", "sure?"))]
    answer = dumps(_otel("assistant", "\n yes, sure \n"))
    refs = [*(("input", "s", body, len(body)) for body in history), ("output", "s", answer, len(answer))]
    items = [(body, body) for body in [*history, answer]]
    got = canonical_native.preview_rows(["t"], [5], [9], ["chat"], [refs], [items], _LLM, PREVIEW_CHARS, "…")
    assert got == ([0], ["t"], [5], [9], ["sure?"], ["yes, sure"], 0)
