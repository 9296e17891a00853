"""What each LLM call cost, computed at ingest from a maintained price DB (`genai-prices`).

Token counts follow OTel: `input_tokens` INCLUDES cache reads and writes, which is also what
genai-prices' `Usage` expects (it prices `input - cache_read - cache_write` at the input rate and the
cache parts at their own rates). A sender that reports cache tokens beyond its input count is using
the provider's exclusive convention (Anthropic's raw API), so the cache tokens are added back.

Price lookups are cached per (provider, model), a model's dated price per UTC day, and each price's
per-token rates per tier band; the arithmetic for plain token prices is done here (the same leaf
rules, tier cliffs and Decimal operations as genai-prices, checked against it by property tests), so
pricing a span is a few dict lookups and Decimal multiplications (~1 µs; `cost_row`, for `price_rows`,
also skips the two frozen dataclasses per span that `cost` returns and takes). An unknown model or
provider gives cost NULL and `cost_known = false`, never $0. A user price file
(`LLMSCOPE_PRICES_FILE`, JSON or TOML: model glob → USD per million input/output/cache tokens)
overrides the DB.

This module owns the resolution (genai-prices' model matching, dated prices, the rates of a price);
`pricing` owns what needs no genai-prices (the arithmetic of resolved rates, user prices, the decode
workers' `PriceTable`, which `PriceBook.entry` fills), so that the workers never load genai-prices.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path

from genai_prices import Usage, data_snapshot
from genai_prices.types import (
    ModelInfo,
    ModelPrice,
    Provider,
    StartDateConstraint,
    TieredPrices,
    calc_unit_price,
)

from llmscope_collector.processors.normalize import model_prefix
from llmscope_collector.processors.pricing import (
    BOOK_ONLY,
    DAY_NS,
    FREE_ROW,
    MAX_NS,
    MIDNIGHT_MARGIN_NS,
    UNKNOWN_ROW,
    Band,
    Bands,
    CostRow,
    Counts,
    DbPrice,
    FixedRates,
    PriceEntry,
    PriceFileError,
    UserPrice,
    load_price_file,
    priced,
    rated_row,
    sanitized_counts,
)
from llmscope_collector.storage.schema import REPORTED_SOURCE

# genai-prices provider ids for OTel `gen_ai.provider.name` values it would not match by itself.
_PROVIDER_IDS = {
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "x_ai": "x-ai",
    "mistral_ai": "mistral",
    "moonshot_ai": "moonshotai",
    "together_ai": "together",
    "aws.bedrock": "aws",
}
_TOKEN_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "requests_kcount")
# Prices of units a span never reports (modality/TTL subsets, searches, pages, audio hours): they count 0,
# and being subsets they leave the input/cache leaves unchanged, so they are safe to ignore.
_INERT_KEYS = frozenset(
    {
        "cache_write_1h_mtok",
        "cache_write_5m_mtok",
        "input_audio_mtok",
        "input_image_mtok",
        "input_video_mtok",
        "cache_audio_read_mtok",
        "cache_image_read_mtok",
        "output_audio_mtok",
        "output_image_mtok",
        "output_video_mtok",
        "output_citation_mtok",
        "web_searches_kcount",
        "storage_searches_kcount",
        "input_text_messages_kcount",
        "input_document_kpages",
        "input_annotated_document_kpages",
        "audio_hours",
        "input_audio_hours",
    }
)
_MILLION = Decimal(1_000_000)


@dataclasses.dataclass(frozen=True)
class Usage4:
    """A span's token counts in OTel convention (input includes cache)."""

    input: int
    output: int
    cache_read: int
    cache_write: int


@dataclasses.dataclass(frozen=True)
class SpanCost:
    total: Decimal | None
    input: Decimal | None
    output: Decimal | None
    known: bool
    source: str | None


UNKNOWN = SpanCost(*UNKNOWN_ROW)
FREE = SpanCost(*FREE_ROW)


@dataclasses.dataclass(frozen=True)
class _DbModel:
    provider: Provider
    model: ModelInfo
    source: str


def sanitize_usage(
    input_tokens: int | None, output: int | None, cache_read: int | None, cache_write: int | None
) -> Usage4:
    """Counts as OTel defines them: non-negative, with cache tokens inside `input`."""
    return Usage4(*sanitized_counts(input_tokens, output, cache_read, cache_write))


