"""The bounded-memory merge of a compaction group (storage.merge) against a plain in-memory merge.

The reference reads every file whole, keeps the first row of each key (and none another file
holds), sorts the kept rows stably with nulls last, and slices them into files and row groups:
what compaction did before the merge was streamed. On arbitrary groups (sorted and unsorted
files, duplicates within and across files, null keys, an older file with fewer columns and one
the schema does not know) the streamed merge writes the same files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmscope_collector.durable_io import write_parquet
from llmscope_collector.storage.merge import MergeRule, plan

SCHEMA = pa.schema(
    [
        pa.field("trace_id", pa.string()),
        pa.field("span_id", pa.string()),
        pa.field("start_ns", pa.int64()),
        pa.field("body", pa.string()),
        pa.field("tags", pa.list_(pa.field("element", pa.string()))),  # as Parquet names it
    ]
)
SPANS_LIKE = MergeRule(SCHEMA, ("trace_id", "span_id"), ("trace_id", "start_ns"))
DELTAS_LIKE = MergeRule(SCHEMA, (), ("trace_id",))

ids = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "é", "ab"]))
rows = st.fixed_dictionaries(
    {
        "trace_id": ids,
        "span_id": ids,
        "start_ns": st.one_of(st.none(), st.integers(min_value=0, max_value=5)),
        "body": st.text(max_size=30),
        "tags": st.lists(st.text(max_size=4), max_size=3),
    }
)
files = st.lists(st.tuples(st.lists(rows, max_size=40), st.booleans(), st.booleans()), min_size=1, max_size=6)


def _sort_key(columns: tuple[str, ...]) -> Any:
    return lambda row: tuple((row[c] is None, row[c] if row[c] is not None else 0) for c in columns)


def _write(path: Path, records: list[dict[str, Any]], sort: bool, legacy: bool, rule: MergeRule) -> list[dict]:
    """One input file (sorted by the rule, as writers make them, or not); returns its rows as the
    merge sees them (a legacy file lacks `tags` and has a column the schema does not know)."""
    if sort:
        records = sorted(records, key=_sort_key(rule.sort))
    table = pa.Table.from_pylist(records, schema=SCHEMA)
    if legacy:
        extra = pa.array([f"x{i}" for i in range(len(records))], pa.string())
        table = table.drop_columns(["tags"]).append_column("extra", extra)
    pq.write_table(table, path, row_group_size=7)
    return [{**r, "tags": None, "extra": f"x{i}"} if legacy else {**r, "extra": None} for i, r in enumerate(records)]


def _slices(rows: int, size: int) -> list[int]:
    return [min(size, rows - start) for start in range(0, rows, size)]


def _reference(inputs: list[list[dict]], stored: set[tuple], rule: MergeRule) -> list[dict]:
    seen: set[tuple] = set()
    kept = []
    for row in (r for rows_ in inputs for r in rows_):
        key = tuple(row[k] for k in rule.keys)
        if rule.keys and (key in seen or key in stored):
            seen.add(key)
            continue
        seen.add(key)
        kept.append(row)
    return sorted(kept, key=_sort_key(rule.sort))  # Python's sort is stable, as Arrow's is


@given(
    groups=files,
    others=st.lists(st.tuples(st.sampled_from(["a", "b", "é"]), st.sampled_from(["a", "c"])), max_size=6),
    rows_per_file=st.integers(min_value=1, max_value=60),
    row_group_size=st.integers(min_value=1, max_value=25),
    keyed=st.booleans(),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_streamed_merge_writes_what_an_in_memory_merge_writes(
    tmp_path_factory: Any,
    groups: list[tuple[list[dict], bool, bool]],
    others: list[tuple[str, str]],
    rows_per_file: int,
    row_group_size: int,
    keyed: bool,
) -> None:
    rule = SPANS_LIKE if keyed else DELTAS_LIKE
    root: Path = tmp_path_factory.mktemp("merge")
    paths, inputs = [], []
    for n, (records, sort, legacy) in enumerate(groups):
        paths.append(root / f"in-{n}.parquet")
        inputs.append(_write(paths[-1], records, sort, legacy, rule))
    other = root / "other.parquet"
    keys = {
        "trace_id": pa.array([t for t, _ in others], pa.string()),
        "span_id": pa.array([s for _, s in others], pa.string()),
    }
    pq.write_table(pa.table(keys), other)
    stored = {tuple(pair) for pair in others} if keyed else set()

    merged = plan(paths, rule, [other])
    spill = root / "spill"
    spill.mkdir()
    removed = merged.spill(spill, rows_per_file, row_group_size, keep_removed=True)
    outputs = []
    for n, row_groups in enumerate(merged.files()):
        outputs.append(root / f"out-{n}.parquet")
        write_parquet(row_groups, merged.schema, outputs[-1], row_group_size=row_group_size)
    assert not list(spill.iterdir())  # every spill file read back and removed

    expected = _reference(inputs, stored, rule)
    all_rows = [r for rows_ in inputs for r in rows_]
    assert merged.schema.names == ([*SCHEMA.names, "extra"] if any(g[2] for g in groups) else SCHEMA.names)
    assert (merged.rows_in, merged.num_rows) == (len(all_rows), len(expected))
    assert removed.num_rows == len(all_rows) - len(expected)
    written = [pq.read_table(path) for path in outputs]
    assert [t.num_rows for t in written] == _slices(len(expected), rows_per_file)
    for path, table in zip(outputs, written, strict=True):
        meta = pq.read_metadata(path)
        assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == _slices(
            table.num_rows, row_group_size
        )
        assert table.schema.equals(merged.schema, check_metadata=True)
    got = [r for table in written for r in table.to_pylist()]
    names = merged.schema.names
    assert got == [{name: row.get(name) for name in names} for row in expected]
