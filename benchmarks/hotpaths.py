"""Per-span CPU of the ingest hot paths, in-process: the whole decode, normalization, content split, limits, pricing.

    python benchmarks/hotpaths.py [--requests 8] [--repeat 5] [--baseline REV]
    python benchmarks/hotpaths.py --callgrind [--passes 2]   (instructions per span, under valgrind)

Spans are the realistic agent traces of `otlp_traces` (as `ingest.py` sends them). Each function is
timed over every span's decoded attributes (best of `--repeat` passes, CPU µs per span; pricing per
LLM span); the whole decode with each OTLP decoder (native, pure Python), then stage by stage.
`--baseline REV` times normalize, messages, limits and cost as committed at a git revision too, in
the same run, so before/after numbers share one machine state: `HEAD` measures the change in the
working tree. (The modules' imports resolve to the current tree: a revision importing a module since
removed cannot load, e.g. those before the runtime change removed `prometheus_text`.)

`--callgrind` counts instructions instead (deterministic, unlike the clock on a shared machine): per
stage (`CALLGRIND_STAGES`: the whole `decode_payload`, the preview candidates of its parts) it runs
this script under valgrind twice, with 0 and `--passes` passes of the stage after the same set-up and
warm-up pass, and divides the difference of their main threads' counts by the spans decoded. Every
pass has new content (as the timed whole decode above), so the content split's memo hits only what a
request resends itself. After its set-up a run tunes the GC as a decode worker does (`tune_gc`): with
CPython's defaults the count included collections production does not run (base decode_payload 104.2k
instructions a span, 93.4k tuned).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from baseline import module_at  # noqa: E402
from ingest import build_templates  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from otlp_traces import CONTENT_MARKER  # noqa: E402

from llmscope_collector.process_memory import tune_gc  # noqa: E402
from llmscope_collector.processors import cost, decode, limits, messages, native, normalize, pricing  # noqa: E402
from llmscope_collector.processors import limits as lim  # noqa: E402
from llmscope_collector.processors.decode import attributes_dict  # noqa: E402
from llmscope_collector.processors.decode_pool import decode_payload  # noqa: E402
from llmscope_collector.processors.limits import DEFAULT_LIMITS  # noqa: E402


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
    """Best-of-`repeat` CPU µs per item of a pass over `n` items (this process's CPU time, not wall
    time: on a shared, loaded machine the wall clock also counts the time other processes ran)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best / n * 1e6


def _best_each(fn: Callable[[Any], object], inputs: list[Any], n: int) -> float:
    """`_best` with each pass over its own input: the content split remembers content it hashed (as
    the decode workers do across requests), so passes over the same spans would time only memo hits."""
    best = float("inf")
    for data in inputs:
        t0 = time.process_time()
        fn(data)
        best = min(best, time.process_time() - t0)
    return best / n * 1e6


def _fresh(protos: list[bytes], repeat: int) -> list[list[bytes]]:
    """`repeat` copies of the requests, each with new captured content (the templates' content marker
    swapped for a pass number, as `ingest.py` swaps it per send: the same length, so still valid)."""
    marker = CONTENT_MARKER.encode()
    return [[p.replace(marker, f"{i:016x}".encode()) for p in protos] for i in range(1, repeat + 1)]


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


_PRICED_COLUMNS = ("operation", "provider", "request_model", "response_model", "reported_cost_usd", *pricing._USAGE)
_COST_COLUMNS = ("cost_usd", "cost_input_usd", "cost_output_usd", "cost_known", "cost_source")


def _price_cols(spans: list[tuple[Any, dict[str, Any], list[dict[str, Any]]]]) -> dict[str, list[Any]]:
    """The columns `price_rows` reads, as decode hands them over (every span: it skips the non-LLM rows)."""
    rows = [normalize.canonical_genai(a, e, start_ns=s.start_time_unix_nano) for s, a, e in spans]
    cols = {c: [r[c] for r in rows] for c in _PRICED_COLUMNS}
    cols["start_ns"] = [s.start_time_unix_nano for s, _, _ in spans]
    cols["status_code"] = ["ERROR" if s.status.code == 2 else "UNSET" for s, _, _ in spans]
    for name in _COST_COLUMNS:
        cols[name] = [None] * len(spans)
    return cols


