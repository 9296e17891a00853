"""The stitcher's vectorized trace deltas equal a plain row-by-row model of what a delta means.

`trace_deltas` aggregates a flush's span rows per trace with Arrow group-bys (it runs on the single
writer thread, so it must not loop in Python per span); the model below is the obvious Python
loop: first/last/sum/union per trace in row order, LLM sums only for counted (non-duplicate) calls.
Rows sorted by trace id (a span file's) take the other path for the unions, runs of rows in C
(`arrow_native.run_sets`): the same deltas, each union in the order of its values' first rows.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.processors.arrow_native import run_starts
from llmscope_collector.processors.previews import stored_candidates
from llmscope_collector.processors.stitch import _tag_sets, trace_deltas
from llmscope_collector.storage.schema import SPAN_SCHEMA

_LLM = {"chat", "text_completion", "generate_content", "embeddings"}
_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
_SUMS = (*_TOKENS, "total_tokens", "llm_calls", "cost_unknown", "error_count")


def _model(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        d = out.setdefault(
            r["trace_id"],
            {
                "start_ns": r["start_ns"],
                "end_ns": r["end_ns"],
                "has_root": False,
                "span_count": 0,
                "cost_usd": Decimal(0),
                "session_id": None,
                "user_id": None,
                "root_span_id": None,
                "root_name": None,
                "root_service": None,
                "root_status": None,
                **dict.fromkeys(_SUMS, 0),
                **{k: {} for k in ("services", "tags", "prompts", "prompt_names", "models", "providers")},
            },
        )
        d["start_ns"], d["end_ns"] = min(d["start_ns"], r["start_ns"]), max(d["end_ns"], r["end_ns"])
        d["span_count"] += 1
        d["error_count"] += r["status_code"] == "ERROR"
        if not r["parent_span_id"]:
            d["has_root"] = True
            d.update(
                root_span_id=r["span_id"],
                root_name=r["name"],
                root_service=r["service_name"],
                root_status=r["status_code"],
            )
        d["session_id"] = d["session_id"] or r["session_id"] or None
        d["user_id"] = d["user_id"] or r["user_id"] or None
        name, version = r["prompt_name"] or None, r["prompt_version"] or None
        for field, value in (
            ("services", r["service_name"]),
            ("prompt_names", name),
            ("prompts", f"{name}@{version}" if name and version else name),
        ):
            if value:
                d[field][value] = None
        for tag in r["tags"] or ():
            if tag:
                d["tags"][tag] = None
        if r["operation"] in _LLM and not r["llm_dup"]:
            for f in (*_TOKENS, "total_tokens"):
                d[f] += r[f] or 0
            d["llm_calls"] += 1
            known = bool(r["cost_known"])
            d["cost_unknown"] += 0 if known else 1
            d["cost_usd"] += r["cost_usd"] if known and r["cost_usd"] is not None else Decimal(0)
            model = r["response_model"] or r["request_model"]
            if model:
                d["models"][model] = None
            if r["provider"]:
                d["providers"][r["provider"]] = None
    for d in out.values():
        for k in ("services", "tags", "prompts", "prompt_names", "models", "providers"):
            d[k] = list(d[k]) or None
        d.update(dict.fromkeys(("preview_input", "preview_input_ns", "preview_output", "preview_output_ns")))
    _model_previews(rows, out)
    return out


def _line(text: str | None) -> str | None:
    lines = [line.strip() for line in (text or "").split("\n") if line.strip()]
    if not lines:
        return None
    return lines[0] if len(lines[0]) <= 200 else lines[0][:199] + "…"


def _model_previews(rows: list[dict[str, Any]], out: dict[str, dict[str, Any]]) -> None:
    """Input: the earliest-starting LLM row with input content; output: the latest-ending one with output
    content (ties as in a span file, whose rows are sorted by start: the earlier start, then the first
    row); each row's own text's first line, or none."""
    for side, time, rank in (
        ("input", "start_ns", lambda r: r["start_ns"]),
        ("output", "end_ns", lambda r: (-r["end_ns"], r["start_ns"])),
    ):
        chosen: dict[str, dict[str, Any]] = {}
        for r in rows:
            if r["operation"] not in _LLM or r[f"_{side}"] is None:
                continue
            best = chosen.get(r["trace_id"])
            if best is None or rank(r) < rank(best):
                chosen[r["trace_id"]] = r
        for trace_id, r in chosen.items():
            line = _line(r[f"_{side}"])
            if line is not None:
                out[trace_id].update({f"preview_{side}": line, f"preview_{side}_ns": r[time]})


def _content(rows: list[dict[str, Any]]) -> pa.Table:
    """Each row's drawn texts as content items (a user message in, an assistant message out), referenced by
    the row's `content_refs`."""
    items: dict[str, str] = {}
    for i, r in enumerate(rows):
        refs = []
        for side, kind, role in (("input", "input", "user"), ("output", "output", "assistant")):
            if r[f"_{side}"] is None:
                continue
            body = json.dumps({"role": role, "parts": [{"type": "text", "content": r[f"_{side}"]}]})
            if side == "input":  # a system message before the user's: not what the preview shows
                items[f"sys{i}"] = json.dumps({"role": "system", "parts": [{"type": "text", "content": "be nice"}]})
                refs.append({"kind": kind, "source": "gen_ai.input.messages", "hash": f"sys{i}", "bytes": 1})
            items[f"{side}{i}"] = body
            refs.append({"kind": kind, "source": f"gen_ai.{side}.messages", "hash": f"{side}{i}", "bytes": len(body)})
        r["content_refs"] = refs or None
    return pa.table({"hash": list(items), "body": list(items.values())})


