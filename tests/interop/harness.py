"""The interop test bench: an app-side OTel pipeline to the collector, and a recorder that tells apart
what a third-party instrumentation did not send from what llmscope failed to recognize.

Every span the app exports also lands in an in-memory exporter (a real OTel SDK exporter, side by
side with OTLP), so when an API column is empty the recorder can look at the exact attributes the
package emitted: if one of them carries the expected value, the normalization table is missing that
name (a gap, named in the failure and in docs/interop.md); if none does, the package does not report it.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import re
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span

from llmscope_collector.server import EmbeddedServer

RESULTS_DIR = Path(__file__).parent / "results"
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})


class AppPipeline:
    """What an instrumented app has: a TracerProvider exporting OTLP to llmscope (plus a memory copy)."""

    def __init__(self, server: EmbeddedServer, service: str, transport: str = "grpc") -> None:
        self.server = server
        self.memory = InMemorySpanExporter()
        if transport == "grpc":
            exporter: Any = GrpcExporter(endpoint=f"http://127.0.0.1:{server.grpc_port}", insecure=True)
        else:
            exporter = HttpExporter(endpoint=f"http://127.0.0.1:{server.http_port}/v1/traces")
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("interop-app")

    def raw(self) -> dict[str, ReadableSpan]:
        """Every span finished so far, by hex span id."""
        return {format(s.context.span_id, "016x"): s for s in self.memory.get_finished_spans()}

    def shutdown(self) -> None:
        self.provider.shutdown()


def hex_trace_id(span: Span) -> str:
    return format(span.get_span_context().trace_id, "032x")


def hex_span_id(span: Span) -> str:
    return format(span.get_span_context().span_id, "016x")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def fetch_trace(server: EmbeddedServer, trace_id: str, *pipelines: AppPipeline) -> dict[str, Any]:
    """Export everything the apps ended, make it queryable, and read the waterfall over HTTP."""
    for pipeline in pipelines:
        assert pipeline.provider.force_flush(30_000), "the OTLP exporter did not drain"
    server.collector.flush()
    body: dict[str, Any] = get_json(f"{server.api_url}/v1/traces/{trace_id}")
    return body


def llm_spans(waterfall: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for s in waterfall["spans"] if s.get("operation") in LLM_OPERATIONS]


def raw_attributes(span: ReadableSpan) -> dict[str, Any]:
    """Span attributes plus event attributes as `event:<event name>:<key>` (where errors often live),
    and each event's name as `event:<event name>` (some events say it all by their time alone)."""
    attrs: dict[str, Any] = dict(span.attributes or {})
    for event in span.events:
        attrs.setdefault(f"event:{event.name}", None)  # None: never taken for a value the provider returned
        for key, value in (event.attributes or {}).items():
            attrs[f"event:{event.name}:{key}"] = value
    return attrs


# ---------------------------------------------------------------------------------------------- recorder

# Outcomes, worst first. `gap` and `wrong` fail the test; the others are facts for the matrix.
WRONG, GAP, UPSTREAM, ABSENT, OK = "wrong", "gap", "upstream", "absent", "ok"
_RANK = {WRONG: 0, GAP: 1, UPSTREAM: 2, ABSENT: 3, OK: 4}

# Which raw keys can carry a feature's value: used to tell "sent under a name we miss" from a coincidence.
_HINTS = {
    "provider": r"provider|system",
    "model": r"model",
    "tokens": r"token|usage",
    "cache tokens": r"cache",
    "status": r"error|exception|status",
    "stream": r"stream|first_chunk|first token",
    "structure": r"operation|kind|type",
}

# Normalization gaps reported to the table's owner and not mapped yet: the assertion xfails with this
# text instead of failing (docs/interop.md "Known gaps"). Keyed by (feature, raw attribute key).
KNOWN_GAPS: dict[tuple[str, str], str] = {}


@dataclasses.dataclass(frozen=True)
class Check:
    feature: str
    outcome: str
    note: str


