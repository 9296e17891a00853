"""One way to print US dollars, everywhere a person reads a cost (CLI, demo; the web UI's
`fmtUsd` in ui/static/util.js follows the same rule and a test holds the two equal).

LLM calls cost fractions of a cent, so a fixed number of decimals either hides them (`$0.00`) or
pads large sums, and scientific notation (`$4.0e-8`) is unreadable. The rule: a dollar or more, to
the cent with thousands separators; below a dollar, three significant digits in plain decimals with
trailing zeros dropped, so two calls whose costs differ in the third digit print differently.

Rounding is half-up on the exact binary value and the magnitude is read from the shortest decimal
form of the float, which is what JavaScript's `toFixed` and `toExponential` do: the same number
prints the same in the terminal and in the browser.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

SIGNIFICANT = 3
TINY = 1e-12
_CENT = Decimal("0.01")


def _cents(amount: Decimal) -> str:
    return f"{amount.quantize(_CENT, rounding=ROUND_HALF_UP):,.2f}"


def format_usd(value: float) -> str:
    """`$1,234.50`, `$0.125`, `$0.0000215`, `$0`; negative amounts keep their sign."""
    if value == 0:
        return "$0"
    if not math.isfinite(value):
        return "\u2013"  # an en dash: not a number
    sign, amount = ("-", -value) if value < 0 else ("", value)
    exact = Decimal(amount)
    if amount >= 1:
        return f"{sign}${_cents(exact)}"
    if amount < TINY:  # below any real price; also keeps the decimals bounded
        return f"{sign}<$0.000000000001"
    decimals = SIGNIFICANT - 1 - Decimal(repr(amount)).adjusted()
    rounded = exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    if rounded >= 1:  # rounding carried into the dollars (0.9996 -> $1.00)
        return f"{sign}${_cents(rounded)}"
    return f"{sign}${format(rounded, 'f').rstrip('0').rstrip('.')}"


def exact_usd(value: float) -> str:
    """The full value for a tooltip or a copy: `$0.00003615` (the float's shortest decimal form)."""
    if value == 0:  # also -0.0, which a correction that cancels a cost can leave: "$0", never "$-0"
        return "$0"
    sign, amount = ("-", -value) if value < 0 else ("", value)
    return f"{sign}${format(Decimal(repr(amount)).normalize(), 'f')}"
