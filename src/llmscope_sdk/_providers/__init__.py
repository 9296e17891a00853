"""Registry of instrumentable client libraries: name → (import probe, patch targets module)."""

from __future__ import annotations

PROVIDERS: dict[str, tuple[str, str]] = {
    # name: (module whose import proves the client is installed, module with TARGETS)
    "anthropic": ("anthropic", "llmscope_sdk._providers.anthropic"),
    "openai": ("openai", "llmscope_sdk._providers.openai"),
}
