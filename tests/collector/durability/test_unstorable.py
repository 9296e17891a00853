"""Values Arrow cannot store never hold up the WAL: far-future times are clamped and marked at decode,
and any row that still cannot be written is set aside (kept as JSON, counted) while the rest is stored."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from llmscope_collector.pipeline import DecodeIntoParquet
from llmscope_collector.processors import decode
from llmscope_collector.processors.cost import PriceBook
from llmscope_collector.processors.decode import Columns
from llmscope_collector.processors.decode_pool import DecodePool
from llmscope_collector.server import EmbeddedServer
from llmscope_collector.storage.dedupe import RecentSpanIds
from llmscope_collector.storage.parquet_writer import QUARANTINE_DIR, ParquetSpanWriter
from llmscope_collector.wal.segment import WalRecord
from tests import otlp_factory as f
from tests.collector.durability.helpers import payload, stored_counts
from tests.collector.receivers.clients import post


def test_times_beyond_int64_are_clamped_marked_and_the_collector_keeps_flushing(server: EmbeddedServer) -> None:
    tid = f.new_trace_id()
    far = 2**64 - 1  # OTLP allows any fixed64
    spans = [f.span(tid, f.new_span_id(), "from the far future", far - 10, far)]
    assert post(server, bytes(f.request(spans).SerializeToString())).status_code == 200
    assert server.collector.flush(timeout=20) == 1
    rows = server.store.table_rows(
        "SELECT start_ns, attributes FROM read_parquet($glob, hive_partitioning = true)",
        {"glob": str(server.settings.data_dir / "spans" / "*" / "*" / "*.parquet")},
    )
    assert rows[0]["start_ns"] == 2**63 - 1
    assert json.loads(rows[0]["attributes"])["llmscope.time_out_of_range"] is True
    # And the WAL moved on: a normal span sent afterwards is stored too.
    normal = [f.span(f.new_trace_id(), f.new_span_id(), "now", time.time_ns(), time.time_ns() + 1000)]
    assert post(server, bytes(f.request(normal).SerializeToString())).status_code == 200
    assert server.collector.flush(timeout=20) == 1


def test_an_unstorable_row_is_set_aside_and_the_others_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stands in for any upstream bug that leaves a value Arrow cannot store in one decoded row.
    real = decode.price_rows

    def corrupt_first_row(cols: Columns, prices: PriceBook) -> bool:
        priced = real(cols, prices)
        cols["input_tokens"][0] = 2**70
        return priced

    monkeypatch.setattr(decode, "price_rows", corrupt_first_row)
    writer = ParquetSpanWriter(tmp_path, RecentSpanIds(0))
    sink = DecodeIntoParquet(writer, DecodePool(0))  # inline decode: the patch applies
    ids = [(n + 1).to_bytes(8, "big") for n in range(5)]
    assert sink.consume([WalRecord(0, 1, "default", payload(ids))]) == [4]
    assert writer.flush(0, 1) == 4  # returns instead of raising (a raise would be retried forever)
    assert stored_counts(tmp_path) == (4, 4)
    assert writer.rows_quarantined == 1
    [kept] = (tmp_path / QUARANTINE_DIR).glob("spans-*.jsonl")
    row = json.loads(kept.read_text().splitlines()[0])
    assert row["input_tokens"] == 2**70 and row["span_id"] in {i.hex() for i in ids}
