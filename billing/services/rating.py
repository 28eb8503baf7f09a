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
from dataclasses import dataclass, field, replace

from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.db.models.functions import TruncDate
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
    if connection.vendor == "postgresql":
        return _pool_used_before_pg(period, running, month_start, after)
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


def _pool_used_before_pg(period, running, month_start, after) -> dict[int, int]:
    """``_pool_used_before`` in one statement: the terms come as arrays (a
    Q object with thousands of ORs costs more to compile than to run)."""
    subs, p_from, p_to, t_from, t_until = [], [], [], [], []
    for sub_id, (t_start, t_end) in running.items():
        subs.append(sub_id)
        p_from.append(t_start.replace(day=1))
        p_to.append(t_end.replace(day=1))
        t_from.append(core.day_start_instant(t_start))
        t_until.append(core.day_start_instant(t_end + dt.timedelta(days=1)))
    sql = (
        "SELECT c.subscription_id, SUM(c.pool_minutes)"  # noqa: S608
        f" FROM {CallRecord._meta.db_table} c"
        " JOIN unnest(%s::bigint[], %s::date[], %s::date[],"
        " %s::timestamptz[], %s::timestamptz[]) AS t(sub, p_from, p_to, t_from,"
        " t_until) ON c.subscription_id = t.sub"
        f" LEFT JOIN {Invoice._meta.db_table} i ON i.id = c.invoice_id"
        " WHERE (c.period >= t.p_from AND c.period < %s"
        "  AND c.start_time >= t.t_from AND c.start_time < %s)"
        " OR (c.period > %s AND c.period <= t.p_to AND c.start_time >= %s"
        "  AND c.start_time < t.t_until AND i.status IS NOT NULL"
        "  AND i.status <> %s)"
        " GROUP BY c.subscription_id"
    )
    params = [subs, p_from, p_to, t_from, t_until, period, month_start, period]
    params += [after, Invoice.Status.DRAFT]
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return {sub_id: int(used or 0) for sub_id, used in cur.fetchall()}


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


def rating_inputs_many(
    *, keys: Iterable[tuple[int, dt.date]], subs: dict[int, dict]
) -> dict[tuple[int, dt.date], RatingInputs]:
    """``rating_inputs_for`` of many subscription-months in a few queries.

    ``subs`` maps a subscription id to its ``id``, ``activated_on`` and
    ``ended_on``. Built from the same loaders (plan periods, running terms,
    pool used before the month), so the inputs are the ones it would give.
    """
    by_period: dict[dt.date, list[int]] = defaultdict(list)
    for sub_id, period in keys:
        if sub_id in subs:
            by_period[period].append(sub_id)
    if not by_period:
        return {}
    plan_periods = _plan_periods_for(sorted(subs))
    calendar = calendar_load()
    out: dict[tuple[int, dt.date], RatingInputs] = {}
    for period, sub_ids in by_period.items():
        batch = {s: subs[s] for s in sub_ids}
        running = _running_terms(batch, plan_periods, period)
        used = _pool_used_before(period, running)
        for sub_id, sub in batch.items():
            out[(sub_id, period)] = _inputs(
                sub, period, plan_periods.get(sub_id, ()), calendar, used.get(sub_id, 0)
            )
    return out


