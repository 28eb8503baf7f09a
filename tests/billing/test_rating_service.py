"""Rating in the database: loading inputs, storing ratings, late calls, terms."""

import datetime as dt
import random
import threading
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.models import CallRecord, Invoice
from billing.rating import CallIn
from billing.services.rating import (
    IncomingCall,
    RatingSession,
    calendar_load,
    calls_rate,
    calls_rate_many,
    rating_inputs_for,
)
from plans.models import SubscriptionPlanPeriod
from tests.factories import (
    HolidayFactory,
    PlanFactory,
    SubscriptionFactory,
    TermPlanFactory,
)

SH = ZoneInfo("Asia/Shanghai")
MARCH = dt.date(2026, 3, 1)

pytestmark = pytest.mark.django_db


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH)


def add_call(sub, call_id, start, seconds, direction="inbound", status="answered"):
    local = start.astimezone(SH)
    return CallRecord.objects.create(
        call_id=call_id,
        company=sub.company,
        subscription=sub,
        number=sub.number,
        start_time=start,
        period=local.date().replace(day=1),
        duration_seconds=seconds,
        direction=direction,
        status=status,
    )


def rated(call_id):
    c = CallRecord.objects.get(call_id=call_id)
    return (c.band, c.billable_minutes, c.pool_minutes, c.charged_minutes, c.amount)


def small_plan(**kw):
    # A 10-minute monthly pool at 0.15 peak / 0.10 off-peak / 0.20 outbound.
    return PlanFactory(included_minutes=10, **kw)


def issue(sub, period, calls, number="HL-2026-000001"):
    invoice = Invoice.objects.create(
        company=sub.company, period=period, status="issued", number=number
    )
    CallRecord.objects.filter(call_id__in=calls).update(invoice=invoice)
    return invoice


def test_rating_a_month_stores_how_each_call_was_charged():
    # Given a 10-minute pool and three calls in March
    sub = SubscriptionFactory(plan=small_plan(), activated_on=MARCH)
    add_call(sub, "a", at(2026, 3, 2, 9, 0), 481)  # 9 min, peak
    add_call(sub, "b", at(2026, 3, 2, 21, 0), 240)  # 4 min, off-peak: 1 pool, 3 charged
    add_call(sub, "c", at(2026, 3, 3, 9, 0), 61, direction="outbound")  # 2 min
    add_call(sub, "d", at(2026, 3, 3, 10, 0), 300, status="missed")
    # When the month is rated
    summary = calls_rate(subscription=sub, period=MARCH)
    # Then each call explains its charge
    assert (summary.months, summary.calls, summary.changed) == (1, 4, 4)
    assert rated("a") == ("peak", 9, 9, 0, D("0"))
    assert rated("b") == ("offpeak", 4, 1, 3, D("0.3000"))  # 3 × 0.10
    assert rated("c") == ("peak", 2, 0, 2, D("0.4000"))  # 2 × 0.20
    assert rated("d") == ("peak", 0, 0, 0, D("0"))
    assert CallRecord.objects.filter(rated_at__isnull=True).count() == 0


def test_rating_again_with_nothing_new_writes_nothing():
    sub = SubscriptionFactory(plan=small_plan(), activated_on=MARCH)
    add_call(sub, "a", at(2026, 3, 2, 9, 0), 481)
    calls_rate(subscription=sub, period=MARCH)
    first = CallRecord.objects.get(call_id="a").rated_at
    summary = calls_rate(subscription=sub, period=MARCH)
    assert summary.changed == 0
    assert CallRecord.objects.get(call_id="a").rated_at == first


