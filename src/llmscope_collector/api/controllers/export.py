"""`GET /v1/export`: the traces the trace list's filters select, or their spans, streamed as JSON
lines or CSV with bounded memory.

The export walks the trace list page by page (oldest first, by its cursor) through the query
backend, so it works on every query engine, holds one page (and one trace's spans) at a time, and
sends the rows as they are produced. Columns are those of the API's structs (derived from the
storage declaration), so an export has the trace list's and the waterfall's fields, in their order.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter
from litestar.response import Stream

from llmscope_collector.api.controllers.traces import TRACE_FILTERS, UNAUTHENTICATED
from llmscope_collector.api.schemas import ErrorBody
from llmscope_collector.query.backend import QueryBackend
from llmscope_collector.query.filters import TraceQuery
from llmscope_collector.query.models import TraceSummary, WaterfallSpan

PAGE = 500  # traces per page of the walk: what the export holds in memory at a time
CHUNK_BYTES = 64 * 1024  # rows are sent in chunks of about this size
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
# The columns of each level, from the API structs (span rows lead with their trace id).
TRACE_COLUMNS = tuple(f.name for f in msgspec.structs.fields(TraceSummary))
SPAN_COLUMNS = ("trace_id", *(f.name for f in msgspec.structs.fields(WaterfallSpan) if f.name != "children"))

Level = Literal["traces", "spans"]


class ExportController(Controller):
    path = "/v1/export"
    tags = ["export"]
    dependencies = {"trace_filters": TRACE_FILTERS}

    @get(
        "/",
        operation_id="export",
        summary="Stream the filtered traces (or their spans) as JSON lines or CSV; the trace list's filters",
        responses={400: ResponseSpec(data_container=ErrorBody, description="Invalid parameter"), **UNAUTHENTICATED},
        sync_to_thread=True,
    )
    def export(
        self,
        store: NamedDependency[QueryBackend],
        caller_project: NamedDependency[str],
        trace_filters: NamedDependency[TraceQuery],
        format_: Annotated[Literal["jsonl", "csv"], QueryParameter(name="format")] = "jsonl",
        level: Annotated[Level, QueryParameter(description="one row per trace, or per span")] = "traces",
    ) -> Stream:
        rows = export_rows(store, caller_project, trace_filters, level)
        columns = TRACE_COLUMNS if level == "traces" else SPAN_COLUMNS
        body = jsonl_chunks(rows) if format_ == "jsonl" else csv_chunks(rows, columns)
        filename = f"llmscope-{caller_project}-{level}.{format_}"
        return Stream(
            body,
            media_type=MEDIA_TYPES[format_],
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )


def export_rows(store: QueryBackend, project: str, filters: TraceQuery, level: Level) -> Iterator[dict[str, Any]]:
    """The selected traces, oldest first (or each one's spans in waterfall order), one page at a time."""
    query = dataclasses.replace(filters, sort="start", order="asc", limit=PAGE, cursor=None)
    while True:
        page = store.list_traces(project, query)
        for summary in page.traces:
            if level == "traces":
                yield msgspec.to_builtins(summary)
                continue
            waterfall = store.get_trace(summary.trace_id, project)
            for span in waterfall.spans if waterfall is not None else ():
                if not span.synthetic:
                    row = msgspec.to_builtins(span)
                    row.pop("children", None)
                    yield {"trace_id": summary.trace_id, **row}
        if page.next_cursor is None:
            return
        query = dataclasses.replace(query, cursor=page.next_cursor)


def jsonl_chunks(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    encoder = msgspec.json.Encoder()
    buffer = bytearray()
    for row in rows:
        encoder.encode_into(row, buffer, -1)
        buffer += b"\n"
        if len(buffer) >= CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def csv_chunks(rows: Iterator[dict[str, Any]], columns: tuple[str, ...]) -> Iterator[bytes]:
    """CSV with a header; lists, maps and structs in a cell are JSON, null is an empty cell."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in columns])
        if text.tell() >= CHUNK_BYTES:
            yield text.getvalue().encode()
            text.seek(0)
            text.truncate()
    if text.tell():
        yield text.getvalue().encode()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return msgspec.json.encode(value).decode()
    return value
