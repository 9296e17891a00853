"""`/v1/cleanup` over real HTTP: storage stats with the TTL per project, dry runs that delete nothing,
a real run that removes the expired date partitions (spans and their trace summaries) and only them."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import httpx

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from tests import otlp_factory as f
from tests.collector.receivers.clients import post

DAY_NS = 86400 * 10**9


def _send_trace(server: EmbeddedServer, age_days: int) -> str:
    trace_id = f.new_trace_id()
    start = time.time_ns() - age_days * DAY_NS
    spans = [f.span(trace_id, f.new_span_id(), f"work-{age_days}d", start, start + 1_000_000)]
    assert post(server, bytes(f.request(spans).SerializeToString())).status_code == 200
    return trace_id.hex()


def _dates(data_dir: Path, dataset: str) -> set[str]:
    return {p.name.removeprefix("date=") for p in (data_dir / dataset / "project=default").glob("date=*")}


def _admin(server: EmbeddedServer) -> httpx.Client:
    token = server.collector.receivers.policy.admin.value
    return httpx.Client(base_url=server.api_url, headers={"authorization": f"Bearer {token}"}, timeout=10)


def test_stats_dry_run_and_run_remove_only_expired_partitions(settings: Settings) -> None:
    with EmbeddedServer(dataclasses.replace(settings, retention_days=30, retention_interval_s=0)) as server:
        old, recent = _send_trace(server, age_days=45), _send_trace(server, age_days=0)
        server.collector.flush()
        data_dir = server.settings.data_dir
        before = _dates(data_dir, "spans")
        assert len(before) == 2
        with _admin(server) as api:
            stats = api.get("/v1/cleanup/stats").json()
            usage = {(u["dataset"], u["project"]): u for u in stats["usage"]}
            spans = usage[("spans", "default")]
            assert (spans["ttl_days"], spans["partitions"], spans["rows"]) == (30, 2, 2)
            assert spans["oldest_date"] < spans["newest_date"]
            assert stats["would_delete"]["dry_run"] is True and stats["would_delete"]["spans"] == 1
            assert {e["date"] for e in stats["would_delete"]["expired"]} == {spans["oldest_date"]}

            dry = api.post("/v1/cleanup/run").json()  # dry run unless told otherwise
            assert dry["dry_run"] is True and dry["spans"] == 1 and _dates(data_dir, "spans") == before

            done = api.post("/v1/cleanup/run", params={"dry_run": "false"}).json()
            assert done["dry_run"] is False and done["spans"] == 1 and not done["errors"]
            assert {e["dataset"] for e in done["expired"]} >= {"spans", "traces"}  # summaries go with spans
        assert _dates(data_dir, "spans") == {spans["newest_date"]}
        assert server.store.get_trace(old) is None and server.store.get_trace(recent) is not None
        with _admin(server) as api:
            assert api.post("/v1/cleanup/run", params={"dry_run": "false"}).json()["partitions"] == 0


def test_cleanup_needs_the_admin_token(server: EmbeddedServer) -> None:
    assert httpx.get(server.api_url + "/v1/cleanup/stats", timeout=10).status_code == 401
    _, key = server.collector.receivers.auth_store.create_key("default")
    headers = {"authorization": f"Bearer {key}"}
    response = httpx.post(server.api_url + "/v1/cleanup/run", params={"dry_run": "false"}, headers=headers, timeout=10)
    assert response.status_code == 403 and response.json()["error"]
    response = httpx.get(server.api_url + "/v1/cleanup/run", timeout=10)
    assert response.status_code in (401, 405)
