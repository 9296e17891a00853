"""Calendar-month budgets: the month's bounds and a straight-line forecast of when it runs out.

The forecast assumes the month continues at its average rate so far. That is crude but honest and
explainable in one sentence ("at this month's pace you cross $500 on the 23rd"), which matters
more for a budget alert than a model that reacts to every spike.
"""

from __future__ import annotations

import datetime as dt

import msgspec

# Early in the month the average rate is noise; never extrapolate from less than an hour.
_MIN_ELAPSED_S = 3600.0
_DAY_S = 86400.0


class Forecast(msgspec.Struct, kw_only=True):
    """Times are Unix seconds. `*_crossed_at` is when the threshold will be crossed at the month's
    average rate (now, if it already is); None if not before the month ends."""

    month_start: float
    month_end: float
    spent: float
    rate_per_day: float
    projected_month_total: float
    alert_crossed_at: float | None
    warning_crossed_at: float | None


def month_bounds(now: float) -> tuple[float, float]:
    """Start of this UTC calendar month and of the next one."""
    day = dt.datetime.fromtimestamp(now, tz=dt.timezone.utc)
    start = day.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start.timestamp(), end.timestamp()


def forecast(spent: float, now: float, alert_threshold: float | None, warning_threshold: float | None) -> Forecast:
    start, end = month_bounds(now)
    rate_per_s = spent / max(now - start, _MIN_ELAPSED_S)
    return Forecast(
        month_start=start,
        month_end=end,
        spent=spent,
        rate_per_day=rate_per_s * _DAY_S,
        projected_month_total=spent + rate_per_s * max(end - now, 0.0),
        alert_crossed_at=_crossing(alert_threshold, spent, rate_per_s, now, end),
        warning_crossed_at=_crossing(warning_threshold, spent, rate_per_s, now, end),
    )


def _crossing(threshold: float | None, spent: float, rate_per_s: float, now: float, end: float) -> float | None:
    if threshold is None:
        return None
    if spent >= threshold:
        return now
    if rate_per_s <= 0:
        return None
    at = now + (threshold - spent) / rate_per_s
    return at if at < end else None
