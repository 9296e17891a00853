"""Deterministic text, id and token-count helpers shared by both simulated providers.

Everything here is a pure function of (seed, request body) so a replayed request yields a
byte-identical response; the only mutable state is :class:`PromptCache`, which simulated
prompt caching needs by definition.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import struct
import threading
from typing import Any

__all__ = [
    "WORDS",
    "Generator",
    "PromptCache",
    "SimulatorError",
    "canonical_json",
    "count_tokens",
    "fill_schema",
    "split_pieces",
    "split_words",
    "stop_at",
]

# Fixed vocabulary: each word is exactly one simulated output token.
WORDS: tuple[str, ...] = (
    "the", "model", "returns", "a", "short", "answer", "about", "tokens", "latency", "trace",
    "span", "prompt", "cache", "stream", "event", "tool", "call", "result", "metric", "budget",
    "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "while", "observing", "every",
    "request", "and", "response", "with", "care", "so", "that", "costs", "stay", "low",
    "data", "flows", "through", "its", "collector", "into", "storage", "for", "later", "queries",
    "simulated", "providers", "keep", "tests", "fast", "deterministic", "reliable", "very", "cheap", "today",
)  # fmt: skip


_MEDIA_TYPES = frozenset({"image", "document", "image_url", "input_image", "input_file", "input_audio"})

# Request fields that change only how the answer is delivered, not what it is.
_TRANSPORT_KEYS = frozenset({"stream", "stream_options"})


class SimulatorError(Exception):
    """A request the simulated API rejects; rendered in the provider's own error shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def canonical_json(value: Any) -> str:
    """Key-sorted compact JSON, so logically equal bodies hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class Generator:
    """Seeded source of ids, words and numbers for one request.

    Seeded from sha256(seed, canonical body) only (never a counter) so replays are identical.
    """

    def __init__(self, seed: int, body: Any, salt: str = "") -> None:
        if isinstance(body, dict):  # streamed and non-streamed answers to one request agree
            body = {k: v for k, v in body.items() if k not in _TRANSPORT_KEYS}
        material = f"{seed}\x00{salt}\x00{canonical_json(body)}".encode()
        self.digest = hashlib.sha256(material).digest()
        self.rng = random.Random(int.from_bytes(self.digest[:8], "big"))

    def hex_id(self, label: str, length: int = 24) -> str:
        """A stable hex id; `label` keeps ids of different objects in one response distinct."""
        return hashlib.sha256(self.digest + label.encode()).hexdigest()[:length]

    def child(self, label: str) -> Generator:
        """An independent generator (e.g. per choice) that does not perturb this one's sequence."""
        return Generator(0, self.digest.hex(), salt=label)

    def words(self, count: int) -> list[str]:
        out = [self.rng.choice(WORDS) for _ in range(count)]
        if out:
            out[0] = out[0].capitalize()
            out[-1] += "."
        return out

    def word(self) -> str:
        return self.rng.choice(WORDS)

    def integer(self, low: int = 1, high: int = 100) -> int:
        return self.rng.randint(low, high)

    def answer_length(self) -> int:
        return self.rng.randint(8, 40)

    def vector(self, dimensions: int, key: str) -> list[float]:
        """Unit-length vector rounded to float32 so base64 and float encodings agree exactly."""
        rng = random.Random(int.from_bytes(hashlib.sha256(self.digest + key.encode()).digest()[:8], "big"))
        raw = [rng.uniform(-1.0, 1.0) for _ in range(dimensions)]
        norm = math.sqrt(sum(x * x for x in raw)) or 1.0
        packed = struct.pack(f"<{dimensions}f", *(x / norm for x in raw))
        return list(struct.unpack(f"<{dimensions}f", packed))


def fill_schema(gen: Generator, schema: Any) -> Any:
    """Invent a value matching a JSON schema: strings get a word, numbers an int, booleans true."""
    if not isinstance(schema, dict):
        return gen.word()
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        out = {name: fill_schema(gen, sub) for name, sub in props.items()}
        for name in schema.get("required") or []:
            if isinstance(name, str) and name not in out:
                out[name] = gen.word()
        return out
    if kind in ("integer", "number"):
        return gen.integer()
    if kind == "boolean":
        return True
    if kind == "array":
        return [fill_schema(gen, schema.get("items", {"type": "string"}))]
    if kind == "null":
        return None
    return gen.word()


def _words_in(text: str) -> int:
    return len(text.split())


def count_tokens(value: Any) -> int:
    """Deterministic stand-in for a tokenizer: words of text, JSON length // 4 for structured parts."""
    if value is None:
        return 0
    if isinstance(value, str):
        return _words_in(value)
    if isinstance(value, list):
        return sum(count_tokens(item) for item in value)
    if isinstance(value, dict):
        if value.get("type") in _MEDIA_TYPES:  # not its base64 size: providers bill images flat-ish
            return 1000
        total = 0
        matched = False
        for key in ("text", "content", "output"):
            if key in value:
                total += count_tokens(value[key])
                matched = True
        for key in ("input", "tool_calls", "arguments", "function_call"):
            if key in value and value[key] is not None:
                part = value[key]
                total += max(1, len(part if isinstance(part, str) else canonical_json(part)) // 4)
                matched = True
        if not matched:
            total += max(1, len(canonical_json(value)) // 4)
        return total
    return max(1, len(canonical_json(value)) // 4)


def split_words(text: str) -> list[str]:
    """Split into stream deltas of one or two words that concatenate back to `text` exactly."""
    words = text.split(" ")
    pieces: list[str] = []
    i = 0
    step = 1
    while i < len(words):
        chunk = " ".join(words[i : i + step])
        pieces.append(chunk if i == 0 else " " + chunk)
        i += step
        step = 3 - step
    return pieces


def split_pieces(text: str, parts: int = 3) -> list[str]:
    """Split a string (e.g. tool-call JSON) into roughly equal fragments, as providers stream them."""
    if not text:
        return []
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def stop_at(words: list[str], stops: list[str]) -> tuple[list[str], str | None]:
    """Truncate generated words before the earliest stop sequence; returns the matched sequence."""
    text = " ".join(words)
    best: tuple[int, str] | None = None
    for stop in stops:
        if stop and (idx := text.find(stop)) >= 0 and (best is None or idx < best[0]):
            best = (idx, stop)
    if best is None:
        return words, None
    return text[: best[0]].split(), best[1]


class PromptCache:
    """Thread-safe set of prompt-prefix keys already seen by this server instance."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[str] = set()

    def check_and_add(self, key: str) -> bool:
        """True if `key` was seen before (a cache read); records it otherwise (a cache write)."""
        with self._lock:
            if key in self._seen:
                return True
            self._seen.add(key)
            return False

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()
