"""SDK fixtures: the simulated provider, and llmscope's spans captured the way users capture them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import llmscope_sdk
from llmscope.pytest_plugin import capllmscope  # noqa: F401  (see below)
from llmscope.testing import CapturedSpans, capture_spans
from llmscope_sim import SimulatedProvider

# `capllmscope` is the fixture users get from the `pytest11` entry point of an installed llmscope;
# imported above too, so an editable checkout whose entry points predate it has the fixture.


@pytest.fixture
def sim() -> Iterator[SimulatedProvider]:
    with SimulatedProvider(seed=7) as provider:
        yield provider


@pytest.fixture
def spans() -> Iterator[CapturedSpans]:
    """Instrumented clients whose spans are recorded in memory: the public `llmscope.testing` helper
    (what the `capllmscope` fixture gives users), so these tests also prove it restores the setup."""
    with capture_spans() as captured:
        yield captured
    assert not llmscope_sdk.instrumented()
