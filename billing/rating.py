"""The rating engine: pure Python over plain data (BILLING-RULES §2–§4, §6).

No ORM here: ``billing.services.rating`` loads plain data, calls these
functions and stores what they return; invoices (plan fees, pools) and the
plan advisor (re-rating past calls under other plans) call them directly.

Time (§2)
    A call's band is decided by its start time converted to Asia/Shanghai, for
    the whole call. ``Calendar.band_of``: a statutory holiday is off-peak all
    day; a make-up working day is a peak day whatever its weekday; otherwise
    a day is a peak day iff its ISO weekday is in ``peak_weekdays``. On a peak
    day the band is peak iff ``peak_start <= local time < peak_end``.
    Billing months are Asia/Shanghai calendar months (``period_of``): a call at
    2026-03-31 23:59:59+08:00 belongs to March although it is 15:59 UTC.

One call (§3)
    ``billable_minutes = ceil(duration / 60)`` for an answered call with a
    duration > 0, else 0 (missed and zero-length calls are still rated and
    returned with their band, rate and 0 minutes).

Plan periods, terms and segments (§4)
    ``month_segments`` cuts a subscription-month into *segments*: the stretch
    of days where one plan and one pool apply.

    - Monthly plan (T = 1): every calendar month is a term. The segment's pool
      is ``floor(M × active_days / days_in_month)`` and its fee is
      ``round_half_up(P × active_days / days_in_month, 0.01)``; active days
      count both the first and the last day (activation mid-month, ended
      early). A full month gives exactly M and P.
    - Term plan (T ≥ 12): terms are anchored on the plan period's start date
      (the activation date, or the 1st of the month the plan was changed to).
      Term k runs from ``add_months(anchor, k·T)`` to the day before
      ``add_months(anchor, (k+1)·T)``, where ``add_months`` is "the same day
      T months later, clamped to the last day of that month". Anchoring every
      term on the original date (not chaining from the previous term) means a
      clamped date never drifts: anchor 2028-02-29, T = 12 gives terms starting
      2029-02-28, 2030-02-28, 2031-02-28, 2032-02-29. The pool M serves the
      whole term across months; what is left at the term end expires and the
      next term starts the next day with a fresh pool (and is billed again).
      The term price P is billed in full in the month the term starts
      (``fee_kind == "term"``); continuing months carry ``fee_kind == "none"``.
    - A term cut short (plan change on the 1st, subscription ended) simply
      ends its segment early: the remaining pool is forfeited.

    ``pool_used_before`` is the pool already used in the term that is running
    on the month's first day, by calls *outside this month*: the service sums
    the stored ``pool_minutes`` of the term's calls in earlier months, plus
    those of frozen calls in later months (only possible when late calls
    arrive after a later invoice was issued), so a term pool is never
    over-drawn.

Using the pool (§4, §6) — ``rate_month``
    Each call belongs to the segment containing its local start date. In each
    segment, frozen calls (already on an issued invoice) keep their stored
    rating and consume their stored pool minutes first; the other answered
    inbound calls then take what is left in order of (start instant, call_id)
    until it is empty. A call needing more than what is left takes what is
    left and the rest is charged (a split call) at the inbound peak/off-peak
    rate of its band. Outbound calls never touch the pool and are charged at
    the outbound rate. ``amount = charged_minutes × rate``, kept exact with 4
    decimals; invoice lines round the sum once (``usage_lines``).

    The result is a function of the *set* of calls (and the frozen ratings):
    the order in which calls arrive never changes it. Late calls after an
    issued invoice (§6) are rated against what the frozen calls left.

The plan advisor — ``advise_month``
    Re-rates one month of calls under a hypothetical plan with a fresh pool,
    as if the plan had been in force for the whole month: a monthly plan with
    its full pool M and fee P; a term plan with its monthly share of the pool,
    ``floor(M / T)``, and its monthly equivalent fee ``round_half_up(P / T,
    0.01)``. (A real term pool can be used unevenly across months; the advisor
    compares plans on a like-for-like monthly basis.)
"""

