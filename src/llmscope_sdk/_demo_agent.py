"""A small agent-like app used by `llmscope demo`: one parent span and three anthropic calls
(sync and async) against the shipped simulated provider, exported over OTLP.

Run as a separate process (`python -m llmscope_sdk._demo_agent --endpoint ...`) so the demo data
crosses the real OTLP wire exactly as a user's app would send it. Prints one JSON line:
`{"trace_ids": [...]}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import anthropic
from opentelemetry import trace

import llmscope_sdk
from llmscope_sdk.simulator import SimulatedProvider

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="OTLP/gRPC endpoint, e.g. http://127.0.0.1:4317")
    parser.add_argument("--traces", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    llmscope_sdk.configure(endpoint=args.endpoint, service_name="llmscope-demo")
    llmscope_sdk.instrument()
    trace_ids = []
    with SimulatedProvider(seed=args.seed) as sim:
        for i in range(args.traces):
            question = QUESTIONS[i % len(QUESTIONS)]
            trace_ids.append(run_agent(sim.base_url, question, f"demo-session-{i // 3}", f"user-{i % 2}"))
    ok = llmscope_sdk.flush(timeout_s=10)
    llmscope_sdk.shutdown()
    print(json.dumps({"trace_ids": trace_ids, "flushed": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
