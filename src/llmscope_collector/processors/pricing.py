"""Prices the LLM rows of a decoded partition (cost columns of the span table), without genai-prices.

When the price source does not know a call's model, the cost the instrumentation reported itself
(`reported_cost_usd`, e.g. LiteLLM's `gen_ai.cost.total_cost`) is used, with `cost_source` "reported":
a known model is always priced by llmscope, and the reported value stays beside it for comparison.

A span's cost depends on that span only (its provider, models, tokens, start time and status), so
it is computed where the span is decoded, in the decode workers, not on the single writer thread.
Rows are priced as tuples of the `SpanCost` fields (`cost_row`): building a `Usage4` and a `SpanCost`
per span (frozen dataclasses) cost as much as the pricing itself.

This module imports nothing of genai-prices (nor pydantic): a decode worker prices by a `PriceTable`,
plain data the collector's `cost.PriceBook` resolved (model matching stays genai-prices' own, done
once per (provider, model) in the collector) and sends with each task. Importing and loading
genai-prices cost each worker ~17-26 MB (docs/memory.md, fifth pass). A row the table cannot price
(a model the collector has not resolved yet, a price only genai-prices' full rules compute) makes
the worker answer `PricesNeeded`, and the collector decodes that record again once it has resolved
the models, so every stored cost is the price book's.
"""

from __future__ import annotations

import bisect
import dataclasses
import fnmatch
import functools
import json
import sys
from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal, Inexact, InvalidOperation, Rounded, getcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from llmscope_collector.storage.schema import COST_TYPE, LLM_OPERATIONS, REPORTED_SOURCE

if TYPE_CHECKING:
    from llmscope_collector.processors.cost import PriceBook

CostRow = tuple[Decimal | None, Decimal | None, Decimal | None, bool, str | None]
"""A `SpanCost`'s fields as a tuple: what `price_rows` stores, without a dataclass per span."""
Counts = tuple[int, int, int, int]
"""A `Usage4`'s fields: input (cache included), output, cache read, cache write."""
ModelKey = tuple[str | None, str]
"""(provider as sent, model as sent): what a price is resolved for."""

UNKNOWN_ROW: CostRow = (None, None, None, False, None)
FREE_ROW: CostRow = (Decimal(0), Decimal(0), Decimal(0), True, "no-usage")
_QUANTUM = Decimal(1).scaleb(-COST_TYPE.scale)  # the storage scale (12 decimals)
_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
_ZERO_QUANTIZED = _ZERO.quantize(_QUANTUM, ROUND_HALF_EVEN)
MAX_NS = 2**63 - 1  # a start every price path converts without fail
DAY_NS = 86_400 * 10**9
# Within this of midnight the float timestamp genai-prices sees might round to the other day: not cached.
MIDNIGHT_MARGIN_NS = 10**6

_LLM = frozenset(LLM_OPERATIONS)
_USAGE = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
COST_FIELDS = ("cost_usd", "cost_input_usd", "cost_output_usd", "cost_known", "cost_source")


def sanitized_counts(inp: int | None, out: int | None, read: int | None, write: int | None) -> Counts:
    """Counts as OTel defines them: non-negative, with cache tokens inside `input` (`max(0, v or 0)`
    spelled out: a span's four counts in one expression)."""
    inp = inp if inp and inp > 0 else 0
    out = out if out and out > 0 else 0
    read = read if read and read > 0 else 0
    write = write if write and write > 0 else 0
    if read + write > inp:  # exclusive convention (e.g. raw Anthropic usage): input did not include cache
        inp += read + write
    return inp, out, read, write


def priced(cost_in: Decimal, cost_out: Decimal, source: str, other: Decimal = _ZERO) -> CostRow:
    """Quantized to the storage scale; `other` (per-request fees) counts in the total only, as in genai-prices."""
    cost_in = cost_in.quantize(_QUANTUM, ROUND_HALF_EVEN)
    cost_out = cost_out.quantize(_QUANTUM, ROUND_HALF_EVEN)
    fee = _fee_quantized(other)
    return cost_in + cost_out + fee, cost_in, cost_out, True, source


def _fee_quantized(fee: Decimal) -> Decimal:
    """A per-request fee at the storage scale, the absent fee (`_ZERO`) as the quantized zero: `priced`'s
    rule, which `unit_costs` takes its fee units by too."""
    return _ZERO_QUANTIZED if fee is _ZERO else fee.quantize(_QUANTUM, ROUND_HALF_EVEN)


class PriceFileError(ValueError):
    """The user price file is unreadable or malformed; the message says where."""


