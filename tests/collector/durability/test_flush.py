"""`Collector.flush()` makes what was acknowledged queryable now, whatever the flush interval: the
consumer waiting on the WAL is woken even when no new record arrives meanwhile."""

from __future__ import annotations

import dataclasses

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from tests.collector.receivers.clients import post, valid_request


def test_flush_with_an_hour_long_interval_writes_at_once(settings: Settings) -> None:
    with EmbeddedServer(dataclasses.replace(settings, flush_interval_s=3600)) as server:
        assert post(server, valid_request(3)).status_code == 200
        assert server.collector.flush(timeout=20) == 3
        assert server.store.counts().spans == 3
