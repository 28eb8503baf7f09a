"""Money helpers: every rounding in billing goes through here and names its mode.

BILLING-RULES §1: amounts have 2 decimals (分), per-minute rates up to 4, and
every rounding is ROUND_HALF_UP. Floats are refused: a float has already lost
the exact value, so ``to_money(0.1)`` is a bug to report, not to hide.

- ``to_money(x)``: quantize to 0.01, half up.
- ``to_rate(x)``: quantize to 0.0001, half up (per-minute rates).
- ``to_amount4(x)``: quantize to 0.0001, half up (a call's exact amount:
  whole minutes × a 4-decimal rate is exact, so this never really rounds).
- ``line_amount(quantity, unit_price)``: ``round_half_up(q × p, 0.01)``, the
  one rounding of an invoice line.
- ``vat_split(gross, rate)``: ``(net, tax)`` with
  ``tax = round_half_up(gross × r / (1 + r), 0.01)`` and ``net = gross − tax``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
RATE_QUANTUM = Decimal("0.0001")
ZERO = Decimal("0.00")

Number = Decimal | int | str


def to_decimal(x: Number) -> Decimal:
    """``x`` as a Decimal; ints and numeric strings are exact, floats refused."""
    if isinstance(x, bool):
        raise TypeError("a bool is not an amount")
    if isinstance(x, Decimal):
        return x
    if isinstance(x, int):
        return Decimal(x)
    if isinstance(x, str):
        return Decimal(x.strip())
    raise TypeError(f"money must be Decimal, int or str, not {type(x).__name__}")


def round_half_up(x: Number, quantum: Decimal) -> Decimal:
    """``x`` rounded to ``quantum`` (e.g. Decimal("0.01")), ties away from zero."""
    return to_decimal(x).quantize(quantum, rounding=ROUND_HALF_UP)


def to_money(x: Number) -> Decimal:
    """An amount in 元 with 2 decimals (ROUND_HALF_UP)."""
    return round_half_up(x, CENT)


def to_rate(x: Number) -> Decimal:
    """A per-minute rate with 4 decimals (ROUND_HALF_UP)."""
    return round_half_up(x, RATE_QUANTUM)


def to_amount4(x: Number) -> Decimal:
    """A call's amount with 4 decimals (ROUND_HALF_UP); exact for minutes × rate."""
    return round_half_up(x, RATE_QUANTUM)


def line_amount(quantity: Number, unit_price: Number) -> Decimal:
    """An invoice line: ``round_half_up(quantity × unit_price, 0.01)``."""
    return to_money(to_decimal(quantity) * to_decimal(unit_price))


def vat_split(gross: Number, rate: Number) -> tuple[Decimal, Decimal]:
    """Split a VAT-inclusive gross into ``(net, tax)``.

    ``tax = round_half_up(gross × r / (1 + r), 0.01)``, ``net = gross − tax``,
    so ``net + tax == gross`` to the fen.
    """
    g = to_money(gross)
    r = to_decimal(rate)
    if r < 0:
        raise ValueError("a VAT rate cannot be negative")
    tax = to_money(g * r / (1 + r))
    return g - tax, tax


def money_sum(amounts) -> Decimal:
    """The plain sum of 2-decimal amounts (nothing is rounded twice)."""
    total = ZERO
    for a in amounts:
        total += to_decimal(a)
    return total