def _reference_price_rows(cst: ModuleType) -> Callable[[dict[str, list[Any]], Any], None]:
    """`pricing.price_rows` as it was before the per-span CPU work (it calls `cst`'s PriceBook)."""
    llm = frozenset(normalize.LLM_OPERATIONS)

    def price(cols: dict[str, list[Any]], i: int, prices: Any) -> Any:
        tokens = [cols[f][i] for f in pricing._USAGE]
        usage = None if all(t is None for t in tokens) else cst.sanitize_usage(*tokens)
        models = (cols["response_model"][i], cols["request_model"][i])
        if not any(models):
            return cst.UNKNOWN
        error = cols["status_code"][i] == "ERROR"
        return prices.cost(cols["provider"][i], models, cols["start_ns"][i], usage, error=error)

    def price_rows(cols: dict[str, list[Any]], prices: Any) -> None:
        for i, operation in enumerate(cols["operation"]):
            if operation not in llm:
                continue
            c = price(cols, i, prices)
            cols["cost_usd"][i], cols["cost_input_usd"][i], cols["cost_output_usd"][i] = c.total, c.input, c.output
            cols["cost_known"][i], cols["cost_source"][i] = c.known, c.source

    return price_rows


def _modules_at(rev: str) -> tuple[ModuleType, ModuleType, ModuleType, ModuleType]:
    """normalize, messages, limits and cost as committed at `rev` (imported under their own names)."""
    path = "src/llmscope_collector/processors/{}.py"
    mods = [module_at(rev, path.format(name)) for name in ("normalize", "messages", "limits", "cost")]
    return mods[0], mods[1], mods[2], mods[3]


