"""What a provider module declares: the methods to wrap and the factory for each wrapper."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from llmscope_sdk._runtime import Telemetry


@dataclasses.dataclass(frozen=True)
class PatchTarget:
    module: str
    cls: str
    method: str
    factory: Callable[[Telemetry], Callable[..., Any]]

    @property
    def key(self) -> str:
        return f"{self.module}.{self.cls}.{self.method}"
