"""What a trace's input/output preview says, for each shape captured content comes in.

The items are made by the collector's own content splitter (`processors.messages.split_content`) from
the attributes each dialect sends, so the previews are checked on the bodies the stitcher really sees.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from llmscope_collector.processors.messages import split_content
from llmscope_collector.processors.previews import PREVIEW_CHARS, first_line, input_preview, output_preview
from llmscope_collector.processors.stitch import trace_deltas
from llmscope_collector.storage.schema import SPAN_SCHEMA


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
    (row,) = trace_deltas(spans, [], content).to_pylist()
    assert (row["preview_input"], row["preview_input_ns"]) == ("first question", 100)
    assert (row["preview_output"], row["preview_output_ns"]) == ("second answer", 900)
    (without,) = trace_deltas(spans, [], None).to_pylist()
    assert without["preview_input"] is None and without["preview_output"] is None
    assert without["preview_input_ns"] is None and without["preview_output_ns"] is None