@dataclasses.dataclass(frozen=True)
class UserPrice:
    """One row of the user price file: USD per million tokens for models matching `pattern`."""

    pattern: str
    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    per_request: Decimal = _ZERO
    provider: str | None = None

    def matches(self, provider: str | None, model: str) -> bool:
        if self.provider is not None and (provider or "").lower() != self.provider.lower():
            return False
        return fnmatch.fnmatchcase(model.lower(), self.pattern.lower())

    def cost_row(self, counts: Counts) -> CostRow:
        inp, out, read, write = counts
        leaf_input = inp
        cache = _ZERO
        if self.cache_read is not None:
            leaf_input -= read
            cache += self.cache_read * read
        if self.cache_write is not None:
            leaf_input -= write
            cache += self.cache_write * write
        cost_in = (self.input * leaf_input + cache) / _MILLION
        cost_out = self.output * out / _MILLION
        return priced(cost_in, cost_out, f"user:{self.pattern}", self.per_request)


Band = tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None, Decimal]
"""Per-token input, cache read, cache write and output prices (None: no such price) and the per-request fee."""


@dataclasses.dataclass(frozen=True)
class Bands:
    """A price's plain token rates by input tier, resolved by `cost._Rates.of`: `bands[i]` is in force when
    the input count exceeds exactly `i` of the `starts` (genai-prices' tier cliffs), so a call is a bisect
    and a few Decimal operations. A band holds `price / 1_000_000` (exact: a shift of the exponent), and
    `price_per_token * tokens` rounds the same coefficient as genai-prices' `price * tokens / 1_000_000`."""

    starts: tuple[int, ...]
    bands: tuple[Band, ...]

    def cost(self, inp: int, out: int, read: int, write: int) -> tuple[Decimal, Decimal, Decimal] | None:
        """Input, output and per-request cost of a `Usage4`'s counts; None for counts that are not ints
        (genai-prices' general rules, in `cost._Rates`, price those).

        The zero terms are added as genai-prices adds them (`0 + -0` is `0`: the sign of a zero cost is kept)."""
        if not (type(inp) is int and type(read) is int and type(write) is int and type(out) is int):
            return None
        p_in, p_read, p_write, p_out, fee = self.bands[bisect.bisect_left(self.starts, inp) if self.starts else 0]
        leaf_input = inp
        if p_read is not None:
            leaf_input -= read
        if p_write is not None:
            leaf_input -= write
        cost_in = _ZERO if p_in is None else p_in * leaf_input
        cost_in += _ZERO if p_read is None else p_read * read
        cost_in += _ZERO if p_write is None else p_write * write
        return cost_in, _ZERO if p_out is None else p_out * out, fee

    @property
    def plain(self) -> Bands:
        """(`Rates.plain`: these are.)"""
        return self

    @functools.cached_property
    def units(self) -> tuple[UnitBand | None, ...]:
        """`bands` as `unit_costs` prices them (None: a band it leaves to `cost`), made once per `Bands`."""
        return tuple(_unit_band(band) for band in self.bands)

    def __getstate__(self) -> dict[str, Any]:
        """The fields only: a worker's table is pickled with its tasks, and `units` is made again where used."""
        return {"starts": self.starts, "bands": self.bands}


UnitBand = tuple[int, int, int, int, int, int, int]
"""A band's prices as integers (`unit_costs`): the input price's coefficient at the finest exponent of the
input-side prices, the cache read and cache write prices' less it where they are priced (their tokens are
then taken out of the input count: `Bands.cost`'s leaf), the power of ten from that exponent to the storage
scale; the output price's coefficient and power of ten; the fee in storage units."""
_SCALE = -COST_TYPE.scale
_MIN_EXPONENT = -40  # a price with digits below 1e-40 USD a token (none has) is `Bands.cost`'s: small powers of ten


def _unit_band(band: Band) -> UnitBand | None:
    """`band` as `unit_costs` prices it, or None (left to `Bands.cost`): a negative price (a zero cost's
    sign would depend on the order of the terms), a price not finite or of an extreme exponent, a fee
    `priced` cannot quantize."""
    p_in, p_read, p_write, p_out, fee = band
    prices = [_ZERO if p is None else p for p in (p_in, p_read, p_write, p_out)]
    if not all(p.is_finite() and not p.is_signed() and int(p.as_tuple().exponent) >= _MIN_EXPONENT for p in prices):
        return None
    try:
        fee = _fee_quantized(fee)
    except ArithmeticError:
        return None
    if not fee.is_finite() or fee.is_signed():  # (a NaN quantizes to NaN)
        return None
    exp_in = min(_SCALE, *(int(p.as_tuple().exponent) for p in prices[:3]))
    exp_out = min(_SCALE, int(prices[3].as_tuple().exponent))
    c_in, c_read, c_write = (_coefficient(p, exp_in) for p in prices[:3])
    return (
        c_in,
        c_read - c_in if p_read is not None else 0,
        c_write - c_in if p_write is not None else 0,
        10 ** (_SCALE - exp_in),
        _coefficient(prices[3], exp_out),
        10 ** (_SCALE - exp_out),
        _coefficient(fee, _SCALE),
    )


