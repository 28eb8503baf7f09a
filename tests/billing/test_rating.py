"""The pure rating core, by example. Every expected figure is worked by hand."""

import datetime as dt
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from billing.rating import (
    Calendar,
    CallIn,
    CallRating,
    PlanPeriod,
    PlanTerms,
    RatingError,
    Tariff,
    active_days,
    add_months,
    advise_month,
    billable_minutes,
    month_segments,
    period_of,
    prorate_fee,
    prorate_pool,
    rate_month,
    term_bounds,
    usage_lines,
)

SH = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC
MARCH = dt.date(2026, 3, 1)
CAL = Calendar()
TARIFF = Tariff(D("0.1500"), D("0.1000"), D("0.2000"))
MONTHLY = PlanTerms(1, 1, D("199.00"), 1000, TARIFF)
SMALL = PlanTerms(2, 1, D("10.00"), 10, TARIFF)  # a 10-minute pool
TERM = PlanTerms(3, 12, D("1200.00"), 100, Tariff(D("0.12"), D("0.12"), D("0.20")))


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH)


def call(cid, start, seconds, direction="inbound", answered=True) -> CallIn:
    return CallIn(cid, start, seconds, direction, answered)


def segments(plan=SMALL, activated=MARCH, period=MARCH, ended=None, used=0):
    return month_segments(
        periods=[PlanPeriod(plan, activated)],
        activated_on=activated,
        ended_on=ended,
        period=period,
        pool_used_before=used,
    )


def by_id(ratings):
    return {r.call_id: r for r in ratings}


# --- bands -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "band"),
    [
        (at(2026, 3, 2, 7, 59, 59), "offpeak"),  # Monday, one second early
        (at(2026, 3, 2, 8, 0, 0), "peak"),
        (at(2026, 3, 2, 19, 59, 59), "peak"),
        (at(2026, 3, 2, 20, 0, 0), "offpeak"),  # the end is exclusive
        (at(2026, 3, 7, 10, 0, 0), "offpeak"),  # Saturday
        (at(2026, 3, 1, 10, 0, 0), "offpeak"),  # Sunday
    ],
)
def test_band_boundaries_on_weekdays_and_weekends(start, band):
    assert CAL.band_of(start) == band


def test_band_uses_shanghai_time_for_a_utc_timestamp():
    # 2026-03-02 00:30 UTC is 08:30 in Shanghai on a Monday: peak.
    assert CAL.band_of(dt.datetime(2026, 3, 2, 0, 30, tzinfo=UTC)) == "peak"
    # 2026-03-01 23:59 UTC is Monday 07:59 in Shanghai: off-peak.
    assert CAL.band_of(dt.datetime(2026, 3, 1, 23, 59, tzinfo=UTC)) == "offpeak"


def test_a_statutory_holiday_on_a_weekday_is_offpeak_all_day():
    # 2026-10-01 is a Thursday (国庆节).
    holiday = Calendar(holidays={dt.date(2026, 10, 1): "holiday"})
    assert CAL.band_of(at(2026, 10, 1, 10, 0)) == "peak"
    assert holiday.band_of(at(2026, 10, 1, 10, 0)) == "offpeak"
    assert holiday.band_of(at(2026, 10, 2, 10, 0)) == "peak"  # Friday, no holiday


def test_a_make_up_workday_on_a_saturday_has_peak_hours():
    # 2026-10-10 is a Saturday declared a working day (调休上班).
    workday = Calendar(holidays={dt.date(2026, 10, 10): "workday"})
    assert CAL.band_of(at(2026, 10, 10, 10, 0)) == "offpeak"
    assert workday.band_of(at(2026, 10, 10, 10, 0)) == "peak"
    assert workday.band_of(at(2026, 10, 10, 7, 59, 59)) == "offpeak"
    assert workday.band_of(at(2026, 10, 10, 20, 0)) == "offpeak"


def test_catalog_hours_and_days_are_data():
    # Peak 09:00–18:00, Monday to Saturday.
    cal = Calendar(dt.time(9), dt.time(18), frozenset({1, 2, 3, 4, 5, 6}))
    assert cal.band_of(at(2026, 3, 7, 9, 0)) == "peak"  # Saturday
    assert cal.band_of(at(2026, 3, 2, 8, 30)) == "offpeak"
    assert cal.band_of(at(2026, 3, 2, 18, 0)) == "offpeak"


def test_a_naive_start_is_refused():
    with pytest.raises(RatingError):
        CAL.band_of(dt.datetime(2026, 3, 2, 10, 0))