_SETS = ("services", "tags", "prompts", "prompt_names", "models", "providers")
_text = st.sampled_from([None, "", "a", "b", "c@1"])
_tokens = st.one_of(st.none(), st.integers(0, 10_000))
_said = st.sampled_from([None, "", "hello there\nsecond line", "  \n  second first", "x" * 250, "ok"])


@st.composite
def _rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 30))
    rows = []
    for i in range(count):
        start = draw(st.integers(0, 1000))
        row: dict[str, Any] = dict.fromkeys(SPAN_SCHEMA.names)
        row.update(
            trace_id=draw(st.sampled_from(["t1", "t2", "t3"])),
            span_id=f"s{i}",
            parent_span_id=draw(st.sampled_from([None, "", "s0", "s1"])),
            name=draw(_text),
            start_ns=start,
            end_ns=start + draw(st.integers(0, 1000)),
            status_code=draw(st.sampled_from(["OK", "ERROR", "UNSET"])),
            service_name=draw(_text),
            operation=draw(st.sampled_from([None, "chat", "embeddings", "execute_tool", "invoke_agent"])),
            llm_dup=draw(st.sampled_from([None, False, True])),
            cost_known=draw(st.sampled_from([None, False, True])),
            cost_usd=draw(st.one_of(st.none(), st.decimals(0, 5, places=12))),
            session_id=draw(_text),
            user_id=draw(_text),
            tags=draw(st.one_of(st.none(), st.lists(_text.filter(lambda t: t is not None), max_size=3))),
            prompt_name=draw(_text),
            prompt_version=draw(st.sampled_from([None, "", "1", "2"])),
            response_model=draw(_text),
            request_model=draw(_text),
            provider=draw(_text),
            **{f: draw(_tokens) for f in (*_TOKENS, "total_tokens")},
            _input=draw(_said),
            _output=draw(_said),
        )
        rows.append(row)
    return rows


@settings(max_examples=100)
@given(_rows())
def test_vectorized_deltas_equal_the_row_by_row_model(rows: list[dict[str, Any]]) -> None:
    content = _content(rows)
    table = pa.Table.from_pylist(rows, schema=SPAN_SCHEMA)
    got = {r.pop("trace_id"): r for r in trace_deltas(table, [], stored_candidates(table, content)).to_pylist()}
    expected = _model(rows)
    assert list(got) == sorted(expected)  # one row per trace, sorted by trace id
    for trace_id, want in expected.items():
        row = got[trace_id]
        row.pop("updated_ns")
        for field in _SETS:  # unions: their order carries no meaning (DuckDB merges deltas' lists unordered)
            row[field] = sorted(row[field]) if row[field] is not None else None
            want[field] = sorted(want[field]) if want[field] is not None else None
        assert row == want, trace_id


@settings(max_examples=150)
@given(_rows(), st.integers(1, 4))
def test_deltas_of_rows_sorted_by_trace_take_the_runs_and_list_unions_by_first_row(
    rows: list[dict[str, Any]], parts: int
) -> None:
    """A span file's rows (sorted by trace id, then start; a flush's parts as the table's chunks): the
    unions are found by runs of rows, each listed in the order of its values' first rows (the model's),
    every other column as the model has it."""
    rows.sort(key=lambda r: (r["trace_id"], r["start_ns"]))
    content = _content(rows)
    whole = pa.Table.from_pylist(rows, schema=SPAN_SCHEMA)
    cut = sorted({0, len(rows), *(len(rows) * k // parts for k in range(parts))})
    table = pa.concat_tables([whole.slice(a, b - a) for a, b in itertools.pairwise(cut)])
    assert run_starts(table.column("trace_id").combine_chunks()) is not None  # the path taken (C extension)
    got = {r.pop("trace_id"): r for r in trace_deltas(table, [], stored_candidates(whole, content)).to_pylist()}
    expected = _model(rows)
    assert list(got) == sorted(expected)
    for trace_id, want in expected.items():
        row = got[trace_id]
        row.pop("updated_ns")
        assert row == want, trace_id  # the tags too, by runs of the flattened tags (`stitch._tag_runs`)


@settings(max_examples=150)
@given(_rows())
def test_tag_unions_by_runs_equal_the_group_by(rows: list[dict[str, Any]]) -> None:
    """A span file's tags per trace by runs of its flattened tags are Acero's group-by's, list for list
    (what the writer wrote before `_tag_runs`: a flush's delta files are unchanged)."""
    rows.sort(key=lambda r: (r["trace_id"], r["start_ns"]))
    table = pa.Table.from_pylist(rows, schema=SPAN_SCHEMA)
    trace_ids = table.column("trace_id").combine_chunks()
    starts = run_starts(trace_ids)
    assert starts is not None  # (the C extension)
    traces = pa.chunked_array([trace_ids.take(starts.slice(0, len(starts) - 1))])
    by_runs, grouped = _tag_sets(table, traces, starts), _tag_sets(table, traces)
    assert isinstance(by_runs, pa.ListArray)  # (the runs' path was taken)
    tags = SPAN_SCHEMA.field("tags").type
    assert by_runs.cast(tags).to_pylist() == grouped.cast(tags).to_pylist()
