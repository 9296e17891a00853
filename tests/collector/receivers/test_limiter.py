"""Token bucket semantics with a fake clock: admit while positive, charge after, exact long-run rate."""

from __future__ import annotations

import pytest

from llmscope_collector.errors import RateLimited
from llmscope_collector.receiver.limiter import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_unlimited_by_default() -> None:
    limiter = RateLimiter(0, 0)
    for _ in range(100):
        limiter.admit("p")
        limiter.charge("p", 10_000)


def test_deficit_is_paid_back_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(100, 200, clock=clock)
    limiter.admit("p")
    limiter.charge("p", 500)  # 200 - 500 = -300
    with pytest.raises(RateLimited) as info:
        limiter.admit("p")
    assert info.value.retry_after_s == pytest.approx(3.01)
    assert info.value.http_status == 429
    clock.now += 3.0
    with pytest.raises(RateLimited):
        limiter.admit("p")  # exactly at zero: still waiting
    clock.now += 0.02
    limiter.admit("p")


def test_projects_have_separate_buckets_and_overrides() -> None:
    clock = Clock()
    overrides = {"big": (0.0, None), "small": (1.0, 1)}
    limiter = RateLimiter(10, 10, overrides=lambda p: overrides.get(p, (None, None)), clock=clock)
    limiter.charge("a", 11)
    with pytest.raises(RateLimited):
        limiter.admit("a")
    limiter.admit("b")
    limiter.charge("big", 10**9)
    limiter.admit("big")  # override: unlimited
    limiter.charge("small", 2)
    with pytest.raises(RateLimited) as info:
        limiter.admit("small")
    assert info.value.retry_after_s == pytest.approx(2.0)


def test_burst_caps_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(10, 20, clock=clock)
    limiter.admit("p")
    clock.now += 1000
    limiter.charge("p", 21)  # refill is capped at 20, so this leaves -1
    with pytest.raises(RateLimited):
        limiter.admit("p")