def test_the_month_is_the_shanghai_month():
    # 2026-03-31 23:59:59 +08:00 is 15:59:59 UTC, still March in Shanghai;
    # one second later (16:00 UTC) is April 1st in Shanghai.
    assert period_of(dt.datetime(2026, 3, 31, 15, 59, 59, tzinfo=UTC)) == MARCH
    assert period_of(dt.datetime(2026, 3, 31, 16, 0, 0, tzinfo=UTC)) == dt.date(
        2026, 4, 1
    )


def test_a_utc_call_on_the_last_evening_is_rated_in_march():
    # Given a full-March subscription and a call at 15:59:59 UTC on March 31st
    # when March is rated / then it belongs to March (its 31st) and is off-peak
    # (23:59:59 local, a Tuesday night).
    c = call("late-night", dt.datetime(2026, 3, 31, 15, 59, 59, tzinfo=UTC), 60)
    (r,) = rate_month([c], segments(), CAL)
    assert (r.band, r.pool_minutes) == ("offpeak", 1)


# --- one call ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "answered", "minutes"),
    [(0, True, 0), (1, True, 1), (59, True, 1), (60, True, 1), (61, True, 2),
     (3600, True, 60), (3601, True, 61), (125, False, 0)],
)  # fmt: skip
def test_billable_minutes_round_up_to_the_minute(seconds, answered, minutes):
    assert billable_minutes(seconds, answered) == minutes


def test_a_negative_duration_is_refused():
    with pytest.raises(RatingError):
        billable_minutes(-1, True)


# --- the pool ----------------------------------------------------------------


def test_a_call_that_exactly_empties_the_pool_then_the_next_is_charged():
    # Pool 10. 4 min (181 s → 4) + 6 min (360 s → 6) = 10: exactly empty.
    # The third call, 3 min peak, is charged: 3 × 0.15 = 0.4500.
    calls = [
        call("a", at(2026, 3, 2, 9, 0), 181),
        call("b", at(2026, 3, 2, 10, 0), 360),
        call("c", at(2026, 3, 2, 11, 0), 150),
    ]
    r = by_id(rate_month(calls, segments(), CAL))
    assert (r["a"].pool_minutes, r["a"].charged_minutes) == (4, 0)
    assert (r["b"].pool_minutes, r["b"].charged_minutes) == (6, 0)
    assert (r["c"].pool_minutes, r["c"].charged_minutes) == (0, 3)
    assert r["c"].amount == D("0.4500")
    assert r["b"].amount == D("0.0000")


def test_a_split_call_takes_what_is_left_and_the_rest_is_charged_by_band():
    # Pool 10. 8 min first, then a 5-min off-peak call (21:00 Monday):
    # it takes the 2 left, 3 are charged at 0.10 = 0.3000.
    calls = [
        call("first", at(2026, 3, 2, 9, 0), 480),
        call("split", at(2026, 3, 2, 21, 0), 300),
    ]
    r = by_id(rate_month(calls, segments(), CAL))
    split = r["split"]
    assert (split.billable_minutes, split.pool_minutes, split.charged_minutes) == (
        5,
        2,
        3,
    )
    assert (split.band, split.rate, split.amount) == ("offpeak", D("0.1000"), D("0.3"))


def test_outbound_never_uses_the_pool_and_pays_the_outbound_rate():
    # Outbound 5 min (241 s): 5 × 0.20 = 1.0000 though the pool holds 10;
    # the inbound call afterwards still finds all 10.
    calls = [
        call("out", at(2026, 3, 2, 9, 0), 241, direction="outbound"),
        call("in", at(2026, 3, 2, 9, 30), 120),
    ]
    r = by_id(rate_month(calls, segments(), CAL))
    assert (r["out"].pool_minutes, r["out"].charged_minutes) == (0, 5)
    assert (r["out"].rate, r["out"].amount) == (D("0.2000"), D("1.0000"))
    assert r["in"].pool_minutes == 2


def test_missed_and_zero_length_calls_are_free_but_listed_with_their_band():
    calls = [
        call("missed", at(2026, 3, 2, 9, 0), 125, answered=False),
        call("zero", at(2026, 3, 2, 21, 0), 0),
    ]
    r = by_id(rate_month(calls, segments(), CAL))
    assert r["missed"] == CallRating("missed", "peak", 0, 0, 0, D("0.1500"), D("0"))
    assert r["zero"] == CallRating("zero", "offpeak", 0, 0, 0, D("0.1000"), D("0"))


