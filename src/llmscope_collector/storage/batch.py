"""What the processors hand to storage: one request's decoded spans, by partition.

Declared by storage (the writer's input contract), filled by `processors.decode` in the decode
workers and written by `storage.parquet_writer`; neither side imports the other for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

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
    `sizes`: for the tables unpacked from a decode worker's results (`unpack`), the bytes each holds (`held_bytes`).
    """

    spans: pa.Table
    content: pa.Table
    unstorable: list[bytes] = dataclasses.field(default_factory=list)
    scores: pa.Table | None = None
    previews: pa.Table | None = None
    sizes: tuple[tuple[pa.Table, int], ...] = dataclasses.field(default=(), compare=False, repr=False)

    def held_bytes(self, table: pa.Table) -> int | None:
        """The bytes `table` (one of this part's tables, as unpacked) references: the bodies of its IPC record
        batches, which it reads zero-copy; None for a table made since (e.g. filtered) or not unpacked.

        Known when the worker packs the part (`_Streams.write`), so the collector's writer need not walk
        the ~300 buffers of a span table for `Table.get_total_buffer_size` (~35-49 us a part of ~217 spans
        under the ingest bench, ~4-6% of the collector's GIL). A body is exactly those buffers, each
        padded to 8 bytes, so it is at least that sum and at most 7 bytes a buffer more (+0.1% for that
        part; up to 2x for a part of a few spans, whose flush the row bound starts long before the byte
        bound): a byte bound on it bounds memory at least as tightly."""
        for known, size in self.sizes:
            if known is table:
                return size
        return None

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


Decoded = DecodedBatch | BaseException
"""One WAL record's decode: its batch, or the exception that stopped it."""

_KINDS = ("spans", "content", "scores", "previews")  # a `DecodedPart`'s tables, as its fields name them
_TableRef = tuple[int, int, int, int] | None  # (stream, first record batch, record batches, their bytes), or none
_PackedPart = tuple[PartitionKey, list[bytes], _TableRef, _TableRef, _TableRef, _TableRef]  # unstorable, _KINDS
_PackedBatch = tuple[int, int, list[str], dict[str, int], list[_PackedPart]]  # accepted ... marked, parts
PackedResults = list[_PackedBatch | BaseException]
"""What goes with the streams of a packed `DecodedList`: per result its small parts (which tables of which
stream) or its exception."""


class DecodedList(list[Decoded]):
    """A decode task's results, packed to cross a process boundary.

    Sent back by a worker, a task's tables (~100 for 32 records: spans, content and previews of each)
    would be an IPC stream each, every stream a schema and a message to write and parse, and a bytes
    object to pickle. Packed, all the tables of one schema are one stream (a record batch per table
    chunk); the batches' small parts (counts, errors, keys, unstorable lines) and any exception are
    pickled as they are. Unpickled (by the pool's result thread), it is a plain list again, its tables
    read zero-copy from the streams, equal to the sent ones (schema and metadata included).

    One buffer per stream, not one for all: the writer lets go of the spans (copied into one table) before
    it writes a flush's content and previews, and one buffer would hold them all until then (measured:
    the collector's peak ~20-35 MB higher under the ingest bench)."""

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        streams, packed = pack(self)
        return unpack, ([stream.to_pybytes() for stream in streams], packed)


class _Streams:
    """Record batches grouped by schema: one IPC stream each; a table's reference counts the bytes its
    record batches take in their stream (`DecodedPart.held_bytes`), known once the streams are written."""

    def __init__(self) -> None:
        self.schemas: list[pa.Schema] = []
        self.batches: list[list[pa.RecordBatch]] = []
        self.sizes: list[list[int]] = []  # per stream, the body bytes of each record batch (`write`: `_body_sizes`)

    def add(self, table: pa.Table | None) -> tuple[int, int, int] | None:
        if table is None:
            return None
        schema = table.schema
        stream = next((n for n, known in enumerate(self.schemas) if known.equals(schema, check_metadata=True)), None)
        if stream is None:
            stream = len(self.schemas)
            self.schemas.append(schema)
            self.batches.append([])
        batches = self.batches[stream]
        first = len(batches)
        batches.extend(table.to_batches())
        return stream, first, len(batches) - first

    def write(self) -> list[pa.Buffer]:
        out = []
        for schema, batches in zip(self.schemas, self.batches, strict=True):
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, schema) as writer:
                for batch in batches:
                    writer.write_batch(batch)
            stream = sink.getvalue()
            self.sizes.append(_body_sizes(stream))
            out.append(stream)
        return out

    def sized(self, ref: tuple[int, int, int] | None) -> _TableRef:
        """`ref` (of `add`) with the bytes of its record batches (after `write`)."""
        if ref is None:
            return None
        stream, first, count = ref
        return stream, first, count, sum(self.sizes[stream][first : first + count])


def _body_sizes(stream: pa.Buffer) -> list[int]:
    """The bytes of each record batch's body in `stream` (with those of the dictionaries sent just before it):
    read from the messages' headers, ~1 us a message, zero-copy."""
    sizes = []
    dictionaries = 0
    for message in pa.ipc.MessageReader.open_stream(stream):
        if message.type == "record batch":
            sizes.append(dictionaries + message.body.size)
            dictionaries = 0
        elif message.type == "dictionary batch":
            dictionaries += message.body.size
    return sizes


def pack(results: Sequence[Decoded]) -> tuple[list[pa.Buffer], PackedResults]:
    """`results` as IPC streams (one per schema) and what `unpack` needs besides them."""
    streams = _Streams()
    packed: PackedResults = []
    for result in results:
        if isinstance(result, BaseException):
            packed.append(result)
            continue
        parts: list[_PackedPart] = [
            (key, part.unstorable, *(streams.add(getattr(part, kind)) for kind in _KINDS))  # type: ignore[misc]
            for key, part in result.partitions.items()
        ]
        packed.append((result.accepted, result.rejected, result.errors, result.marked, parts))
    buffers = streams.write()
    for done in packed:  # each table's bytes, now that its stream is written
        if not isinstance(done, BaseException):
            done[4][:] = [(key, lines, *map(streams.sized, refs)) for key, lines, *refs in done[4]]  # type: ignore[misc, arg-type]
    return buffers, packed


def unpack(buffers: Sequence[bytes], packed: PackedResults) -> list[Decoded]:
    """The results `pack` made these streams and `packed` of; their tables read zero-copy from `buffers`."""
    streams: list[tuple[pa.Schema, list[pa.RecordBatch]]] = []
    for buffer in buffers:
        reader = pa.ipc.open_stream(buffer)
        streams.append((reader.schema, list(reader)))

    def table(ref: _TableRef) -> pa.Table | None:
        if ref is None:
            return None
        schema, batches = streams[ref[0]]
        return pa.Table.from_batches(batches[ref[1] : ref[1] + ref[2]], schema)

    def part(unstorable: list[bytes], refs: Sequence[_TableRef]) -> DecodedPart:
        tables = [table(ref) for ref in refs]
        sizes = tuple((t, ref[3]) for t, ref in zip(tables, refs, strict=True) if t is not None and ref is not None)
        spans, content, scores, previews = tables
        return DecodedPart(spans, content, unstorable, scores, previews, sizes)  # type: ignore[arg-type]

    out: list[Decoded] = []
    for result in packed:
        if isinstance(result, BaseException):
            out.append(result)
            continue
        accepted, rejected, errors, marked, parts = result
        partitions = {key: part(unstorable, refs) for key, unstorable, *refs in parts}
        out.append(DecodedBatch(partitions, accepted, rejected, errors, marked))
    return out
