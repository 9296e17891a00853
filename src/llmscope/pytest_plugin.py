"""The `capllmscope` pytest fixture, registered through the `pytest11` entry point when llmscope is
installed (nothing else runs at pytest start-up: llmscope is imported when a test asks for the fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from llmscope.testing import CapturedSpans


@pytest.fixture
def capllmscope() -> Iterator[CapturedSpans]:
    """llmscope's spans of this test, in memory (see `llmscope.testing.capture_spans`)."""
    from llmscope.testing import capture_spans

    with capture_spans() as captured:
        yield captured