def test_ties_in_start_time_are_broken_by_call_id():
    # Both start 09:00:00 and need 8 min of a 10-min pool: "A1" < "B1" goes
    # first and takes 8; "B1" gets 2 and pays 6 × 0.15 = 0.9000.
    t = at(2026, 3, 2, 9, 0)
    r = by_id(rate_month([call("B1", t, 480), call("A1", t, 480)], segments(), CAL))
    assert r["A1"].pool_minutes == 8
    assert (r["B1"].pool_minutes, r["B1"].amount) == (2, D("0.9000"))


def test_the_amount_is_exact_to_four_decimals_and_lines_round_once():
    # Rate 0.1234; three charged calls of 1, 2, 4 min (no pool):
    # call amounts 0.1234, 0.2468, 0.4936 (sum 0.8638);
    # the line: 7 × 0.1234 = 0.8638 → 0.86 (rounding each call first would
    # give 0.12 + 0.25 + 0.49 = 0.86 here but drifts in general).
    plan = PlanTerms(9, 1, D("0"), 0, Tariff(D("0.1234"), D("0.1234"), D("0.2")))
    calls = [
        call("x", at(2026, 3, 2, 9, 0), 60),
        call("y", at(2026, 3, 2, 9, 5), 120),
        call("z", at(2026, 3, 2, 9, 10), 240),
    ]
    ratings = rate_month(calls, segments(plan=plan), CAL)
    assert [r.amount for r in ratings] == [D("0.1234"), D("0.2468"), D("0.4936")]
    (line,) = usage_lines(calls, ratings)
    assert (line.kind, line.charged_minutes, line.amount) == (
        "inbound_peak",
        7,
        D("0.86"),
    )


def test_usage_lines_group_by_kind_with_billable_pool_and_charged():
    # Pool 10: peak 8 (pool 8), off-peak 5 (pool 2, charged 3), outbound 2.
    calls = [
        call("p", at(2026, 3, 2, 9, 0), 480),
        call("o", at(2026, 3, 2, 21, 0), 300),
        call("x", at(2026, 3, 2, 22, 0), 61, direction="outbound"),
    ]
    lines = usage_lines(calls, rate_month(calls, segments(), CAL))
    summary = [
        (ln.kind, ln.billable_minutes, ln.pool_minutes, ln.charged_minutes, ln.amount)
        for ln in lines
    ]
    assert summary == [
        ("inbound_peak", 8, 8, 0, D("0.00")),
        ("inbound_offpeak", 5, 2, 3, D("0.30")),  # 3 × 0.10
        ("outbound", 2, 0, 2, D("0.40")),  # 2 × 0.20
    ]


def test_a_call_outside_the_active_days_is_refused():
    # Activated on March 10th: a call on the 9th has no plan.
    segs = segments(activated=dt.date(2026, 3, 10))
    with pytest.raises(RatingError):
        rate_month([call("early", at(2026, 3, 9, 10, 0), 60)], segs, CAL)


# --- proration ---------------------------------------------------------------


def test_activation_on_the_10th_of_a_31_day_month_prorates_fee_and_pool():
    # Active 10th–31st = 22 days of 31.
    # fee = 199.00 × 22 / 31 = 4378 / 31 = 141.2258… → 141.23
    # pool = floor(1000 × 22 / 31) = floor(709.677…) = 709
    (seg,) = segments(plan=MONTHLY, activated=dt.date(2026, 3, 10))
    assert (seg.active_days, seg.days_in_month) == (22, 31)
    assert (seg.fee_kind, seg.fee, seg.pool_available) == ("monthly", D("141.23"), 709)
    assert prorate_fee(D("199.00"), 22, 31) == D("141.23")
    assert prorate_pool(1000, 22, 31) == 709


def test_ending_early_prorates_and_counts_first_and_last_day():
    # Active March 1st–20th = 20 days.
    # fee = 199 × 20 / 31 = 3980 / 31 = 128.387… → 128.39
    # pool = floor(1000 × 20 / 31) = floor(645.16…) = 645
    (seg,) = segments(plan=MONTHLY, ended=dt.date(2026, 3, 20))
    assert (seg.active_days, seg.fee, seg.pool_available) == (20, D("128.39"), 645)
    assert active_days(dt.date(2026, 3, 10), dt.date(2026, 3, 10), MARCH) == 1


def test_a_full_month_is_the_plain_price_and_pool():
    # February 2026 has 28 days: 199 × 28 / 28 = 199.00, pool 1000.
    (seg,) = segments(
        plan=MONTHLY, activated=dt.date(2026, 2, 1), period=dt.date(2026, 2, 1)
    )
    assert (seg.active_days, seg.fee, seg.pool_available) == (28, D("199.00"), 1000)