def test_a_call_arriving_late_in_a_draft_month_is_rated_as_if_it_came_first():
    # Given March rated with b (8 min, March 10th) taking 8 of 10
    sub = SubscriptionFactory(plan=small_plan(), activated_on=MARCH)
    add_call(sub, "b", at(2026, 3, 10, 9, 0), 480)
    calls_rate(subscription=sub, period=MARCH)
    assert rated("b")[2:4] == (8, 0)
    # When a (6 min, March 2nd) arrives afterwards and the month is re-rated
    add_call(sub, "a", at(2026, 3, 2, 9, 0), 360)
    calls_rate(subscription=sub, period=MARCH)
    # Then a took 6 first and b got the 4 left, paying 4 × 0.15 = 0.60
    assert rated("a")[2:4] == (6, 0)
    assert rated("b") == ("peak", 8, 4, 4, D("0.6000"))


def test_late_calls_after_an_issued_invoice_use_what_was_left_and_freeze_the_rest():
    # Given March issued with b (8 min of the 10-minute pool)
    sub = SubscriptionFactory(plan=small_plan(), activated_on=MARCH)
    add_call(sub, "b", at(2026, 3, 10, 9, 0), 480)
    calls_rate(subscription=sub, period=MARCH)
    issue(sub, MARCH, ["b"])
    frozen_at = CallRecord.objects.get(call_id="b").rated_at
    # When a (6 min, earlier in March) arrives after the invoice
    add_call(sub, "a", at(2026, 3, 2, 9, 0), 360)
    summary = calls_rate(subscription=sub, period=MARCH)
    # Then b keeps its rating and a gets the 2 left: 4 × 0.15 = 0.60 charged
    assert summary.frozen == 1
    assert rated("b") == ("peak", 8, 8, 0, D("0"))
    assert CallRecord.objects.get(call_id="b").rated_at == frozen_at
    assert rated("a") == ("peak", 6, 2, 4, D("0.6000"))


def test_calls_on_a_draft_invoice_are_still_re_rated():
    sub = SubscriptionFactory(plan=small_plan(), activated_on=MARCH)
    add_call(sub, "b", at(2026, 3, 10, 9, 0), 480)
    calls_rate(subscription=sub, period=MARCH)
    draft = Invoice.objects.create(company=sub.company, period=MARCH)
    CallRecord.objects.filter(call_id="b").update(invoice=draft)
    add_call(sub, "a", at(2026, 3, 2, 9, 0), 360)
    calls_rate(subscription=sub, period=MARCH)
    # a (6) first, then b gets 4 of its 8.
    assert rated("b")[2:4] == (4, 4)


def test_the_catalog_holiday_calendar_decides_the_band():
    # 2026-03-05 (a Thursday) made a holiday; 2026-03-07 (a Saturday) a workday.
    HolidayFactory(date=dt.date(2026, 3, 5), kind="holiday", name="test")
    HolidayFactory(date=dt.date(2026, 3, 7), kind="workday", name="test")
    sub = SubscriptionFactory(plan=PlanFactory(included_minutes=0), activated_on=MARCH)
    add_call(sub, "thu", at(2026, 3, 5, 10, 0), 60)
    add_call(sub, "sat", at(2026, 3, 7, 10, 0), 60)
    calls_rate(subscription=sub, period=MARCH)
    assert rated("thu") == ("offpeak", 1, 0, 1, D("0.1000"))
    assert rated("sat") == ("peak", 1, 0, 1, D("0.1500"))
    assert calendar_load().holidays[dt.date(2026, 3, 5)] == "holiday"


def test_a_call_at_the_last_second_of_march_in_shanghai_is_rated_in_march():
    # 2026-03-31 23:59:59 +08:00 = 15:59:59 UTC: period March, off-peak.
    sub = SubscriptionFactory(plan=small_plan(), activated_on=MARCH)
    add_call(sub, "last", dt.datetime(2026, 3, 31, 15, 59, 59, tzinfo=dt.UTC), 60)
    assert CallRecord.objects.get(call_id="last").period == MARCH
    calls_rate(subscription=sub, period=MARCH)
    assert rated("last") == ("offpeak", 1, 1, 0, D("0"))


