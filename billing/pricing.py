"""Pricing an invoice: pure functions over plain data (BILLING-RULES §1, §5, §6).

No ORM here. ``billing.services.invoices`` loads a company-month into the
dataclasses below, calls ``price_invoice`` and stores what it returns; the
month-to-date page calls the same function on the running month.

Lines, per number, in this order (§6):

1. the plan fee of each monthly segment (prorated by the rating core:
   ``round_half_up(P × active_days / days_in_month, 0.01)``), or the term
   price in the month a term starts; a month inside a prepaid term shows the
   term at 0.00 so the customer sees what covers it;
2. value-added services: each service period's monthly fee prorated by the
   days it was on while the number was active; a service included in the
   plan is listed at 0.00;
3. extra answering numbers: for every active day, the bound numbers beyond
   the plan's ``included_answer_numbers``; the fee is
   ``round_half_up(fee × extra-number-days / days_in_month, 0.01)`` (a full
   month of n extras is n × fee);
4. the vanity selection fee, once, in the month of activation;
5. usage of the month: inbound peak and off-peak charged minutes × rate,
   outbound minutes × rate, one line per rate (a line states the billable
   minutes, the minutes from the pool and the charged minutes);
6. late calls from earlier months, per month, the same three kinds.

Every line's ``amount = round_half_up(quantity × unit_price, 0.01)``. A
prorated charge is one line of quantity 1 whose unit price is the prorated
amount (its description shows the days), so the rule holds without rounding
anything twice. The VAT table gives per tax category the gross (the sum of the
category's line amounts), ``tax = round_half_up(gross × r / (1 + r), 0.01)``
and ``net = gross − tax``. The total is the plain sum of the line amounts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.translation import gettext as _

from billing.money import line_amount, money_sum, to_decimal, to_money, vat_split
from billing.rating import Segment, days_in_month, month_bounds

BASIC = "basic"
VALUE_ADDED = "value_added"

PLAN_FEE = "plan_fee"
TERM_PRICE = "term_price"
SERVICE = "service"
EXTRA_ANSWER = "extra_answer"
SELECTION_FEE = "selection_fee"
INBOUND_PEAK = "inbound_peak"
INBOUND_OFFPEAK = "inbound_offpeak"
OUTBOUND = "outbound"

USAGE_KINDS = (INBOUND_PEAK, INBOUND_OFFPEAK, OUTBOUND)
TAX_CATEGORY = {
    PLAN_FEE: BASIC,
    TERM_PRICE: BASIC,
    INBOUND_PEAK: BASIC,
    INBOUND_OFFPEAK: BASIC,
    OUTBOUND: BASIC,
    SERVICE: VALUE_ADDED,
    EXTRA_ANSWER: VALUE_ADDED,
    SELECTION_FEE: VALUE_ADDED,
}
CATEGORY_ORDER = (BASIC, VALUE_ADDED)


class PricingError(ValueError):
    """The data cannot be priced (unknown tax category, negative fee …)."""


# --- input -------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceIn:
    """A value-added service switched on from ``start_date`` to ``end_date``.

    ``None`` dates are open (from the activation, until further notice).
    """

    service_id: int | str
    name: str
    monthly_fee: Decimal
    start_date: dt.date | None = None
    end_date: dt.date | None = None


@dataclass(frozen=True)
class AnswerIn:
    """An answering number (接听号码) bound from ``start_date`` to ``end_date``."""

    phone: str
    start_date: dt.date | None = None
    end_date: dt.date | None = None


@dataclass(frozen=True)
class UsageIn:
    """The rated calls of one number, month, direction, band and rate, summed.

    ``period`` is the month the calls belong to: the invoice's month, or an
    earlier one for late calls.
    """

    period: dt.date
    kind: str  # inbound_peak | inbound_offpeak | outbound
    rate: Decimal
    calls: int
    billable_minutes: int
    pool_minutes: int
    charged_minutes: int


@dataclass(frozen=True)
class NumberMonth:
    """One subscription (400 number) in the invoice month.

    ``segments`` come from ``billing.rating.month_segments``. Plans are told
    apart by ``segment.plan.plan_id``: ``included_services`` maps a plan id to
    the service ids it includes, ``included_answer_numbers`` to how many
    answering numbers it includes. ``selection_fee`` is the vanity fee when the
    number was activated in this month, else 0.
    """

    subscription_id: int | str
    number_display: str
    segments: Sequence[Segment]
    services: Sequence[ServiceIn] = ()
    answer_numbers: Sequence[AnswerIn] = ()
    included_services: Mapping[int | str, frozenset] = field(default_factory=dict)
    included_answer_numbers: Mapping[int | str, int] = field(default_factory=dict)
    selection_fee: Decimal = Decimal("0.00")
    usage: Sequence[UsageIn] = ()


@dataclass(frozen=True)
class CompanyMonth:
    period: dt.date
    numbers: Sequence[NumberMonth]
    tax_rates: Mapping[str, Decimal]
    extra_answer_fee: Decimal = Decimal("0.00")


# --- output ------------------------------------------------------------------


@dataclass(frozen=True)
class PricedLine:
    subscription_id: int | str
    number_display: str
    kind: str
    description: str
    tax_category: str
    tax_rate: Decimal
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    usage_period: dt.date | None = None
    billable_minutes: int | None = None
    pool_minutes: int | None = None
    charged_minutes: int | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None


@dataclass(frozen=True)
class VatRow:
    category: str
    rate: Decimal
    gross: Decimal
    tax: Decimal
    net: Decimal


@dataclass(frozen=True)
class PricedInvoice:
    period: dt.date
    lines: tuple[PricedLine, ...]
    vat: tuple[VatRow, ...]
    total: Decimal


# --- pricing -----------------------------------------------------------------


def _overlap(
    a_start: dt.date, a_end: dt.date, b_start: dt.date | None, b_end: dt.date | None
) -> tuple[dt.date, dt.date] | None:
    lo = max(a_start, b_start) if b_start else a_start
    hi = min(a_end, b_end) if b_end else a_end
    return (lo, hi) if lo <= hi else None


def _days(span: tuple[dt.date, dt.date]) -> int:
    return (span[1] - span[0]).days + 1


def _money_str(x: Decimal) -> str:
    return f"{to_money(x):,.2f}"


def _prorated(fee: Decimal, units_days: int, dim: int) -> Decimal:
    """``round_half_up(fee × unit-days / days_in_month, 0.01)``."""
    return to_money(to_decimal(fee) * units_days / dim)


class _Builder:
    def __init__(self, month: CompanyMonth, number: NumberMonth):
        self.month = month
        self.number = number
        self.lines: list[PricedLine] = []

    def add(self, kind: str, description: str, quantity, unit: str, unit_price, **kw):
        category = TAX_CATEGORY[kind]
        try:
            rate = to_decimal(self.month.tax_rates[category])
        except KeyError:
            raise PricingError(f"no VAT rate for {category}") from None
        quantity = to_decimal(quantity)
        unit_price = to_decimal(unit_price)
        if unit_price < 0 or quantity < 0:
            raise PricingError(f"negative {kind} line: {quantity} × {unit_price}")
        self.lines.append(
            PricedLine(
                subscription_id=self.number.subscription_id,
                number_display=self.number.number_display,
                kind=kind,
                description=description,
                tax_category=category,
                tax_rate=rate,
                quantity=quantity,
                unit=unit,
                unit_price=unit_price,
                amount=line_amount(quantity, unit_price),
                **kw,
            )
        )


def _plan_lines(b: _Builder) -> None:
    for seg in b.number.segments:
        name = seg.plan.name
        span = {"period_start": seg.start_date, "period_end": seg.end_date}
        if seg.fee_kind == "monthly":
            if seg.active_days == seg.days_in_month:
                text = _("Package fee: %(plan)s") % {"plan": name}
            else:
                text = _(
                    "Package fee: %(plan)s, %(days)s of %(dim)s days "
                    "(¥%(price)s × %(days)s ÷ %(dim)s)"
                ) % {
                    "plan": name,
                    "days": seg.active_days,
                    "dim": seg.days_in_month,
                    "price": _money_str(seg.plan.price),
                }
            b.add(PLAN_FEE, text, 1, _("month"), seg.fee, **span)
        elif seg.fee_kind == "term":
            text = _("Term package price: %(plan)s, term %(start)s – %(end)s") % {
                "plan": name,
                "start": seg.term_start.isoformat(),
                "end": seg.term_end.isoformat(),
            }
            b.add(TERM_PRICE, text, 1, _("term"), seg.fee, **span)
        else:
            text = _(
                "Term package: %(plan)s, term %(start)s – %(end)s, "
                "paid in the month the term started"
            ) % {
                "plan": name,
                "start": seg.term_start.isoformat(),
                "end": seg.term_end.isoformat(),
            }
            b.add(TERM_PRICE, text, 1, _("term"), Decimal("0.00"), **span)


def _service_lines(b: _Builder, dim: int) -> None:
    for svc in b.number.services:
        if svc.monthly_fee < 0:
            raise PricingError(f"negative fee for service {svc.service_id}")
        charged_days = 0
        included_days = 0
        first: dt.date | None = None
        last: dt.date | None = None
        for seg in b.number.segments:
            span = _overlap(seg.start_date, seg.end_date, svc.start_date, svc.end_date)
            if span is None:
                continue
            first = span[0] if first is None else min(first, span[0])
            last = span[1] if last is None else max(last, span[1])
            included = svc.service_id in b.number.included_services.get(
                seg.plan.plan_id, frozenset()
            )
            if included:
                included_days += _days(span)
            else:
                charged_days += _days(span)
        if first is None:
            continue
        span_kw = {"period_start": first, "period_end": last}
        if included_days:
            text = _("%(service)s (included in the package)") % {"service": svc.name}
            b.add(SERVICE, text, 1, _("month"), Decimal("0.00"), **span_kw)
        if charged_days:
            if charged_days == dim:
                text = svc.name
                price = to_money(svc.monthly_fee)
            else:
                text = _(
                    "%(service)s, %(days)s of %(dim)s days "
                    "(¥%(fee)s × %(days)s ÷ %(dim)s)"
                ) % {
                    "service": svc.name,
                    "days": charged_days,
                    "dim": dim,
                    "fee": _money_str(svc.monthly_fee),
                }
                price = _prorated(svc.monthly_fee, charged_days, dim)
            b.add(SERVICE, text, 1, _("month"), price, **span_kw)


def _extra_answer_lines(b: _Builder, dim: int) -> None:
    fee = to_decimal(b.month.extra_answer_fee)
    if not b.number.answer_numbers:
        return
    unit_days = 0
    counts: set[int] = set()
    active = 0
    first: dt.date | None = None
    last: dt.date | None = None
    for seg in b.number.segments:
        included = b.number.included_answer_numbers.get(seg.plan.plan_id, 1)
        day = seg.start_date
        while day <= seg.end_date:
            bound = sum(
                1
                for a in b.number.answer_numbers
                if (a.start_date is None or a.start_date <= day)
                and (a.end_date is None or day <= a.end_date)
            )
            extra = max(0, bound - included)
            counts.add(extra)
            active += 1
            if extra:
                unit_days += extra
                first = day if first is None else first
                last = day
            day += dt.timedelta(days=1)
    if not unit_days:
        return
    span_kw = {"period_start": first, "period_end": last}
    if active == dim and len(counts) == 1:
        (n,) = counts
        text = _("Extra answering numbers: %(n)s beyond those included") % {"n": n}
        b.add(EXTRA_ANSWER, text, n, _("number"), to_money(fee), **span_kw)
        return
    text = _(
        "Extra answering numbers: %(units)s number-days "
        "(¥%(fee)s × %(units)s ÷ %(dim)s)"
    ) % {"units": unit_days, "fee": _money_str(fee), "dim": dim}
    b.add(EXTRA_ANSWER, text, 1, _("month"), _prorated(fee, unit_days, dim), **span_kw)


def _selection_fee_line(b: _Builder) -> None:
    fee = to_decimal(b.number.selection_fee)
    if fee > 0:
        b.add(
            SELECTION_FEE,
            _("Vanity number selection fee (one-off)"),
            1,
            _("number"),
            to_money(fee),
        )


_USAGE_ORDER = {INBOUND_PEAK: 0, INBOUND_OFFPEAK: 1, OUTBOUND: 2}


def _usage_text(kind: str) -> str:
    return {
        INBOUND_PEAK: _("Inbound calls, peak"),
        INBOUND_OFFPEAK: _("Inbound calls, off-peak"),
        OUTBOUND: _("Outbound calls"),
    }[kind]


def _usage_lines(b: _Builder, period: dt.date) -> None:
    usage = [
        u
        for u in b.number.usage
        if u.billable_minutes > 0 or u.charged_minutes > 0 or u.pool_minutes > 0
    ]
    usage.sort(
        key=lambda u: (u.period != period, u.period, _USAGE_ORDER[u.kind], u.rate)
    )
    for u in usage:
        if u.kind not in _USAGE_ORDER:
            raise PricingError(f"unknown usage kind {u.kind!r}")
        if u.pool_minutes + u.charged_minutes != u.billable_minutes:
            raise PricingError(
                f"{u.kind}: pool {u.pool_minutes} + charged {u.charged_minutes} "
                f"≠ billable {u.billable_minutes}"
            )
        text = _usage_text(u.kind)
        figures = _(
            "%(billable)s min billable, %(pool)s from the pool, "
            "%(charged)s charged × ¥%(rate)s"
        ) % {
            "billable": u.billable_minutes,
            "pool": u.pool_minutes,
            "charged": u.charged_minutes,
            "rate": f"{to_decimal(u.rate):.4f}",
        }
        if u.period != period:
            text = _("Late calls from %(month)s: %(kind)s") % {
                "month": f"{u.period:%Y-%m}",
                "kind": text,
            }
        first, last = month_bounds(u.period)
        b.add(
            u.kind,
            f"{text}: {figures}",
            u.charged_minutes,
            _("min"),
            u.rate,
            usage_period=u.period,
            billable_minutes=u.billable_minutes,
            pool_minutes=u.pool_minutes,
            charged_minutes=u.charged_minutes,
            period_start=first,
            period_end=last,
        )


def price_number(month: CompanyMonth, number: NumberMonth) -> list[PricedLine]:
    """The lines of one number, in the order of §6."""
    period = month.period.replace(day=1)
    dim = days_in_month(period)
    b = _Builder(month, number)
    _plan_lines(b)
    _service_lines(b, dim)
    _extra_answer_lines(b, dim)
    _selection_fee_line(b)
    _usage_lines(b, period)
    return b.lines


def vat_table(lines: Sequence[PricedLine]) -> tuple[VatRow, ...]:
    """Per tax category: gross, tax and net (§1)."""
    rows = []
    categories = sorted(
        {(ln.tax_category, ln.tax_rate) for ln in lines},
        key=lambda c: (
            CATEGORY_ORDER.index(c[0]) if c[0] in CATEGORY_ORDER else 99,
            c[0],
            c[1],
        ),
    )
    for category, rate in categories:
        gross = money_sum(
            ln.amount
            for ln in lines
            if ln.tax_category == category and ln.tax_rate == rate
        )
        net, tax = vat_split(gross, rate)
        rows.append(VatRow(category=category, rate=rate, gross=gross, tax=tax, net=net))
    return tuple(rows)


def price_invoice(month: CompanyMonth) -> PricedInvoice:
    """Every line of the company's month, grouped by number, the VAT and total."""
    lines: list[PricedLine] = []
    for number in sorted(
        month.numbers, key=lambda n: (n.number_display, str(n.subscription_id))
    ):
        lines.extend(price_number(month, number))
    return PricedInvoice(
        period=month.period.replace(day=1),
        lines=tuple(lines),
        vat=vat_table(lines),
        total=money_sum(ln.amount for ln in lines),
    )


__all__ = [
    "BASIC",
    "VALUE_ADDED",
    "AnswerIn",
    "CompanyMonth",
    "NumberMonth",
    "PricedInvoice",
    "PricedLine",
    "PricingError",
    "ServiceIn",
    "UsageIn",
    "VatRow",
    "price_invoice",
    "price_number",
    "vat_table",
]
