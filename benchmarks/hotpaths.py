"""Per-span CPU of the ingest hot paths, in-process: the whole decode, normalization, content split, limits, pricing.

    python benchmarks/hotpaths.py [--requests 8] [--repeat 5] [--reference]

Spans are the realistic agent traces of `otlp_traces` (as `ingest.py` sends them). Each function is
timed over every span's decoded attributes (best of `--repeat` passes, µs per span; pricing per LLM
span). `--reference` also times the frozen pre-optimization copies in `tests/collector/reference`,
in the same run, so before/after numbers share one machine state (the whole decode against
`reference/decode.py`, the content split with its items hashed as the decoder needs them).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from ingest import build_templates  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

from llmscope_collector.processors import cost, limits, messages, normalize  # noqa: E402
from llmscope_collector.processors.decode import attributes_dict  # noqa: E402
from llmscope_collector.processors.decode_pool import decode_payload  # noqa: E402


def _events(span: Any) -> list[dict[str, Any]]:
    return [
        {"time_ns": e.time_unix_nano, "name": e.name, "attributes": attributes_dict(e.attributes)} for e in span.events
    ]


def _spans(protos: list[bytes]) -> list[tuple[Any, dict[str, Any], list[dict[str, Any]]]]:
    out = []
    for body in protos:
        request = ExportTraceServiceRequest.FromString(body)
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                out.extend((span, attributes_dict(span.attributes), _events(span)) for span in ss.spans)
    return out


def _best(fn: Callable[[], object], n: int, repeat: int) -> float:
    """Best-of-`repeat` µs per item of a pass over `n` items."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e6


def _price_args(spans: list[tuple[Any, dict[str, Any], list[dict[str, Any]]]]) -> list[tuple[Any, ...]]:
    args = []
    for span, attrs, events in spans:
        g = normalize.canonical_genai(attrs, events, start_ns=span.start_time_unix_nano)
        if g["operation"] not in normalize.LLM_OPERATIONS:
            continue
        tokens = (g["input_tokens"], g["output_tokens"], g["cache_read_tokens"], g["cache_write_tokens"])
        usage = None if all(t is None for t in tokens) else cost.sanitize_usage(*tokens)
        args.append((g["provider"], (g["response_model"], g["request_model"]), span.start_time_unix_nano, usage))
    return args


def _split_hashed(msgs: ModuleType, attrs: dict[str, Any]) -> object:
    if hasattr(msgs, "split_hashed"):
        return msgs.split_hashed(attrs)
    return [(item.hash, item.body) for item in msgs.split_content(attrs).items]


def _measure(
    label: str,
    mods: tuple[ModuleType, ModuleType, ModuleType, ModuleType],
    spans: list[tuple[Any, dict[str, Any], list[dict[str, Any]]]],
    price_args: list[tuple[Any, ...]],
    repeat: int,
) -> dict[str, float]:
    norm, msgs, lim, cst = mods
    n = len(spans)
    book = cst.PriceBook()
    for a in price_args:  # warm the per-model caches: steady-state ingest prices cache hits
        book.cost(*a)
    limited = [lim.apply_span_limits(span, attrs) for span, attrs, _ in spans]
    results = {
        "canonical_genai": _best(
            lambda: [norm.canonical_genai(a, e, start_ns=s.start_time_unix_nano) for s, a, e in spans], n, repeat
        ),
        "split_content + hashes": _best(lambda: [_split_hashed(msgs, a) for a in limited], n, repeat),
        "apply_span_limits": _best(lambda: [lim.apply_span_limits(s, a) for s, a, _ in spans], n, repeat),
        "PriceBook.cost (per LLM span)": _best(lambda: [book.cost(*a) for a in price_args], len(price_args), repeat),
    }
    print(f"{label}:")
    for name, us in results.items():
        print(f"  {name:32s} {us:8.2f} µs")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reference", action="store_true", help="also time tests/collector/reference")
    args = parser.parse_args()
    protos, _, counts = build_templates(args.requests, 40, 3)
    spans = _spans(protos)
    price_args = _price_args(spans)
    print(f"{len(spans)} spans ({len(price_args)} LLM spans) in {len(protos)} requests")
    decode = _best(lambda: [decode_payload("default", p) for p in protos], sum(counts), args.repeat)
    print(f"decode_payload (whole span): {decode:.2f} µs/span")
    if args.reference:
        from tests.collector.reference.decode import decode_payload as ref_decode

        ref = _best(lambda: [ref_decode("default", p) for p in protos], sum(counts), args.repeat)
        print(f"decode_payload, reference (before): {ref:.2f} µs/span ({(1 - decode / ref) * 100:.0f}% less now)")
    _measure("current", (normalize, messages, limits, cost), spans, price_args, args.repeat)
    if args.reference:
        from tests.collector.reference import cost as rc
        from tests.collector.reference import limits as rl
        from tests.collector.reference import messages as rm
        from tests.collector.reference import normalize as rn

        _measure("reference (before)", (rn, rm, rl, rc), spans, price_args, args.repeat)


if __name__ == "__main__":
    main()
