"""The per-rule state machine: ok → pending → firing → resolved, as a pure function.

Pure so that flapping, `for`, cooldown and renotify are tested with plain numbers for time.
Each evaluation gives a level (ok, warning or alert, or None for "no data"); `advance` turns the
previous state and that level into the next state and at most one event. Only `firing`,
`resolved` and `renotify` events are notified; `pending` and `cleared` are history only.

- `for`: a breach must hold that long (pending) before the rule fires, so one bad minute does not page.
- cooldown: after resolving, the rule stays pending at least that long before it may fire again,
  so a metric bouncing on its threshold does not page on every bounce.
- renotify: while firing at the same level, a reminder every that long (0: never).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from llmscope_collector.alerts.rules import NoDataPolicy, Timing

Status = Literal["ok", "pending", "firing", "resolved"]
Level = Literal["ok", "warning", "alert"]
EventKind = Literal["pending", "cleared", "firing", "resolved", "renotify"]
NOTIFIED_KINDS: frozenset[str] = frozenset({"firing", "resolved", "renotify"})


class RuleState(msgspec.Struct, kw_only=True):
    """Where a rule stands. Times are Unix seconds."""

    status: Status = "ok"
    level: Level = "ok"
    since: float | None = None
    value: float | None = None
    evaluated_at: float | None = None
    notified_at: float | None = None
    resolved_at: float | None = None
    next_eval_at: float = 0.0
    error: str | None = None


class Step(msgspec.Struct, kw_only=True, frozen=True):
    state: RuleState
    event: EventKind | None = None


def level_under_policy(level: Level | None, policy: NoDataPolicy, previous: RuleState) -> Level:
    """The level to act on when the metric had no data (`level` None)."""
    if level is not None:
        return level
    if policy == "alert":
        return "alert"
    if policy == "keep" and previous.status in ("pending", "firing"):
        return previous.level
    return "ok"


def advance(prev: RuleState, level: Level, now: float, t: Timing) -> Step:
    """The next state of a rule whose metric is at `level` at time `now`."""
    if prev.status == "firing":
        return _from_firing(prev, level, now, t)
    if level == "ok":
        if prev.status == "pending":
            return Step(state=_with(prev, status="ok", level="ok", since=now), event="cleared")
        return Step(state=prev)
    since = prev.since if prev.status == "pending" and prev.since is not None else now
    if _may_fire(prev, since, now, t):
        return Step(state=_with(prev, status="firing", level=level, since=now, notified_at=now), event="firing")
    event: EventKind | None = None if prev.status == "pending" else "pending"
    return Step(state=_with(prev, status="pending", level=level, since=since), event=event)


def _may_fire(prev: RuleState, pending_since: float, now: float, t: Timing) -> bool:
    if now - pending_since < t.for_s:
        return False
    return prev.resolved_at is None or now - prev.resolved_at >= t.cooldown_s


def _from_firing(prev: RuleState, level: Level, now: float, t: Timing) -> Step:
    if level == "ok":
        state = _with(prev, status="resolved", level="ok", since=now, resolved_at=now, notified_at=now)
        return Step(state=state, event="resolved")
    if level != prev.level:
        return Step(state=_with(prev, level=level, since=now, notified_at=now), event="firing")
    last = prev.notified_at if prev.notified_at is not None else now
    if t.renotify_s > 0 and now - last >= t.renotify_s:
        return Step(state=_with(prev, notified_at=now), event="renotify")
    return Step(state=prev)


def _with(state: RuleState, **changes: object) -> RuleState:
    return msgspec.structs.replace(state, **changes)
