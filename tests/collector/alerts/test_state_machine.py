"""The rule state machine with plain numbers for time: for, cooldown, renotify, levels, no-data policy."""

from __future__ import annotations

import pytest

from llmscope_collector.alerts.rules import Timing
from llmscope_collector.alerts.state import Level, RuleState, advance, level_under_policy


def _timing(for_s: float = 0, cooldown_s: float = 0, renotify_s: float = 0) -> Timing:
    return Timing(window_s=300, every_s=60, for_s=for_s, cooldown_s=cooldown_s, renotify_s=renotify_s)


def _run(levels: list[Level], t: Timing, step_s: float = 60) -> list[tuple[str, str | None]]:
    """Feed one level per evaluation; return (status, event) after each."""
    state, out = RuleState(), []
    for i, level in enumerate(levels):
        result = advance(state, level, i * step_s, t)
        state = result.state
        out.append((state.status, result.event))
    return out


def test_breach_without_for_fires_at_once_and_resolves() -> None:
    assert _run(["ok", "alert", "alert", "ok", "ok"], _timing()) == [
        ("ok", None),
        ("firing", "firing"),
        ("firing", None),
        ("resolved", "resolved"),
        ("resolved", None),
    ]


def test_for_keeps_a_short_breach_pending_and_clears_it() -> None:
    t = _timing(for_s=120)
    assert _run(["alert", "alert", "ok"], t) == [("pending", "pending"), ("pending", None), ("ok", "cleared")]
    assert _run(["alert", "alert", "alert"], t)[-1] == ("firing", "firing")


def test_level_changes_while_firing_are_notified() -> None:
    events = [e for _, e in _run(["warning", "alert", "alert", "warning", "ok"], _timing())]
    assert events == ["firing", "firing", None, "firing", "resolved"]


def test_pending_level_change_keeps_the_pending_clock() -> None:
    t = _timing(for_s=120)
    steps = _run(["warning", "alert", "alert"], t)
    assert steps == [("pending", "pending"), ("pending", None), ("firing", "firing")]


def test_cooldown_holds_a_quick_refire_pending() -> None:
    t = _timing(cooldown_s=300)
    steps = _run(["alert", "ok", "alert", "alert", "alert", "alert", "alert", "alert"], t)
    # resolved at 60 s; may fire again only from 360 s (index 6)
    assert [s for s, _ in steps] == [
        "firing",
        "resolved",
        "pending",
        "pending",
        "pending",
        "pending",
        "firing",
        "firing",
    ]


def test_renotify_reminds_while_firing() -> None:
    steps = _run(["alert"] * 6, _timing(renotify_s=120))
    assert [e for _, e in steps] == ["firing", None, "renotify", None, "renotify", None]


@pytest.mark.parametrize(
    ("policy", "previous", "expected"),
    [
        ("ok", "firing", "ok"),
        ("alert", "ok", "alert"),
        ("keep", "firing", "warning"),
        ("keep", "ok", "ok"),
    ],
)
def test_no_data_policy(policy: str, previous: str, expected: str) -> None:
    state = RuleState(status=previous, level="warning" if previous == "firing" else "ok")  # type: ignore[arg-type]
    assert level_under_policy(None, policy, state) == expected  # type: ignore[arg-type]
    assert level_under_policy("alert", policy, state) == "alert"  # data always wins
