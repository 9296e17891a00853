"""llmscope: observability for LLM applications.

    import llmscope
    llmscope.instrument()

This module is a facade over `llmscope_sdk`; the collector and API live in `llmscope_collector`
and start with the `llmscope serve` command.
"""

from __future__ import annotations

from llmscope_sdk import (
    __version__,
    configure,
    flush,
    instrument,
    instrumented,
    metadata,
    prompt,
    score,
    session,
    shutdown,
    tags,
    trace,
    uninstrument,
    user,
)

__all__ = [
    "__version__",
    "configure",
    "flush",
    "instrument",
    "instrumented",
    "metadata",
    "prompt",
    "score",
    "session",
    "shutdown",
    "tags",
    "trace",
    "uninstrument",
    "user",
]