def test_proration_in_the_inputs_of_a_month_activated_on_the_10th():
    # 22 of 31 days: fee 199 × 22 / 31 = 141.2258… → 141.23, pool floor(22000/31)=709
    sub = SubscriptionFactory(plan=PlanFactory(), activated_on=dt.date(2026, 3, 10))
    (seg,) = rating_inputs_for(subscription=sub, period=MARCH).segments
    assert (seg.fee, seg.pool_available, seg.active_days) == (D("141.23"), 709, 22)


def term_sub():
    # A 12-month plan with a 100-minute pool at 0.12, activated 2026-01-15.
    plan = TermPlanFactory(term_months=12, price=D("1200.00"), included_minutes=100)
    return SubscriptionFactory(plan=plan, activated_on=dt.date(2026, 1, 15))


def test_a_term_pool_spans_months():
    sub = term_sub()
    add_call(sub, "jan", at(2026, 1, 20, 10, 0), 1800)  # 30 min
    add_call(sub, "feb", at(2026, 2, 10, 10, 0), 3600)  # 60 min
    add_call(sub, "mar", at(2026, 3, 10, 10, 0), 3600)  # 60 min
    calls_rate_many(
        keys=[
            (sub.pk, MARCH),
            (sub.pk, dt.date(2026, 1, 1)),
            (sub.pk, dt.date(2026, 2, 1)),
        ]
    )
    # 100 − 30 − 60 = 10 left for March: 50 charged × 0.12 = 6.00
    assert rated("jan")[2:4] == (30, 0)
    assert rated("feb")[2:4] == (60, 0)
    assert rated("mar") == ("peak", 60, 10, 50, D("6.0000"))
    inputs = rating_inputs_for(subscription=sub, period=MARCH)
    assert inputs.pool_used_before == 90
    assert inputs.segments[0].fee_kind == "none"


def test_re_rating_an_earlier_month_of_a_term_re_rates_the_following_months():
    # Given February (60) and March (60) rated: March took the last 40.
    sub = term_sub()
    add_call(sub, "feb", at(2026, 2, 10, 10, 0), 3600)
    add_call(sub, "mar", at(2026, 3, 10, 10, 0), 3600)
    calls_rate_many(keys=[(sub.pk, dt.date(2026, 2, 1)), (sub.pk, MARCH)])
    assert rated("mar")[2:4] == (40, 20)
    # When a 30-min January call arrives and only January is re-rated
    add_call(sub, "jan", at(2026, 1, 20, 10, 0), 1800)
    summary = calls_rate(subscription=sub, period=dt.date(2026, 1, 1))
    # Then February and March follow: 100 − 30 − 60 = 10 left for March,
    # 50 charged × 0.12 = 6.00
    assert summary.months == 3
    assert rated("feb")[2:4] == (60, 0)
    assert rated("mar") == ("peak", 60, 10, 50, D("6.0000"))


def test_a_fresh_term_starts_with_a_fresh_pool_and_the_old_one_expires():
    # Pool of the first term (2026-01-15 … 2027-01-14) fully used in 2026;
    # a call on 2027-01-14 pays, one on 2027-01-15 draws on the new term.
    sub = term_sub()
    add_call(sub, "y1", at(2026, 6, 1, 10, 0), 6000)  # 100 min
    add_call(sub, "last-day", at(2027, 1, 14, 10, 0), 600)  # 10 min
    add_call(sub, "new-term", at(2027, 1, 15, 10, 0), 600)  # 10 min
    calls_rate_many(keys=[(sub.pk, dt.date(2026, 6, 1)), (sub.pk, dt.date(2027, 1, 1))])
    assert rated("last-day") == ("peak", 10, 0, 10, D("1.2000"))  # 10 × 0.12
    assert rated("new-term")[2:4] == (10, 0)
    segs = rating_inputs_for(subscription=sub, period=dt.date(2027, 1, 1)).segments
    assert [(s.start_date.day, s.pool_available, s.fee) for s in segs] == [
        (1, 0, D("0.00")),
        (15, 100, D("1200.00")),
    ]


