"""llmscope collector: OTLP receiver, durable Parquet store and the Litestar query API.

The public surface is small on purpose: settings, the embedded server runner and the app factory.
"""

from __future__ import annotations

from llmscope_collector.settings import Settings, SettingsError

__all__ = ["Settings", "SettingsError", "__version__"]

__version__ = "0.1.0"