def test_a_fee_tie_rounds_half_up():
    # 0.31 × 15 / 30 = 0.155 exactly → 0.16 (half up, not to even)
    assert prorate_fee(D("0.31"), 15, 30) == D("0.16")


# --- terms -------------------------------------------------------------------


def test_add_months_clamps_to_the_month_end():
    assert add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2028, 2, 29), 12) == dt.date(2029, 2, 28)
    assert add_months(dt.date(2026, 11, 30), 3) == dt.date(2027, 2, 28)


def test_a_term_ends_the_day_before_the_same_date_later():
    # Started 2026-01-31, 12 months: ends 2027-01-30; the next starts 2027-01-31.
    assert term_bounds(dt.date(2026, 1, 31), 12, dt.date(2026, 6, 1)) == (
        dt.date(2026, 1, 31),
        dt.date(2027, 1, 30),
    )
    assert term_bounds(dt.date(2026, 1, 31), 12, dt.date(2027, 1, 31)) == (
        dt.date(2027, 1, 31),
        dt.date(2028, 1, 30),
    )
    # Anchored on Feb 29th: terms start 2029-02-28 … 2032-02-29 (no drift).
    assert term_bounds(dt.date(2028, 2, 29), 12, dt.date(2032, 3, 1))[0] == dt.date(
        2032, 2, 29
    )
    assert term_bounds(dt.date(2028, 2, 29), 12, dt.date(2029, 3, 1)) == (
        dt.date(2029, 2, 28),
        dt.date(2030, 2, 27),
    )


def test_a_term_started_mid_month_is_billed_in_full_with_its_whole_pool():
    # Term plan activated 2026-01-15: January has one segment 15th–31st,
    # the term price 1200.00 in full and the whole pool of 100.
    (seg,) = segments(
        plan=TERM, activated=dt.date(2026, 1, 15), period=dt.date(2026, 1, 1)
    )
    assert (seg.start_date, seg.end_date) == (
        dt.date(2026, 1, 15),
        dt.date(2026, 1, 31),
    )
    assert (seg.fee_kind, seg.fee, seg.pool_available, seg.is_new_term) == (
        "term",
        D("1200.00"),
        100,
        True,
    )


def test_a_continuing_term_month_has_no_fee_and_what_is_left_of_the_pool():
    # Same term in June 2026, 70 minutes used in January–May: 30 left, no fee.
    (seg,) = segments(
        plan=TERM, activated=dt.date(2026, 1, 15), period=dt.date(2026, 6, 1), used=70
    )
    assert (seg.fee_kind, seg.fee, seg.pool_available) == ("none", D("0.00"), 30)
    assert (seg.term_start, seg.term_end) == (
        dt.date(2026, 1, 15),
        dt.date(2027, 1, 14),
    )


def test_the_pool_expires_at_the_term_end_and_a_fresh_one_starts_next_day():
    # January 2027: the first term ends on the 14th with 30 of 100 left;
    # the second starts on the 15th, billed 1200.00 again, pool 100.
    segs = segments(
        plan=TERM, activated=dt.date(2026, 1, 15), period=dt.date(2027, 1, 1), used=70
    )
    assert [
        (s.start_date.day, s.end_date.day, s.pool_available, s.fee) for s in segs
    ] == [
        (1, 14, 30, D("0.00")),
        (15, 31, 100, D("1200.00")),
    ]
    # A 40-min call on the 14th at 23:00 takes the 30 left and pays 10 × 0.12
    # = 1.2000; a 5-min call at 00:10 on the 15th draws on the fresh pool.
    calls = [
        call("old-term", at(2027, 1, 14, 23, 0), 2400),
        call("new-term", at(2027, 1, 15, 0, 10), 300),
        call("more", at(2027, 1, 20, 10, 0), 5400),  # 90 min: 95 used of 100
    ]
    r = by_id(rate_month(calls, segs, CAL))
    assert (r["old-term"].pool_minutes, r["old-term"].amount) == (30, D("1.2000"))
    assert (r["new-term"].pool_minutes, r["new-term"].charged_minutes) == (5, 0)
    assert (r["more"].pool_minutes, r["more"].charged_minutes) == (90, 0)


