"""Sessions, users, tags and prompt versions: every span started inside carries them, including
spans in threads started with a copied context and in asyncio tasks.

    python examples/sessions.py
"""

from __future__ import annotations

import asyncio

import anthropic

import llmscope
from llmscope_sim import SimulatedProvider

MODEL = "claude-haiku-4-5"


async def chat_turns(client: anthropic.AsyncAnthropic, session_id: str, turns: list[str]) -> None:
    history: list[dict] = []
    for turn in turns:
        history.append({"role": "user", "content": turn})
        with llmscope.prompt("support-reply", version=2):
            reply = await client.messages.create(model=MODEL, max_tokens=120, messages=history)  # type: ignore[arg-type]
        answer = reply.content[0].text  # type: ignore[union-attr]
        history.append({"role": "assistant", "content": answer})
        print(f"[{session_id}] user: {turn}\n[{session_id}] assistant: {answer[:70]}")


async def main() -> None:
    llmscope.instrument(capture_content=True)  # an example: show the conversations in the UI
    with SimulatedProvider(seed=2) as sim:
        client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="sim")
        conversations = {"s-1001": ["My invoice is wrong", "It was charged twice"], "s-1002": ["Reset my password"]}
        tasks = []
        for session_id, turns in conversations.items():
            with llmscope.session(session_id, user_id=f"user-{session_id[-1]}"), llmscope.tags("support", "eu"):
                tasks.append(asyncio.create_task(chat_turns(client, session_id, turns)))  # the task copies the context
        await asyncio.gather(*tasks)
    delivered = llmscope.flush()
    print(
        f"{sum(map(len, conversations.values()))} calls in {len(conversations)} sessions "
        f"{'sent to the collector' if delivered else 'NOT delivered (is `llmscope serve` running?)'}; "
        "see them under Sessions in the web UI (http://127.0.0.1:8000/#/sessions)"
    )


if __name__ == "__main__":
    asyncio.run(main())
