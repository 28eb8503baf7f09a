"""The plan advisor: what each number's last three full months would have
cost under every active plan, the cheapest, and the saving.

Method (shown on the page):

- The months are the last three complete calendar months in which the
  number was in service every day; fewer when the number is younger.
- Each month's real calls are re-rated under each plan by the rating core
  (``billing.rating.advise_month``): a fresh pool every month; a term plan
  counts with its monthly equivalent fee ``P / T`` (rounded to the fen) and
  its pool pro rata ``floor(M / T)``, so plans of different terms compare
  like for like.
- Fees that depend on the plan are added as on a bill: value-added services
  the number had (prorated by the days they were on, free when the plan
  includes them) and answering numbers beyond those the plan includes. The
  vanity selection fee does not depend on the plan and is left out.
- The current plan is priced by the same method, so the saving compares
  like with like (it is not the amount on past bills, which may contain
  a term price paid up front).
- A plan cheaper per month than the number's vanity grade requires is shown
  but never recommended.

The ORM part loads plain data in a fixed number of queries (subscriptions,
plan periods, services, answering numbers, plans, calls, the calendar); the
computation (``advise_number``) is pure.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Count, Max
from django.utils.translation import get_language

from billing import rating as core
from billing.money import money_sum, to_money

ZERO = Decimal("0.00")
MONTHS = 3


# --- plain data ----------------------------------------------------------------


@dataclass(frozen=True)
class PlanOption:
    terms: core.PlanTerms
    name: str
    included_services: frozenset
    included_answer_numbers: int

    @property
    def monthly_equivalent(self) -> Decimal:
        return self.terms.price / self.terms.term_months


@dataclass(frozen=True)
class Dated:
    """Something switched on from ``start`` to ``end`` (inclusive, None = open)."""

    key: int | str
    start: dt.date | None
    end: dt.date | None
    monthly_fee: Decimal = ZERO


@dataclass(frozen=True)
class NumberHistory:
    subscription_id: int
    number: str
    current_plan_id: int | str | None
    min_monthly: Decimal
    months: tuple[dt.date, ...]
    calls: Mapping[dt.date, Sequence[core.CallIn]]
    services: Sequence[Dated] = ()
    answer_numbers: Sequence[Dated] = ()


@dataclass(frozen=True)
class MonthCost:
    period: dt.date
    fee: Decimal
    usage: Decimal
    services: Decimal
    extra_answer: Decimal
    pool: int
    pool_used: int

    @property
    def total(self) -> Decimal:
        return self.fee + self.usage + self.services + self.extra_answer


@dataclass(frozen=True)
class PlanResult:
    plan: PlanOption
    months: tuple[MonthCost, ...]
    allowed: bool
    is_current: bool

    @property
    def total(self) -> Decimal:
        return money_sum(m.total for m in self.months)


@dataclass
class NumberAdvice:
    subscription_id: int
    number: str
    months: tuple[dt.date, ...]
    results: list[PlanResult] = field(default_factory=list)

    @property
    def current(self) -> PlanResult | None:
        return next((r for r in self.results if r.is_current), None)

    @property
    def cheapest(self) -> PlanResult | None:
        allowed = [r for r in self.results if r.allowed]
        if not allowed or not self.months:
            return None
        # Ties: keep the current plan, then the cheaper monthly equivalent.
        return min(
            allowed,
            key=lambda r: (r.total, not r.is_current, r.plan.monthly_equivalent),
        )

    @property
    def comparisons(self) -> list[tuple[PlanResult, Decimal | None]]:
        """Each result with its difference to the current plan (+ dearer)."""
        current = self.current
        return [
            (r, None if current is None else r.total - current.total)
            for r in self.results
        ]

    @property
    def saving(self) -> Decimal:
        current, cheapest = self.current, self.cheapest
        if current is None or cheapest is None:
            return ZERO
        return max(ZERO, current.total - cheapest.total)


# --- pure computation --------------------------------------------------------


def _days_on(start, end, period: dt.date) -> int:
    return core.active_days(start, end, period)


def services_cost(
    services: Sequence[Dated], plan: PlanOption, period: dt.date
) -> Decimal:
    """Services not included in the plan, each prorated by its days on."""
    dim = core.days_in_month(period)
    total = ZERO
    for s in services:
        days = _days_on(s.start, s.end, period)
        if days and s.key not in plan.included_services:
            total += core.prorate_fee(s.monthly_fee, days, dim)
    return total


def extra_answer_cost(
    answer_numbers: Sequence[Dated], plan: PlanOption, period: dt.date, fee: Decimal
) -> Decimal:
    """``round_half_up(fee × extra-number-days / days_in_month, 0.01)``."""
    first, last = core.month_bounds(period)
    dim = core.days_in_month(period)
    extra_days = 0
    day = first
    while day <= last:
        bound = sum(
            1
            for a in answer_numbers
            if (a.start is None or a.start <= day) and (a.end is None or day <= a.end)
        )
        extra_days += max(0, bound - plan.included_answer_numbers)
        day += dt.timedelta(days=1)
    return to_money(fee * extra_days / dim)


def advise_number(
    history: NumberHistory,
    plans: Sequence[PlanOption],
    calendar: core.Calendar,
    extra_answer_fee: Decimal,
) -> NumberAdvice:
    advice = NumberAdvice(
        subscription_id=history.subscription_id,
        number=history.number,
        months=history.months,
    )
    for plan in plans:
        months = []
        for period in history.months:
            cost = core.advise_month(
                list(history.calls.get(period, ())), plan.terms, calendar, period
            )
            months.append(
                MonthCost(
                    period=period,
                    fee=cost.fee,
                    usage=cost.usage_amount,
                    services=services_cost(history.services, plan, period),
                    extra_answer=extra_answer_cost(
                        history.answer_numbers, plan, period, extra_answer_fee
                    ),
                    pool=cost.pool,
                    pool_used=cost.pool_used,
                )
            )
        advice.results.append(
            PlanResult(
                plan=plan,
                months=tuple(months),
                allowed=plan.monthly_equivalent >= history.min_monthly,
                is_current=plan.terms.plan_id == history.current_plan_id,
            )
        )
    advice.results.sort(key=lambda r: (r.total, r.plan.monthly_equivalent))
    return advice


def full_months(
    activated_on: dt.date | None,
    ended_on: dt.date | None,
    before: dt.date,
    count: int = MONTHS,
) -> tuple[dt.date, ...]:
    """The last ``count`` complete months before ``before`` (a 1st) in which
    the number was in service every day, oldest first."""
    if activated_on is None:
        return ()
    out = []
    period = core.add_months(before.replace(day=1), -1)
    for _i in range(count):
        first, last = core.month_bounds(period)
        if activated_on <= first and (ended_on is None or ended_on >= last):
            out.append(period)
        period = core.add_months(period, -1)
    return tuple(reversed(out))


# --- loading (ORM) -------------------------------------------------------------


def _plan_option(plan) -> PlanOption:
    from billing.services.rating import plan_terms_of

    return PlanOption(
        terms=plan_terms_of(plan),
        name=plan.name,
        included_services=frozenset(s.pk for s in plan.included_services.all()),
        included_answer_numbers=plan.included_answer_numbers,
    )


def _current_plan_id(periods, today: dt.date):
    current = None
    for pp in periods:
        if pp.start_date is None or pp.start_date <= today:
            current = pp.plan_id
    return current


def company_advice(*, company, today: dt.date) -> list[NumberAdvice]:
    """Advice for each live number of the company (cached per call data)."""
    from billing.models import CallRecord

    first = today.replace(day=1)
    window_start = core.add_months(first, -MONTHS)
    fingerprint = (
        CallRecord.objects.filter(
            company=company, period__gte=window_start, period__lt=first
        )
        .order_by()
        .aggregate(n=Count("pk"), last=Max("pk"), rated=Max("rated_at"))
    )
    key = "advisor:{}:{}:{}:{}:{}:{}".format(
        get_language(),
        company.pk,
        first.isoformat(),
        fingerprint["n"],
        fingerprint["last"],
        fingerprint["rated"].timestamp() if fingerprint["rated"] else 0,
    )
    cached = cache.get(key)
    if cached is not None:
        return cached
    result = _company_advice(company=company, today=today, window_start=window_start)
    cache.set(key, result, timeout=60 * 60)
    return result


def _company_advice(*, company, today: dt.date, window_start: dt.date):
    from billing.models import CallRecord, CallStatus
    from billing.services.rating import calendar_load
    from plans.models import (
        AnswerNumber,
        CatalogSettings,
        Plan,
        Subscription,
        SubscriptionPlanPeriod,
        SubscriptionServicePeriod,
    )

    first = today.replace(day=1)
    subs = list(
        Subscription.objects.filter(company=company, status=Subscription.Status.ACTIVE)
        .select_related("number", "grade")
        .order_by("number__number")
    )
    if not subs:
        return []
    sub_ids = [s.pk for s in subs]
    plan_periods = defaultdict(list)
    for pp in SubscriptionPlanPeriod.objects.filter(
        subscription_id__in=sub_ids
    ).order_by("start_date", "pk"):
        plan_periods[pp.subscription_id].append(pp)
    services = defaultdict(list)
    for sp in SubscriptionServicePeriod.objects.filter(
        subscription_id__in=sub_ids
    ).select_related("service"):
        services[sp.subscription_id].append(
            Dated(sp.service_id, sp.start_date, sp.end_date, sp.service.monthly_fee)
        )
    answers = defaultdict(list)
    for a in AnswerNumber.objects.filter(subscription_id__in=sub_ids):
        answers[a.subscription_id].append(Dated(a.pk, a.start_date, a.end_date))
    plans = [
        _plan_option(p)
        for p in Plan.objects.filter(is_active=True).prefetch_related(
            "included_services"
        )
    ]
    # The current plan is compared even when it left the catalog.
    current_ids = {_current_plan_id(plan_periods[s.pk], today) for s in subs}
    missing = current_ids - {p.terms.plan_id for p in plans} - {None}
    if missing:
        plans += [
            _plan_option(p)
            for p in Plan.objects.filter(pk__in=missing).prefetch_related(
                "included_services"
            )
        ]
    calls = defaultdict(list)
    rows = (
        CallRecord.objects.filter(
            company=company,
            subscription_id__in=sub_ids,
            period__gte=window_start,
            period__lt=first,
        )
        .order_by()
        .values_list(
            "subscription_id",
            "period",
            "call_id",
            "start_time",
            "duration_seconds",
            "direction",
            "status",
        )
    )
    for sub_id, period, call_id, start, duration, direction, status in rows.iterator(
        chunk_size=5000
    ):
        calls[(sub_id, period)].append(
            core.CallIn(
                call_id=call_id,
                start=start,
                duration_seconds=duration,
                direction=direction,
                answered=status == CallStatus.ANSWERED,
            )
        )
    calendar = calendar_load()
    extra_fee = CatalogSettings.load().extra_answer_number_fee
    out = []
    for sub in subs:
        months = full_months(sub.activated_on, sub.ended_on, first)
        history = NumberHistory(
            subscription_id=sub.pk,
            number=sub.number.number,
            current_plan_id=_current_plan_id(plan_periods[sub.pk], today),
            min_monthly=sub.grade.min_monthly if sub.grade else ZERO,
            months=months,
            calls={m: calls.get((sub.pk, m), ()) for m in months},
            services=tuple(services[sub.pk]),
            answer_numbers=tuple(answers[sub.pk]),
        )
        out.append(advise_number(history, plans, calendar, extra_fee))
    return out


__all__ = [
    "Dated",
    "MonthCost",
    "NumberAdvice",
    "NumberHistory",
    "PlanOption",
    "PlanResult",
    "advise_number",
    "company_advice",
    "extra_answer_cost",
    "full_months",
    "services_cost",
]
