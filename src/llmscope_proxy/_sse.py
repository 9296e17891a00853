"""Incremental Server-Sent Events parsing for the proxy's copy of a streamed response.

The bytes the client receives are forwarded untouched; this parser only reads a copy, so a frame
split across TCP reads, `\\r\\n` line ends or a comment line never changes what the client gets.
Per the SSE spec an event ends at a blank line and its `data:` lines are joined with `\\n`.
"""

from __future__ import annotations

from typing import Any

from llmscope_proxy._json import loads_view

# Events after which the providers send nothing more that a client reads: OpenAI chat's `[DONE]`,
# Anthropic's `message_stop`, the Responses API's terminal events, and an error event.
_TERMINAL_TYPES = frozenset({"message_stop", "response.completed", "response.incomplete", "response.failed", "error"})


class SseEvents:
    """Feed raw (decompressed) bytes; get back each complete event's JSON `data` as a view."""

    __slots__ = ("_buffer", "_data", "finished")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self.finished = False

    def feed(self, chunk: bytes) -> list[Any]:
        """The JSON payloads of the events completed by `chunk` (`[DONE]` and non-JSON data skipped)."""
        self._buffer += chunk
        events: list[Any] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                return events
            line = self._buffer[:end].rstrip(b"\r")
            self._buffer = self._buffer[end + 1 :]
            if not line:
                payload = self._complete()
                if payload is not None:
                    events.append(payload)
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)

    def _complete(self) -> Any:
        if not self._data:
            return None
        data, self._data = b"\n".join(self._data), []
        if data.strip() == b"[DONE]":
            self.finished = True
            return None
        try:
            event = loads_view(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        if isinstance(event, dict) and event.get("type") in _TERMINAL_TYPES:
            self.finished = True
        return event


def parse_json(body: bytes) -> Any:
    """A whole JSON body as a view, or None when it is not JSON (the call is still forwarded)."""
    try:
        return loads_view(body) if body else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
