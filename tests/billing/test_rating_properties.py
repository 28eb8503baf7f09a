"""Properties of the pure rating core (hypothesis)."""

import datetime as dt
import itertools
import math
import random
from decimal import Decimal as D
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.money import to_money
from billing.rating import (
    Calendar,
    CallIn,
    PlanPeriod,
    PlanTerms,
    Tariff,
    add_months,
    billable_minutes,
    month_bounds,
    month_segments,
    prorate_fee,
    prorate_pool,
    rate_month,
    term_bounds,
    usage_lines,
)

SH = ZoneInfo("Asia/Shanghai")
MARCH = dt.date(2026, 3, 1)
MARCH_START = dt.datetime(2026, 3, 1, tzinfo=SH)
SECONDS_IN_MARCH = 31 * 86400
TARIFF = Tariff(D("0.1500"), D("0.1000"), D("0.2000"))
CAL = Calendar(
    holidays={dt.date(2026, 3, 5): "holiday", dt.date(2026, 3, 7): "workday"}
)

rates = st.decimals(min_value=0, max_value=5, places=4)
tariffs = st.builds(Tariff, rates, rates, rates)


@st.composite
def call_lists(draw, max_size=40):
    n = draw(st.integers(0, max_size))
    id_text = st.text("abcdef0123", min_size=1, max_size=6)
    ids = draw(st.lists(id_text, min_size=n, max_size=n, unique=True))
    calls = []
    for cid in ids:
        offset = draw(st.integers(0, SECONDS_IN_MARCH - 1))
        # Coarse times give many ties, which the call id must break.
        offset -= offset % draw(st.sampled_from([1, 60, 3600, 86400]))
        calls.append(
            CallIn(
                call_id=cid,
                start=MARCH_START + dt.timedelta(seconds=offset),
                duration_seconds=draw(st.integers(0, 3 * 3600)),
                direction=draw(st.sampled_from(["inbound", "inbound", "outbound"])),
                answered=draw(st.booleans()),
            )
        )
    return calls


def march_segments(pool: int, tariff: Tariff = TARIFF):
    plan = PlanTerms(1, 1, D("100.00"), pool, tariff)
    return month_segments(
        periods=[PlanPeriod(plan, MARCH)],
        activated_on=MARCH,
        ended_on=None,
        period=MARCH,
    )


def as_dict(ratings):
    return {r.call_id: r for r in ratings}


@given(calls=call_lists(), pool=st.integers(0, 3000), tariff=tariffs)
def test_pool_plus_charged_is_billable_and_nothing_is_negative(calls, pool, tariff):
    ratings = rate_month(calls, march_segments(pool, tariff), CAL)
    assert len(ratings) == len(calls)
    for r in ratings:
        assert r.pool_minutes >= 0 and r.charged_minutes >= 0
        assert r.pool_minutes + r.charged_minutes == r.billable_minutes
        assert r.amount == r.charged_minutes * r.rate


@given(calls=call_lists(), pool=st.integers(0, 3000))
def test_the_pool_never_goes_negative_and_is_used_greedily(calls, pool):
    ratings = rate_month(calls, march_segments(pool), CAL)
    direction = {c.call_id: c.direction for c in calls}
    used = sum(r.pool_minutes for r in ratings)
    inbound_need = sum(
        r.billable_minutes for r in ratings if direction[r.call_id] == "inbound"
    )
    # Never more than the pool; and never less than it could: a call is only
    # charged inbound minutes once the pool is empty.
    assert used == min(pool, inbound_need)
    left = pool
    for r in ratings:  # in pool order
        if direction[r.call_id] == "outbound":
            assert r.pool_minutes == 0
            continue
        if r.charged_minutes:
            assert r.pool_minutes == left
        left -= r.pool_minutes
        assert left >= 0


@given(calls=call_lists(), pool=st.integers(0, 500), seed=st.integers(0, 2**32))
def test_the_order_of_arrival_never_changes_the_result(calls, pool, seed):
    shuffled = list(calls)
    random.Random(seed).shuffle(shuffled)
    segs = march_segments(pool)
    assert as_dict(rate_month(shuffled, segs, CAL)) == as_dict(
        rate_month(calls, segs, CAL)
    )


@given(calls=call_lists(), pool=st.integers(0, 500))
def test_splitting_a_call_never_changes_its_billable_minutes(calls, pool):
    for r, alone in zip(
        sorted(rate_month(calls, march_segments(pool), CAL), key=lambda r: r.call_id),
        sorted(rate_month(calls, march_segments(0), CAL), key=lambda r: r.call_id),
        strict=True,
    ):
        assert r.billable_minutes == alone.billable_minutes
        assert r.band == alone.band


