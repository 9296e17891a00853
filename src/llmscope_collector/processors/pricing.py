"""Prices the LLM rows of a decoded partition (cost columns of the span table).

When the price source does not know a call's model, the cost the instrumentation reported itself
(`reported_cost_usd`, e.g. LiteLLM's `gen_ai.cost.total_cost`) is used, with `cost_source` "reported":
a known model is always priced by llmscope, and the reported value stays beside it for comparison.

A span's cost depends on that span only (its provider, models, tokens, start time and status), so
it is computed where the span is decoded, in the decode workers, not on the single writer thread.
Rows are priced as tuples of the `SpanCost` fields (`PriceBook.cost_row`): building a `Usage4` and a
`SpanCost` per span (frozen dataclasses) cost as much as the pricing itself.
"""

from __future__ import annotations

from typing import Any

from llmscope_collector.processors.cost import (
    REPORTED_SOURCE,
    UNKNOWN_ROW,
    FixedRates,
    PriceBook,
    rated_row,
    sanitized_counts,
)
from llmscope_collector.storage.schema import LLM_OPERATIONS

_LLM = frozenset(LLM_OPERATIONS)
_USAGE = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
_MAX_NS = 2**63 - 1  # a start `PriceBook.cost_row` converts without fail (`fixed_rates` holds for any such)
COST_FIELDS = ("cost_usd", "cost_input_usd", "cost_output_usd", "cost_known", "cost_source")


def price_rows(cols: dict[str, list[Any]], prices: PriceBook) -> None:
    """Fill `cost_*` of every LLM row in place (other rows keep None: they are not model calls)."""
    rows = [i for i, operation in enumerate(cols["operation"]) if operation in _LLM]
    if not rows:
        return
    inputs, outputs, reads, writes = (cols[f] for f in _USAGE)
    providers, responses, requests = cols["provider"], cols["response_model"], cols["request_model"]
    starts, codes = cols["start_ns"], cols["status_code"]
    total, cost_in, cost_out, known, source = (cols[f] for f in COST_FIELDS)
    reported = cols["reported_cost_usd"]
    fixed: dict[tuple[str | None, str | None, str | None], FixedRates | None] = {}
    for i in rows:
        inp, out, read, write = inputs[i], outputs[i], reads[i], writes[i]
        if inp is None and out is None and read is None and write is None:
            counts = None
        else:
            counts = sanitized_counts(inp, out, read, write)
        provider, models, start = providers[i], (responses[i], requests[i]), starts[i]
        if not (models[0] or models[1]):
            row = UNKNOWN_ROW
        elif counts is not None and type(start) is int and 0 <= start <= _MAX_NS:
            key = (provider, *models)
            rates = fixed[key] if key in fixed else fixed.setdefault(key, prices.fixed_rates(provider, models))
            if rates is None:
                row = prices.cost_row(provider, models, start, counts, error=codes[i] == "ERROR")
            else:
                row = rated_row(*rates, counts)
        else:
            row = prices.cost_row(provider, models, start, counts, error=codes[i] == "ERROR")
        if not row[3] and reported[i] is not None:  # our price source does not know the model
            row = (reported[i], None, None, True, REPORTED_SOURCE)
        total[i], cost_in[i], cost_out[i], known[i], source[i] = row