from __future__ import annotations

import calendar as _calendar
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from billing.money import RATE_QUANTUM, line_amount, to_decimal, to_money

SHANGHAI = ZoneInfo("Asia/Shanghai")

PEAK = "peak"
OFFPEAK = "offpeak"
INBOUND = "inbound"
OUTBOUND = "outbound"
HOLIDAY = "holiday"
WORKDAY = "workday"

Band = Literal["peak", "offpeak"]
FeeKind = Literal["monthly", "term", "none"]
LineKind = Literal["inbound_peak", "inbound_offpeak", "outbound"]


def _ORDER(call: CallIn) -> tuple[dt.datetime, str]:
    return (call.start, call.call_id)


class RatingError(ValueError):
    """The data cannot be rated (naive datetime, call outside every segment …)."""


# --- time --------------------------------------------------------------------


def local_start(start: dt.datetime) -> dt.datetime:
    """``start`` in Asia/Shanghai; naive datetimes are refused."""
    if start.tzinfo is None or start.utcoffset() is None:
        raise RatingError(f"call start {start!r} has no time zone")
    return start.astimezone(SHANGHAI)


def local_date(start: dt.datetime) -> dt.date:
    return local_start(start).date()


def period_of(start: dt.datetime) -> dt.date:
    """First day of the call's billing month (Asia/Shanghai)."""
    return local_date(start).replace(day=1)


def days_in_month(period: dt.date) -> int:
    return _calendar.monthrange(period.year, period.month)[1]


def month_bounds(period: dt.date) -> tuple[dt.date, dt.date]:
    """(first day, last day) of the month containing ``period``."""
    first = period.replace(day=1)
    return first, first.replace(day=days_in_month(first))


def next_month(period: dt.date) -> dt.date:
    first = period.replace(day=1)
    return add_months(first, 1)


def month_start_instant(period: dt.date) -> dt.datetime:
    """00:00 Asia/Shanghai on the month's 1st, aware."""
    first = period.replace(day=1)
    return dt.datetime(first.year, first.month, 1, tzinfo=SHANGHAI)


def day_start_instant(day: dt.date) -> dt.datetime:
    """00:00 Asia/Shanghai on ``day``, aware."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, clamped to the end of the target month.

    2026-01-31 + 1 → 2026-02-28; 2028-02-29 + 12 → 2029-02-28.
    """
    index = day.year * 12 + (day.month - 1) + months
    year, month0 = divmod(index, 12)
    last = _calendar.monthrange(year, month0 + 1)[1]
    return dt.date(year, month0 + 1, min(day.day, last))


def active_days(start: dt.date | None, end: dt.date | None, period: dt.date) -> int:
    """Days of ``[start, end]`` (both inclusive, None = open) within the month."""
    first, last = month_bounds(period)
    lo = max(first, start) if start else first
    hi = min(last, end) if end else last
    return max(0, (hi - lo).days + 1)


def prorate_fee(price, active: int, dim: int) -> Decimal:
    """``round_half_up(P × active_days / days_in_month, 0.01)``."""
    _check_days(active, dim)
    return to_money(to_decimal(price) * active / dim)


def prorate_pool(minutes: int, active: int, dim: int) -> int:
    """``floor(M × active_days / days_in_month)`` (integer arithmetic, exact)."""
    _check_days(active, dim)
    return (int(minutes) * active) // dim


def _check_days(active: int, dim: int) -> None:
    if not 28 <= dim <= 31 or not 0 <= active <= dim:
        raise RatingError(f"bad proration: {active} active days of {dim}")