def _coefficient(value: Decimal, exponent: int) -> int:
    """`value` (finite, >= 0, of an exponent >= `exponent`) in units of `10 ** exponent`, exactly."""
    _, digits, own = value.as_tuple()
    power: int = 10 ** (int(own) - exponent)
    return int("".join(map(str, digits))) * power


def _half_even(value: int, power: int) -> int:
    """`value / power` (`value` >= 0) rounded half to even, as `quantize(..., ROUND_HALF_EVEN)`."""
    quotient, rest = divmod(value, power)
    return quotient + (rest * 2 > power or (rest * 2 == power and quotient & 1))


def unit_costs(
    units: tuple[UnitBand | None, ...], starts: tuple[int, ...], counts: Counts, limit: int
) -> tuple[int, int, int] | None:
    """`rated_row`'s total, input and output cost for `sanitized_counts` at `Bands(starts, bands)` (`units`:
    its `units`), as ints counting storage units (`schema.cost_decimal`), computed exactly in integers; None
    where that might not be `rated_row`'s value: a band `units` leaves, counts not ints, or a value of
    `limit` (10 ** the Decimal context's precision) or more, which Decimal arithmetic would round. Each of
    `Bands.cost`'s products is >= 0 (`_unit_band`; sanitized counts: the leaf too), so their sum at the
    finest exponent (`exact_in`, the same integer) bounds each product and partial sum it computes.

    Why: the Decimal path's products, quantizes and sums, and the span table's C builder printing each cost
    Decimal to read it again, were most of pricing an LLM row: `price_rows` 4.06 -> 1.85 µs a bench LLM row,
    the three cost columns' C build 0.45 -> 0.10 µs (timeit over the bench's decoded columns, alternating)."""
    inp, out, read, write = counts
    if not (type(inp) is type(out) is type(read) is type(write) is int):
        return None
    band = units[bisect.bisect_left(starts, inp) if starts else 0]
    if band is None:
        return None
    c_in, d_read, d_write, power_in, c_out, power_out, fee = band
    exact_in = c_in * inp + d_read * read + d_write * write  # (the leaf's price on the input less the cache)
    exact_out = c_out * out
    if exact_in >= limit or exact_out >= limit:
        return None
    cost_in = exact_in if power_in == 1 else _half_even(exact_in, power_in)  # (1: prices to 1e-12, most)
    cost_out = exact_out if power_out == 1 else _half_even(exact_out, power_out)
    total = cost_in + cost_out + fee
    return None if total >= limit else (total, cost_in, cost_out)


class Rates(Protocol):
    """What `rated_row` prices by: `Bands`, or `cost._Rates` (which also covers non-int counts)."""

    @property
    def plain(self) -> Bands | None:
        """The rates as `Bands`, where they are plain per-token prices (`unit_costs` prices those)."""

    def cost(self, inp: int, out: int, read: int, write: int) -> tuple[Decimal, Decimal, Decimal] | None: ...


def rated_row(rates: Rates, source: str, counts: Counts) -> CostRow | None:
    """The cost of a call with `counts` at `rates` (from `source`), as `PriceBook.cost_row` gives it;
    None when `rates` leave it to genai-prices' general rules (only a worker's `Bands` do)."""
    try:
        cost = rates.cost(*counts)
        return None if cost is None else priced(cost[0], cost[1], source, cost[2])
    except (ValueError, ArithmeticError):
        return UNKNOWN_ROW


FixedRates = tuple[Rates, str]
"""`fixed_rates`: the rates a model is priced by whenever called, and the price's source."""


@dataclasses.dataclass(frozen=True)
class DbPrice:
    """A genai-prices model's price as a worker applies it: `bands[i]` in force on the UTC days from
    `days[i - 1]` (days since 1970-01-01; `days` ascending, one fewer than `bands`), so an undated price is
    one band set and no days. Only for prices whose in-force rates depend on the UTC date alone."""

    source: str
    days: tuple[int, ...]
    bands: tuple[Bands, ...]


PriceEntry = UserPrice | DbPrice | None
"""What the price book resolved a `ModelKey` to, for a worker: a user price, a genai-prices price, or None
(the price source does not know the model). Keys the book prices only by genai-prices' full rules are
`BOOK_ONLY`."""
BOOK_ONLY = "book-only"


