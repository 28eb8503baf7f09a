"""Rating in the database: load plain data, run ``billing.rating``, store results.

- ``rating_inputs_for(*, subscription, period)``: the plain inputs of one
  subscription-month (plan periods, calendar, pool used earlier in the running
  term, and the month's segments). Invoices use ``inputs.segments`` for the
  plan fee / term price lines and the pools.
- ``calls_rate(*, subscription, period)`` / ``calls_rate_many(*, keys)``:
  re-rate subscription-months. Every call whose invoice is not issued is
  rated again from scratch (so the arrival order never matters); calls on an
  issued invoice are frozen and keep their rating (BILLING-RULES §6).
  A term plan's pool spans months: when a month's pool use changes, the
  following months of the same term that have calls are re-rated too, in
  order.
- ``calendar_load()`` and ``plan_terms_of(plan)`` give the plan advisor the
  same plain data.

Speed: one batch of subscriptions of one month costs a constant number of
queries (calls, pool used, one COPY into a temp table, one UPDATE … FROM),
and only rows whose rating changed are written. Concurrent raters of the same
subscription are serialised by row locks on the subscriptions, taken in id
order.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Min, Q, Sum
from django.utils import timezone

from billing import rating as core
from billing.models import CallRecord, Invoice
from plans.models import CatalogSettings, Holiday, Plan, Subscription
from plans.models import SubscriptionPlanPeriod as PlanPeriodModel

logger = logging.getLogger(__name__)

# Subscriptions rated per batch: ~1,000 calls each keeps a batch near 50 MB.
BATCH_SUBSCRIPTIONS = 50

_CALL_FIELDS = (
    "id",
    "subscription_id",
    "call_id",
    "start_time",
    "duration_seconds",
    "direction",
    "status",
    "band",
    "billable_minutes",
    "pool_minutes",
    "charged_minutes",
    "rate",
    "amount",
    "rated_at",
    "invoice__status",
)


@dataclass(frozen=True)
class RatingInputs:
    """Everything the pure core needs for one subscription-month."""

    subscription_id: int
    period: dt.date
    activated_on: dt.date | None
    ended_on: dt.date | None
    periods: tuple[core.PlanPeriod, ...]
    calendar: core.Calendar
    pool_used_before: int
    segments: tuple[core.Segment, ...]


@dataclass
class RateSummary:
    months: int = 0
    calls: int = 0
    changed: int = 0
    frozen: int = 0
    # Calls on a day the subscription was not active: left unrated.
    outside: list[str] = field(default_factory=list)


# --- plain data from the catalog ---------------------------------------------


def calendar_load() -> core.Calendar:
    """Peak hours and the holiday calendar of the catalog."""
    row = CatalogSettings.load()
    holidays = dict(Holiday.objects.values_list("date", "kind"))
    return core.Calendar(
        peak_start=row.peak_start,
        peak_end=row.peak_end,
        peak_weekdays=frozenset(int(d) for d in (row.peak_weekdays or [])),
        holidays=holidays,
    )


def plan_terms_of(plan: Plan) -> core.PlanTerms:
    return core.PlanTerms(
        plan_id=plan.pk,
        term_months=plan.term_months,
        price=plan.price,
        included_minutes=plan.included_minutes,
        tariff=core.Tariff(
            inbound_peak=plan.rate_inbound_peak,
            inbound_offpeak=plan.rate_inbound_offpeak,
            outbound=plan.rate_outbound,
        ),
        name=plan.name,
    )


def _plan_periods_for(sub_ids: Iterable[int]) -> dict[int, tuple[core.PlanPeriod, ...]]:
    out: dict[int, list[core.PlanPeriod]] = defaultdict(list)
    terms: dict[int, core.PlanTerms] = {}
    qs = (
        PlanPeriodModel.objects.filter(subscription_id__in=list(sub_ids))
        .select_related("plan")
        .order_by("subscription_id", "start_date", "pk")
    )
    for row in qs:
        if row.plan_id not in terms:
            terms[row.plan_id] = plan_terms_of(row.plan)
        out[row.subscription_id].append(
            core.PlanPeriod(terms[row.plan_id], row.start_date, row.end_date)
        )
    return {k: tuple(v) for k, v in out.items()}


def _frozen_q(prefix: str = "") -> Q:
    return Q(**{f"{prefix}invoice__isnull": False}) & ~Q(
        **{f"{prefix}invoice__status": Invoice.Status.DRAFT}
    )


def _pool_used_before(
    period: dt.date, running: dict[int, tuple[dt.date, dt.date]]
) -> dict[int, int]:
    """Pool minutes of the running terms used by calls outside ``period``.

    Earlier months of the term count in full; later months only for frozen
    calls (late calls after a later invoice was issued), so a term pool is
    never over-drawn.
    """
    if not running:
        return {}
    month_start = core.month_start_instant(period)
    after = core.month_start_instant(core.next_month(period))
    cond = Q()
    for sub_id, (t_start, t_end) in running.items():
        t_from = core.day_start_instant(t_start)
        t_until = core.day_start_instant(t_end + dt.timedelta(days=1))
        cond |= Q(
            subscription_id=sub_id,
            period__gte=t_start.replace(day=1),
            period__lt=period,
            start_time__gte=t_from,
            start_time__lt=month_start,
        )
        cond |= (
            Q(
                subscription_id=sub_id,
                period__gt=period,
                period__lte=t_end.replace(day=1),
                start_time__gte=after,
                start_time__lt=t_until,
            )
            & _frozen_q()
        )
    rows = (
        CallRecord.objects.filter(cond)
        .values("subscription_id")
        .annotate(used=Sum("pool_minutes"))
        .order_by()
    )
    return {r["subscription_id"]: int(r["used"] or 0) for r in rows}


def _inputs(
    sub: dict,
    period: dt.date,
    periods: tuple[core.PlanPeriod, ...],
    calendar: core.Calendar,
    used: int,
) -> RatingInputs:
    segments: tuple[core.Segment, ...] = ()
    if sub["activated_on"] is not None:
        segments = tuple(
            core.month_segments(
                periods=periods,
                activated_on=sub["activated_on"],
                ended_on=sub["ended_on"],
                period=period,
                pool_used_before=used,
            )
        )
    return RatingInputs(
        subscription_id=sub["id"],
        period=period,
        activated_on=sub["activated_on"],
        ended_on=sub["ended_on"],
        periods=periods,
        calendar=calendar,
        pool_used_before=used,
        segments=segments,
    )


def _running_terms(
    subs: dict[int, dict],
    plan_periods: dict[int, tuple[core.PlanPeriod, ...]],
    period: dt.date,
) -> dict[int, tuple[dt.date, dt.date]]:
    out = {}
    for sub_id, sub in subs.items():
        if sub["activated_on"] is None:
            continue
        term = core.running_term(
            periods=plan_periods.get(sub_id, ()),
            activated_on=sub["activated_on"],
            ended_on=sub["ended_on"],
            period=period,
        )
        if term is not None:
            out[sub_id] = term
    return out


def rating_inputs_for(*, subscription: Subscription, period: dt.date) -> RatingInputs:
    """The plain inputs of one subscription-month (see ``RatingInputs``)."""
    period = period.replace(day=1)
    sub = {
        "id": subscription.pk,
        "activated_on": subscription.activated_on,
        "ended_on": subscription.ended_on,
    }
    plan_periods = _plan_periods_for([subscription.pk])
    running = _running_terms({subscription.pk: sub}, plan_periods, period)
    used = _pool_used_before(period, running).get(subscription.pk, 0)
    return _inputs(
        sub, period, plan_periods.get(subscription.pk, ()), calendar_load(), used
    )


# --- rating and storing ------------------------------------------------------


def calls_rate(*, subscription: Subscription, period: dt.date) -> RateSummary:
    """Re-rate one subscription-month (and the following months of its term)."""
    return calls_rate_many(keys=[(subscription.pk, period)])


@transaction.atomic
def calls_rate_many(*, keys: Iterable[tuple[int, dt.date]]) -> RateSummary:
    """Re-rate many (subscription_id, period) months, in period order.

    Months of the same term that follow a month whose pool use changed are
    re-rated too. The whole run is one transaction.
    """
    queue: dict[dt.date, set[int]] = defaultdict(set)
    for sub_id, period in keys:
        queue[period.replace(day=1)].add(int(sub_id))
    summary = RateSummary()
    if not queue:
        return summary
    sub_ids = sorted(set().union(*queue.values()))
    # Serialise raters of the same subscription (ids in order: no deadlocks).
    subs = {
        row["id"]: row
        for row in Subscription.objects.select_for_update()
        .filter(id__in=sub_ids)
        .order_by("id")
        .values("id", "activated_on", "ended_on")
    }
    plan_periods = _plan_periods_for(sub_ids)
    calendar = calendar_load()
    now = timezone.now()
    cascaded: dict[dt.date, set[int]] = defaultdict(set)
    writer = _Writer()
    while queue:
        period = min(queue)
        todo = sorted(s for s in queue.pop(period) if s in subs)
        for i in range(0, len(todo), BATCH_SUBSCRIPTIONS):
            chunk = todo[i : i + BATCH_SUBSCRIPTIONS]
            follow = _rate_batch(
                period,
                {s: subs[s] for s in chunk},
                plan_periods,
                calendar,
                cascaded.get(period, set()),
                writer,
                now,
                summary,
            )
            for sub_id, next_period in _next_months(period, follow).items():
                queue[next_period].add(sub_id)
                cascaded[next_period].add(sub_id)
    return summary


def _rate_batch(
    period: dt.date,
    subs: dict[int, dict],
    plan_periods: dict[int, tuple[core.PlanPeriod, ...]],
    calendar: core.Calendar,
    cascaded: set[int],
    writer: _Writer,
    now: dt.datetime,
    summary: RateSummary,
) -> dict[int, dt.date]:
    """Rate one batch of one month; return {sub: term end} to cascade into."""
    running = _running_terms(subs, plan_periods, period)
    used = _pool_used_before(period, running)
    rows_by_sub: dict[int, list[tuple]] = defaultdict(list)
    qs = (
        CallRecord.objects.filter(subscription_id__in=list(subs), period=period)
        .order_by()
        .values_list(*_CALL_FIELDS)
    )
    for row in qs:
        rows_by_sub[row[1]].append(row)
    _, month_last = core.month_bounds(period)
    follow: dict[int, dt.date] = {}
    changes: list[tuple] = []
    for sub_id, rows in rows_by_sub.items():
        inputs = _inputs(
            subs[sub_id],
            period,
            plan_periods.get(sub_id, ()),
            calendar,
            used.get(sub_id, 0),
        )
        summary.months += 1
        summary.calls += len(rows)
        calls, frozen, stored, outside = _split_rows(rows, inputs.segments)
        summary.frozen += len(frozen)
        if outside:
            summary.outside.extend(outside)
            logger.warning(
                "subscription %s: %d calls of %s outside its active days",
                sub_id,
                len(outside),
                period,
            )
        ratings = core.rate_month(calls, inputs.segments, calendar, frozen)
        for r in ratings:
            if r.call_id in frozen:
                continue
            pk, old, rated_at = stored[r.call_id]
            new = (
                r.band,
                r.billable_minutes,
                r.pool_minutes,
                r.charged_minutes,
                r.rate,
                r.amount,
            )
            if rated_at is None or old != new:
                changes.append((pk, *new))
        last = inputs.segments[-1] if inputs.segments else None
        if (
            last is not None
            and last.plan.is_term_plan
            and last.end_date == month_last
            and last.term_end > month_last
        ):
            in_last = {
                c.call_id for c in calls if last.contains(core.local_date(c.start))
            }
            before = sum(stored[c][1][2] for c in in_last if c in stored) + sum(
                frozen[c].pool_minutes for c in in_last if c in frozen
            )
            after = sum(r.pool_minutes for r in ratings if r.call_id in in_last)
            if before != after or sub_id in cascaded:
                follow[sub_id] = last.term_end
    summary.changed += len(changes)
    writer.write(changes, now)
    return follow


def _split_rows(rows, segments):
    """Rows → (CallIn list, frozen ratings, stored ratings by call id, outside ids)."""
    calls: list[core.CallIn] = []
    frozen: dict[str, core.CallRating] = {}
    stored: dict[str, tuple] = {}
    outside: list[str] = []
    for (
        pk,
        _sub,
        call_id,
        start,
        duration,
        direction,
        status,
        band,
        billable,
        pool,
        charged,
        rate,
        amount,
        rated_at,
        invoice_status,
    ) in rows:
        if invoice_status is not None and invoice_status != Invoice.Status.DRAFT:
            frozen[call_id] = core.CallRating(
                call_id, band, billable, pool, charged, rate, amount
            )
        else:
            stored[call_id] = (
                pk,
                (band, billable, pool, charged, rate, amount),
                rated_at,
            )
        day = core.local_date(start)
        if not any(seg.contains(day) for seg in segments):
            if call_id not in frozen:
                outside.append(call_id)
            continue
        calls.append(
            core.CallIn(call_id, start, duration, direction, status == "answered")
        )
    return calls, frozen, stored, outside


def _next_months(period: dt.date, follow: dict[int, dt.date]) -> dict[int, dt.date]:
    """For each subscription, the next month with calls within its running term."""
    if not follow:
        return {}
    cond = Q()
    for sub_id, term_end in follow.items():
        cond |= Q(
            subscription_id=sub_id,
            period__gt=period,
            period__lte=term_end.replace(day=1),
        )
    rows = (
        CallRecord.objects.filter(cond)
        .values("subscription_id")
        .annotate(next_period=Min("period"))
        .order_by()
    )
    return {r["subscription_id"]: r["next_period"] for r in rows}


class _Writer:
    """Writes changed ratings: COPY into a temp table + one UPDATE on PostgreSQL."""

    TABLE = "billing_rating_tmp"

    def __init__(self) -> None:
        self.ready = False

    def write(self, changes: list[tuple], now: dt.datetime) -> None:
        if not changes:
            return
        if connection.vendor != "postgresql":
            self._write_orm(changes, now)
            return
        table = CallRecord._meta.db_table
        with connection.cursor() as cur:
            if not self.ready:
                cur.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {self.TABLE} ("
                    "id bigint, band varchar(8), billable integer, pool integer,"
                    " charged integer, rate numeric(8,4), amount numeric(14,4)"
                    ") ON COMMIT DROP"
                )
                self.ready = True
            cur.execute(f"TRUNCATE {self.TABLE}")
            with cur.copy(
                f"COPY {self.TABLE} (id, band, billable, pool, charged, rate, amount)"
                " FROM STDIN"
            ) as copy:
                for row in changes:
                    copy.write_row(row)
            cur.execute(
                f"UPDATE {table} AS c SET band = t.band,"  # noqa: S608
                " billable_minutes = t.billable, pool_minutes = t.pool,"
                " charged_minutes = t.charged, rate = t.rate, amount = t.amount,"
                f" rated_at = %s FROM {self.TABLE} AS t WHERE c.id = t.id",
                [now],
            )

    @staticmethod
    def _write_orm(changes: list[tuple], now: dt.datetime) -> None:
        objs = [
            CallRecord(
                pk=pk,
                band=band,
                billable_minutes=billable,
                pool_minutes=pool,
                charged_minutes=charged,
                rate=rate,
                amount=amount,
                rated_at=now,
            )
            for pk, band, billable, pool, charged, rate, amount in changes
        ]
        CallRecord.objects.bulk_update(
            objs,
            [
                "band",
                "billable_minutes",
                "pool_minutes",
                "charged_minutes",
                "rate",
                "amount",
                "rated_at",
            ],
            batch_size=2000,
        )


def advise(
    *, calls: Iterable[core.CallIn], plan: Plan, period: dt.date
) -> core.PlanCost:
    """The plan advisor's entry point with catalog data (see ``advise_month``)."""
    return core.advise_month(list(calls), plan_terms_of(plan), calendar_load(), period)
