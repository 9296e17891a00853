"""Request filters: parsed and validated once, with errors that name the offending field.

Everything here turns request strings into typed values and bound parameters; nothing here writes
SQL (the store picks allowlisted fragments from `query.sql` by filter name).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

_MIN_DATE = dt.date(1970, 1, 1)
_MAX_DATE = dt.date(9999, 12, 31)
_MAX_NS = 2**63 - 1
_ATTR_KEY_RE = re.compile(r"^[^\"\\\x00-\x1f]{1,256}$")
MAX_ATTR_FILTERS = 8
_SESSION_ID_RE = re.compile(r"^[^\x00-\x1f]{1,512}$")
_EPOCH_NS_RE = re.compile(r"^[0-9]{1,30}$")

Sort = Literal["start", "duration", "cost", "tokens"]
SORTS: tuple[str, ...] = ("start", "duration", "cost", "tokens")
SCORE_SORT = "score."  # `sort=score.<name>`: by the trace's average of the score <name>
Order = Literal["asc", "desc"]
State = Literal["complete", "in_progress", "incomplete"]
Status = Literal["error", "ok"]


class InvalidFilter(ValueError):
    """A request parameter that cannot be used; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def parse_time(field: str, value: str | None) -> int | None:
    """ISO 8601 date or date-time (UTC when no offset), or integer nanoseconds since the epoch."""
    if value is None or value == "":
        return None
    text = value.strip()
    if _EPOCH_NS_RE.match(text):  # ASCII digits only: str.isdigit() also accepts "²"
        return min(int(text), _MAX_NS)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidFilter(
            field, f"{value!r} is not an ISO 8601 time (e.g. 2026-11-25T10:00:00Z) or epoch ns"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    ns = int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1000
    return max(0, min(ns, _MAX_NS))  # stored times are int64 ns since the epoch


@dataclasses.dataclass(frozen=True)
class TimeRange:
    """`[from_ns, to_ns)` plus the UTC dates it spans, for partition pruning."""

    from_ns: int = 0
    to_ns: int = _MAX_NS

    @classmethod
    def parse(cls, start: str | None, end: str | None) -> TimeRange:
        from_ns = parse_time("from", start)
        to_ns = parse_time("to", end)
        if from_ns is not None and to_ns is not None and to_ns <= from_ns:
            raise InvalidFilter("to", "must be later than 'from'")
        return cls(from_ns or 0, _MAX_NS if to_ns is None else to_ns)

    @property
    def bounded(self) -> bool:
        return self.from_ns > 0 or self.to_ns < _MAX_NS

    def params(self) -> dict[str, Any]:
        return {
            "from_ns": self.from_ns,
            "to_ns": self.to_ns,
            "from_date": _date(self.from_ns, _MIN_DATE),
            "to_date": _date(self.to_ns, _MAX_DATE),
        }


def _date(ns: int, default: dt.date) -> dt.date:
    if ns <= 0 or ns >= _MAX_NS:
        return default
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc).date()


def trace_dates(start_ns: int, end_ns: int) -> dict[str, Any]:
    """The date partitions of a trace's spans, from its summary's first start and last end: a span is stored
    under its own start's UTC date (computed as `_date` computes it), so every span of the trace is within
    them, except one that ends before it starts on a later date (whoever finds fewer spans than the summary
    counts looks again with `span_dates`). One partition for most traces, where `span_dates` opens three."""
    return {"from_date": _date(start_ns, _MIN_DATE), "to_date": _date(end_ns, _MAX_DATE)}


def span_dates(start_ns: int, end_ns: int) -> dict[str, Any]:
    """Date-partition bounds for a trace (a day of margin each side for clock skew between services)."""
    one_day = 86_400 * 10**9
    return {
        "from_date": _date(max(1, start_ns - one_day), _MIN_DATE),
        "to_date": _date(min(_MAX_NS - 1, end_ns + one_day), _MAX_DATE),
    }