def fresh_month_inputs(
    *, keys: Iterable[tuple[int, dt.date]], lock: bool
) -> dict[tuple[int, dt.date], RatingInputs]:
    """Rating inputs of those subscription-months that have no stored calls,
    in their month or any later one.

    Such a month is rated entirely from calls about to be stored, and no term
    pool downstream depends on it yet: an import rates it in bulk exactly as
    ``calls_rate_many`` would after the insert. ``lock`` takes the
    subscriptions' row locks, as the rating does (inside a transaction).
    """
    keys = list(keys)
    if not keys:
        return {}
    table = CallRecord._meta.db_table
    with connection.cursor() as cur:
        # Once per month (not per call): an index probe each.
        cur.execute(
            "SELECT s.subscription_id, s.period"  # noqa: S608
            " FROM unnest(%s::bigint[], %s::date[]) AS s(subscription_id, period)"
            f" WHERE NOT EXISTS (SELECT 1 FROM {table} c"
            " WHERE c.subscription_id = s.subscription_id"
            " AND c.period >= s.period)",
            [[k[0] for k in keys], [k[1] for k in keys]],
        )
        fresh = cur.fetchall()
    if not fresh:
        return {}
    subs = Subscription.objects.filter(id__in=sorted({k[0] for k in fresh}))
    if lock:
        subs = subs.select_for_update()
    rows = subs.order_by("id").values("id", "activated_on", "ended_on")
    return rating_inputs_many(keys=fresh, subs={row["id"]: row for row in rows})


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
    for row in _load_calls(period, list(subs)):
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


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _load_calls(period: dt.date, sub_ids: list[int]):
    """The month's calls as tuples in ``_CALL_FIELDS`` order.

    On PostgreSQL a raw query returns the start as epoch microseconds and
    ``rated_at`` as a flag: parsing a million timestamps is most of the cost
    of reading them.
    """
    if connection.vendor != "postgresql":
        yield from (
            CallRecord.objects.filter(subscription_id__in=sub_ids, period=period)
            .order_by()
            .values_list(*_CALL_FIELDS)
        )
        return
    calls = CallRecord._meta.db_table
    invoices = Invoice._meta.db_table
    sql = (
        "SELECT c.id, c.subscription_id, c.call_id,"  # noqa: S608
        " (extract(epoch FROM c.start_time) * 1000000)::bigint,"
        " c.duration_seconds, c.direction, c.status, c.band, c.billable_minutes,"
        " c.pool_minutes, c.charged_minutes, c.rate, c.amount,"
        " c.rated_at IS NOT NULL, i.status"
        f" FROM {calls} c LEFT JOIN {invoices} i ON i.id = c.invoice_id"
        " WHERE c.subscription_id = ANY(%s) AND c.period = %s"
    )
    epoch, micro = _EPOCH, dt.timedelta
    with connection.cursor() as cur:
        cur.execute(sql, [sub_ids, period])
        while batch := cur.fetchmany(10_000):
            for r in batch:
                yield (
                    r[0], r[1], r[2], epoch + micro(microseconds=r[3]), *r[4:13],
                    True if r[13] else None, r[14],
                )  # fmt: skip


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


# --- the import's fast path: rate calls before they are inserted -------------


@dataclass(frozen=True)
class IncomingCall:
    """A call about to be inserted, with the subscription it belongs to."""

    subscription_id: int
    call: core.CallIn


@dataclass
class IncomingRatings:
    """What ``RatingSession.rate_incoming`` decided for a batch of new calls.

    ``ratings``: the rating of every call to insert (store it with
    ``rated_at``). ``outside``: call ids on a day the subscription was not
    active — reject them, do not insert them. ``rerate`` and ``follow``: the
    months ``RatingSession.finish`` re-rates once the rows are inserted.
    """

    ratings: dict[str, core.CallRating]
    outside: list[str]
    rated_at: dt.datetime
    rerate: set[tuple[int, dt.date]] = field(default_factory=set)
    follow: dict[tuple[int, dt.date], dt.date] = field(default_factory=dict)


@dataclass
class _SegmentState:
    segment: core.Segment
    used: int  # pool minutes of the stored calls of this segment (this month)
    last_start: dt.datetime | None  # latest stored non-frozen call
    unrated: int  # stored non-frozen calls never rated