class PricesNeeded(Exception):
    """A decode worker met rows its `PriceTable` cannot price: the collector resolves `keys` (models it
    has not resolved yet; empty when only its price book can price the rows) and decodes the record again."""

    def __init__(self, keys: frozenset[ModelKey]) -> None:
        super().__init__(keys)
        self.keys = keys


@dataclasses.dataclass
class PriceTable:
    """A decode worker's price book: the collector's `PriceBook` resolutions as plain data (`version`
    counts them). `cost_row`/`fixed_rates` answer as the book does, or None for rows it cannot price;
    the keys it has no entry for are collected in `missing`."""

    entries: dict[ModelKey, PriceEntry | str] = dataclasses.field(default_factory=dict)
    version: int = 0
    missing: set[ModelKey] = dataclasses.field(default_factory=set)

    def cost_row(
        self, provider: str | None, models: tuple[str | None, ...], start_ns: int, counts: Counts | None, *, error: bool
    ) -> CostRow | None:
        """`PriceBook.cost_row`, or None when only the price book can price this call."""
        if counts is None:
            return FREE_ROW if error else UNKNOWN_ROW  # a failed call without usage is not billed
        for model in models:
            if model:
                entry = self.entries.get((provider, model), _ABSENT)
                if entry is _ABSENT:  # all the call's models the table lacks: one round to the book
                    self.missing.update((provider, m) for m in models if m and (provider, m) not in self.entries)
                    return None
                if entry is None:
                    continue
                return self._apply(entry, counts, start_ns)
        return UNKNOWN_ROW

    def fixed_rates(self, provider: str | None, models: tuple[str | None, ...]) -> FixedRates | None:
        """`PriceBook.fixed_rates`: the rates of an undated genai-prices price of the first model known."""
        for model in models:
            if model:
                entry = self.entries.get((provider, model), _ABSENT)
                if entry is None:
                    continue
                if isinstance(entry, DbPrice) and not entry.days:
                    return entry.bands[0], entry.source
                return None
        return None

    def _apply(self, entry: PriceEntry | str | object, counts: Counts, start_ns: int) -> CostRow | None:
        if isinstance(entry, UserPrice):
            return entry.cost_row(counts)
        if not isinstance(entry, DbPrice) or not (type(start_ns) is int and 0 <= start_ns <= MAX_NS):
            return None
        if not entry.days:
            return rated_row(entry.bands[0], entry.source, counts)
        if not MIDNIGHT_MARGIN_NS <= start_ns % DAY_NS < DAY_NS - MIDNIGHT_MARGIN_NS:
            return None
        return rated_row(entry.bands[bisect.bisect_right(entry.days, start_ns // DAY_NS)], entry.source, counts)

    def take_missing(self) -> frozenset[ModelKey]:
        missing, self.missing = frozenset(self.missing), set()
        return missing

    MAX_ENTRIES = 1024
    """Entries held before the table starts again from the keys being learned: it is pickled and sent with
    every task, and model names are the client's (~160 B an entry; a deployment uses a few dozen models)."""

    def learn(self, book: PriceBook, keys: Iterable[ModelKey]) -> bool:
        """Adds the book's resolution of `keys` (in the collector); True when any was new."""
        new = [key for key in keys if key not in self.entries]
        if new and len(self.entries) + len(new) > self.MAX_ENTRIES:
            self.entries.clear()
        for key in new:
            self.entries[key] = book.entry(*key)
        if new:
            self.version += 1
        return bool(new)


_ABSENT: Any = object()


Fixed = tuple[Rates, str, tuple[UnitBand | None, ...] | None, tuple[int, ...]]
"""`FixedRates` and, where its rates are `Bands`, their `Bands.units` and tier starts (`unit_costs`)."""


def _fixed(rates: FixedRates | None) -> Fixed | None:
    if rates is None:
        return None
    plain = rates[0].plain
    return (*rates, None, ()) if plain is None else (*rates, plain.units, plain.starts)


def _exact_limit() -> int:
    """`unit_costs`' bound: 10 ** the Decimal context's precision, or 0 (no value priced in integers) where the
    context signals an exact quantize's rounding as an error or holds exponents narrower than its default's."""
    context = getcontext()
    if context.traps[Inexact] or context.traps[Rounded] or context.Emax < 999 or context.Emin > -999:
        return 0
    limit: int = 10**context.prec
    return limit


def price_rows(cols: dict[str, list[Any]], prices: PriceBook | PriceTable) -> bool:
    """Fill `cost_*` of every LLM row in place (other rows keep None: they are not model calls); False
    when some row was left unpriced (only a `PriceTable` leaves any: see `PricesNeeded`). A row of fixed
    plain rates gets its costs as ints (`unit_costs`), the others Decimals (`schema.cost_decimal`)."""
    rows = [i for i, operation in enumerate(cols["operation"]) if operation in _LLM]
    if not rows:
        return True
    inputs, outputs, reads, writes = (cols[f] for f in _USAGE)
    providers, responses, requests = cols["provider"], cols["response_model"], cols["request_model"]
    starts, codes = cols["start_ns"], cols["status_code"]
    total, cost_in, cost_out, known, source = (cols[f] for f in COST_FIELDS)
    reported = cols["reported_cost_usd"]
    fixed: dict[tuple[str | None, str | None, str | None], Fixed | None] = {}
    limit = _exact_limit()
    complete = True
    for i in rows:
        response, request = responses[i], requests[i]
        row: CostRow | None
        if not (response or request):
            row = UNKNOWN_ROW
        else:
            inp, out, read, write = inputs[i], outputs[i], reads[i], writes[i]
            if inp is None and out is None and read is None and write is None:
                counts = None
            else:
                counts = sanitized_counts(inp, out, read, write)
            provider, start = providers[i], starts[i]
            rates: Fixed | None = None
            if counts is not None and type(start) is int and 0 <= start <= MAX_NS:
                key = (provider, response, request)
                rates = fixed.get(key, _ABSENT)  # (one lookup: most rows' rates are found)
                if rates is _ABSENT:
                    rates = fixed[key] = _fixed(prices.fixed_rates(provider, (response, request)))
                if rates is not None:
                    units = None if rates[2] is None else unit_costs(rates[2], rates[3], counts, limit)
                    if units is not None:
                        total[i], cost_in[i], cost_out[i] = units
                        known[i], source[i] = True, rates[1]
                        continue
                    row = rated_row(rates[0], rates[1], counts)
            if rates is None:
                row = prices.cost_row(provider, (response, request), start, counts, error=codes[i] == "ERROR")
        if row is None:
            complete = False
            continue
        if not row[3] and reported[i] is not None:  # our price source does not know the model
            row = (reported[i], None, None, True, REPORTED_SOURCE)
        total[i], cost_in[i], cost_out[i], known[i], source[i] = row
    return complete


_PRICE_FIELDS = {"input", "output", "cache_read", "cache_write", "per_request", "provider"}


def load_price_file(path: Path) -> tuple[UserPrice, ...]:
    """Parse `{model_glob: {input, output, cache_read?, cache_write?, per_request?, provider?}}` (USD/MTok)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PriceFileError(f"price file {path}: {exc.strerror}") from None
    try:
        data = _parse_price_text(path, text)
    except ValueError as exc:
        raise PriceFileError(f"price file {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None
    table = data.get("models", data) if isinstance(data, dict) else None
    if not isinstance(table, dict) or not table:
        raise PriceFileError(f"price file {path}: expected a table of model pattern → prices")
    return tuple(_user_price(path, pattern, row) for pattern, row in table.items())


def _parse_price_text(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib  # type: ignore[import-not-found, no-redef]
        return tomllib.loads(text)
    return json.loads(text)


def _user_price(path: Path, pattern: str, row: Any) -> UserPrice:
    where = f"price file {path}, model {pattern!r}"
    if not isinstance(row, dict):
        raise PriceFileError(f"{where}: expected a table with input/output prices")
    unknown = set(row) - _PRICE_FIELDS
    if unknown:
        raise PriceFileError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_PRICE_FIELDS)}")
    for required in ("input", "output"):
        if required not in row:
            raise PriceFileError(f"{where}: missing {required!r} (USD per million tokens)")
    provider = row.get("provider")
    return UserPrice(
        pattern=pattern,
        input=_usd(where, "input", row["input"]),
        output=_usd(where, "output", row["output"]),
        cache_read=None if row.get("cache_read") is None else _usd(where, "cache_read", row["cache_read"]),
        cache_write=None if row.get("cache_write") is None else _usd(where, "cache_write", row["cache_write"]),
        per_request=_usd(where, "per_request", row.get("per_request", 0)),
        provider=None if provider is None else str(provider),
    )


def _usd(where: str, field: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise PriceFileError(f"{where}: {field} must be a number, got {value!r}")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise PriceFileError(f"{where}: {field} must be a number, got {value!r}") from None
    if not price.is_finite() or price < 0:
        raise PriceFileError(f"{where}: {field} must be a finite number >= 0, got {value!r}")
    return price
