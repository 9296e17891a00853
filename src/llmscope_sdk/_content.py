"""Message-content capture: off by default, opt-in per the OTel GenAI env var or `instrument()`.

Content goes on spans as compact JSON strings (`gen_ai.input.messages`, `gen_ai.output.messages`,
`gen_ai.system_instructions`, `gen_ai.tool.definitions`). A user hook may redact each value; values
over the size cap are cut and the cut is recorded in `llmscope.content.truncated`, never silently.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("llmscope")

ENV_CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
TRUNCATED_ATTR = "llmscope.content.truncated"
DEFAULT_MAX_CHARS = 32_768

Redactor = Callable[[str, Any], Any]
"""`redact(attribute_name, value) -> value`: return the value to record (None drops it)."""

_ON = {"true", "1", "yes", "on", "span_only", "span_and_event"}
_OFF = {"", "false", "0", "no", "off", "no_content"}
_EVENT_ONLY = {"event_only"}


def capture_from_env(env: Mapping[str, str] | None = None) -> bool:
    """Parse the OTel content-capture variable: legacy true/false and the four newer modes.

    EVENT_ONLY asks for content on log events, which llmscope does not emit; it records no content
    on spans (what the user asked to keep off them) and says so once.
    """
    value = (os.environ if env is None else env).get(ENV_CAPTURE, "").strip().lower()
    if value in _ON:
        return True
    if value in _EVENT_ONLY:
        log.info("%s=EVENT_ONLY: llmscope records content on spans only, so none is recorded", ENV_CAPTURE)
        return False
    if value not in _OFF:
        log.warning("%s=%r is not a known value; content capture stays off", ENV_CAPTURE, value)
    return False


@dataclasses.dataclass(frozen=True)
class ContentPolicy:
    capture: bool = False
    max_chars: int = DEFAULT_MAX_CHARS
    redact: Redactor | None = None

    def encode(self, name: str, value: Any, attrs: dict[str, Any]) -> None:
        """Add `name` = JSON of `value` to `attrs` if capture is on, redacted and size-capped."""
        if not self.capture or value is None:
            return
        if self.redact is not None:
            value = self.redact(name, value)
            if value is None:
                return
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
        if len(text) > self.max_chars:
            attrs.setdefault(TRUNCATED_ATTR, []).append(name)
            text = text[: self.max_chars] + f"…[truncated {len(text) - self.max_chars} chars]"
        attrs[name] = text


def resolve_policy(capture_content: bool | None, max_chars: int | None, redact: Redactor | None) -> ContentPolicy:
    capture = capture_from_env() if capture_content is None else capture_content
    return ContentPolicy(capture=capture, max_chars=max_chars or DEFAULT_MAX_CHARS, redact=redact)