def test_a_late_call_never_overdraws_a_term_pool_used_by_a_later_issued_month():
    # Given February (60) and March (40 of the last 40) both issued
    sub = term_sub()
    add_call(sub, "feb", at(2026, 2, 10, 10, 0), 3600)
    add_call(sub, "mar", at(2026, 3, 10, 10, 0), 2400)
    calls_rate_many(keys=[(sub.pk, dt.date(2026, 2, 1)), (sub.pk, MARCH)])
    issue(sub, dt.date(2026, 2, 1), ["feb"])
    issue(sub, MARCH, ["mar"], number="HL-2026-000002")
    # When a late February call (5 min) arrives: the pool is empty (100 used)
    add_call(sub, "late", at(2026, 2, 11, 10, 0), 300)
    calls_rate(subscription=sub, period=dt.date(2026, 2, 1))
    # Then it pays all 5 × 0.12 = 0.60
    assert rated("late") == ("peak", 5, 0, 5, D("0.6000"))


def test_a_plan_change_on_the_first_rates_each_month_under_its_own_plan():
    sub = SubscriptionFactory(plan=small_plan(), activated_on=dt.date(2026, 2, 1))
    SubscriptionPlanPeriod.objects.filter(subscription=sub).update(
        end_date=dt.date(2026, 2, 28)
    )
    dear = PlanFactory(included_minutes=0, rate_inbound_peak=D("0.3000"))
    SubscriptionPlanPeriod.objects.create(subscription=sub, plan=dear, start_date=MARCH)
    add_call(sub, "feb", at(2026, 2, 27, 10, 0), 60)
    add_call(sub, "mar", at(2026, 3, 2, 10, 0), 60)
    calls_rate_many(keys=[(sub.pk, dt.date(2026, 2, 1)), (sub.pk, MARCH)])
    assert rated("feb") == ("peak", 1, 1, 0, D("0"))
    assert rated("mar") == ("peak", 1, 0, 1, D("0.3000"))


def test_calls_outside_the_active_days_are_reported_and_left_unrated():
    sub = SubscriptionFactory(plan=small_plan(), activated_on=dt.date(2026, 3, 10))
    add_call(sub, "early", at(2026, 3, 9, 10, 0), 60)
    add_call(sub, "ok", at(2026, 3, 10, 10, 0), 60)
    summary = calls_rate(subscription=sub, period=MARCH)
    assert summary.outside == ["early"]
    assert CallRecord.objects.get(call_id="early").rated_at is None
    assert rated("ok")[2] == 1


def test_rating_many_months_costs_a_constant_number_of_queries(
    django_assert_max_num_queries,
):
    # 2 and 8 subscriptions of the same month cost the same number of queries.
    counts = []
    for n in (2, 8):
        subs = [
            SubscriptionFactory(plan=small_plan(), activated_on=MARCH) for _ in range(n)
        ]
        for s in subs:
            for i in range(3):
                add_call(s, f"{s.pk}-{i}", at(2026, 3, 2 + i, 10, 0), 60)
        with CaptureQueriesContext(connection) as ctx:
            summary = calls_rate_many(keys=[(s.pk, MARCH) for s in subs])
        assert summary.changed == 3 * n
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
    with django_assert_max_num_queries(counts[0]):
        calls_rate_many(keys=[(s.pk, MARCH) for s in subs])


