"""What the processors hand to storage: one request's decoded spans, by partition.

Declared by storage (the writer's input contract), filled by `processors.decode` in the decode
workers and written by `storage.parquet_writer`; neither side imports the other for it.
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa

PartitionKey = tuple[str, str]  # (project, date)


@dataclasses.dataclass
class DecodedPart:
    """One partition's spans of one request, ready to write.

    `spans` has `SPAN_SCHEMA` with cost columns filled (`llm_dup` is the writer's to set);
    `content` the captured content items (`CONTENT_ITEM_SCHEMA`, one row per distinct hash);
    `unstorable` rows Arrow could not hold, as JSON lines for the quarantine (never silently lost);
    `scores` the scores of the partition (`SCORE_SCHEMA`), when the request carried any;
    `previews` what the rows' content says for the trace list (`processors.previews`: per trace, the rows
    whose lines it can show), when any row has some: made where the content is decoded, handed to the
    flush hook with the rows. Its `row` column is a row's position in `spans` (a writer that drops rows
    asks the hook for the kept rows' previews: `FlushHook.kept_previews`), its `trace_id` and
    `start_ns` those of the row (the writer orders them as the span file's rows).
    """

    spans: pa.Table
    content: pa.Table
    unstorable: list[bytes] = dataclasses.field(default_factory=list)
    scores: pa.Table | None = None
    previews: pa.Table | None = None

    # Sent back from the decode workers as Arrow IPC streams: ~10x cheaper than pickling the tables.
    def __getstate__(self) -> tuple[bytes, bytes, list[bytes], bytes | None, bytes | None]:
        scores = None if self.scores is None else _ipc_bytes(self.scores)
        previews = None if self.previews is None else _ipc_bytes(self.previews)
        return _ipc_bytes(self.spans), _ipc_bytes(self.content), self.unstorable, scores, previews

    def __setstate__(self, state: tuple[bytes, bytes, list[bytes], bytes | None, bytes | None]) -> None:
        spans, content, self.unstorable, scores, previews = state
        self.spans = pa.ipc.open_stream(spans).read_all()
        self.content = pa.ipc.open_stream(content).read_all()
        self.scores = None if scores is None else pa.ipc.open_stream(scores).read_all()
        self.previews = None if previews is None else pa.ipc.open_stream(previews).read_all()


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


@dataclasses.dataclass
class DecodedBatch:
    """Decoded spans by partition plus what was rejected and why, and how many spans were marked.

    `marked` (reason → spans) is counted where the spans were decoded, often a worker process, and
    comes back with the batch so the server that owns it adds it to its own metrics."""

    partitions: dict[PartitionKey, DecodedPart] = dataclasses.field(default_factory=dict)
    accepted: int = 0
    rejected: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    marked: dict[str, int] = dataclasses.field(default_factory=dict)
