"""JSON bodies read the way the SDK's extractors read client objects.

The SDK's extractors read response objects by attribute (`message.usage`) and request params as
mappings; a `dict` subclass with attribute access serves both, so the proxy reuses the exact
extraction code the SDK runs on the real clients instead of a second copy of every rule.
"""

from __future__ import annotations

import json
from typing import Any


class JsonView(dict[str, Any]):
    """A JSON object that also answers attribute access (`view.usage`); a missing key is None."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.get(name)


def loads_view(data: bytes | str) -> Any:
    """`json.loads` with every object as a `JsonView`."""
    return json.loads(data, object_hook=JsonView)