def _limited(lim: ModuleType, span: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    """`apply_span_limits` at the default limits, called as the module's revision defines it."""
    if hasattr(lim, "DEFAULT_LIMITS"):  # the server's limits passed in, marks counted in a mapping
        return lim.apply_span_limits(span, attrs, lim.DEFAULT_LIMITS, {})  # type: ignore[no-any-return]
    return lim.apply_span_limits(span, attrs)  # type: ignore[no-any-return]  # process-wide limits


def _split_hashed(msgs: ModuleType, attrs: dict[str, Any]) -> object:
    if hasattr(msgs, "split_hashed"):
        return msgs.split_hashed(attrs)
    return [(item.hash, item.body) for item in msgs.split_content(attrs).items]


def _measure(
    label: str,
    mods: tuple[ModuleType, ModuleType, ModuleType, ModuleType],
    spans: list[tuple[Any, dict[str, Any], list[dict[str, Any]]]],
    fresh: list[list[tuple[Any, dict[str, Any], list[dict[str, Any]]]]],
    price_args: list[tuple[Any, ...]],
    price_rows: Callable[[dict[str, list[Any]], Any], None],
    repeat: int,
) -> dict[str, float]:
    norm, msgs, lim, cst = mods
    n = len(spans)
    book = cst.PriceBook()
    for a in price_args:  # warm the per-model caches: steady-state ingest prices cache hits
        book.cost(*a)
    cols = _price_cols(spans)
    results = {
        "canonical_genai": _best(
            lambda: [norm.canonical_genai(a, e, start_ns=s.start_time_unix_nano) for s, a, e in spans], n, repeat
        ),
        "split_content + hashes": _best_each(
            lambda limited: [_split_hashed(msgs, a) for a in limited],
            [[_limited(lim, span, attrs) for span, attrs, _ in pass_spans] for pass_spans in fresh],
            n,
        ),
        "apply_span_limits": _best(lambda: [_limited(lim, s, a) for s, a, _ in spans], n, repeat),
        "PriceBook.cost (per LLM span)": _best(lambda: [book.cost(*a) for a in price_args], len(price_args), repeat),
        "price_rows (per span)": _best(lambda: price_rows(cols, book), n, repeat),
    }
    results["normalize + limits + price_rows"] = sum(
        results[k] for k in ("canonical_genai", "apply_span_limits", "price_rows (per span)")
    )
    print(f"{label}:")
    for name, us in results.items():
        print(f"  {name:32s} {us:8.2f} µs")
    return results


def _fields(protos: list[bytes]) -> list[Any]:
    return [
        f
        for p in protos
        for _, scopes in decode.request_parts(ExportTraceServiceRequest.FromString(p), DEFAULT_LIMITS)
        for _, _, spans in scopes
        for f in spans
    ]


def decode_stages(protos: list[bytes], fresh: list[list[bytes]], n: int, repeat: int) -> dict[str, float]:
    """Where `decode_payload`'s µs per span go, stage by stage, as `decode.decode_parts` runs them."""
    limits = DEFAULT_LIMITS
    out: dict[str, float] = {}
    out["wire → values: upb parse + Python field reads"] = _best(
        lambda: [decode.request_parts(ExportTraceServiceRequest.FromString(p), limits) for p in protos], n, repeat
    )
    if native.AVAILABLE:
        out["wire → values: native (C extension)"] = _best(
            lambda: [native.parse_request(p, limits) for p in protos], n, repeat
        )
    fields = _fields(protos)
    limited = [lim.limit_span(f[9], f[10], f[7], f[8], f[0][4], f[1], limits, {}, None, f[5]) for f in fields]
    out["span limits (limit_span, given within)"] = _best(  # (the decoders send `within_limits` per span)
        lambda: [lim.limit_span(f[9], f[10], f[7], f[8], f[0][4], f[1], limits, {}, None, f[5]) for f in fields],
        n,
        repeat,
    )
    out["normalize (canonical_genai)"] = _best(
        lambda: [
            normalize.canonical_genai(a, f[2], start_ns=f[0][6], failed=False)
            for f, a in zip(fields, limited, strict=True)
        ],
        n,
        repeat,
    )
    split = [messages.split_hashed(a) for a in limited]
    out["content split + hashes (split_hashed)"] = _best_each(
        lambda limited: [messages.split_hashed(a) for a in limited],
        [
            [lim.limit_span(f[9], f[10], f[7], f[8], f[0][4], f[1], limits, {}, None) for f in _fields(pass_protos)]
            for pass_protos in fresh
        ],
        n,
    )
    out["JSON of attributes/events/links"] = _best(
        lambda: [
            (decode._json.encode(light), decode._json.encode(f[2]), decode._json.encode(f[4]))
            for f, (light, _, _) in zip(fields, split, strict=True)
        ],
        n,
        repeat,
    )
    captured: list[dict[str, list[Any]]] = []
    to_part = decode.to_part
    decode.to_part = lambda cols: captured.append({k: list(v) for k, v in cols.items()}) or to_part(cols)  # type: ignore[assignment,func-returns-value]
    try:
        for p in protos:
            decode_payload("default", p)
    finally:
        decode.to_part = to_part
    book = decode.default_prices()
    out["pricing (price_rows)"] = _best(lambda: [pricing.price_rows(dict(c), book) for c in captured], n, repeat)
    out["rows → Arrow tables (to_part)"] = _best(lambda: [to_part(dict(c)) for c in captured], n, repeat)
    return out


CALLGRIND_STAGES = ("decode_payload", "previews")


def callgrind_run(stage: str, passes: int, most: int, requests: int, per_request: int) -> None:
    """The work `--callgrind` counts: set-up (the same for any `passes`: `most` passes' inputs made),
    a warm-up pass, then `passes` passes of `stage` (each over its own new content)."""
    protos, _, _ = build_templates(requests, per_request, 3)
    fresh = _fresh(protos, most + 1)
    if stage == "decode_payload":
        tune_gc()  # as a decode worker runs (its initializer): no collections counted that production skips
        for ps in fresh[: passes + 1]:
            for body in ps:
                decode_payload("default", body)
        return
    captured: list[list[dict[str, list[Any]]]] = []
    to_part = decode.to_part
    for ps in fresh:  # the rows of every pass (the same set-up whatever `passes`), as `to_part` gets them
        rows: list[dict[str, list[Any]]] = []
        decode.to_part = lambda cols, rows=rows: rows.append({k: list(v) for k, v in cols.items()}) or to_part(cols)  # type: ignore[misc]
        try:
            for body in ps:
                decode_payload("default", body)
        finally:
            decode.to_part = to_part
        captured.append(rows)
    tune_gc()
    for rows in captured[: passes + 1]:
        for cols in rows:
            decode._previews(cols, cols[decode.CONTENT_ITEMS], None)


def callgrind(passes: int, requests: int, per_request: int) -> dict[str, float]:
    """Instructions per span of each of `CALLGRIND_STAGES` (see the module's doc)."""
    spans = sum(build_templates(requests, per_request, 3)[2])
    with ThreadPoolExecutor(2) as pool:  # (a run's count does not depend on what else runs)
        runs = {
            (stage, k): pool.submit(_instructions, stage, k, passes, requests, per_request)
            for stage in CALLGRIND_STAGES
            for k in (0, passes)
        }
        counts = {key: run.result() for key, run in runs.items()}
    return {stage: (counts[(stage, passes)] - counts[(stage, 0)]) / (passes * spans) for stage in CALLGRIND_STAGES}


def _instructions(stage: str, passes: int, most: int, requests: int, per_request: int) -> int:
    """The instructions of one `callgrind_run` under valgrind, on its main thread (the decode's: the
    threads pyarrow and the allocator start wake on timers, so their count grows with the wall time a run
    takes under valgrind, which other work on the machine sets)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        args = [f"--callgrind-run={stage}", f"--passes={passes}", f"--most={most}"]
        args += [f"--requests={requests}", f"--traces-per-request={per_request}"]
        cmd = ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}"]
        cmd += [sys.executable, __file__, *args]
        # Same hashes (dict/set layouts) in every run, and no .pyc written: two runs at once racing to write
        # one would count its compile in one run only (the 0-pass run's count is subtracted).
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        main = Path(f"{out}-01")
        found = re.search(r"^(?:summary|totals): (\d+)", main.read_text(errors="replace"), re.M)
    if found is None:
        raise RuntimeError("no instruction total for the main thread in the callgrind output")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--traces-per-request", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", metavar="REV", help="also time the modules as committed at this git revision")
    parser.add_argument("--callgrind", action="store_true", help="instructions per span of each stage, under valgrind")
    parser.add_argument("--passes", type=int, default=2, help="--callgrind: passes counted per stage")
    parser.add_argument("--callgrind-run", choices=CALLGRIND_STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--most", type=int, default=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.callgrind_run:
        callgrind_run(args.callgrind_run, args.passes, args.most, args.requests, args.traces_per_request)
        return
    if args.callgrind:
        for stage, per_span in callgrind(args.passes, args.requests, args.traces_per_request).items():
            print(f"callgrind {stage}: {per_span:,.0f} instructions per span")
        return
    protos, _, counts = build_templates(args.requests, args.traces_per_request, 3)
    spans = _spans(protos)
    price_args = _price_args(spans)
    print(f"{len(spans)} spans ({len(price_args)} LLM spans) in {len(protos)} requests")
    n = sum(counts)
    fresh = _fresh(protos, args.repeat)
    for native_path in (True, False) if native.AVAILABLE else (False,):
        whole = _best_each(lambda ps, p=native_path: [decode_payload("default", b, native=p) for b in ps], fresh, n)  # type: ignore[misc]
        print(f"decode_payload (whole span, {native.decoder_name(native_path)} decoder): {whole:.2f} µs/span")
    print("decode stages, µs per span (each over every span of the requests):")
    for name, us in decode_stages(protos, fresh, n, args.repeat).items():
        print(f"  {name:44s} {us:8.2f}")
    fresh_spans = [_spans(ps) for ps in fresh]
    mods = (normalize, messages, limits, cost)
    now = _measure("current", mods, spans, fresh_spans, price_args, pricing.price_rows, args.repeat)
    if args.baseline:
        base = _modules_at(args.baseline)
        base_prices = _reference_price_rows(base[3])
        then = _measure(f"at {args.baseline}", base, spans, fresh_spans, price_args, base_prices, args.repeat)
        for name in then:
            print(f"  {name:32s} {(1 - now[name] / then[name]) * 100:5.0f}% less now")


if __name__ == "__main__":
    main()