class PriceBook:
    """Prices spans; thread-compatible (one flush thread). Its per-model cache is emptied when it holds
    `MAX_CACHED_MODELS` (model names are the client's: a sender minting new ones must not grow it without
    end; a deployment uses a few dozen)."""

    MAX_CACHED_MODELS = 16_384

    def __init__(self, user_prices: tuple[UserPrice, ...] = ()) -> None:
        self._user_prices = user_prices
        self._snapshot = data_snapshot.get_snapshot()
        self._provider_ids = frozenset(p.id for p in self._snapshot.providers)
        self._cache: dict[tuple[str | None, str], UserPrice | _DbModel | None] = {}
        self._rates: dict[int, tuple[ModelPrice, _Rates | None]] = {}  # by id of a snapshot ModelPrice
        self._dated: dict[tuple[int, int], tuple[ModelInfo, ModelPrice]] = {}  # by (id of model, UTC day)

    @classmethod
    def from_file(cls, path: str | Path | None) -> PriceBook:
        """The price book with the user's price file (`LLMSCOPE_PRICES_FILE`) on top, if one is set."""
        return cls(load_price_file(Path(path)) if path else ())

    def cost(
        self,
        provider: str | None,
        models: tuple[str | None, ...],
        start_ns: int,
        usage: Usage4 | None,
        *,
        error: bool = False,
    ) -> SpanCost:
        """The cost of one LLM call; `models` in preference order (response model first)."""
        counts = None if usage is None else (usage.input, usage.output, usage.cache_read, usage.cache_write)
        return SpanCost(*self.cost_row(provider, models, start_ns, counts, error=error))

    def cost_row(
        self,
        provider: str | None,
        models: tuple[str | None, ...],
        start_ns: int,
        counts: Counts | None,
        *,
        error: bool = False,
    ) -> CostRow:
        """`cost` as a tuple of its fields, from a `Usage4`'s fields (no dataclass built per span)."""
        if counts is None:
            return FREE_ROW if error else UNKNOWN_ROW  # a failed call without usage is not billed
        for model in models:
            if model:
                priced = self._lookup(provider, model)
                if priced is not None:
                    return self._apply(priced, counts, start_ns)
        return UNKNOWN_ROW

    def _lookup(self, provider: str | None, model: str) -> UserPrice | _DbModel | None:
        key = (provider, model)
        found = self._cache.get(key, _MISSING)
        if found is _MISSING:
            if len(self._cache) >= self.MAX_CACHED_MODELS:
                self._cache.clear()
            found = self._cache[key] = self._resolve(provider, model)
        return found  # type: ignore[return-value]

    def _resolve(self, provider: str | None, model: str) -> UserPrice | _DbModel | None:
        """The price of `model` as sent, else of the model behind a routing prefix by the prefix's
        provider (`openai/gpt-4o-mini`; OpenRouter's own `openai/gpt-4o-mini` matches as sent first).
        A provider name the price source does not know (a framework's own name in `gen_ai.system`)
        does not make a known model unpriced: it is matched by the model alone."""
        routed = model_prefix(model)
        candidates = [(provider, model)] if routed is None else [(provider, model), routed]
        for candidate_provider, candidate_model in candidates:
            for price in self._user_prices:
                if price.matches(candidate_provider, candidate_model):
                    return price
            found = self._find(candidate_provider, candidate_model)
            if found is not None:
                return found
        return None

    def _find(self, provider: str | None, model: str) -> _DbModel | None:
        provider_id = _PROVIDER_IDS.get(provider, provider) if provider else None
        if provider_id is not None and provider_id not in self._provider_ids:
            provider_id = None  # a name the price source does not know: match by the model alone
        try:
            found_provider, found_model = self._snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError:
            return None
        return _DbModel(found_provider, found_model, f"genai-prices:{found_provider.id}/{found_model.id}")

    def _apply(self, found: UserPrice | _DbModel, counts: Counts, start_ns: int) -> CostRow:
        if isinstance(found, UserPrice):
            return found.cost_row(counts)
        when: dt.datetime | None = None
        prices = found.model.prices
        if type(start_ns) is int and 0 <= start_ns <= MAX_NS:  # no timestamp conversion can fail
            model_price = prices if isinstance(prices, ModelPrice) else self._dated_price(found.model, start_ns)
        else:
            when = dt.datetime.fromtimestamp(start_ns / 1e9, tz=dt.timezone.utc)
            model_price = prices if isinstance(prices, ModelPrice) else found.model.get_prices(when)
        try:
            rates = self._rates_of(model_price)
            if rates is not None:
                cost_in, cost_out, per_request = rates.cost(*counts)
                return priced(cost_in, cost_out, found.source, per_request)
            inp, out, read, write = counts
            calc = found.model.calc_price(
                Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=read, cache_write_tokens=write),
                found.provider,
                genai_request_timestamp=when or dt.datetime.fromtimestamp(start_ns / 1e9, tz=dt.timezone.utc),
            )
        except (ValueError, ArithmeticError):
            return UNKNOWN_ROW
        return priced(
            calc.input_price, calc.output_price, found.source, calc.total_price - calc.input_price - calc.output_price
        )

    def fixed_rates(self, provider: str | None, models: tuple[str | None, ...]) -> FixedRates | None:
        """The rates and source `cost_row` prices any call of `models` by, whatever its start, when the price is
        one `ModelPrice` (not dated); None when `cost_row` decides call by call. Found once per batch, so that
        a row is priced by `rated_row` alone."""
        for model in models:
            if model:
                found = self._lookup(provider, model)
                if found is None:
                    continue
                if not isinstance(found, _DbModel) or not isinstance(found.model.prices, ModelPrice):
                    return None
                try:
                    rates = self._rates_of(found.model.prices)
                except (ValueError, ArithmeticError):  # `cost_row` makes it UNKNOWN_ROW
                    return None
                return None if rates is None else (rates, found.source)
        return None

    def entry(self, provider: str | None, model: str) -> PriceEntry | str:
        """What a decode worker's `PriceTable` prices `model` (sent with `provider`) by: this book's resolution
        as plain data, or `BOOK_ONLY` when only this book's rules price it (a unit or a tier `Bands` do not
        cover, a price decided by more than the UTC date)."""
        found = self._lookup(provider, model)
        if not isinstance(found, _DbModel):
            return found
        prices = found.model.prices
        try:
            if isinstance(prices, ModelPrice):
                plain = self._rates_of(prices)
                return BOOK_ONLY if plain is None or plain.plain is None else DbPrice(found.source, (), (plain.plain,))
            if not all(isinstance(c.constraint, (StartDateConstraint, type(None))) for c in prices):
                return BOOK_ONLY
            days = sorted(
                {_epoch_day(c.constraint.start_date) for c in prices if isinstance(c.constraint, StartDateConstraint)}
            )
            bands = []
            for day in [days[0] - 1 if days else 0, *days]:  # a day of each span between price changes
                rates = self._rates_of(found.model.get_prices(_noon(day)))
                if rates is None or rates.plain is None:
                    return BOOK_ONLY
                bands.append(rates.plain)
        except (ValueError, ArithmeticError, OverflowError):
            return BOOK_ONLY
        return DbPrice(found.source, tuple(days), tuple(bands))

    def _dated_price(self, model: ModelInfo, start_ns: int) -> ModelPrice:
        """The model's conditional price in force at `start_ns`, cached per UTC day when only dates decide it."""
        conditional = model.prices
        assert not isinstance(conditional, ModelPrice)
        if MIDNIGHT_MARGIN_NS <= start_ns % DAY_NS < DAY_NS - MIDNIGHT_MARGIN_NS and all(
            isinstance(c.constraint, (StartDateConstraint, type(None))) for c in conditional
        ):
            key = (id(model), start_ns // DAY_NS)  # the snapshot keeps `model` alive, so its id is stable
            found = self._dated.get(key)
            if found is None or found[0] is not model:
                found = self._dated[key] = (model, model.get_prices(_when(start_ns)))
            return found[1]
        return model.get_prices(_when(start_ns))

    def _rates_of(self, price: ModelPrice) -> _Rates | None:
        found = self._rates.get(id(price))
        if found is None or found[0] is not price:
            found = self._rates[id(price)] = (price, _Rates.of(price))
        return found[1]


def _when(start_ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(start_ns / 1e9, tz=dt.timezone.utc)


_EPOCH = dt.date(1970, 1, 1)


def _epoch_day(date: dt.date) -> int:
    return (date - _EPOCH).days


def _noon(day: int) -> dt.datetime:
    return dt.datetime.combine(_EPOCH + dt.timedelta(days=day), dt.time(12), tzinfo=dt.timezone.utc)


_MISSING = object()
_ZERO = Decimal(0)


@dataclasses.dataclass(frozen=True)
class _Rates:
    """One `ModelPrice`'s token prices, resolved once, for prices the plain leaf/tier rules cover.

    When every price is plain Decimals over int tier starts, `plain` holds them resolved per tier band
    (`pricing.Bands`: what a decode worker prices by too); otherwise genai-prices' `calc_unit_price`
    applies the tiers call by call."""

    input: Decimal | TieredPrices | None
    cache_read: Decimal | TieredPrices | None
    cache_write: Decimal | TieredPrices | None
    output: Decimal | TieredPrices | None
    requests: Decimal | TieredPrices | None
    plain: Bands | None

    @classmethod
    def of(cls, price: ModelPrice) -> _Rates | None:
        """None when genai-prices' full rules are needed (a price for a unit not covered here)."""
        values = {k: v for k, v in vars(price).items() if v is not None and not k.startswith("_")}
        if any(k not in _TOKEN_KEYS and k not in _INERT_KEYS for k in values):
            return None
        fields = ("input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok", "requests_kcount")
        inp, read, write, out, requests = prices = tuple(values.get(k) for k in fields)
        tiered = [p for p in prices if isinstance(p, TieredPrices)]
        starts = sorted({tier.start for p in tiered for tier in p.tiers})
        plain = all(
            p is None
            or type(p) is Decimal
            or (type(p) is TieredPrices and type(p.base) is Decimal and all(type(t.price) is Decimal for t in p.tiers))
            for p in prices
        ) and all(type(s) is int for s in starts)
        if not plain:
            return cls(inp, read, write, out, requests, None)
        bands: list[Band] = []
        # A count in band i exceeds starts[:i] and no more; a representative count picks each price's tier.
        for count in [starts[0] if starts else 0, *(s + 1 for s in starts)]:
            b_in, b_read, b_write, b_out, b_requests = (_tier_price(p, count) for p in prices)
            fee = _ZERO if b_requests is None else b_requests * Decimal(1) / 1000
            bands.append((_per_token(b_in), _per_token(b_read), _per_token(b_write), _per_token(b_out), fee))
        return cls(inp, read, write, out, requests, Bands(tuple(starts), tuple(bands)))

    def cost(self, inp: int, out: int, read: int, write: int) -> tuple[Decimal, Decimal, Decimal]:
        """Input, output and per-request cost of a `Usage4`'s counts: the leaf rules and tier cliffs of genai-prices."""
        if self.plain is not None:
            cost = self.plain.cost(inp, out, read, write)
            if cost is not None:
                return cost
        leaf_input = inp
        if self.cache_read is not None:
            leaf_input -= read
        if self.cache_write is not None:
            leaf_input -= write
        cost_in = calc_unit_price(self.input, leaf_input, inp, 1_000_000)
        cost_in += calc_unit_price(self.cache_read, read, inp, 1_000_000)
        cost_in += calc_unit_price(self.cache_write, write, inp, 1_000_000)
        cost_out = calc_unit_price(self.output, out, inp, 1_000_000)
        return cost_in, cost_out, calc_unit_price(self.requests, 1, inp, 1000)


def _per_token(price: Decimal | None) -> Decimal | None:
    return None if price is None else price / _MILLION


def _tier_price(price: Decimal | TieredPrices | None, total_input_tokens: int) -> Decimal | None:
    """The per-unit price `calc_unit_price` applies at this input count (its cliff rule, verbatim)."""
    if not isinstance(price, TieredPrices):
        return price
    applicable = price.base
    for tier in reversed(price.tiers):
        if total_input_tokens > tier.start:
            return tier.price
    return applicable


__all__ = [
    "BOOK_ONLY",
    "FREE",
    "REPORTED_SOURCE",
    "UNKNOWN",
    "UNKNOWN_ROW",
    "CostRow",
    "Counts",
    "DbPrice",
    "FixedRates",
    "PriceBook",
    "PriceEntry",
    "PriceFileError",
    "SpanCost",
    "TieredPrices",
    "Usage4",
    "UserPrice",
    "load_price_file",
    "rated_row",
    "sanitize_usage",
    "sanitized_counts",
]
