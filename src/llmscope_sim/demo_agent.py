"""A small agent-like app used by `llmscope demo`: one parent span and three anthropic calls
(sync and async) against the shipped simulated provider, exported over OTLP.

Before those runs it sends a showcase of what llmscope records, so every API view and the UI have
something to show: a support chat session of several turns (OpenAI, streamed, with a tool call and
two prompt versions), a tool-using anthropic agent, and an overloaded provider's error.

Run as a separate process (`python -m llmscope_sim.demo_agent --endpoint ...`) so the demo data
crosses the real OTLP wire exactly as a user's app would send it. Prints one JSON line:
`{"trace_ids": [...]}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import anthropic
from opentelemetry import trace

import llmscope
from llmscope_sim import SimulatedProvider

MODEL = "claude-sonnet-4-6"
QUESTIONS = (
    "Which city should we pick for the offsite, Lisbon or Porto?",
    "Summarize yesterday's incident report for the on-call channel.",
    "Draft a polite reply declining the vendor's renewal offer.",
)


async def _research(client: anthropic.AsyncAnthropic, question: str) -> str:
    message = await client.messages.create(
        model=MODEL,
        max_tokens=300,
        system="You research facts for the planner. Be brief.",
        messages=[{"role": "user", "content": f"Find facts for: {question}"}],
    )
    return "".join(getattr(block, "text", "") for block in message.content)


def run_agent(base_url: str, question: str, session_id: str, user_id: str) -> str:
    """One agent run = one trace; returns its trace id."""
    tracer = trace.get_tracer("llmscope.demo")
    client = anthropic.Anthropic(base_url=base_url, api_key="demo-key", max_retries=0)
    aclient = anthropic.AsyncAnthropic(base_url=base_url, api_key="demo-key", max_retries=0)
    attributes = {"session.id": session_id, "user.id": user_id, "gen_ai.operation.name": "invoke_agent"}
    with tracer.start_as_current_span("invoke_agent planner", attributes=attributes) as root:
        plan = client.messages.create(
            model=MODEL,
            max_tokens=200,
            messages=[{"role": "user", "content": f"Make a two-step plan for: {question}"}],
        )
        plan_text = "".join(getattr(block, "text", "") for block in plan.content)
        facts = asyncio.run(_research(aclient, question))
        client.messages.create(
            model=MODEL,
            max_tokens=400,
            messages=[
                {"role": "user", "content": question},
                {"role": "assistant", "content": plan_text},
                {"role": "user", "content": f"Answer using these facts: {facts}"},
            ],
        )
        return format(root.get_span_context().trace_id, "032x")


WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@llmscope.trace(name="get_weather", kind="tool")
def _get_weather(city: str) -> str:
    return f"light rain in {city}, 14 C"


def _tool_agent(base_url: str) -> str:
    """An anthropic agent turn that calls a tool and answers with its result: one trace."""
    tracer = trace.get_tracer("llmscope.demo")
    client = anthropic.Anthropic(base_url=base_url, api_key="demo-key", max_retries=0)
    question: Any = {"role": "user", "content": "Should I cycle to the Lisbon office today?"}
    with tracer.start_as_current_span("invoke_agent commute", attributes={"gen_ai.operation.name": "invoke_agent"}):
        first = client.messages.create(model=MODEL, max_tokens=300, tools=[WEATHER_TOOL], messages=[question])
        calls: list[Any] = [b for b in first.content if getattr(b, "type", "") == "tool_use"]
        if not calls:
            return format(trace.get_current_span().get_span_context().trace_id, "032x")
        result = _get_weather(str(calls[0].input.get("city", "Lisbon")))
        messages: Any = [
            question,
            {"role": "assistant", "content": [c.model_dump() for c in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": result}]},
        ]
        client.messages.create(model=MODEL, max_tokens=300, tools=[WEATHER_TOOL], messages=messages)
        return format(trace.get_current_span().get_span_context().trace_id, "032x")


def _support_chat(base_url: str) -> list[str]:
    """A support chat session over OpenAI, streamed, under two prompt versions: one trace per turn."""
    try:
        import openai
    except ImportError:  # the demo works with anthropic alone
        return []
    tracer = trace.get_tracer("llmscope.demo")
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="demo-key", max_retries=0)
    history: list[dict[str, str]] = [{"role": "system", "content": "You are a patient support agent."}]
    turns = ("My invoice shows two charges.", "It was on the 3rd of the month.", "Can you refund one?")
    trace_ids = []
    with llmscope.session("demo-support-chat", user_id="customer-42"), llmscope.tags("support", "demo"):
        for turn, text in enumerate(turns):
            history.append({"role": "user", "content": text})
            with (
                llmscope.prompt("support-reply", version="2" if turn else "1"),
                tracer.start_as_current_span("support turn") as span,
            ):
                stream = client.chat.completions.create(
                    model="gpt-4o-mini", messages=history, stream=True, stream_options={"include_usage": True}
                )  # type: ignore[call-overload]
                answer = "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
                history.append({"role": "assistant", "content": answer})
                trace_ids.append(format(span.get_span_context().trace_id, "032x"))
    return trace_ids


def _overloaded_call(base_url: str) -> str:
    """A call the provider refuses (529 overloaded): an error span, with the user's exception intact."""
    tracer = trace.get_tracer("llmscope.demo")
    client = anthropic.Anthropic(base_url=base_url, api_key="demo-key", max_retries=0)
    with tracer.start_as_current_span("nightly digest") as span:
        try:
            client.messages.create(
                model=MODEL,
                max_tokens=100,
                messages=[{"role": "user", "content": "Digest today's tickets."}],
                extra_headers={"x-sim-error": "529"},
            )
        except anthropic.APIStatusError:
            pass
        return format(span.get_span_context().trace_id, "032x")


def showcase(base_url: str) -> list[str]:
    return [*_support_chat(base_url), _tool_agent(base_url), _overloaded_call(base_url)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="OTLP endpoint, e.g. http://127.0.0.1:4318 (gRPC on 4317)")
    parser.add_argument("--traces", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-showcase", dest="showcase", action="store_false", help="only the planner runs")
    args = parser.parse_args(argv)
    llmscope.configure(endpoint=args.endpoint, service_name="llmscope-demo")
    # The demo shows conversations: capture is off by default in apps, on here (its prompts are ours).
    llmscope.instrument(capture_content=True)
    trace_ids = []
    with SimulatedProvider(seed=args.seed) as sim:
        extra = showcase(sim.base_url) if args.showcase else []
        for i in range(args.traces):
            question = QUESTIONS[i % len(QUESTIONS)]
            trace_ids.append(run_agent(sim.base_url, question, f"demo-session-{i // 3}", f"user-{i % 2}"))
    ok = llmscope.flush(timeout_s=10)
    llmscope.shutdown()
    print(json.dumps({"trace_ids": trace_ids, "showcase_trace_ids": extra, "flushed": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