@given(calls=call_lists(), pool=st.integers(0, 500), tariff=tariffs)
def test_usage_lines_total_the_calls(calls, pool, tariff):
    ratings = rate_month(calls, march_segments(pool, tariff), CAL)
    lines = usage_lines(calls, ratings)
    assert sum(ln.calls for ln in lines) == len(calls)
    for attr in ("billable_minutes", "pool_minutes", "charged_minutes"):
        assert sum(getattr(ln, attr) for ln in lines) == sum(
            getattr(r, attr) for r in ratings
        )
    # Each line rounds once: it is the rounded sum of the exact call amounts.
    exact = sum((r.amount for r in ratings), D(0))
    assert sum(ln.amount for ln in lines) - exact <= D("0.005") * len(lines)
    for ln in lines:
        assert ln.amount == to_money(ln.charged_minutes * ln.rate)


@given(calls=call_lists(), pool=st.integers(0, 500), cut=st.integers(0, 40))
def test_freezing_the_earliest_calls_changes_nothing(calls, pool, cut):
    # An invoice issued over the calls so far, then the rest arriving late
    # (all of them later in time): the same result as all at once.
    segs = march_segments(pool)
    full = rate_month(calls, segs, CAL)
    frozen = {r.call_id: r for r in full[:cut]}
    assert rate_month(calls, segs, CAL, frozen=frozen) == full


@given(calls=call_lists(), pool=st.integers(0, 500), data=st.data())
def test_late_calls_never_overdraw_the_pool_left_by_frozen_ones(calls, pool, data):
    segs = march_segments(pool)
    issued = rate_month(calls, segs, CAL)
    ids = [c.call_id for c in calls]
    frozen_ids = data.draw(st.sets(st.sampled_from(ids))) if ids else set()
    frozen = {r.call_id: r for r in issued if r.call_id in frozen_ids}
    left = pool - sum(r.pool_minutes for r in frozen.values())
    again = rate_month(calls, segs, CAL, frozen=frozen)
    late = [r for r in again if r.call_id not in frozen]
    assert 0 <= sum(r.pool_minutes for r in late) <= max(left, 0)


@given(seconds=st.integers(0, 10**6), answered=st.booleans())
def test_billable_minutes_is_the_ceiling(seconds, answered):
    m = billable_minutes(seconds, answered)
    assert m == (math.ceil(seconds / 60) if answered else 0)
    assert m * 60 >= (seconds if answered else 0)


@given(
    offset=st.integers(0, 400 * 86400),
    tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
)
def test_the_band_depends_only_on_the_instant(offset, tz):
    instant = dt.datetime(2026, 1, 1, tzinfo=SH) + dt.timedelta(seconds=offset)
    assert CAL.band_of(instant) == CAL.band_of(instant.astimezone(ZoneInfo(tz)))


@given(
    anchor=st.dates(dt.date(2024, 1, 1), dt.date(2030, 12, 31)),
    months=st.sampled_from([12, 24, 36]),
    later=st.integers(0, 3000),
)
def test_terms_tile_the_calendar(anchor, months, later):
    day = anchor + dt.timedelta(days=later)
    start, end = term_bounds(anchor, months, day)
    assert start <= day <= end
    nxt_start, _ = term_bounds(anchor, months, end + dt.timedelta(days=1))
    assert nxt_start == end + dt.timedelta(days=1)
    # A term lasts T months: it ends the day before the same date T months on.
    assert add_months(start, months) - dt.timedelta(days=1) in (
        end,
        end - dt.timedelta(days=1),  # an anchor clamped to Feb 28 recovers the 29th
        end - dt.timedelta(days=2),
        end - dt.timedelta(days=3),
    )


@given(
    activated=st.dates(dt.date(2025, 1, 1), dt.date(2027, 12, 31)),
    months=st.sampled_from([1, 12, 24, 36]),
    ahead=st.integers(0, 50),
    used=st.integers(0, 200),
)
@settings(max_examples=200)
def test_segments_cover_the_active_days_of_the_month_without_overlap(
    activated, months, ahead, used
):
    plan = PlanTerms(1, months, D("360.00"), 100, TARIFF)
    period = add_months(activated.replace(day=1), ahead)
    segs = month_segments(
        periods=[PlanPeriod(plan, activated)],
        activated_on=activated,
        ended_on=None,
        period=period,
        pool_used_before=used,
    )
    first, last = month_bounds(period)
    assert segs[0].start_date == max(first, activated)
    assert segs[-1].end_date == last
    for a, b in itertools.pairwise(segs):
        assert b.start_date == a.end_date + dt.timedelta(days=1)
    for s in segs:
        assert 0 <= s.pool_available <= s.pool_total
        assert s.term_start <= s.start_date <= s.end_date <= s.term_end
        assert (s.fee_kind == "term") == (months > 1 and s.is_new_term)
    assert sum(s.active_days for s in segs) == (last - max(first, activated)).days + 1


@given(
    price=st.decimals(0, 10000, places=2),
    minutes=st.integers(0, 100000),
    dim=st.integers(28, 31),
    data=st.data(),
)
def test_proration_never_exceeds_the_full_month(price, minutes, dim, data):
    active = data.draw(st.integers(0, dim))
    assert 0 <= prorate_pool(minutes, active, dim) <= minutes
    assert D(0) <= prorate_fee(price, active, dim) <= price
    assert prorate_pool(minutes, dim, dim) == minutes
    assert prorate_fee(price, dim, dim) == price
