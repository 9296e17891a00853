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
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmscope_collector.processors.cost import PriceBook
from llmscope_collector.processors.decode import decode_bytes
from llmscope_collector.processors.messages import split_content
from llmscope_collector.processors.previews import (
    PREVIEW_CHARS,
    first_line,
    input_preview,
    output_preview,
    span_previews,
)
from llmscope_collector.processors.stitch import Stitcher, trace_deltas
from llmscope_collector.storage.content_items import dumps
from llmscope_collector.storage.dedupe import RecentSpanIds
from llmscope_collector.storage.parquet_writer import ParquetSpanWriter
from llmscope_collector.storage.schema import LLM_OPERATIONS, SPAN_SCHEMA
from tests import otlp_factory
from tests.collector.model.content_previews import candidates
from tests.otlp_strategies import otlp_llm_requests

_PRICES = PriceBook()


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
    (row,) = trace_deltas(spans, [], candidates(spans, content)).to_pylist()
    assert (row["preview_input"], row["preview_input_ns"]) == ("first question", 100)
    assert (row["preview_output"], row["preview_output_ns"]) == ("second answer", 900)
    (without,) = trace_deltas(spans, [], None).to_pylist()
    assert without["preview_input"] is None and without["preview_output"] is None
    assert without["preview_input_ns"] is None and without["preview_output_ns"] is None


# --- what the decode workers compute per span equals the previews of the decoded bodies -------------

_said = st.one_of(
    st.sampled_from(['"user"', '{"role":"user"}', "user", "\n\n  hi  \nthere", "", "  ", '"role": "user"', "a", "b"]),
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
@given(_spans_items, st.booleans())
@example([("input", _otel("user", "first")), ("input", _otel("tool", "x")), ("input", _otel("user", "last"))], False)
@example([("input", _otel("user", " ")), ("input", _otel("assistant", "said"))], False)
@example([("input", _otel("system", "be nice")), ("input", _otel("assistant", "said"))], True)
def test_a_span_s_candidates_are_the_previews_of_its_decoded_items(items: list[tuple[str, Any]], plain: bool) -> None:
    """Stored bodies are canonical JSON (`dumps`); also plain `json.dumps` text (its own spacing)."""
    stored = [(kind, json.dumps(value) if plain else dumps(value)) for kind, value in items]
    decoded = [(kind, _decoded(body)) for kind, body in stored]
    inputs = [item for item in decoded if item[0] in ("input", "input_value")]
    outputs = [item for item in decoded if item[0] in ("output", "output_value")]
    expected = (
        (input_preview(inputs) or "") if inputs else None,
        (output_preview(outputs) or "") if outputs else None,
    )
    assert span_previews([(kind, body, body) for kind, body in stored], {}) == expected


# --- from the decode workers through the writer to the trace deltas --------------------------------


@settings(max_examples=60)
@given(otlp_llm_requests())
def test_a_decoded_part_carries_the_candidates_of_its_stored_rows(request: ExportTraceServiceRequest) -> None:
    """What the workers send beside the spans (also through the pool's pickling) is, row by row, the
    previews of the stored rows' decoded content (each LLM row with content; a chat's messages, repeated
    across its calls, read once per request)."""
    batch = decode_bytes(request.SerializeToString(), "p", _PRICES, native=False)
    for part in batch.partitions.values():
        content = part.content.to_pydict()
        bodies = dict(zip(content["hash"], content["body"], strict=True))
        expected = []
        for row, span in enumerate(part.spans.to_pylist()):
            if not span["content_refs"] or span["operation"] not in LLM_OPERATIONS:
                continue
            decoded = [(ref["kind"], _decoded(bodies[ref["hash"]])) for ref in span["content_refs"]]
            inputs = [item for item in decoded if item[0] in ("input", "input_value")]
            outputs = [item for item in decoded if item[0] in ("output", "output_value")]
            said_in = (input_preview(inputs) or "") if inputs else None
            said_out = (output_preview(outputs) or "") if outputs else None
            if said_in is not None or said_out is not None:
                fields = {"row": row, **{k: span[k] for k in ("trace_id", "start_ns", "end_ns")}}
                expected.append({**fields, "input": said_in, "output": said_out})
        got = part.previews
        assert (got.to_pylist() if got is not None else []) == expected
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