@dataclass(frozen=True)
class Calendar:
    """Peak hours and the holiday calendar (defaults: BILLING-RULES §2).

    ``holidays`` maps a date to ``"holiday"`` (statutory, off-peak all day) or
    ``"workday"`` (make-up working day: a peak day even on a weekend).
    """

    peak_start: dt.time = dt.time(8, 0)
    peak_end: dt.time = dt.time(20, 0)
    peak_weekdays: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    holidays: Mapping[dt.date, str] = field(default_factory=dict)

    def is_peak_day(self, day: dt.date) -> bool:
        kind = self.holidays.get(day)
        if kind == HOLIDAY:
            return False
        if kind == WORKDAY:
            return True
        return day.isoweekday() in self.peak_weekdays

    def band_of(self, start: dt.datetime) -> Band:
        """Peak or off-peak for a call starting at ``start`` (aware)."""
        return self.band_of_local(local_start(start))

    def band_of_local(self, local: dt.datetime) -> Band:
        """The band of a start already converted to Asia/Shanghai."""
        if not self.is_peak_day(local.date()):
            return OFFPEAK
        t = local.time().replace(tzinfo=None)
        return PEAK if self.peak_start <= t < self.peak_end else OFFPEAK


# --- one call ----------------------------------------------------------------


def billable_minutes(duration_seconds: int, answered: bool) -> int:
    """``ceil(duration / 60)`` for an answered call with duration > 0, else 0."""
    if duration_seconds < 0:
        raise RatingError("a duration cannot be negative")
    if not answered or duration_seconds == 0:
        return 0
    return -(-int(duration_seconds) // 60)


@dataclass(frozen=True)
class CallIn:
    """A call as the rating needs it. ``start`` is aware."""

    call_id: str
    start: dt.datetime
    duration_seconds: int
    direction: str  # "inbound" | "outbound"
    answered: bool

    @property
    def order_key(self) -> tuple[dt.datetime, str]:
        """Pool order: start instant, then call id."""
        return (self.start, self.call_id)


@dataclass(frozen=True)
class Tariff:
    """Per-minute rates (4 decimals, VAT-inclusive)."""

    inbound_peak: Decimal
    inbound_offpeak: Decimal
    outbound: Decimal

    def rate_for(self, direction: str, band: str) -> Decimal:
        if direction == OUTBOUND:
            return self.outbound
        if direction != INBOUND:
            raise RatingError(f"unknown direction {direction!r}")
        return self.inbound_peak if band == PEAK else self.inbound_offpeak


@dataclass(frozen=True)
class CallRating:
    """How one call was charged. ``amount = charged_minutes × rate`` (exact)."""

    call_id: str
    band: Band
    billable_minutes: int
    pool_minutes: int
    charged_minutes: int
    rate: Decimal
    amount: Decimal


# --- plans, periods and segments ---------------------------------------------


@dataclass(frozen=True)
class PlanTerms:
    """What rating and billing need from a plan (catalog ``plans.Plan``)."""

    plan_id: int | str
    term_months: int
    price: Decimal
    included_minutes: int
    tariff: Tariff
    name: str = ""

    @property
    def is_term_plan(self) -> bool:
        return self.term_months > 1


@dataclass(frozen=True)
class PlanPeriod:
    """A plan in force from ``start_date`` to ``end_date`` (inclusive, None = open).

    A None ``start_date`` means "from the activation date".
    """

    plan: PlanTerms
    start_date: dt.date | None
    end_date: dt.date | None = None


@dataclass(frozen=True)
class Segment:
    """Days of one month under one plan and one pool.

    ``pool_total`` is the pool of the term (M for a term plan, the prorated M
    for a monthly plan); ``pool_available = max(0, pool_total −
    pool_used_before)`` is what this month's calls may use. ``fee`` is the
    prorated monthly fee (``fee_kind == "monthly"``), the term price when the
    term starts in this segment (``"term"``) or 0.00 (``"none"``).
    """

    start_date: dt.date
    end_date: dt.date
    plan: PlanTerms
    term_start: dt.date
    term_end: dt.date
    is_new_term: bool
    pool_total: int
    pool_used_before: int
    pool_available: int
    fee_kind: FeeKind
    fee: Decimal
    active_days: int
    days_in_month: int

    def contains(self, day: dt.date) -> bool:
        return self.start_date <= day <= self.end_date


def term_bounds(
    anchor: dt.date, term_months: int, day: dt.date
) -> tuple[dt.date, dt.date]:
    """The (start, end) of the term of a plan anchored on ``anchor`` holding ``day``."""
    if day < anchor:
        raise RatingError(f"{day} is before the term anchor {anchor}")
    k = ((day.year - anchor.year) * 12 + day.month - anchor.month) // term_months
    k = max(k, 0)
    while add_months(anchor, k * term_months) > day:
        k -= 1
    while add_months(anchor, (k + 1) * term_months) <= day:
        k += 1
    start = add_months(anchor, k * term_months)
    end = add_months(anchor, (k + 1) * term_months) - dt.timedelta(days=1)
    return start, end


def month_segments(
    *,
    periods: Sequence[PlanPeriod],
    activated_on: dt.date,
    ended_on: dt.date | None,
    period: dt.date,
    pool_used_before: int = 0,
) -> list[Segment]:
    """The segments of one subscription-month, in date order.

    ``pool_used_before`` applies to the term running on the month's first day
    (a term plan that started in an earlier month); it is ignored otherwise.
    A month with no active day gives ``[]``.
    """
    if pool_used_before < 0:
        raise RatingError("pool used cannot be negative")
    first, last = month_bounds(period)
    dim = days_in_month(first)
    segments: list[Segment] = []
    for pp in sorted(periods, key=lambda p: p.start_date or activated_on):
        anchor = max(pp.start_date or activated_on, activated_on)
        stop = pp.end_date
        if ended_on is not None:
            stop = ended_on if stop is None else min(stop, ended_on)
        lo = max(anchor, first)
        hi = last if stop is None else min(stop, last)
        if lo > hi:
            continue
        plan = pp.plan
        if not plan.is_term_plan:
            days = (hi - lo).days + 1
            segments.append(
                Segment(
                    start_date=lo,
                    end_date=hi,
                    plan=plan,
                    term_start=lo,
                    term_end=hi,
                    is_new_term=True,
                    pool_total=prorate_pool(plan.included_minutes, days, dim),
                    pool_used_before=0,
                    pool_available=prorate_pool(plan.included_minutes, days, dim),
                    fee_kind="monthly",
                    fee=prorate_fee(plan.price, days, dim),
                    active_days=days,
                    days_in_month=dim,
                )
            )
            continue
        day = lo
        while day <= hi:
            t_start, t_end = term_bounds(anchor, plan.term_months, day)
            seg_end = min(t_end, hi)
            new = t_start >= first
            used = 0 if new else pool_used_before
            total = plan.included_minutes
            segments.append(
                Segment(
                    start_date=day,
                    end_date=seg_end,
                    plan=plan,
                    term_start=t_start,
                    term_end=t_end,
                    is_new_term=new,
                    pool_total=total,
                    pool_used_before=used,
                    pool_available=max(0, total - used),
                    fee_kind="term" if new else "none",
                    fee=to_money(plan.price) if new else to_money(0),
                    active_days=(seg_end - day).days + 1,
                    days_in_month=dim,
                )
            )
            day = seg_end + dt.timedelta(days=1)
    return segments


def running_term(
    *,
    periods: Sequence[PlanPeriod],
    activated_on: dt.date,
    ended_on: dt.date | None,
    period: dt.date,
) -> tuple[dt.date, dt.date] | None:
    """(term_start, term_end) of a term that started before ``period`` and is
    still running on its first active day, or None (monthly plan, new term).

    The service uses it to know whose earlier calls count as pool used.
    """
    segs = month_segments(
        periods=periods, activated_on=activated_on, ended_on=ended_on, period=period
    )
    for seg in segs:
        if seg.plan.is_term_plan and not seg.is_new_term:
            return seg.term_start, seg.term_end
    return None


# --- rating a month ----------------------------------------------------------


def rate_call(call: CallIn, band: Band, tariff: Tariff, pool_left: int) -> CallRating:
    """Rate one call with ``pool_left`` minutes available to it."""
    minutes = billable_minutes(call.duration_seconds, call.answered)
    rate = tariff.rate_for(call.direction, band)
    pool = min(minutes, max(pool_left, 0)) if call.direction == INBOUND else 0
    charged = minutes - pool
    # Whole minutes × a 4-decimal rate is exact: quantizing only fixes the scale.
    amount = (rate * charged).quantize(RATE_QUANTUM, rounding=ROUND_HALF_UP)
    return CallRating(call.call_id, band, minutes, pool, charged, rate, amount)


def segment_for(segments: Sequence[Segment], day: dt.date) -> Segment | None:
    for seg in segments:
        if seg.contains(day):
            return seg
    return None


def rate_month(
    calls: Iterable[CallIn],
    segments: Sequence[Segment],
    calendar: Calendar,
    frozen: Mapping[str, CallRating] | None = None,
) -> list[CallRating]:
    """Rate every call of one subscription-month; results in pool order.

    ``frozen`` maps the call ids already billed on an issued invoice to their
    stored rating: they are returned unchanged and consume their stored pool
    minutes first. The other calls share what is left of each segment's pool
    in (start, call_id) order. Raises ``RatingError`` for a call outside every
    segment (not subscribed that day) or a duplicated call id.
    """
    frozen = frozen or {}
    ordered = sorted(calls, key=_ORDER)
    seen: set[str] = set()
    # (call, segment index, local start): Shanghai time is computed once.
    assigned: list[tuple[CallIn, int, dt.datetime]] = []
    bounds = [(s.start_date, s.end_date) for s in segments]
    for call in ordered:
        if call.call_id in seen:
            raise RatingError(f"call {call.call_id} appears twice")
        seen.add(call.call_id)
        local = local_start(call.start)
        day = local.date()
        index = next((i for i, (lo, hi) in enumerate(bounds) if lo <= day <= hi), -1)
        if index < 0:
            raise RatingError(
                f"call {call.call_id} on {day} is outside "
                "the subscription's active days"
            )
        assigned.append((call, index, local))

    left = [seg.pool_available for seg in segments]
    if frozen:
        for call, index, _local in assigned:
            stored = frozen.get(call.call_id)
            if stored is not None:
                left[index] = max(0, left[index] - stored.pool_minutes)

    out: list[CallRating] = []
    for call, index, local in assigned:
        stored = frozen.get(call.call_id)
        if stored is not None:
            out.append(stored)
            continue
        band = calendar.band_of_local(local)
        tariff = segments[index].plan.tariff
        rating = rate_call(call, band, tariff, left[index])
        left[index] -= rating.pool_minutes
        out.append(rating)
    return out


# --- totals ------------------------------------------------------------------


@dataclass(frozen=True)
class UsageLine:
    """Usage of one kind at one rate: the arithmetic an invoice line shows.

    ``amount = round_half_up(charged_minutes × rate, 0.01)``; it equals the
    sum of the calls' exact amounts rounded once.
    """

    kind: LineKind
    rate: Decimal
    calls: int
    billable_minutes: int
    pool_minutes: int
    charged_minutes: int
    amount: Decimal


def line_kind(direction: str, band: str) -> LineKind:
    if direction == OUTBOUND:
        return "outbound"
    return "inbound_peak" if band == PEAK else "inbound_offpeak"


_KIND_ORDER = {"inbound_peak": 0, "inbound_offpeak": 1, "outbound": 2}


def usage_lines(
    calls: Iterable[CallIn], ratings: Iterable[CallRating]
) -> list[UsageLine]:
    """Group ratings by (kind, rate): one invoice usage line each, in a fixed order."""
    direction = {c.call_id: c.direction for c in calls}
    acc: dict[tuple[str, Decimal], list[int]] = {}
    for r in ratings:
        key = (line_kind(direction[r.call_id], r.band), r.rate)
        a = acc.setdefault(key, [0, 0, 0, 0])
        a[0] += 1
        a[1] += r.billable_minutes
        a[2] += r.pool_minutes
        a[3] += r.charged_minutes
    lines = [
        UsageLine(
            kind=kind,  # type: ignore[arg-type]
            rate=rate,
            calls=a[0],
            billable_minutes=a[1],
            pool_minutes=a[2],
            charged_minutes=a[3],
            amount=line_amount(a[3], rate),
        )
        for (kind, rate), a in acc.items()
    ]
    lines.sort(key=lambda ln: (_KIND_ORDER[ln.kind], ln.rate))
    return lines


# --- the plan advisor --------------------------------------------------------


@dataclass(frozen=True)
class PlanCost:
    """A month of calls priced under one plan (the advisor's comparison)."""

    plan: PlanTerms
    fee: Decimal
    pool: int
    pool_used: int
    lines: tuple[UsageLine, ...]
    usage_amount: Decimal
    total: Decimal
    ratings: tuple[CallRating, ...] = ()


def advisor_segment(plan: PlanTerms, period: dt.date) -> Segment:
    """The advisor's whole-month segment: fresh pool, monthly share of a term."""
    first, last = month_bounds(period)
    dim = days_in_month(first)
    if plan.is_term_plan:
        pool = plan.included_minutes // plan.term_months
        fee = to_money(to_decimal(plan.price) / plan.term_months)
    else:
        pool = plan.included_minutes
        fee = to_money(plan.price)
    return Segment(
        start_date=first,
        end_date=last,
        plan=plan,
        term_start=first,
        term_end=last,
        is_new_term=True,
        pool_total=pool,
        pool_used_before=0,
        pool_available=pool,
        fee_kind="monthly",
        fee=fee,
        active_days=dim,
        days_in_month=dim,
    )


def advise_month(
    calls: Sequence[CallIn],
    plan: PlanTerms,
    calendar: Calendar,
    period: dt.date,
    *,
    keep_ratings: bool = False,
) -> PlanCost:
    """What one month of calls would have cost under ``plan`` (see module doc).

    Calls outside ``period`` (Asia/Shanghai) are refused with ``RatingError``.
    """
    seg = advisor_segment(plan, period)
    ratings = rate_month(calls, [seg], calendar)
    lines = tuple(usage_lines(calls, ratings))
    usage = sum((ln.amount for ln in lines), to_money(0))
    return PlanCost(
        plan=plan,
        fee=seg.fee,
        pool=seg.pool_total,
        pool_used=sum(r.pool_minutes for r in ratings),
        lines=lines,
        usage_amount=usage,
        total=seg.fee + usage,
        ratings=tuple(ratings) if keep_ratings else (),
    )


def with_pool_used(segments: Sequence[Segment], used: int) -> list[Segment]:
    """The same segments with ``used`` minutes already taken from a running term."""
    out = []
    for seg in segments:
        if seg.plan.is_term_plan and not seg.is_new_term:
            seg = replace(
                seg, pool_used_before=used, pool_available=max(0, seg.pool_total - used)
            )
        out.append(seg)
    return out


__all__ = [
    "HOLIDAY",
    "INBOUND",
    "OFFPEAK",
    "OUTBOUND",
    "PEAK",
    "SHANGHAI",
    "WORKDAY",
    "Calendar",
    "CallIn",
    "CallRating",
    "PlanCost",
    "PlanPeriod",
    "PlanTerms",
    "RatingError",
    "Segment",
    "Tariff",
    "UsageLine",
    "active_days",
    "add_months",
    "advise_month",
    "advisor_segment",
    "billable_minutes",
    "day_start_instant",
    "days_in_month",
    "line_kind",
    "local_date",
    "month_bounds",
    "month_segments",
    "month_start_instant",
    "next_month",
    "period_of",
    "prorate_fee",
    "prorate_pool",
    "rate_call",
    "rate_month",
    "running_term",
    "term_bounds",
    "usage_lines",
    "with_pool_used",
]
