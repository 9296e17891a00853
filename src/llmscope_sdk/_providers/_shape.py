"""Reading client objects by shape: request params are dicts, responses are pydantic models."""

from __future__ import annotations

from typing import Any


def field(obj: Any, key: str, default: Any = None) -> Any:
    """`obj[key]` for mappings, `obj.key` otherwise; `default` when absent."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def given(value: Any) -> bool:
    """False for None and the clients' NOT_GIVEN/Omit sentinels (detected by type name, not import)."""
    return value is not None and type(value).__name__ not in ("NotGiven", "Omit")
