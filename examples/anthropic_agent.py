"""A small tool-using agent on the anthropic client, traced with llmscope.

Runs against the simulated provider shipped with llmscope (no API key needed) and exports to the
collector at LLMSCOPE_ENDPOINT (default 127.0.0.1:4318; start one with `llmscope serve`).

    python examples/anthropic_agent.py
"""

from __future__ import annotations

import json

import anthropic

import llmscope
from llmscope_sim import SimulatedProvider

MODEL = "claude-sonnet-4-6"
TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


@llmscope.trace(kind="tool")
def get_weather(city: str) -> str:
    return json.dumps({"city": city, "forecast": "light rain", "celsius": 14})


@llmscope.trace(name="weather-agent", kind="agent")
def run(client: anthropic.Anthropic, question: str) -> str:
    messages: list[dict] = [{"role": "user", "content": question}]
    first = client.messages.create(model=MODEL, max_tokens=300, tools=TOOLS, messages=messages)  # type: ignore[arg-type]
    messages.append({"role": "assistant", "content": first.content})
    results = [
        {"type": "tool_result", "tool_use_id": block.id, "content": get_weather(**block.input)}  # type: ignore[arg-type]
        for block in first.content
        if block.type == "tool_use"
    ]
    messages.append({"role": "user", "content": results})
    # The final answer is streamed: the span covers the whole stream and records time to first token.
    with client.messages.stream(model=MODEL, max_tokens=300, tools=TOOLS, messages=messages) as stream:  # type: ignore[arg-type]
        answer = "".join(stream.text_stream)
    return answer


def main() -> None:
    llmscope.instrument(capture_content=True)
    with SimulatedProvider(seed=1) as sim:
        client = anthropic.Anthropic(base_url=sim.base_url, api_key="sim")
        with llmscope.session("example-session", user_id="example-user"):
            print(run(client, "Do I need an umbrella in Lisbon today?"))
    llmscope.flush()


if __name__ == "__main__":
    main()