def parse_decimal(field: str, value: str | None) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise InvalidFilter(field, f"{value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise InvalidFilter(field, "must be a finite number >= 0")
    return number


def attr_filters(query: dict[str, list[str]] | Any) -> tuple[tuple[str, str], ...]:
    """`attr.<key>=<value>` parameters as (JSON path, value) pairs."""
    pairs: list[tuple[str, str]] = []
    for name in query:
        if not name.startswith("attr."):
            continue
        key = name[len("attr.") :]
        if not _ATTR_KEY_RE.match(key):
            raise InvalidFilter(name, "attribute key must be 1-256 characters without quotes or backslashes")
        values = query.getall(name) if hasattr(query, "getall") else query[name]
        for value in values if isinstance(values, list) else [values]:
            if len(value) > 4096:
                raise InvalidFilter(name, "value longer than 4096 characters")
            pairs.append((f'$."{key}"', value))
    if len(pairs) > MAX_ATTR_FILTERS:
        raise InvalidFilter("attr", f"at most {MAX_ATTR_FILTERS} attribute filters")
    return tuple(pairs)


def check_session_id(session_id: str) -> str:
    if not _SESSION_ID_RE.match(session_id):
        raise InvalidFilter("session_id", "must be 1-512 printable characters")
    return session_id


@dataclasses.dataclass(frozen=True)
class TraceQuery:
    """Everything `GET /v1/traces` can filter and sort by."""

    time: TimeRange = TimeRange()
    service: str | None = None
    model: str | None = None
    provider: str | None = None
    status: Status | None = None
    state: State | None = None
    session: str | None = None
    user: str | None = None
    prompt_name: str | None = None
    prompt_version: str | None = None
    tag: str | None = None
    min_duration_ms: float | None = None
    min_cost: Decimal | None = None
    min_tokens: int | None = None
    attrs: tuple[tuple[str, str], ...] = ()
    q: str | None = None
    # Only these traces (the ones the score filters matched, `query.scores`); None: no restriction.
    trace_ids: tuple[str, ...] | None = None
    # `sort=score.<name>`: (trace id, the trace's average value of that score) of every trace that has one;
    # only those traces are listed (`query.scores.ScoreStore.trace_averages`).
    score_keys: tuple[tuple[str, float], ...] | None = None
    sort: str = "start"
    order: Order = "desc"
    limit: int = 50
    cursor: str | None = None

    def __post_init__(self) -> None:
        if self.prompt_version is not None and self.prompt_name is None:
            raise InvalidFilter("prompt_version", "needs prompt_name (versions are per prompt)")
        if self.min_duration_ms is not None and self.min_duration_ms < 0:
            raise InvalidFilter("min_duration_ms", "must be >= 0")
        if self.min_tokens is not None and self.min_tokens < 0:
            raise InvalidFilter("min_tokens", "must be >= 0")
        if not 1 <= self.limit <= 1000:
            raise InvalidFilter("limit", "must be 1..1000")
        if self.q is not None and not 1 <= len(self.q) <= 1000:
            raise InvalidFilter("q", "must be 1..1000 characters")
        if self.sort not in SORTS and not (self.sort.startswith(SCORE_SORT) and len(self.sort) > len(SCORE_SORT)):
            raise InvalidFilter("sort", f"must be one of {', '.join(SORTS)} or score.<name>")
        if self.sort.startswith(SCORE_SORT) and self.score_keys is None:
            raise InvalidFilter("sort", "a score sort needs the scores it sorts by (score_keys)")

    @property
    def sort_key(self) -> str:
        """The sort's name in the SQL builders' allowlist (`score` for every `score.<name>`)."""
        return "score" if self.sort.startswith(SCORE_SORT) else self.sort


ValueField = Literal["service", "model", "provider", "session", "user", "tag"]
MAX_VALUES = 1000
MAX_PREFIX = 200


@dataclasses.dataclass(frozen=True)
class ValueQuery:
    """`GET /v1/traces/values`: the distinct values of one trace field over the traces starting in `time`
    (no other filter: a picker offers every value of the range), those starting with `prefix` (any case)."""

    field: ValueField
    time: TimeRange = TimeRange()
    prefix: str | None = None
    limit: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_VALUES:
            raise InvalidFilter("limit", f"must be 1..{MAX_VALUES}")
        if self.prefix is not None and len(self.prefix) > MAX_PREFIX:
            raise InvalidFilter("prefix", f"must be at most {MAX_PREFIX} characters")


@dataclasses.dataclass(frozen=True)
class Cursor:
    """Where a page ended: the sort key and trace id of its last row, for the same sort and order."""

    sort: str
    order: str
    key: str
    last: str

    def encode(self) -> str:
        raw = json.dumps({"s": self.sort, "o": self.order, "k": self.key, "t": self.last}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, sort: str, order: str) -> Cursor:
        try:
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            cursor = cls(str(raw["s"]), str(raw["o"]), str(raw["k"]), str(raw["t"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise InvalidFilter("cursor", "is not a cursor returned by this endpoint") from None
        if (cursor.sort, cursor.order) != (sort, order):
            raise InvalidFilter("cursor", f"was made for sort={cursor.sort}&order={cursor.order}; keep them unchanged")
        return cursor
