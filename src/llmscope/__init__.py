"""llmscope: observability for LLM applications.

    import llmscope
    llmscope.instrument()

This module is a facade over `llmscope_sdk`; the collector and API live in `llmscope_collector`
and start with the `llmscope serve` command.
"""

from __future__ import annotations

# The facade is exactly the SDK's public API: a name the SDK exports appears here without a second list.
from llmscope_sdk import *  # noqa: F403
from llmscope_sdk import __all__ as _sdk_all
from llmscope_sdk import __version__ as __version__

__all__ = list(_sdk_all)