@pytest.mark.django_db(transaction=True)
def test_two_imports_rating_the_same_number_at_once_agree_with_all_at_once():
    # Given a 10-minute pool with a (4 min) rated, and two imports that each
    # add one 4-minute call (x at 10:00, y at 11:00) and rate at the same time
    sub = SubscriptionFactory(plan=small_plan(), activated_on=MARCH)
    add_call(sub, "a", at(2026, 3, 2, 9, 0), 240)
    calls_rate(subscription=sub, period=MARCH)
    barrier = threading.Barrier(2)
    errors = []

    def import_one(call_id, hour):
        try:
            with transaction.atomic():
                add_call(sub, call_id, at(2026, 3, 2, hour, 0), 240)
                barrier.wait(timeout=10)
                calls_rate(subscription=sub, period=MARCH)
        except Exception as exc:  # reported below, never swallowed
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=import_one, args=("x", 10)),
        threading.Thread(target=import_one, args=("y", 11)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then the result is that of all calls at once: a 4, x 4, y 2 + 2 charged
    # (2 × 0.15 = 0.30), never 4 + 4 + 4 = 12 minutes from a 10-minute pool.
    assert errors == []
    assert rated("x")[2:4] == (4, 0)
    assert rated("y") == ("peak", 4, 2, 2, D("0.3000"))


# --- the import's fast path --------------------------------------------------


def incoming(sub, call_id, start, seconds, direction="inbound", answered=True):
    return IncomingCall(sub.pk, CallIn(call_id, start, seconds, direction, answered))


def insert_rated(sub, calls, result):
    """What the import does: insert the calls with the ratings it was given."""
    rows = []
    for inc in calls:
        if inc.call.call_id in result.outside:
            continue
        r = result.ratings[inc.call.call_id]
        rows.append(
            CallRecord(
                call_id=inc.call.call_id,
                company=sub.company,
                subscription=sub,
                number=sub.number,
                start_time=inc.call.start,
                period=inc.call.start.astimezone(SH).date().replace(day=1),
                duration_seconds=inc.call.duration_seconds,
                direction=inc.call.direction,
                status="answered" if inc.call.answered else "missed",
                band=r.band,
                billable_minutes=r.billable_minutes,
                pool_minutes=r.pool_minutes,
                charged_minutes=r.charged_minutes,
                rate=r.rate,
                amount=r.amount,
                rated_at=result.rated_at,
            )
        )
    CallRecord.objects.bulk_create(rows)


def import_batches(sub, batches):
    session = RatingSession()
    results = []
    for batch in batches:
        with transaction.atomic():
            result = session.rate_incoming(batch)
            insert_rated(sub, batch, result)
            session.finish(result)
        results.append(result)
    return results


def test_batches_in_time_order_are_rated_once_without_re_rating():
    # Given a 10-minute pool and two batches in time order: a 4, b 4 | c 4, d 1
    sub = SubscriptionFactory(plan=small_plan(), activated_on=MARCH)
    first = [
        incoming(sub, "a", at(2026, 3, 2, 9, 0), 240),
        incoming(sub, "b", at(2026, 3, 3, 9, 0), 240),
    ]
    second = [
        incoming(sub, "c", at(2026, 3, 4, 9, 0), 240),
        incoming(sub, "d", at(2026, 3, 5, 9, 0), 60),
    ]
    results = import_batches(sub, [first, second])
    # Then nothing needed re-rating, and c got the 2 left (2 × 0.15 = 0.30)
    assert [r.rerate for r in results] == [set(), set()]
    assert rated("c") == ("peak", 4, 2, 2, D("0.3000"))
    assert rated("d") == ("peak", 1, 0, 1, D("0.1500"))
    # and re-rating everything from scratch changes nothing.
    assert calls_rate(subscription=sub, period=MARCH).changed == 0


def test_a_batch_with_an_earlier_call_re_rates_the_month_after_the_insert():
    # Given b (8 min, March 10th) imported; then a (6 min, March 2nd)
    sub = SubscriptionFactory(plan=small_plan(), activated_on=MARCH)
    import_batches(sub, [[incoming(sub, "b", at(2026, 3, 10, 9, 0), 480)]])
    (result,) = import_batches(sub, [[incoming(sub, "a", at(2026, 3, 2, 9, 0), 360)]])
    # Then the month was re-rated as if a came first: a 6, b 4 + 4 charged
    assert result.rerate == {(sub.pk, MARCH)}
    assert rated("a")[2:4] == (6, 0)
    assert rated("b") == ("peak", 8, 4, 4, D("0.6000"))


def test_new_calls_after_an_issued_month_use_what_was_left():
    sub = SubscriptionFactory(plan=small_plan(), activated_on=MARCH)
    import_batches(sub, [[incoming(sub, "b", at(2026, 3, 10, 9, 0), 480)]])
    issue(sub, MARCH, ["b"])
    # An earlier late call: b is frozen, so a only gets the 2 left.
    import_batches(sub, [[incoming(sub, "a", at(2026, 3, 2, 9, 0), 360)]])
    assert rated("a") == ("peak", 6, 2, 4, D("0.6000"))
    assert rated("b")[2:4] == (8, 0)


def test_importing_an_earlier_month_of_a_term_re_rates_the_later_months():
    # March (60 min) imported first, then February (60 min) arrives:
    # February takes 60 of 100, March is left 40 and pays 20 × 0.12 = 2.40.
    sub = term_sub()
    import_batches(sub, [[incoming(sub, "mar", at(2026, 3, 10, 10, 0), 3600)]])
    assert rated("mar")[2:4] == (60, 0)
    import_batches(sub, [[incoming(sub, "feb", at(2026, 2, 10, 10, 0), 3600)]])
    assert rated("feb")[2:4] == (60, 0)
    assert rated("mar") == ("peak", 60, 40, 20, D("2.4000"))


def test_one_batch_spanning_two_months_of_a_term_agrees_with_rating_all_at_once():
    sub = term_sub()
    import_batches(
        sub,
        [
            [
                incoming(sub, "mar", at(2026, 3, 10, 10, 0), 3600),
                incoming(sub, "feb", at(2026, 2, 10, 10, 0), 3600),
            ]
        ],
    )
    assert rated("mar")[2:4] == (40, 20)


def test_calls_on_days_without_service_are_returned_as_outside():
    sub = SubscriptionFactory(plan=small_plan(), activated_on=dt.date(2026, 3, 10))
    session = RatingSession()
    with transaction.atomic():
        result = session.rate_incoming(
            [
                incoming(sub, "early", at(2026, 3, 9, 10, 0), 60),
                incoming(sub, "ok", at(2026, 3, 10, 10, 0), 60),
            ]
        )
    assert result.outside == ["early"]
    assert set(result.ratings) == {"ok"}


def test_random_batches_in_any_order_equal_rating_all_at_once():
    # Given 60 random calls imported in 4 shuffled batches on one number,
    # and the same calls inserted raw on another number and rated at once
    rnd = random.Random(7)
    one = SubscriptionFactory(plan=PlanFactory(included_minutes=60), activated_on=MARCH)
    two = SubscriptionFactory(plan=one.plan_periods.get().plan, activated_on=MARCH)
    specs = [
        (
            f"{i:03d}",
            at(2026, 3, 1) + dt.timedelta(minutes=rnd.randrange(31 * 24 * 60)),
            rnd.randrange(0, 400),
            rnd.choice(["inbound", "inbound", "outbound"]),
        )
        for i in range(60)
    ]
    rnd.shuffle(specs)
    batches = [
        [incoming(one, f"1-{cid}", start, sec, d) for cid, start, sec, d in specs[i::4]]
        for i in range(4)
    ]
    import_batches(one, batches)
    for cid, start, sec, d in specs:
        add_call(two, f"2-{cid}", start, sec, direction=d)
    calls_rate(subscription=two, period=MARCH)

    def ratings(sub, prefix):
        return {
            c.call_id.removeprefix(prefix): (
                c.pool_minutes,
                c.charged_minutes,
                c.amount,
            )
            for c in CallRecord.objects.filter(subscription=sub)
        }

    # Then both numbers were rated alike
    assert ratings(one, "1-") == ratings(two, "2-")
    assert sum(p for p, _, _ in ratings(one, "1-").values()) == 60
