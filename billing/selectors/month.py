"""The running month (本月实时账单): the bill so far, pools and a projection.

The bill so far is ``billing.services.invoices.invoice_compute`` — the same
pricing as the real invoice, on the calls rated so far; nothing is saved.

Projection to month end (an estimate, labelled as such on the page):

- fees (package, services, answering numbers, selection fee) are known for
  the whole month and already in the bill so far;
- per number, the billable minutes so far are divided by the days in service
  so far (today included) and multiplied by the days in service still to
  come: that many more inbound minutes first use what is left of the pool,
  the rest is charged at the number's average inbound rate so far (its mix of
  peak and off-peak); outbound minutes are projected the same way at the
  outbound rate.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Sum
from django.db.models.functions import TruncDate

from accounts.models import Company
from billing import rating as core
from billing.money import money_sum, to_money

SHANGHAI = ZoneInfo("Asia/Shanghai")
ZERO = Decimal("0.00")
INBOUND_KINDS = ("inbound_peak", "inbound_offpeak")


@dataclass(frozen=True)
class NumberPool:
    subscription_id: int
    number_display: str
    plan_name: str
    is_term: bool
    pool_total: int  # the month's (or term's) pool
    used_before: int  # taken in earlier months of a running term
    used_this_month: int
    term_end: dt.date | None

    @property
    def remaining(self) -> int:
        return max(0, self.pool_total - self.used_before - self.used_this_month)

    @property
    def percent_used(self) -> int:
        if not self.pool_total:
            return 100
        used = self.pool_total - self.remaining
        return min(100, round(used * 100 / self.pool_total))


@dataclass(frozen=True)
class NumberProjection:
    number_display: str
    days_so_far: int
    days_to_come: int
    inbound_minutes_so_far: int
    outbound_minutes_so_far: int
    extra_inbound_minutes: int
    extra_charged_minutes: int
    inbound_rate: Decimal
    outbound_rate: Decimal
    extra_outbound_minutes: int
    extra_amount: Decimal


@dataclass
class MonthToDate:
    period: dt.date
    today: dt.date
    computation: object  # billing.services.invoices.InvoiceComputation
    pools: list[NumberPool]
    projections: list[NumberProjection] = field(default_factory=list)

    @property
    def lines(self):
        return self.computation.lines

    @property
    def total_so_far(self) -> Decimal:
        return self.computation.total

    @property
    def projected_total(self) -> Decimal:
        return self.total_so_far + money_sum(p.extra_amount for p in self.projections)

    @property
    def days_elapsed(self) -> int:
        return self.today.day

    @property
    def days_in_month(self) -> int:
        return core.days_in_month(self.period)


def _weighted_rate(lines) -> Decimal:
    minutes = sum(ln.billable_minutes or 0 for ln in lines)
    if not minutes:
        return max((ln.unit_price for ln in lines), default=ZERO)
    return sum(
        (Decimal(ln.billable_minutes or 0) * ln.unit_price for ln in lines), ZERO
    ) / Decimal(minutes)


def project_number(
    *,
    number_display: str,
    usage_lines,
    days_so_far: int,
    days_to_come: int,
    pool_remaining: int,
) -> NumberProjection:
    """Pure: the extra usage of one number to month end (see module doc)."""
    inbound = [ln for ln in usage_lines if ln.kind in INBOUND_KINDS]
    outbound = [ln for ln in usage_lines if ln.kind == "outbound"]
    in_so_far = sum(ln.billable_minutes or 0 for ln in inbound)
    out_so_far = sum(ln.billable_minutes or 0 for ln in outbound)
    days_so_far = max(days_so_far, 1)
    days_to_come = max(days_to_come, 0)
    extra_in = -(-in_so_far * days_to_come // days_so_far)  # ceil, minutes
    extra_out = -(-out_so_far * days_to_come // days_so_far)
    extra_charged = max(0, extra_in - max(pool_remaining, 0))
    in_rate = _weighted_rate(inbound)
    out_rate = _weighted_rate(outbound)
    extra = to_money(extra_charged * in_rate) + to_money(extra_out * out_rate)
    return NumberProjection(
        number_display=number_display,
        days_so_far=days_so_far,
        days_to_come=days_to_come,
        inbound_minutes_so_far=in_so_far,
        outbound_minutes_so_far=out_so_far,
        extra_inbound_minutes=extra_in,
        extra_charged_minutes=extra_charged,
        inbound_rate=in_rate,
        outbound_rate=out_rate,
        extra_outbound_minutes=extra_out,
        extra_amount=extra,
    )


def month_to_date(*, company: Company, today: dt.date) -> MonthToDate:
    from billing.models import CallRecord
    from billing.services.invoices import invoice_compute
    from billing.services.rating import rating_inputs_for
    from plans.models import Subscription

    period = today.replace(day=1)
    first, last = core.month_bounds(period)
    computation = invoice_compute(company=company, period=period)
    sub_ids = list(dict.fromkeys(ln.subscription_id for ln in computation.lines))
    subs = {
        s.pk: s
        for s in Subscription.objects.filter(company=company, pk__in=sub_ids)
        .select_related("number")
        .order_by("number__number")
    }
    used_by_day: dict[int, dict[dt.date, int]] = defaultdict(dict)
    for row in (
        CallRecord.objects.filter(
            company=company, subscription_id__in=list(subs), period=period
        )
        .annotate(day=TruncDate("start_time", tzinfo=SHANGHAI))
        .values("subscription_id", "day")
        .annotate(pool=Sum("pool_minutes"))
        .order_by()
    ):
        used_by_day[row["subscription_id"]][row["day"]] = row["pool"] or 0

    pools: list[NumberPool] = []
    projections: list[NumberProjection] = []
    for sub in subs.values():
        if sub.activated_on is None:
            continue
        inputs = rating_inputs_for(subscription=sub, period=period)
        segment = core.segment_for(inputs.segments, min(today, last))
        if segment is None and inputs.segments:
            segment = inputs.segments[-1]
        remaining = 0
        if segment is not None:
            used = sum(
                minutes
                for day, minutes in used_by_day[sub.pk].items()
                if segment.contains(day)
            )
            pool = NumberPool(
                subscription_id=sub.pk,
                number_display=sub.number.number,
                plan_name=segment.plan.name,
                is_term=segment.plan.is_term_plan,
                pool_total=segment.pool_total,
                used_before=segment.pool_used_before,
                used_this_month=used,
                term_end=segment.term_end if segment.plan.is_term_plan else None,
            )
            pools.append(pool)
            remaining = pool.remaining
        start = max(first, sub.activated_on)
        end = min(last, sub.ended_on) if sub.ended_on else last
        so_far = max(0, (min(today, end) - start).days + 1)
        to_come = max(0, (end - max(today, start - dt.timedelta(days=1))).days)
        usage = [
            ln
            for ln in computation.lines
            if ln.subscription_id == sub.pk
            and ln.billable_minutes is not None
            and (ln.usage_period or period) == period
        ]
        projections.append(
            project_number(
                number_display=sub.number.number,
                usage_lines=usage,
                days_so_far=so_far,
                days_to_come=to_come,
                pool_remaining=remaining,
            )
        )
    return MonthToDate(
        period=period,
        today=today,
        computation=computation,
        pools=pools,
        projections=projections,
    )
