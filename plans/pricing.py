"""Checkout arithmetic: what a number under a plan costs, in plain data.

Pure functions over plain values (no ORM), following BILLING-RULES §4–5:

- a monthly plan (T = 1) bills P each calendar month; in the month of
  activation ``round_half_up(P × active_days / days_in_month, 0.01)`` and a
  pool of ``floor(M × active_days / days_in_month)`` minutes;
- a term plan (T ≥ 12) bills P in full in the month its term starts; the pool
  M serves the whole term, which ends the day before the same date T months
  later;
- services not included in the plan, and answering numbers beyond the
  included ones, are prorated like a monthly fee; included services show
  with amount 0.00;
- the vanity selection fee is billed once, in the month of activation.

The views show these figures as an estimate until the activation date is
known: agent staff choose the first billable day.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from billing.money import ZERO, money_sum, to_money

ONE_DAY = dt.timedelta(days=1)
round_money = to_money


# --- dates --------------------------------------------------------------------
def days_in_month(day: dt.date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def last_day_of_month(day: dt.date) -> dt.date:
    return day.replace(day=days_in_month(day))


def first_of_next_month(day: dt.date) -> dt.date:
    return last_day_of_month(day) + dt.timedelta(days=1)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same date ``months`` later, clamped to the month's last day."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def active_days_from(day: dt.date) -> int:
    """Days from ``day`` to the end of its month, both counted."""
    return days_in_month(day) - day.day + 1


def term_bounds(
    start: dt.date, term_months: int, on: dt.date
) -> tuple[dt.date, dt.date]:
    """The term (first day, last day) of a term plan started on ``start``
    that contains ``on``. Terms run back to back; each is computed from
    ``start`` itself so month-end clamping never drifts.
    """
    if on < start:
        raise ValueError("the day is before the plan started")
    k = 0
    while add_months(start, (k + 1) * term_months) <= on:
        k += 1
    first = add_months(start, k * term_months)
    last = add_months(start, (k + 1) * term_months) - dt.timedelta(days=1)
    return first, last


# --- money --------------------------------------------------------------------
def prorate(amount: Decimal, active_days: int, month_days: int) -> Decimal:
    """``round_half_up(amount × active_days / month_days, 0.01)``."""
    if not 0 <= active_days <= month_days:
        raise ValueError("active days must be between 0 and the days in the month")
    return to_money(amount * active_days / month_days)


def prorated_pool(minutes: int, active_days: int, month_days: int) -> int:
    """``floor(minutes × active_days / month_days)``."""
    return minutes * active_days // month_days


def meets_min_monthly(price: Decimal, term_months: int, min_monthly: Decimal) -> bool:
    """``P / T ≥ min_monthly``, compared exactly (no division)."""
    return price >= min_monthly * term_months


def cost_per_minute(price: Decimal, minutes: int) -> Decimal | None:
    """What one included minute costs, to 4 decimals (None without minutes)."""
    if minutes <= 0:
        return None
    return (price / minutes).quantize(Decimal("0.0001"))


def forfeited_minutes(included: int, used: int) -> int:
    """Minutes of a term pool lost when leaving the plan early."""
    return max(0, included - used)


# --- checkout quote -----------------------------------------------------------
@dataclass(frozen=True)
class PlanTerms:
    name: str
    term_months: int
    price: Decimal
    included_minutes: int
    rate_inbound_peak: Decimal
    rate_inbound_offpeak: Decimal
    rate_outbound: Decimal
    included_answer_numbers: int
    included_service_codes: frozenset[str] = frozenset()

    @property
    def is_term(self) -> bool:
        return self.term_months > 1


@dataclass(frozen=True)
class ServiceTerms:
    code: str
    name: str
    monthly_fee: Decimal


@dataclass(frozen=True)
class Line:
    """One line of an estimated invoice.

    ``kind`` is one of plan, term, service, answer_numbers, selection_fee.
    ``quantity`` is the number of items (services 1, extra answering
    numbers n); ``full`` the undiscounted monthly amount before proration.
    """

    kind: str
    label: str
    amount: Decimal
    full: Decimal = ZERO
    quantity: int = 1
    included: bool = False
    prorated: bool = False


@dataclass(frozen=True)
class Quote:
    activation: dt.date
    active_days: int
    month_days: int
    first_invoice: list[Line] = field(default_factory=list)
    monthly: list[Line] = field(default_factory=list)
    first_pool: int = 0
    pool: int = 0
    term_end: dt.date | None = None
    extra_answer_numbers: int = 0

    @property
    def first_total(self) -> Decimal:
        return money_sum(line.amount for line in self.first_invoice)

    @property
    def monthly_total(self) -> Decimal:
        return money_sum(line.amount for line in self.monthly)


def quote(
    *,
    plan: PlanTerms,
    services: list[ServiceTerms],
    answer_numbers: int,
    extra_answer_fee: Decimal,
    selection_fee: Decimal,
    activation: dt.date,
) -> Quote:
    """The first invoice and the monthly bill after it, before any calls."""
    month_days = days_in_month(activation)
    active = active_days_from(activation)
    first: list[Line] = []
    monthly: list[Line] = []

    if plan.is_term:
        first.append(Line("term", plan.name, to_money(plan.price), full=plan.price))
        term_end = add_months(activation, plan.term_months) - dt.timedelta(days=1)
        first_pool = pool = plan.included_minutes
    else:
        first.append(
            Line(
                "plan",
                plan.name,
                prorate(plan.price, active, month_days),
                full=plan.price,
                prorated=active < month_days,
            )
        )
        monthly.append(Line("plan", plan.name, to_money(plan.price), full=plan.price))
        term_end = None
        first_pool = prorated_pool(plan.included_minutes, active, month_days)
        pool = plan.included_minutes

    for service in services:
        included = service.code in plan.included_service_codes
        fee = ZERO if included else service.monthly_fee
        first.append(
            Line(
                "service",
                service.name,
                prorate(fee, active, month_days),
                full=fee,
                included=included,
                prorated=active < month_days and not included,
            )
        )
        monthly.append(
            Line("service", service.name, to_money(fee), full=fee, included=included)
        )

    extra = max(0, answer_numbers - plan.included_answer_numbers)
    if extra:
        full = extra_answer_fee * extra
        first.append(
            Line(
                "answer_numbers",
                "",
                prorate(full, active, month_days),
                full=full,
                quantity=extra,
                prorated=active < month_days,
            )
        )
        monthly.append(
            Line("answer_numbers", "", to_money(full), full=full, quantity=extra)
        )

    if selection_fee > 0:
        first.append(
            Line("selection_fee", "", to_money(selection_fee), full=selection_fee)
        )

    return Quote(
        activation=activation,
        active_days=active,
        month_days=month_days,
        first_invoice=first,
        monthly=monthly,
        first_pool=first_pool,
        pool=pool,
        term_end=term_end,
        extra_answer_numbers=extra,
    )