def test_a_term_cut_short_by_the_end_of_service_forfeits_the_rest():
    # Ended 2026-06-10: June's segment is the 1st–10th, pool still 30 left.
    (seg,) = segments(
        plan=TERM,
        activated=dt.date(2026, 1, 15),
        period=dt.date(2026, 6, 1),
        ended=dt.date(2026, 6, 10),
        used=70,
    )
    assert (seg.start_date.day, seg.end_date.day, seg.pool_available) == (1, 10, 30)


def test_a_plan_change_on_the_first_starts_the_term_plan_on_that_day():
    # Monthly plan from 2026-01-10 to 2026-03-31, the term plan from April 1st.
    periods = [
        PlanPeriod(MONTHLY, dt.date(2026, 1, 10), dt.date(2026, 3, 31)),
        PlanPeriod(TERM, dt.date(2026, 4, 1)),
    ]
    kw = {"periods": periods, "activated_on": dt.date(2026, 1, 10), "ended_on": None}
    (march,) = month_segments(period=MARCH, **kw)
    (april,) = month_segments(period=dt.date(2026, 4, 1), **kw)
    assert (march.plan, march.fee, march.pool_available) == (MONTHLY, D("199.00"), 1000)
    assert (april.plan, april.fee_kind, april.fee, april.pool_available) == (
        TERM,
        "term",
        D("1200.00"),
        100,
    )
    assert (april.term_start, april.term_end) == (
        dt.date(2026, 4, 1),
        dt.date(2027, 3, 31),
    )


# --- late calls (§6) ---------------------------------------------------------


def test_late_calls_after_an_issued_invoice_get_only_what_was_left():
    # Pool 10. Issued with calls a (5 min) and b (3 min): 8 used, 2 left.
    # A late call c started BEFORE them (5 min, peak) arrives afterwards: it
    # gets the 2 left and pays 3 × 0.15 = 0.4500; a and b keep their rating.
    frozen = {
        "a": CallRating("a", "peak", 5, 5, 0, D("0.1500"), D("0")),
        "b": CallRating("b", "peak", 3, 3, 0, D("0.1500"), D("0")),
    }
    calls = [
        call("a", at(2026, 3, 10, 9, 0), 300),
        call("b", at(2026, 3, 11, 9, 0), 180),
        call("c", at(2026, 3, 2, 9, 0), 300),
    ]
    r = by_id(rate_month(calls, segments(), CAL, frozen=frozen))
    assert r["a"] is frozen["a"]
    assert (r["c"].pool_minutes, r["c"].charged_minutes, r["c"].amount) == (
        2,
        3,
        D("0.4500"),
    )


def test_while_a_draft_an_early_late_call_takes_the_pool_first():
    # The same three calls with nothing frozen: c (March 2nd) is first and
    # takes 5, a takes 5 (pool now empty), b pays 3 × 0.15 = 0.4500.
    calls = [
        call("a", at(2026, 3, 10, 9, 0), 300),
        call("b", at(2026, 3, 11, 9, 0), 180),
        call("c", at(2026, 3, 2, 9, 0), 300),
    ]
    r = by_id(rate_month(calls, segments(), CAL))
    assert [r[k].pool_minutes for k in "cab"] == [5, 5, 0]
    assert r["b"].amount == D("0.4500")


# --- the advisor -------------------------------------------------------------


def test_the_advisor_uses_a_fresh_full_pool_and_monthly_share_of_a_term():
    # 1,200 peak minutes in March: one 60-min call at 10:00 on each of the
    # 20 weekdays March 2nd–27th.
    days = [2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 16, 17, 18, 19, 20, 23, 24, 25, 26, 27]
    calls = [call(f"c{d:02d}", at(2026, 3, d, 10, 0), 3600) for d in days]
    monthly = advise_month(calls, MONTHLY, CAL, MARCH)
    # Monthly plan: fee 199.00, pool 1000, 200 charged × 0.15 = 30.00 → 229.00
    assert (monthly.fee, monthly.pool, monthly.pool_used) == (D("199.00"), 1000, 1000)
    assert (monthly.usage_amount, monthly.total) == (D("30.00"), D("229.00"))
    rates = Tariff(D("0.12"), D("0.12"), D("0.2"))
    three_years = PlanTerms(4, 36, D("3000.00"), 25000, rates)
    term = advise_month(calls, three_years, CAL, MARCH)
    # Term plan: fee 3000 / 36 = 83.333… → 83.33; pool floor(25000 / 36) = 694;
    # 1200 − 694 = 506 charged × 0.12 = 60.72 → total 144.05
    assert (term.fee, term.pool, term.usage_amount, term.total) == (
        D("83.33"),
        694,
        D("60.72"),
        D("144.05"),
    )