class Recorder:
    """Collects per-feature outcomes for the matrix; `verify()` turns gaps/wrong values into failures."""

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.info: dict[str, str] = {}

    def _add(self, feature: str, outcome: str, note: str = "") -> None:
        self.checks.append(Check(feature, outcome, note))

    def ok(self, feature: str, condition: bool, note: str) -> None:
        """A check with no third-party side: it holds or the collector is wrong."""
        self._add(feature, OK if condition else WRONG, "" if condition else note)

    def absent(self, feature: str, note: str) -> None:
        self._add(feature, ABSENT, note)

    def upstream(self, feature: str, note: str) -> None:
        self._add(feature, UPSTREAM, note)

    def value(self, feature: str, what: str, shown: Any, truth: Any, raw: Mapping[str, Any]) -> None:
        """Compare an API column with the provider's truth, blaming the right side on a mismatch."""
        if _same(shown, truth):
            return self._add(feature, OK)
        hint = re.compile(_HINTS.get(feature, r"."), re.I)
        carrying = sorted(k for k, v in raw.items() if _same(v, truth) and hint.search(k))
        if carrying:
            return self._add(feature, GAP, f"{what}: sent as `{'`, `'.join(carrying)}`, API shows {shown!r}")
        candidates = {k: v for k, v in raw.items() if hint.search(k) and _same(v, shown)}
        if shown is not None and candidates:
            keys = ", ".join(f"`{k}`={v!r}" for k, v in sorted(candidates.items()))
            return self._add(feature, UPSTREAM, f"{what}: package sends {keys}, provider said {truth!r}")
        if shown is None:
            return self._add(feature, ABSENT, f"{what} not sent")
        return self._add(feature, WRONG, f"{what}: API shows {shown!r}, expected {truth!r}, raw has none")

    def present(self, feature: str, what: str, shown: Any, raw: Mapping[str, Any], keys: Iterable[str]) -> None:
        """A column that must be non-empty when the package sent any of `keys` (e.g. error.type)."""
        sent = sorted(k for k in raw if any(re.fullmatch(p, k) for p in keys))
        if shown not in (None, "", []):
            return self._add(feature, OK)
        if sent:
            return self._add(feature, GAP, f"{what}: sent as `{'`, `'.join(sent)}`, API shows {shown!r}")
        return self._add(feature, ABSENT, f"{what} not sent")

    def verify(self) -> None:
        failing = [c for c in self.checks if c.outcome in (WRONG, GAP)]
        unknown = [c for c in failing if not (c.outcome == GAP and _known_gap(c))]
        if unknown:
            pytest.fail("\n".join(f"[{c.feature}] {c.outcome}: {c.note}" for c in unknown), pytrace=False)
        if failing:
            pytest.xfail("; ".join(f"[{c.feature}] {_known_gap(c)}: {c.note}" for c in failing))


def _known_gap(check: Check) -> str | None:
    return next(
        (why for (feature, key), why in KNOWN_GAPS.items() if feature == check.feature and key in check.note), None
    )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return a is None and b is None


# ------------------------------------------------------------------------------------------ matrix rows


def write_results(
    package: str, distribution: str | None, clients: Iterable[str], recorders: Iterable[Recorder], dialect: str
) -> None:
    """One JSON per interop param; tests/interop/matrix.py renders docs/interop.md from all of them."""
    features: dict[str, dict[str, Any]] = {}
    info: dict[str, str] = {}
    for recorder in recorders:
        info.update(recorder.info)
        for check in recorder.checks:
            cell = features.setdefault(check.feature, {"outcome": OK, "notes": []})
            if _RANK[check.outcome] < _RANK[cell["outcome"]]:
                cell["outcome"] = check.outcome
            if check.note and check.outcome != OK and check.note not in cell["notes"]:
                cell["notes"].append(check.note)
    row = {
        "param": package,
        "package": distribution,
        "dialect": dialect,
        "version": _version(distribution) if distribution else None,
        "clients": {name: _version(name) for name in clients if name},  # plain-otel has no client
        "otel_sdk": _version("opentelemetry-sdk"),
        "info": dict(sorted(info.items())),
        "features": dict(sorted(features.items())),
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{package}.json").write_text(json.dumps(row, indent=2, sort_keys=True) + "\n")


# The Vercel AI SDK param's npm packages (tests/interop/vercel): not Python distributions.
NODE_MODULES = Path(__file__).parent / "vercel" / "node_modules"


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        pass
    manifest = NODE_MODULES / distribution / "package.json"
    if distribution.startswith(("ai", "@ai-sdk/", "@opentelemetry/")) and manifest.is_file():
        version: str | None = json.loads(manifest.read_text()).get("version")
        return version
    return None