class RatingSession:
    """Rates new calls before they are inserted, so an import writes each row once.

    Usage, inside one ``transaction.atomic()`` per batch (or one for the whole
    import)::

        session = RatingSession()
        with transaction.atomic():
            result = session.rate_incoming(incoming)   # locks the subscriptions
            ... insert the calls not in result.outside with result.ratings ...
            session.finish(result)                      # re-rates what must be

    Pass only calls that will really be inserted (no duplicates of stored
    call ids), or the pool would count minutes of calls that never land.

    The fast path: when every new call of a segment starts after the stored
    non-frozen calls of that segment (the usual case: carriers send calls in
    time order), the stored ratings cannot change, and the new calls share
    what is left of the pool (one aggregate query per batch, no UPDATE).
    Otherwise the month is rated provisionally and ``finish`` re-rates it in
    full after the insert, exactly like ``calls_rate_many``. A term plan
    whose pool continues into later months that already have calls gets
    those months re-rated in ``finish`` too.

    What the session remembers between batches is only reused inside the
    same database transaction (where the subscription locks are held).
    """

    def __init__(self) -> None:
        self.calendar: core.Calendar | None = None
        self._txid: int | None = None
        self._subs: dict[int, dict] = {}
        self._plan_periods: dict[int, tuple[core.PlanPeriod, ...]] = {}
        self._state: dict[tuple[int, dt.date], list[_SegmentState]] = {}

    def rate_incoming(self, calls: Iterable[IncomingCall]) -> IncomingRatings:
        if not connection.in_atomic_block:
            raise RuntimeError("rate_incoming must run inside transaction.atomic()")
        self._check_transaction()
        if self.calendar is None:
            self.calendar = calendar_load()
        by_key: dict[tuple[int, dt.date], list[core.CallIn]] = defaultdict(list)
        for inc in calls:
            by_key[(inc.subscription_id, core.period_of(inc.call.start))].append(
                inc.call
            )
        result = IncomingRatings(ratings={}, outside=[], rated_at=timezone.now())
        if not by_key:
            return result
        self._lock_and_load(sorted({s for s, _ in by_key}))
        self._load_states([k for k in by_key if k not in self._state])
        first_period: dict[int, dt.date] = {}
        for sub_id, period in sorted(by_key, key=lambda k: (k[1], k[0])):
            first_period.setdefault(sub_id, period)
        for key in sorted(by_key, key=lambda k: (k[1], k[0])):
            sub_id, period = key
            if sub_id not in self._subs:
                result.outside.extend(c.call_id for c in by_key[key])
                continue
            self._rate_key(key, by_key[key], result)
            if first_period[sub_id] != period:
                # An earlier month of the same batch changes this one's pool.
                result.rerate.add(key)
        return result

    def finish(self, result: IncomingRatings) -> RateSummary:
        """After the insert: re-rate the months the fast path could not settle."""
        keys = set(result.rerate)
        by_period: dict[dt.date, dict[int, dt.date]] = defaultdict(dict)
        for (sub_id, period), term_end in result.follow.items():
            by_period[period][sub_id] = term_end
        for period, follow in by_period.items():
            for sub_id, nxt in _next_months(period, follow).items():
                keys.add((sub_id, nxt))
        if not keys:
            return RateSummary()
        summary = calls_rate_many(keys=keys)
        touched = {s for s, _ in keys}
        self._state = {k: v for k, v in self._state.items() if k[0] not in touched}
        return summary

    # -- internals --

    def _check_transaction(self) -> None:
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute("SELECT txid_current()")
                txid = cur.fetchone()[0]
        else:
            txid = -1
            self._state.clear()  # no cheap transaction id: never reuse
        if txid != self._txid:
            self._txid = txid
            self._state.clear()
            self._subs.clear()

    def _lock_and_load(self, sub_ids: list[int]) -> None:
        new = [s for s in sub_ids if s not in self._subs]
        if not new:
            return
        for row in (
            Subscription.objects.select_for_update()
            .filter(id__in=new)
            .order_by("id")
            .values("id", "activated_on", "ended_on")
        ):
            self._subs[row["id"]] = row
        missing = [s for s in new if s not in self._plan_periods]
        self._plan_periods.update(_plan_periods_for(missing))

    def _load_states(self, keys: list[tuple[int, dt.date]]) -> None:
        keys = [k for k in keys if k[0] in self._subs]
        by_period: dict[dt.date, list[int]] = defaultdict(list)
        for sub_id, period in keys:
            by_period[period].append(sub_id)
        for period, sub_ids in by_period.items():
            subs = {s: self._subs[s] for s in sub_ids}
            used_before = _pool_used_before(
                period, _running_terms(subs, self._plan_periods, period)
            )
            days = _day_usage(period, sub_ids)
            for sub_id in sub_ids:
                inputs = _inputs(
                    subs[sub_id],
                    period,
                    self._plan_periods.get(sub_id, ()),
                    self.calendar,
                    used_before.get(sub_id, 0),
                )
                states = []
                for seg in inputs.segments:
                    used, last, unrated = 0, None, 0
                    for day, (d_used, d_last, d_unrated) in days.get(
                        sub_id, {}
                    ).items():
                        if seg.contains(day):
                            used += d_used
                            unrated += d_unrated
                            if d_last is not None and (last is None or d_last > last):
                                last = d_last
                    states.append(_SegmentState(seg, used, last, unrated))
                self._state[(sub_id, period)] = states

    def _rate_key(
        self,
        key: tuple[int, dt.date],
        calls: list[core.CallIn],
        result: IncomingRatings,
    ) -> None:
        states = self._state[key]
        segments = [
            replace(
                st.segment,
                pool_available=max(0, st.segment.pool_available - st.used),
            )
            for st in states
        ]
        inside: list[core.CallIn] = []
        slow = False
        for c in calls:
            day = core.local_date(c.start)
            index = next((i for i, s in enumerate(segments) if s.contains(day)), None)
            if index is None:
                result.outside.append(c.call_id)
                continue
            st = states[index]
            if st.unrated or (st.last_start is not None and c.start <= st.last_start):
                slow = True
            inside.append(c)
        if not inside:
            return
        ratings = core.rate_month(inside, segments, self.calendar)
        for r in ratings:
            result.ratings[r.call_id] = r
        if slow:
            result.rerate.add(key)
            del self._state[key]
            return
        # Remember what this batch used, for the next batch of the import.
        for c, r in zip(
            sorted(inside, key=lambda c: c.order_key), ratings, strict=True
        ):
            day = core.local_date(c.start)
            st = next(s for s in states if s.segment.contains(day))
            st.used += r.pool_minutes
            if st.last_start is None or c.start > st.last_start:
                st.last_start = c.start
        _, month_last = core.month_bounds(key[1])
        last = states[-1].segment if states else None
        if (
            last is not None
            and last.plan.is_term_plan
            and last.end_date == month_last
            and last.term_end > month_last
        ):
            result.follow[key] = last.term_end


def _day_usage(
    period: dt.date, sub_ids: list[int]
) -> dict[int, dict[dt.date, tuple[int, dt.datetime | None, int]]]:
    """Per subscription and local day of ``period``: pool used by stored calls,
    the latest non-frozen start and the number of non-frozen unrated calls."""
    not_frozen = Q(invoice__isnull=True) | Q(invoice__status=Invoice.Status.DRAFT)
    rows = (
        CallRecord.objects.filter(subscription_id__in=sub_ids, period=period)
        .annotate(day=TruncDate("start_time", tzinfo=core.SHANGHAI))
        .values("subscription_id", "day")
        .annotate(
            used=Sum("pool_minutes"),
            last=Max("start_time", filter=not_frozen),
            unrated=Count("id", filter=not_frozen & Q(rated_at__isnull=True)),
        )
        .order_by()
    )
    out: dict[int, dict] = defaultdict(dict)
    for r in rows:
        out[r["subscription_id"]][r["day"]] = (
            int(r["used"] or 0),
            r["last"],
            int(r["unrated"] or 0),
        )
    return out
