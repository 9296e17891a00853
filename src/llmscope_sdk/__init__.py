"""llmscope SDK: OpenTelemetry GenAI instrumentation for the anthropic and openai clients.

import llmscope
llmscope.instrument()      # patches the installed clients, exports OTLP to the collector
"""

from __future__ import annotations

from llmscope_sdk._client import Client, ClientError
from llmscope_sdk._context import metadata, prompt, session, tags, user
from llmscope_sdk._decorators import trace
from llmscope_sdk._instrumentor import instrument, instrumented, uninstrument
from llmscope_sdk._scores import score
from llmscope_sdk._setup import configure, flush, shutdown

__version__ = "0.1.0"

__all__ = [
    "Client",
    "ClientError",
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
