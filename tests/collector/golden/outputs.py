"""What each golden file records: a processor's output for one case, as JSON-compatible values.

The outputs are exact: Decimals keep their digits, ints and floats stay distinct, None columns are
left out of a row (the schema names every column, so nothing is lost), and a processor that raises
records the exception's type and message as its output.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pyarrow.parquet as pq
from genai_prices import data_snapshot

from llmscope_collector.processors import limits, stitch
from llmscope_collector.processors.cost import PriceBook, UserPrice, sanitize_usage
from llmscope_collector.processors.decode_pool import decode_payload
from llmscope_collector.processors.messages import split_content
from llmscope_collector.processors.normalize import canonical_genai
from llmscope_collector.storage.layout import wal_range_of
from llmscope_collector.storage.schema import CONTENT_ITEM_SCHEMA, SPAN_SCHEMA
from tests.collector.golden.cases import USAGES, CallCase, DecodeCase, PriceCase, StitchCase, StitchPart


def jsonable(value: Any) -> Any:
    """`value` with Decimals as `"D:<digits>"`, bytes as `"b64:<base64>"`, tuples as lists."""
    if isinstance(value, Decimal):
        return f"D:{value}"
    if isinstance(value, bytes):
        return "b64:" + base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _raised(exc: Exception) -> dict[str, str]:
    return {"raised": f"{type(exc).__name__}: {exc}"}


# --- normalize and messages -----------------------------------------------------------------------


def normalize_output(case: dict[str, Any]) -> Any:
    """The canonical columns that are not None."""
    out = canonical_genai(case["attrs"], case["events"], start_ns=case["start_ns"], failed=case["failed"])
    return jsonable({k: v for k, v in out.items() if v is not None})


def messages_output(attrs: dict[str, Any]) -> Any:
    """The attributes left after the content split, and each content item as `[kind, source, body]`."""
    split = split_content(attrs)
    return jsonable({"attributes": split.attributes, "items": [(i.kind, i.source, i.body) for i in split.items]})


# --- decode ---------------------------------------------------------------------------------------

# User prices for every model name a decode case can carry, so that decoded costs do not change with
# the genai-prices release installed (the pricing golden file covers the database).
_DECODE_PRICES = (
    UserPrice("gpt-4o*", Decimal("2.5"), Decimal(10), cache_read=Decimal("1.25")),
    UserPrice("claude-*", Decimal(3), Decimal(15), Decimal("0.3"), Decimal("3.75"), provider="anthropic"),
    UserPrice("claude-*", Decimal("0.8"), Decimal(4), per_request=Decimal("0.01")),
    UserPrice("*", Decimal("0.5"), Decimal(1)),
)


def decode_output(case: DecodeCase) -> Any:
    """Accepted/rejected counts, errors, spans marked by reason and per partition its span rows, content
    items and unstorable rows."""
    span_limits = limits.SpanLimits(**dict(case.limits))
    try:
        batch = decode_payload("proj", case.payload, PriceBook(_DECODE_PRICES), span_limits)
    except Exception as exc:  # the same failure is the same outcome
        return _raised(exc)
    partitions = []
    for key, part in batch.partitions.items():
        if not (part.spans.schema.equals(SPAN_SCHEMA) and part.content.schema.equals(CONTENT_ITEM_SCHEMA)):
            raise AssertionError(f"partition {key} is not in the storage schema")
        spans = [{k: v for k, v in row.items() if v is not None} for row in part.spans.to_pylist()]
        unstorable = [_unstorable(line) for line in part.unstorable]
        partitions.append(
            {"partition": key, "spans": spans, "content": part.content.to_pylist(), "unstorable": unstorable}
        )
    counts = {"accepted": batch.accepted, "rejected": batch.rejected, "errors": batch.errors, "marked": batch.marked}
    return jsonable({**counts, "partitions": partitions})


def _unstorable(line: bytes) -> Any:
    """A quarantined row's JSON without its None fields (its text if it is not JSON)."""
    try:
        row = json.loads(line)
    except ValueError:
        return line.decode("utf-8", "replace")
    return {k: v for k, v in row.items() if v is not None} if isinstance(row, dict) else row


# --- pricing --------------------------------------------------------------------------------------


def prices_digest(provider: str, model: str) -> str:
    """A digest of one genai-prices model's price data: its golden line is compared only while it is unchanged."""
    snapshot = data_snapshot.get_snapshot()
    for p in snapshot.providers:
        if p.id == provider:
            for m in p.models:
                if m.id == model:
                    return hashlib.sha256(repr(m.prices).encode()).hexdigest()[:16]
    return "absent"


