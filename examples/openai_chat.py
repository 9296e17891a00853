"""The openai client traced with llmscope: a chat call, a stream with usage, a tool round trip and
an embeddings call, all in one trace.

Runs against the simulated provider shipped with llmscope (no API key needed) and exports to the
collector at LLMSCOPE_ENDPOINT (default 127.0.0.1:4318; start one with `llmscope serve`). With no
collector listening it still runs: the exporter only logs that it could not deliver.

    python examples/openai_chat.py
"""

from __future__ import annotations

import json
from typing import Any

import openai
from opentelemetry import trace as otel_trace

import llmscope
from llmscope_sim import SimulatedProvider

MODEL = "gpt-4o-mini"
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


@llmscope.trace(kind="tool")
def get_weather(city: str) -> str:
    return json.dumps({"city": city, "forecast": "light rain", "celsius": 14})


def tool_round_trip(client: openai.OpenAI, question: str) -> str:
    messages: list[Any] = [{"role": "user", "content": question}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    reply = first.choices[0].message
    messages.append(reply)
    for call in reply.tool_calls or []:
        result = get_weather(**json.loads(call.function.arguments))  # type: ignore[union-attr]
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    final = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, tool_choice="none")
    return final.choices[0].message.content or ""


@llmscope.trace(name="openai-tour", kind="workflow")
def tour(client: openai.OpenAI) -> str:
    hello = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Say hello."}])
    print("chat:", hello.choices[0].message.content)

    # Without include_usage OpenAI streams send no token counts at all; with it, the last chunk has them.
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Tell me a short story."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    print("stream:", "".join(c.choices[0].delta.content or "" for c in stream if c.choices))

    print("tools:", tool_round_trip(client, "Do I need an umbrella in Lisbon today?"))

    vectors = client.embeddings.create(model="text-embedding-3-small", input=["umbrella", "rain"])
    print("embeddings:", len(vectors.data), "vectors of", len(vectors.data[0].embedding), "dimensions")
    return format(otel_trace.get_current_span().get_span_context().trace_id, "032x")


def main() -> None:
    llmscope.instrument(capture_content=True)
    with SimulatedProvider(seed=1) as sim:
        client = openai.OpenAI(base_url=sim.base_url + "/v1", api_key="sim")
        trace_id = tour(client)
    print("trace id:", trace_id)
    llmscope.flush(timeout_s=5)


if __name__ == "__main__":
    main()
