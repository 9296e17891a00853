"""The preview candidates the decode workers would send with stored span rows and their content items.

Tests that build span tables by hand (rows with `content_refs`, a content table with the bodies) get
the candidates from the same function the workers run (`processors.previews.preview_candidates`).
"""

from __future__ import annotations

import pyarrow as pa

from llmscope_collector.processors.previews import preview_candidates


def candidates(spans: pa.Table, content: pa.Table | None) -> pa.Table | None:
    """`spans`' preview candidates, in its rows' order, from the bodies `content` holds (None: none)."""
    if content is None:
        return None
    bodies = dict(zip(content.column("hash").to_pylist(), content.column("body").to_pylist(), strict=True))
    refs = [
        None if not row else [(r["kind"], r["source"], r["hash"], r["bytes"]) for r in row if r["hash"] in bodies]
        for row in spans.column("content_refs").to_pylist()
    ]
    items = [[(r[2], bodies[r[2]]) for r in row or ()] for row in refs]
    column = spans.column
    return preview_candidates(
        column("trace_id").to_pylist(),
        column("start_ns").to_pylist(),
        column("end_ns").to_pylist(),
        column("operation").to_pylist(),
        refs,
        items,
    )