def _cost_text(row: tuple[Any, ...], source: str | None) -> str:
    """`"total input output"` (USD), `"unknown"`, with ` @source` when not the line's source."""
    total, cost_in, cost_out, known, row_source = row
    text = f"{total} {cost_in} {cost_out}" if known else "unknown"
    return text if row_source == source else f"{text} @{row_source}"


def price_output(case: PriceCase) -> Any:
    """The model priced for each of `USAGES` at each time, with a fresh book and then from its caches."""
    book = PriceBook()
    rows = [book.cost_row(case.provider, (case.model,), t, u) for t in case.times_ns for u in USAGES]
    again = [book.cost_row(case.provider, (case.model,), t, u) for t in case.times_ns for u in USAGES]
    if again != rows:
        raise AssertionError(f"{case}: the cached price differs from the first one")
    source = next((r[4] for r in rows if r[4]), None)
    return {
        "prices": prices_digest(case.provider, case.model),
        "source": source,
        "costs": [_cost_text(r, source) for r in rows],
    }


def call_output(case: CallCase) -> Any:
    """`PriceBook.cost`'s fields (total, input, output, known, source) for one call."""
    book = PriceBook(case.user_prices)
    usage = None if case.counts is None else sanitize_usage(*case.counts)
    try:
        cost = book.cost(case.provider, case.models, case.start_ns, usage, error=case.error)
    except Exception as exc:
        return _raised(exc)
    return jsonable(dataclasses.astuple(cost))


# --- stitch ---------------------------------------------------------------------------------------

# The stitcher writes its files durably (fsync): in memory where the system offers it, ~10x faster.
MEMORY_FS = "/dev/shm" if Path("/dev/shm").is_dir() else None
_WALL_CLOCK = {stitch.TRACES_DIR: "updated_ns", stitch.LLM_DUPS_DIR: "marked_ns"}


def stitch_output(case: StitchCase) -> Any:
    """Per partition of each flush, the `llm_dup` marks and counters; then every trace delta and `llm_dups`
    row written (wall-clock columns left out), by partition and WAL range."""
    clock = SimpleNamespace(now=1000.0)
    fake_time = SimpleNamespace(monotonic=lambda: clock.now, time_ns=time.time_ns)
    with tempfile.TemporaryDirectory(dir=MEMORY_FS) as tmp, mock.patch.object(stitch, "time", fake_time):
        data_dir = Path(tmp)
        stitcher = stitch.Stitcher(data_dir, window_s=10.0, max_traces=case.max_traces)
        steps = []
        for n, flush in enumerate(case.flushes):
            for part in flush:
                clock.now += part.advance
                steps.append(_stitch_step(stitcher, part, n))
            stitcher.after_flush(n, n + 1)
        files = {dataset: _written(data_dir, dataset) for dataset in _WALL_CLOCK}
    return jsonable({"steps": steps, **files})


def _stitch_step(stitcher: stitch.Stitcher, part: StitchPart, n: int) -> dict[str, Any]:
    marked = stitcher.before_write(part.key, part.table())
    if part.written:
        table = marked.sort_by([("trace_id", "ascending"), ("start_ns", "ascending")])
        stitcher.after_write(part.key, table, n, n + 1)
    return {
        "llm_dup": marked.column("llm_dup").to_pylist(),
        "dups_marked": stitcher.dups_marked,
        "deltas_written": stitcher.deltas_written,
    }


def _written(data_dir: Path, dataset: str) -> list[Any]:
    files = []
    for path in sorted((data_dir / dataset).rglob("*.parquet")):
        rows = pq.read_table(path).drop_columns([_WALL_CLOCK[dataset]]).to_pylist()
        files.append({"file": [str(path.parent.relative_to(data_dir)), wal_range_of(path.name)], "rows": rows})
    files.sort(key=lambda f: repr(jsonable(f)))  # (file names end in a random part)
    return files


def _twice(output: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`output`, checked to give the same answer a second time (with the processors' per-key caches warm)."""

    def checked(case: Any) -> Any:
        first = output(case)
        if output(case) != first:
            raise AssertionError(f"{output.__name__}: a second run on the same input gives another output")
        return first

    return checked


OUTPUTS: dict[str, Callable[[Any], Any]] = {
    "normalize": _twice(normalize_output),
    "messages": _twice(messages_output),
    "decode": _twice(decode_output),
    "pricing": lambda case: call_output(case) if isinstance(case, CallCase) else price_output(case),
    "stitch": stitch_output,
}
