"""Interop II (issue 16): frameworks that make the model calls themselves (LiteLLM, DSPy, the Vercel AI SDK).

Each drives the real package against the simulated provider and reads the trace back through the API.
The truth is what the framework got from the provider (its usage object), and the cost is an independent
`genai-prices` calculation from those counts, compared exactly with the API's (12 decimals). The tree is
checked too: each call's LLM span under the span that made it, counted once with its cache tokens.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from genai_prices import Usage, calc_price
from tests.interop.harness import AppPipeline, Recorder, fetch_trace, get_json, llm_spans, raw_attributes

from llmscope_collector.server import EmbeddedServer

SYSTEM = "You are a careful assistant for a parcel company. Answer in one short sentence, politely."
QUESTION = "Where is my parcel?"
MODEL = "gpt-4o-mini"


@dataclasses.dataclass(frozen=True)
class Truth:
    """One model call as the provider answered it (OTel semantics: input includes cache)."""

    label: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read: int = 0
    cache_write: int = 0
    response_id: str | None = None
    stream: bool = False

    def cost(self) -> Decimal:
        """What genai-prices says the call cost, computed here from the provider's counts."""
        usage = Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read,
            cache_write_tokens=self.cache_write,
        )
        price = calc_price(usage, model_ref=self.model, provider_id=self.provider)
        return price.total_price.quantize(Decimal("0.000000000001"))


def openai_truth(label: str, usage: Any, response_id: str | None, *, stream: bool = False) -> Truth:
    """From an OpenAI-shaped usage (object or dict): prompt tokens include the cached ones."""
    get = usage.get if isinstance(usage, dict) else lambda k: getattr(usage, k, None)
    details = get("prompt_tokens_details")
    cached = (details.get("cached_tokens") if isinstance(details, dict) else getattr(details, "cached_tokens", 0)) or 0
    return Truth(label, "openai", MODEL, get("prompt_tokens"), get("completion_tokens"), cached, 0, response_id, stream)


def check_tree_and_counts(
    rec: Recorder,
    server: EmbeddedServer,
    app: AppPipeline | None,
    trace_id: str,
    calls: list[Truth],
    *,
    parents: set[str] | None = None,
) -> dict[str, Any]:
    """Each truth must be one counted LLM span (in order) with its exact tokens and cost; the trace's
    totals must be their sums. `parents`: span names an LLM span may sit under (the tree). `app`: the
    Python app's pipeline (its in-memory copy has the raw attributes); None for a Node app, whose raw
    attributes are read back from the API (stored as sent)."""
    waterfall = fetch_trace(server, trace_id, *(() if app is None else (app,)))
    raw_spans = app.raw() if app is not None else None

    def raw_of(span_id: str) -> dict[str, Any]:
        if raw_spans is not None:
            return raw_attributes(raw_spans[span_id])
        attributes: dict[str, Any] = span_detail(server, trace_id, span_id).get("attributes") or {}
        return attributes

    by_id = {s["span_id"]: s for s in waterfall["spans"]}
    counted = sorted((s for s in llm_spans(waterfall) if s.get("counted", True)), key=lambda s: s["start_offset_ms"])
    rec.ok(
        "structure",
        len(counted) == len(calls),
        f"{len(calls)} calls gave {len(counted)} counted LLM spans: "
        f"{[(s['name'], s['operation']) for s in waterfall['spans']]}",
    )
    for span, call in zip(counted, calls, strict=False):
        raw = raw_of(span["span_id"])
        label = call.label
        rec.value("provider", f"{label}: provider", span["provider"], call.provider, raw)
        rec.value("model", f"{label}: model", _model(span), call.model, raw)
        feature = "tokens (stream)" if call.stream else "tokens"
        rec.value(feature, f"{label}: input tokens", span["input_tokens"], call.input_tokens, raw)
        rec.value(feature, f"{label}: output tokens", span["output_tokens"], call.output_tokens, raw)
        if call.cache_read:
            rec.value("cache tokens", f"{label}: cache read", span["cache_read_tokens"], call.cache_read, raw)
        if call.cache_write:
            rec.value("cache tokens", f"{label}: cache write", span["cache_write_tokens"], call.cache_write, raw)
        if call.response_id:
            rec.value("response id", f"{label}: response id", span["response_id"], call.response_id, raw)
        shown = Decimal(str(span["cost_usd"])) if span.get("cost_usd") is not None else None
        exact = shown is not None and abs(shown - call.cost()) < Decimal("1e-15")  # (the API's float)
        rec.ok("cost", exact, f"{label}: cost {shown} != genai-prices {call.cost()}")
        parent = by_id.get(span["parent_span_id"] or "")
        if parents is not None:
            name = parent["name"] if parent else None
            rec.ok("structure", name in parents, f"{label}: parent {name!r}, expected one of {sorted(parents)}")
            if parent:
                rec.info["tree"] = f"{parent['name']} ⊃ {span['name']}"
    totals = waterfall["totals"]
    want = (len(calls), sum(c.input_tokens for c in calls), sum(c.output_tokens for c in calls))
    got = (totals["llm_calls"], totals["input_tokens"], totals["output_tokens"])
    rec.ok("structure", got == want, f"totals (calls, input, output) {got} != {want}")
    rec.ok(
        "cache tokens",
        totals["cache_read_tokens"] == sum(c.cache_read for c in calls),
        f"totals.cache_read_tokens {totals['cache_read_tokens']}",
    )
    cost = sum((c.cost() for c in calls), Decimal(0))
    shown_total = Decimal(str(totals["cost_usd"])) if totals.get("cost_usd") is not None else None
    rec.ok(
        "cost",
        shown_total is not None and abs(shown_total - cost) < Decimal("1e-11"),
        f"totals.cost_usd {shown_total} != {cost}",
    )
    return waterfall


def _model(span: dict[str, Any]) -> str | None:
    """The model behind a routing prefix (`openai/gpt-4o-mini` is priced and compared as gpt-4o-mini)."""
    model = span["response_model"] or span["request_model"]
    return model.split("/", 1)[1] if model and model.startswith("openai/") else model


def span_detail(server: EmbeddedServer, trace_id: str, span_id: str) -> dict[str, Any]:
    detail: dict[str, Any] = get_json(f"{server.api_url}/v1/spans/{trace_id}/{span_id}")
    return detail
