"""Prices the LLM rows of a decoded partition (cost columns of the span table).

A span's cost depends on that span only (its provider, models, tokens, start time and status), so
it is computed where the span is decoded, in the decode workers, not on the single writer thread.
"""

from __future__ import annotations

from typing import Any

from llmscope_collector.processors.cost import UNKNOWN, PriceBook, SpanCost, sanitize_usage
from llmscope_collector.processors.normalize import LLM_OPERATIONS

_LLM = frozenset(LLM_OPERATIONS)
_USAGE = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def price_rows(cols: dict[str, list[Any]], prices: PriceBook) -> None:
    """Fill `cost_*` of every LLM row in place (other rows keep None: they are not model calls)."""
    for i, operation in enumerate(cols["operation"]):
        if operation not in _LLM:
            continue
        cost = _price(cols, i, prices)
        cols["cost_usd"][i], cols["cost_input_usd"][i], cols["cost_output_usd"][i] = cost.total, cost.input, cost.output
        cols["cost_known"][i], cols["cost_source"][i] = cost.known, cost.source


def _price(cols: dict[str, list[Any]], i: int, prices: PriceBook) -> SpanCost:
    tokens = [cols[f][i] for f in _USAGE]
    usage = None if all(t is None for t in tokens) else sanitize_usage(*tokens)
    models = (cols["response_model"][i], cols["request_model"][i])
    if not any(models):
        return UNKNOWN
    error = cols["status_code"][i] == "ERROR"
    return prices.cost(cols["provider"][i], models, cols["start_ns"][i], usage, error=error)
