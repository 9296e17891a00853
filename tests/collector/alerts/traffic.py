"""Generated LLM traffic written straight into the span store's Parquet layout.

Each call is a small agent trace: a root span and a `chat` span under it (and, optionally, the
client library's own `chat` span nested under that one, which metrics must not count twice).
Files land where the collector puts them (`spans/project=…/date=…/`), typed by `SPAN_SCHEMA`,
so the evaluator reads them exactly as it reads ingested spans.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from llmscope_collector.storage.layout import compacted_part_path, partition_dir
from llmscope_collector.storage.schema import SPAN_SCHEMA

NS = 1_000_000_000
# A fixed Sunday noon, mid-month, so windows, dates and the month are known in every test.
T0 = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.timezone.utc).timestamp()


@dataclasses.dataclass
class Call:
    at: float
    model: str = "gpt-4o"
    provider: str = "openai"
    service: str = "chatbot"
    cost_usd: float | None = 0.001
    input_tokens: int = 100
    output_tokens: int = 50
    latency_s: float = 0.8
    ttft_s: float | None = 0.2
    error: bool = False
    session: str | None = None
    user: str | None = None
    prompt_name: str | None = None
    prompt_version: str | None = None
    nested_duplicate: bool = False


def _row(trace_id: str, span_id: str, parent: str | None, start: int, end: int, **cols: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(SPAN_SCHEMA.names)
    row.update(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=cols.pop("name", "span"),
        kind="INTERNAL",
        start_ns=start,
        end_ns=end,
        duration_ns=end - start,
        status_code="UNSET",
    )
    row.update(cols)
    return row


def _llm_cols(call: Call) -> dict[str, Any]:
    return {
        "name": f"chat {call.model}",
        "kind": "CLIENT",
        "operation": "chat",
        "provider": call.provider,
        "request_model": call.model,
        "response_model": call.model,
        "service_name": call.service,
        "input_tokens": call.input_tokens,
        "output_tokens": call.output_tokens,
        "ttft_s": call.ttft_s,
        "cost_usd": None if call.cost_usd is None else Decimal(str(call.cost_usd)),
        "cost_known": call.cost_usd is not None,
        "status_code": "ERROR" if call.error else "OK",
        "session_id": call.session,
        "user_id": call.user,
        "prompt_name": call.prompt_name,
        "prompt_version": call.prompt_version,
    }


def spans_of(call: Call) -> list[dict[str, Any]]:
    trace_id = os.urandom(16).hex()
    root_id, llm_id = os.urandom(8).hex(), os.urandom(8).hex()
    start = int(call.at * NS)
    end = start + int(call.latency_s * NS)
    rows = [
        _row(trace_id, root_id, None, start - NS // 100, end + NS // 100, name="agent run", service_name=call.service),
        _row(trace_id, llm_id, root_id, start, end, **_llm_cols(call)),
    ]
    if call.nested_duplicate:  # e.g. the HTTP client library's own span for the same model call
        rows.append(_row(trace_id, os.urandom(8).hex(), llm_id, start + 1000, end - 1000, **_llm_cols(call)))
    return rows


def write_calls(data_dir: Path, calls: list[Call], project: str = "default") -> None:
    """One Parquet file per UTC date touched, as a flush would write them."""
    by_date: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in calls:
        for row in spans_of(call):
            date = dt.datetime.fromtimestamp(row["start_ns"] / NS, tz=dt.timezone.utc).date().isoformat()
            by_date[date].append(row)
    for date, rows in by_date.items():
        directory = partition_dir(data_dir, project, date)
        directory.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=SPAN_SCHEMA), compacted_part_path(directory))


def steady(start: float, end: float, every_s: float, **fields: Any) -> list[Call]:
    """One call every `every_s` seconds in `[start, end)`."""
    calls, at = [], start
    while at < end:
        calls.append(Call(at=at, **fields))
        at += every_s
    return calls
